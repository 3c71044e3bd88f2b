"""models.toml -> frozen ``ModelSpec``s; locating, assembling and verifying model files.

``load_registry`` reads the built-in ``ragcli/models.toml`` and then each extra file (later
files add entries, override fields and change defaults), validating everything at that
boundary. ``is_available`` answers "could this model be used now?" cheaply (no hashing, no
assembly, no network). ``resolve_model_path`` turns a spec into a local path, assembling
multi-part PyPI models into the cache and checking sha256 once per file version (a
``<file>.verified`` marker remembers size, mtime and hash).

Deliberately not here: loading models (``generators``, ``embedders``) and deciding which
files are read (``config``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import tomllib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragcli.errors import ConfigError, ModelUnavailableError, StorageError, UnknownModelError

__all__ = [
    "BUILTIN_FILE",
    "ModelSpec",
    "Registry",
    "is_available",
    "load_registry",
    "marker_path",
    "resolve_model_path",
]

BUILTIN_FILE = Path(__file__).with_name("models.toml")
KINDS = ("llm", "embedder")
SOURCES = ("path", "pypi", "hf", "builtin")  # builtin: a test double in code, picked by backend
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20  # bytes read at a time when hashing / concatenating


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "llm" | "embedder"
    name: str  # registry name, e.g. "qwen2.5-coder-0.5b"
    source: str  # "path" | "pypi" | "hf" | "builtin"
    description: str = ""
    path: str = ""  # source = "path": a file (llm) or a folder (embedder); "~" allowed
    packages: tuple[str, ...] = ()  # source = "pypi": importable modules, one per part, in order
    files: tuple[str, ...] = ()  # the part's file inside each of ``packages``
    module: str = ""  # source = "pypi": one module with get_model_path() or assemble()
    assemble: bool = False  # call module.assemble(output_path) instead of get_model_path()
    repo: str = ""  # source = "hf": "owner/name"
    file: str = ""  # source = "hf": file in the repo (llm only)
    revision: str = "main"  # source = "hf"
    sha256: str = ""  # lowercase hex; "" = not checked
    install: str = ""  # shown when unavailable, e.g. "pip install ..."
    backend: str = ""  # which class runs it: "" = llama.cpp / sentence-transformers; "hash" = test double
    delay: float = 0.0  # test doubles: seconds to sleep per call (to test timeouts and locking)
    n_ctx: int = 4096  # llm: context window in tokens
    chat_format: str = ""  # llm: "" = the GGUF's chat template; else a llama-cpp-python name
    n_gpu_layers: int = 0  # llm: layers offloaded to a GPU, -1 = all
    dim: int = 0  # embedder: vector dimension
    max_tokens: int = 256  # embedder: longest input in tokens


@dataclass(frozen=True)
class Registry:
    specs: tuple[ModelSpec, ...]  # file order: built-in entries first
    default_llm: str
    default_embedder: str
    files: tuple[Path, ...] = ()  # the files read, built-in first

    def llms(self) -> tuple[ModelSpec, ...]:
        return tuple(s for s in self.specs if s.kind == "llm")

    def embedders(self) -> tuple[ModelSpec, ...]:
        return tuple(s for s in self.specs if s.kind == "embedder")

    def get(self, name: str | None, kind: str = "llm") -> ModelSpec:
        """The spec called ``name`` of that kind; ``None`` means the default of that kind."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if name is None:
            name = self.default_llm if kind == "llm" else self.default_embedder
        for spec in self.specs:
            if spec.kind == kind and spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.specs if s.kind == kind) or "(none)"
        flag = "--model" if kind == "llm" else "--embedder"
        raise UnknownModelError(
            f"Unknown {kind} {name!r}. Known {kind}s: {known}. Pass one of them with {flag}, "
            f"or add [{kind}.\"{name}\"] to a models.toml (see `rag models`)."
        )


# --- loading and validation --------------------------------------------------------------

_STR = (str,)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "description": _STR, "source": _STR, "path": _STR, "module": _STR, "repo": _STR,
    "file": _STR, "revision": _STR, "sha256": _STR, "install": _STR, "backend": _STR,
    "chat_format": _STR, "packages": (list,), "files": (list,), "assemble": (bool,),
    "n_ctx": (int,), "n_gpu_layers": (int,), "dim": (int,), "max_tokens": (int,),
    "delay": (float, int),
}
_LLM_ONLY = {"n_ctx", "chat_format", "n_gpu_layers"}
_EMBEDDER_ONLY = {"dim", "max_tokens"}


def load_registry(extra_files: Sequence[Path] = ()) -> Registry:
    """Built-in models.toml, then each of ``extra_files`` in order; raises ``ConfigError``.

    An entry in a later file that has a ``source`` key replaces the earlier entry of that name;
    one without ``source`` only changes the fields it names.
    """
    raw: dict[tuple[str, str], tuple[dict[str, Any], Path]] = {}  # (kind, name) -> fields, file
    defaults: dict[str, tuple[str, Path]] = {}  # kind -> (name, file that set it)
    files = (BUILTIN_FILE, *(Path(f) for f in extra_files))
    for file in files:
        data = _read_toml(file)
        for key, value in data.items():
            if key == "defaults":
                _merge_defaults(value, file, defaults)
            elif key in KINDS:
                _merge_entries(key, value, file, raw)
            else:
                raise ConfigError(
                    f"{file}: unknown table [{key}]; expected [defaults], [llm.NAME] or "
                    "[embedder.NAME]."
                )
    specs = tuple(_build_spec(kind, name, entry, file) for (kind, name), (entry, file) in raw.items())
    chosen = {}
    for kind in KINDS:
        if kind not in defaults:
            raise ConfigError(f"{BUILTIN_FILE}: [defaults] has no {kind} = \"NAME\".")
        name, file = defaults[kind]
        if not any(s.kind == kind and s.name == name for s in specs):
            known = ", ".join(s.name for s in specs if s.kind == kind) or "(none)"
            raise ConfigError(
                f"{file}: [defaults] {kind} = {name!r} is not a known {kind} (known: {known}). "
                f"Fix the name or add an [{kind}.\"{name}\"] entry."
            )
        chosen[kind] = name
    return Registry(specs, chosen["llm"], chosen["embedder"], files)


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with open(file, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such models file. Fix the path given by --models or RAG_MODELS.") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read models file ({exc.strerror}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc}). Fix the file or remove it.") from None


def _merge_defaults(value: object, file: Path, defaults: dict[str, tuple[str, Path]]) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{file}: [defaults] must be a table.")
    for kind, name in value.items():
        if kind not in KINDS:
            raise ConfigError(f"{file}: [defaults] has unknown key {kind!r}; expected llm or embedder.")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{file}: [defaults] {kind} must be a model name (a string).")
        defaults[kind] = (name, file)


def _merge_entries(kind: str, table: object, file: Path, raw: dict) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: [{kind}] must hold tables like [{kind}.\"NAME\"].")
    for name, entry in table.items():
        where = f"{file}: [{kind}.\"{name}\"]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table, not a {type(entry).__name__}.")
        previous = raw.get((kind, name))
        if previous is not None and "source" not in entry:
            merged = {**previous[0], **entry}
        else:
            merged = dict(entry)
        raw[(kind, name)] = (merged, file)


def _build_spec(kind: str, name: str, entry: dict[str, Any], file: Path) -> ModelSpec:
    """Validate one merged entry; ``file`` is the last file that touched it."""
    where = f"{file}: [{kind}.\"{name}\"]"
    not_for_kind = _EMBEDDER_ONLY if kind == "llm" else _LLM_ONLY
    for key, value in entry.items():
        if key not in _FIELD_TYPES or key in not_for_kind:
            allowed = sorted(set(_FIELD_TYPES) - not_for_kind)
            raise ConfigError(f"{where}: unknown key {key!r}. Allowed keys: {', '.join(allowed)}.")
        types = _FIELD_TYPES[key]
        # bool is an int subclass; `n_ctx = true` is a mistake, not 1
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            want = {str: "a string", list: "a list of strings", bool: "true or false", int: "an integer",
                    float: "a number"}[types[0]]
            raise ConfigError(f"{where}: {key} must be {want}, not {value!r}.")
        if types == (list,) and not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where}: {key} must be a list of non-empty strings.")

    source = entry.get("source")
    if source is None:
        raise ConfigError(f"{where}: missing key 'source' (one of {', '.join(SOURCES)}).")
    if source not in SOURCES:
        raise ConfigError(f"{where}: unknown source {source!r}; expected one of {', '.join(SOURCES)}.")

    def need(*keys: str) -> None:
        for key in keys:
            if not entry.get(key):
                raise ConfigError(f"{where}: source = {source!r} needs {key!r}.")

    if source == "builtin":
        need("backend")
    elif source == "path":
        need("path")
    elif source == "hf":
        need("repo")
        if kind == "llm":
            need("file")
    elif "packages" in entry or "files" in entry:
        need("packages", "files")
        if len(entry["packages"]) != len(entry["files"]):
            raise ConfigError(
                f"{where}: packages has {len(entry['packages'])} items but files has "
                f"{len(entry['files'])}; give one file per package."
            )
        if "module" in entry:
            raise ConfigError(f"{where}: give either packages + files or module, not both.")
    else:
        need("module")
    if entry.get("assemble") and not entry.get("module"):
        raise ConfigError(f"{where}: assemble = true needs module = \"...\".")
    sha = entry.get("sha256", "")
    if sha and not _SHA256.match(sha):
        raise ConfigError(f"{where}: sha256 must be 64 lowercase hex digits, not {sha!r}.")
    if kind == "embedder":
        if sha:
            raise ConfigError(f"{where}: sha256 is only supported for llm files.")
        if entry.get("dim", 0) <= 0:
            raise ConfigError(f"{where}: needs dim = N, the embedding dimension (a positive integer).")
        if entry.get("max_tokens", 256) <= 0:
            raise ConfigError(f"{where}: max_tokens must be positive.")
    elif entry.get("n_ctx", 4096) < 16:
        raise ConfigError(f"{where}: n_ctx must be at least 16.")
    if entry.get("delay", 0) < 0:
        raise ConfigError(f"{where}: delay must not be negative.")

    values = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
    if "delay" in values:
        values["delay"] = float(values["delay"])
    return ModelSpec(kind=kind, name=name, **values)


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
    digest = hashlib.sha256()
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

