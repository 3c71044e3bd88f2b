"""models.toml -> frozen ``ModelSpec``s.

``load_registry`` reads the built-in ``ragcli/models.toml`` and then each extra file (later
files add entries, override fields and change defaults), validating everything at that
boundary; unknown names raise an error that lists the known ones.

Deliberately not here: finding, assembling and verifying model files (``files``), the
backends an entry may name (``backends``), building models (``loading``) and deciding which
files are read (``config``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UnknownModelError
from .backends import BACKENDS, names
from .spec import ModelSpec

__all__ = ["BUILTIN_FILE", "ModelSpec", "Registry", "load_registry"]

BUILTIN_FILE = Path(__file__).with_name("models.toml")
KINDS = ("llm", "embedder")
SOURCES = ("path", "pypi", "hf", "builtin")  # builtin: a test double in code, picked by backend
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
EMBEDDER_BACKENDS = ("", *names("embedder"))  # "": sentence-transformers (``backends.BACKENDS``)


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
    "file": _STR, "revision": _STR, "sha256": _STR, "install": _STR, "backend": _STR, "device": _STR,
    "chat_format": _STR, "packages": (list,), "files": (list,), "assemble": (bool,),
    "n_ctx": (int,), "n_gpu_layers": (int,), "dim": (int,), "max_tokens": (int,),
    "delay": (float, int),
}
_LLM_ONLY = {"n_ctx", "chat_format", "n_gpu_layers"}
_EMBEDDER_ONLY = {"dim", "max_tokens", "device"}
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


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
        backend = entry.get("backend", "")
        if backend not in EMBEDDER_BACKENDS:
            raise ConfigError(f"{where}: unknown backend {backend!r}; expected one of "
                              f"{', '.join(repr(b) for b in EMBEDDER_BACKENDS if b)}.")
        exported = BACKENDS[backend].onnx if backend else ""
        if exported and source == "builtin":
            raise ConfigError(f"{where}: backend {backend!r} needs a model: source = \"pypi\", \"path\" or \"hf\".")
        if sha and not exported:
            onnx = ", ".join(f'"{b}"' for b in names("embedder") if BACKENDS[b].onnx)
            raise ConfigError(f"{where}: sha256 is only supported for llm files and ONNX exports "
                              f"(backend = {onnx}).")
        if entry.get("dim", 0) <= 0:
            raise ConfigError(f"{where}: needs dim = N, the embedding dimension (a positive integer).")
        if entry.get("max_tokens", 256) <= 0:
            raise ConfigError(f"{where}: max_tokens must be positive.")
        if not _DEVICE.match(entry.get("device", "cpu")):
            raise ConfigError(f"{where}: device must be \"cpu\", \"cuda\" or \"cuda:N\", not {entry['device']!r}.")
    elif entry.get("n_ctx", 4096) < 16:
        raise ConfigError(f"{where}: n_ctx must be at least 16.")
    if entry.get("delay", 0) < 0:
        raise ConfigError(f"{where}: delay must not be negative.")

    values = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
    if "delay" in values:
        values["delay"] = float(values["delay"])
    return ModelSpec(kind=kind, name=name, **values)
