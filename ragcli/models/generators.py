"""Text generation behind one small interface: chat messages in, a ``Generation`` out.

``Generator.generate(messages, grammar=..., max_tokens=..., on_text=...)`` runs greedy
decoding, optionally constrained by a GBNF grammar, and streams text pieces to ``on_text``.
Two implementations:

- ``LlamaGenerator``: llama.cpp through llama-cpp-python. ``llama_cpp`` is imported and the
  GGUF loaded on first use, so building one costs nothing; llama.cpp's own logging is
  captured (never printed) and shown only inside error messages.
- ``ScriptedGenerator``: returns scripted replies; the test double passed to constructors.

Deliberately not here: prompts and grammars for answers (``answer``), finding model files
(``files``) and which entry builds which generator (``backends``).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelUnavailableError, UsageError

__all__ = ["Generation", "Generator", "LlamaGenerator", "ScriptedGenerator"]

Messages = list[dict[str, str]]  # [{"role": "system" | "user" | "assistant", "content": ...}]


@dataclass(frozen=True)
class Generation:
    text: str  # the completion, without the end-of-turn token
    prompt_tokens: int  # tokens in the formatted chat prompt
    completion_tokens: int  # tokens generated (end-of-turn not counted)
    load_s: float  # model loading paid by this call (0.0 once loaded)
    prompt_s: float  # from the call to the first generated token (prompt evaluation)
    gen_s: float  # from the first generated token to the end

    @property
    def tokens_per_s(self) -> float:
        """Generation speed after the first token; 0.0 when too few tokens to tell."""
        return (self.completion_tokens - 1) / self.gen_s if self.completion_tokens > 1 and self.gen_s > 0 else 0.0


class Generator:
    """What every generator has: ``LlamaGenerator`` and ``ScriptedGenerator`` subclass it, and so
    may a generator of your own (``Index(generator=...)``). A subclass sets ``name`` and ``n_ctx``
    and gives ``generate`` and ``count_tokens``."""

    name: str  # registry name
    n_ctx: int  # context window in tokens: prompt + completion must fit
    load_s: float = 0.0  # seconds spent loading the model so far (it loads on first use)

    def generate(
        self,
        messages: Messages,
        *,
        grammar: str | None,
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:  # tokens ``text`` takes in the prompt
        raise NotImplementedError


# --- llama.cpp -----------------------------------------------------------------------------

_LOG: collections.deque[str] = collections.deque(maxlen=400)  # recent llama.cpp log pieces
_LOG_COUNT = 0  # pieces logged so far (the deque forgets, this does not)
_LOG_CALLBACK: Any = None  # the ctypes callback; kept alive here so it is never collected


def _capture_llama_logs(llama_cpp: Any) -> None:
    """Route llama.cpp's logging into ``_LOG`` instead of stderr (once per process)."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return

    @llama_cpp.llama_log_callback
    def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        global _LOG_COUNT
        _LOG.append(text.decode("utf-8", "replace"))
        _LOG_COUNT += 1

    _LOG_CALLBACK = _callback
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


def _log_tail(since: int = 0, lines: int = 4) -> str:
    """The last few llama.cpp log lines logged since ``_LOG_COUNT`` was ``since``."""
    new = min(_LOG_COUNT - since, len(_LOG))
    text = "".join(list(_LOG)[len(_LOG) - new :]) if new > 0 else ""
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)


@contextlib.contextmanager
def _fds_to_file() -> Iterator[list[str]]:
    """Redirect fds 1 and 2 to a temporary file; afterwards the list holds what was printed.

    For C code that prints with ``fprintf`` and bypasses llama.cpp's log callback.
    """
    printed: list[str] = []
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as tmp:
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield printed
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            printed.append(tmp.read().decode("utf-8", "replace"))


class LlamaGenerator(Generator):
    """A GGUF model run by llama.cpp on the CPU (or ``n_gpu_layers`` on a GPU build).

    Example (not a doctest: it needs the model)::

        gen = LlamaGenerator(path, name="qwen2.5-coder-0.5b", n_ctx=4096, chat_format="",
                             n_gpu_layers=0)          # nothing loaded yet
        gen.generate([{"role": "user", "content": "Is water wet? Answer yes or no."}],
                     grammar='root ::= "yes" | "no"', max_tokens=4).text   # -> "yes"
    """

    def __init__(
        self,
        model_path: Path,
        *,
        name: str,
        n_ctx: int,
        chat_format: str,
        n_gpu_layers: int,
        n_threads: int | None = None,
        seed: int = 0,
    ) -> None:
        self.model_path = Path(model_path)
        self.name = name
        self.n_ctx = n_ctx
        self.chat_format = chat_format  # "" = the GGUF's own chat template
        self.n_gpu_layers = n_gpu_layers
        self.n_threads = n_threads or os.cpu_count() or 1  # llama.cpp's default is half the cores
        self.seed = seed
        self.load_s = 0.0  # total time spent loading the model
        self._llm: Any = None
        self._grammars: dict[str, Any] = {}  # GBNF text -> checked llama_cpp.LlamaGrammar
        self._specials: re.Pattern[str] | None = None  # the vocabulary's special-token texts
        self.last_prompt: tuple[int, ...] = ()  # token ids of the last prompt, as the model saw it

    # loading ---------------------------------------------------------------------------

    def _load(self) -> Any:
        if self._llm is not None:
            return self._llm
        start = time.perf_counter()  # importing llama_cpp is part of the load
        try:
            import llama_cpp
        except ImportError:
            raise ModelUnavailableError(
                "llama-cpp-python is not installed, so no answer can be generated. "
                "Install it: pip install llama-cpp-python"
            ) from None
        _capture_llama_logs(llama_cpp)
        if not self.model_path.is_file():
            raise ModelUnavailableError(
                f"Model file for {self.name!r} not found: {self.model_path}. "
                "Check the model's entry in models.toml (`rag models` lists them)."
            )
        mark = _LOG_COUNT
        try:
            self._llm = _counting_llama_class(llama_cpp)(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_gpu_layers=self.n_gpu_layers,
                chat_format=self.chat_format or None,
                seed=self.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            detail = _log_tail(mark) or str(exc)
            raise ModelUnavailableError(
                f"llama.cpp could not load {self.model_path} for {self.name!r} ({detail}). The "
                "file is damaged or not a GGUF model this llama-cpp-python supports: delete it "
                "so it is assembled again, or point the models.toml entry at a valid GGUF."
            ) from None
        self.load_s += time.perf_counter() - start
        return self._llm

    def close(self) -> None:
        """Free the model's memory; the next call loads it again."""
        if self._llm is not None:
            self._llm.close()
            self._llm = None
            self._grammars.clear()
            self._specials = None

    # grammars --------------------------------------------------------------------------

    def _grammar(self, text: str) -> Any:
        """Compile GBNF once per text; a broken grammar is a bug, reported as ValueError."""
        cached = self._grammars.get(text)
        if cached is not None:
            return cached
        import llama_cpp

        llm = self._load()
        grammar = llama_cpp.LlamaGrammar.from_string(text, verbose=False)
        # llama-cpp-python >= 0.3 only parses the grammar when sampling starts, and a parse
        # failure there hands llama.cpp a NULL sampler (a crash). Parse it here first.
        init = getattr(llama_cpp, "llama_sampler_init_grammar", None)
        vocab = getattr(getattr(llm, "_model", None), "vocab", None)
        if init is not None and vocab is not None:
            mark = _LOG_COUNT
            with _fds_to_file() as printed:  # the parser prints its errors straight to fd 2
                sampler = init(vocab, text.encode("utf-8"), b"root")
            if not sampler:
                why = printed[0].strip().splitlines()[:1] or [_log_tail(mark) or "parse error"]
                raise ValueError(f"invalid GBNF grammar: {why[0]}\n{text}")
            llama_cpp.llama_sampler_free(sampler)
        self._grammars[text] = grammar
        return grammar

    # special tokens --------------------------------------------------------------------

    def _special_texts(self) -> re.Pattern[str] | None:
        """A pattern of the texts of the vocabulary's control and user-defined tokens
        (``<|im_start|>``, ``<|endoftext|>``, ...), longest first; None when it has none."""
        if self._specials is None:
            import llama_cpp

            vocab = self._load()._model.vocab
            wanted = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
            texts = set()
            for t in range(llama_cpp.llama_vocab_n_tokens(vocab)):
                if llama_cpp.llama_vocab_get_attr(vocab, t) & wanted:
                    text = (llama_cpp.llama_vocab_get_text(vocab, t) or b"").decode("utf-8", "replace")
                    if len(text) >= 2 and not any(ch.isspace() for ch in text):
                        texts.add(text)
            alternatives = "|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True))
            self._specials = re.compile(alternatives or r"(?!)")
        return self._specials

    def defuse(self, text: str) -> str:
        """``text`` with every special token's text broken by a space after its first character.

        llama-cpp-python renders the chat template to one string and tokenizes it with
        ``special=True``, so a document's ``<|im_start|>`` would become the real token: a new
        turn written by the document. Message contents go through this first; the template's
        own tokens stay whole. (Loads the model.)
        """
        specials = self._special_texts()
        for _ in range(8):  # a break cannot make a new special (none holds a space); bounded anyway
            new = specials.sub(lambda m: m.group(0)[0] + " " + m.group(0)[1:], text)
            if new == text:
                break
            text = new
        return text

    # generation ------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's vocabulary (no BOS); loads the model."""
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def generate(
        self,
        messages: Messages,
        *,
        grammar: str | None,
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        load_before = self.load_s
        llm = self._load()
        compiled = self._grammar(grammar) if grammar else None
        load_s = self.load_s - load_before
        messages = [{**m, "content": self.defuse(m.get("content", ""))} for m in messages]
        start = time.perf_counter()
        llm.reset_counts()
        pieces: list[str] = []
        try:
            stream = llm.create_chat_completion(
                messages=messages,
                grammar=compiled,
                max_tokens=max_tokens,
                temperature=0.0,  # greedy: same question, same answer
                repeat_penalty=1.0,
                stream=True,
            )
            for chunk in stream:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    pieces.append(piece)
                    if on_text is not None:
                        on_text(piece)
        except ValueError as exc:
            if "exceed context window" in str(exc):
                raise UsageError(
                    f"The prompt does not fit in {self.name}'s context of {self.n_ctx} tokens "
                    f"({exc}). Retrieve fewer passages (-k) or use a model with a larger n_ctx."
                ) from None
            raise
        end = time.perf_counter()
        first = llm.first_token_at or end
        self.last_prompt = tuple(llm.prompt_ids)
        return Generation(
            text="".join(pieces),
            prompt_tokens=llm.prompt_tokens,
            completion_tokens=llm.completion_tokens,
            load_s=load_s,
            prompt_s=first - start,
            gen_s=end - first,
        )


_COUNTING_CLASS: Any = None


def _counting_llama_class(llama_cpp: Any) -> Any:
    """``llama_cpp.Llama`` that counts what its streaming chat completion does not report.

    Every completion runs through ``Llama.generate(prompt_tokens)``, which yields sampled
    token ids; counting there gives exact prompt and completion sizes and the time of the
    first token (a stream's first chunk carries only the role, before any evaluation).
    """
    global _COUNTING_CLASS
    if _COUNTING_CLASS is not None:
        return _COUNTING_CLASS

    class CountingLlama(llama_cpp.Llama):  # type: ignore[misc, valid-type]
        def reset_counts(self) -> None:
            self.prompt_tokens = 0
            self.prompt_ids: list[int] = []
            self.completion_tokens = 0
            self.first_token_at: float | None = None

        def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
            tokens = list(tokens)
            self.prompt_ids = tokens
            self.prompt_tokens = len(tokens)
            vocab = self._model.vocab
            for token in super().generate(tokens, *args, **kwargs):
                if self.first_token_at is None:
                    self.first_token_at = time.perf_counter()
                if not llama_cpp.llama_vocab_is_eog(vocab, token):
                    self.completion_tokens += 1
                yield token

    _COUNTING_CLASS = CountingLlama
    return CountingLlama


# --- test double ---------------------------------------------------------------------------

_PIECE = re.compile(r"\S+\s*|\s+")  # "a b" -> ["a ", "b"]: pieces join back to the text


class ScriptedGenerator(Generator):
    """Replies with scripted text, in order (the last one repeats), without any model.

    ``replies`` may also be a function ``(messages, grammar) -> str``. Every call is recorded
    in ``calls`` as ``(messages, grammar, max_tokens)``. A "token" is a word with its trailing
    whitespace; replies longer than ``max_tokens`` of those are cut, as a real model would be.

    >>> gen = ScriptedGenerator(["yes", "no"])
    >>> [gen.generate([], grammar=None, max_tokens=5).text for _ in range(3)]
    ['yes', 'no', 'no']
    """

    def __init__(
        self,
        replies: str | Sequence[str] | Callable[[Messages, str | None], str],
        *,
        name: str = "scripted",
        n_ctx: int = 4096,
    ) -> None:
        self.name = name
        self.n_ctx = n_ctx
        self._replies = [replies] if isinstance(replies, str) else replies
        self._next = 0
        self.calls: list[tuple[Messages, str | None, int]] = []

    def count_tokens(self, text: str) -> int:
        return len(_PIECE.findall(text))

    def generate(
        self,
        messages: Messages,
        *,
        grammar: str | None,
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        self.calls.append((messages, grammar, max_tokens))
        if callable(self._replies):
            text = self._replies(messages, grammar)
        else:
            if not self._replies:
                raise ValueError("ScriptedGenerator has no replies")
            text = self._replies[min(self._next, len(self._replies) - 1)]
            self._next += 1
        pieces = _PIECE.findall(text)[:max_tokens]
        for piece in pieces:
            if on_text is not None:
                on_text(piece)
        prompt = "\n".join(m.get("content", "") for m in messages)
        return Generation(
            text="".join(pieces),
            prompt_tokens=self.count_tokens(prompt),
            completion_tokens=len(pieces),
            load_s=0.0,
            prompt_s=0.0,
            gen_s=0.0,
        )
