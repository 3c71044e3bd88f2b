"""Which embedder a new index gets: the language mix of a sample of what is being ingested.

``english_share`` reads a few texts and weighs each by its letters: a text is English when most
of its letters are Latin and English function words ("the", "of", "and", ...) are a fair share of
its words (above 8%: English prose runs at 30-45%, a filing's tables at 10-20%, Spanish, French,
Vietnamese or Turkish text at under 3%). ``choose`` turns that into a decision: a folder mostly
not in English gets the multilingual embedder where it can run, else a note with the command that
installs it; an English folder keeps the default embedder (``embedder`` None).

Not here: reading files (``loaders``; ``pipeline`` hands the sample in) or loading a model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MULTILINGUAL = "multilingual-e5-small"  # the models.toml entry a folder mostly not in English gets
_ENGLISH = frozenset(
    "the of and to in is that for it with as was on are by this be from at or an which have not were has "
    "but its their they been can will would also than these such".split())
_WORD = re.compile(r"[^\W\d_]+")
_MIN_STOP_SHARE = 0.08
SAMPLE_FILES = 12  # files read for the sample, spread over the folder's sorted list
SAMPLE_CHARS = 4000  # characters of each file's text looked at


def is_english(text: str) -> bool:
    """Whether ``text`` reads as English: mostly Latin letters, and English function words.

    >>> is_english("The capital of Japan is Tokyo, which is also its largest city.")
    True
    >>> [is_english(t) for t in ("La capital de Japón es Tokio.", "东京是日本的首都。", "Η Αθήνα είναι η πρωτεύουσα.")]
    [False, False, False]
    """
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return True  # figures and punctuation: no language to serve
    latin = sum(ch < "\u0250" for ch in letters)
    if latin * 2 < len(letters):
        return False
    words = _WORD.findall(text.lower())
    return sum(w in _ENGLISH for w in words) >= _MIN_STOP_SHARE * len(words)


# function words of other languages written in Latin letters (es, fr, de, it, pt, nl, vi, tr)
_OTHER = frozenset(
    "de la el los las que qué cuál cuáles cómo dónde cuándo quién del y es un una por para le les des du est et "
    "une qui quel quelle où der die das und ist wer wie wo welche il che di è chi quale o do da em não quem qual "
    "het een van wat và của là những được có gì nào ai bir ve ne bu için hangi nedir kim nerede".split())


def asks_in_another_language(question: str) -> bool:
    """Whether a question is, positively, not in English: mostly letters of another script, or
    Latin letters with another language's function words and none of English's. A terse English
    question ("GGUF quantization?") is English.

    >>> [asks_in_another_language(q) for q in ("GGUF quantization?", "When was it built?",
    ...  "¿Cuándo se construyó el faro?", "Faro de Nordvik", "灯塔是什么时候建的？")]
    [False, False, True, True, True]
    """
    letters = [ch for ch in question if ch.isalpha()]
    if not letters:
        return False
    if sum(ch < "\u0250" for ch in letters) * 2 < len(letters):
        return True
    words = set(_WORD.findall(question.lower()))
    return not (words & _ENGLISH) and bool(words & _OTHER)


def english_share(texts: Iterable[str]) -> float:
    """The share of the texts' letters that are in English texts (1.0 for no letters at all).

    >>> english_share(["The cat is on the mat.", "El gato está en casa."])
    0.5
    """
    total = english = 0
    for t in texts:
        n = sum(ch.isalpha() for ch in t)
        total += n
        english += n if is_english(t) else 0
    return round(english / total, 3) if total else 1.0


@dataclass(frozen=True)
class Choice:
    embedder: str | None  # the registry name to build with; None: the default embedder
    note: str  # what to tell the user ("" for an English folder)


def choose(share: float, available: str, paths: str) -> Choice:
    """The embedder of a new index whose sampled text is ``share`` English; ``available`` is ""
    when the multilingual embedder can run here, else why not (the install command, the CPU).

    >>> choose(0.9, "", "docs/")
    Choice(embedder=None, note='')
    >>> choose(0.2, "", "docs/").embedder
    'multilingual-e5-small'
    """
    if share >= 0.5:
        return Choice(None, "")
    pct = f"{1 - share:.0%}"
    if not available:
        return Choice(MULTILINGUAL, f"{pct} of the text sampled is not English: building with the multilingual "
                                    f"embedder {MULTILINGUAL} (choose another with --embedder NAME)")
    return Choice(None, f"{pct} of the text sampled is not English, and the default embedder reads English "
                        f"only; the multilingual one cannot run here ({available}). Once it can: "
                        f"rag ingest --rebuild --embedder {MULTILINGUAL} {paths}")
