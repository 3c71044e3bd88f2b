"""Generators: the scripted test double, llama.cpp error handling, and one real GGUF run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ragcli.errors import ModelUnavailableError
from ragcli.models.files import is_available, resolve_model_path
from ragcli.models.generators import Generation, Generator, LlamaGenerator, ScriptedGenerator
from ragcli.models.registry import load_registry

USER = [{"role": "user", "content": "Is water wet? Answer yes or no."}]


# --- ScriptedGenerator ---------------------------------------------------------------------


def test_scripted_replies_in_order_then_repeats_the_last() -> None:
    gen = ScriptedGenerator(["first answer", "second"])
    texts = [gen.generate(USER, grammar=None, max_tokens=10).text for _ in range(3)]
    assert texts == ["first answer", "second", "second"]


def test_scripted_streams_pieces_that_join_to_the_text() -> None:
    gen = ScriptedGenerator('{"answer": "It is  wet.",\n "quotes": []}')
    pieces: list[str] = []
    result = gen.generate(USER, grammar='root ::= "x"', max_tokens=100, on_text=pieces.append)
    assert "".join(pieces) == result.text == '{"answer": "It is  wet.",\n "quotes": []}'
    assert result.completion_tokens == len(pieces) == gen.count_tokens(result.text)
    assert result.prompt_tokens == gen.count_tokens(USER[0]["content"])
    assert gen.calls == [(USER, 'root ::= "x"', 100)]


def test_scripted_cuts_at_max_tokens() -> None:
    result = ScriptedGenerator("one two three four").generate(USER, grammar=None, max_tokens=2)
    assert result.text == "one two " and result.completion_tokens == 2


def test_scripted_reply_function_sees_messages_and_grammar() -> None:
    gen = ScriptedGenerator(lambda messages, grammar: f"{len(messages)}:{grammar}")
    assert gen.generate(USER, grammar="g", max_tokens=5).text == "1:g"


def test_generation_speed() -> None:
    g = Generation(text="", prompt_tokens=3, completion_tokens=11, load_s=0.0, prompt_s=0.1, gen_s=2.0)
    assert g.tokens_per_s == pytest.approx(5.0)
    assert Generation("", 3, 1, 0.0, 0.1, 0.0).tokens_per_s == 0.0


def test_both_generators_fit_the_protocol() -> None:
    def check(gen: Generator) -> None:  # a static check as much as a runtime one
        assert isinstance(gen.name, str) and gen.n_ctx > 0

    check(ScriptedGenerator("x"))
    check(LlamaGenerator(Path("nowhere.gguf"), name="n", n_ctx=512, chat_format="", n_gpu_layers=0))


# --- LlamaGenerator without a real model ---------------------------------------------------


def test_llama_generator_loads_lazily_and_reports_a_missing_file(tmp_path: Path) -> None:
    gen = LlamaGenerator(tmp_path / "absent.gguf", name="absent", n_ctx=512, chat_format="", n_gpu_layers=0)
    assert gen.load_s == 0.0  # constructing it loaded nothing
    pytest.importorskip("llama_cpp")
    with pytest.raises(ModelUnavailableError, match="absent.gguf"):
        gen.generate(USER, grammar=None, max_tokens=4)


def test_a_file_that_is_not_a_gguf_is_unavailable_and_silent(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    pytest.importorskip("llama_cpp")
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"this is not a GGUF file at all" * 100)
    gen = LlamaGenerator(bogus, name="bogus", n_ctx=512, chat_format="", n_gpu_layers=0)
    with pytest.raises(ModelUnavailableError) as err:
        gen.count_tokens("hello")
    assert "bogus.gguf" in str(err.value) and "GGUF" in str(err.value)
    out, errout = capfd.readouterr()
    assert out == "" and errout == ""  # llama.cpp's own logging went into the message only


# --- the real default model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def qwen(model_cache: Path) -> LlamaGenerator:
    """The default LLM, assembled once per session into conftest's ``model_cache``."""
    pytest.importorskip("llama_cpp")
    spec = load_registry([]).get(None, "llm")
    if not is_available(spec):
        pytest.skip(f"default model not installed: {spec.install}")
    path = resolve_model_path(spec, model_cache)
    return LlamaGenerator(path, name=spec.name, n_ctx=1024, chat_format=spec.chat_format,
                          n_gpu_layers=spec.n_gpu_layers)


@pytest.mark.slow
def test_real_model_follows_a_grammar_and_prints_nothing(qwen: LlamaGenerator, capfd: pytest.CaptureFixture) -> None:
    pieces: list[str] = []
    result = qwen.generate(
        [{"role": "system", "content": "You answer questions."}, *USER],
        grammar='root ::= "yes" | "no"',
        max_tokens=8,
        on_text=pieces.append,
    )
    assert re.fullmatch(r"yes|no", result.text), result.text
    assert "".join(pieces) == result.text
    assert result.prompt_tokens > 10 and 1 <= result.completion_tokens <= 2
    assert result.load_s > 0 and result.prompt_s > 0 and result.gen_s >= 0

    again = qwen.generate(USER, grammar='root ::= "yes" | "no"', max_tokens=8)
    assert again.load_s == 0.0  # loaded once

    json_like = qwen.generate(
        [{"role": "user", "content": "Give the number of legs of a spider."}],
        grammar='root ::= "{\\"legs\\": " [0-9] [0-9]? "}"',
        max_tokens=12,
    )
    assert re.fullmatch(r'\{"legs": [0-9]{1,2}\}', json_like.text), json_like.text

    assert 0 < qwen.count_tokens("hello world") < 5
    with pytest.raises(ValueError, match="invalid GBNF"):
        qwen.generate(USER, grammar="root ::= undefined_rule", max_tokens=4)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.slow
def test_real_model_is_greedy_and_stops_at_max_tokens(qwen: LlamaGenerator) -> None:
    msgs = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]
    a = qwen.generate(msgs, grammar=None, max_tokens=10)
    b = qwen.generate(msgs, grammar=None, max_tokens=10)
    assert a.text == b.text and a.completion_tokens == 10
