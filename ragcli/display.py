"""Text from documents and file names, made safe to show on a terminal.

A document can hold bytes that drive the terminal it is printed on: ESC sequences (CSI
``\\x1b[2J`` clears the screen, OSC 52 ``\\x1b]52;c;...\\x07`` writes the clipboard, OSC 8
forges a link), C1 controls (U+009B is a one-character CSI), DEL, and bidirectional
overrides (U+202E, U+2066-U+2069: "Trojan Source" names that read differently from what they
are). They arrive raw in a file's text, through HTML entities (``&#27;``) and quoted-printable
(``=1B``), in a file name, or in an e-mail's charset name. ``safe`` turns each such
character into a visible escape (``\\x1b``, ``\\u202e``), so a person sees that something is
there and the terminal does nothing with it; ``json_line`` writes the exact text as JSON
whose bytes hold no such character (they become ``\\u`` escapes, which decode back to the
same text).

What counts as unsafe (``UNSAFE``): every control character (C0 with tab and newline too:
a human line stays one line; DEL; C1), lone surrogates (a file name that is not UTF-8),
line and paragraph separators, and the invisible format characters (Unicode category Cf:
bidi embeddings, overrides, isolates and marks, tag characters, zero-width space, BOM) except
three that ordinary text needs: soft hyphen, zero-width non-joiner and joiner (Persian,
Indic scripts, emoji sequences).

This module only escapes; ``cli`` decides what to print and ``answer`` strips these
characters from the model's answer text.
"""

from __future__ import annotations

import json
import re

# Every unsafe code point, as ranges (Unicode 14's Cc, Zl, Zp, Cf but soft hyphen, ZWNJ, ZWJ;
# surrogates; and the Cf characters Unicode 15 added): a literal, so importing costs nothing.
# tests/test_safety_output.py checks it against the running Python's Unicode database.
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b"
    "\u200e-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]"
)
KEEP = "\u00ad\u200c\u200d"  # soft hyphen, ZWNJ, ZWJ: format characters ordinary text needs


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _SHORT:
        return _SHORT[ch]
    cp = ord(ch)
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"


def safe(text: str) -> str:
    """``text`` with every unsafe character written as a visible escape; the rest unchanged.

    The escapes are plain ASCII, so ``safe(safe(t)) == safe(t)``: escaping twice is harmless.

    >>> safe("notes\\x1b]52;c;aGk=\\x07.md"), safe("invoice\\u202egpj.exe"), safe("Zoë\\tok")
    ('notes\\\\x1b]52;c;aGk=\\\\x07.md', 'invoice\\\\u202egpj.exe', 'Zoë\\\\tok')
    """
    return UNSAFE.sub(_escape, text)


def _json_escape(m: re.Match[str]) -> str:
    b = m.group(0).encode("utf-16-le", "surrogatepass")  # astral characters: a surrogate pair
    return "".join(f"\\u{int.from_bytes(b[i:i + 2], 'little'):04x}" for i in range(0, len(b), 2))


def json_line(obj: object, **kw: object) -> str:
    """``json.dumps(obj, ensure_ascii=False)`` with every unsafe character as a ``\\u`` escape.

    Outside string literals JSON is ASCII, so every unsafe character is inside one, where its
    escape stands for the same character: ``json.loads`` gives back the exact text.

    >>> json_line({"text": "a\\x9b2Jb\\u202e"})
    '{"text": "a\\\\u009b2Jb\\\\u202e"}'
    >>> json.loads(json_line({"t": "\\x9b\\U000e0041\\udcff"})) == {"t": "\\x9b\\U000e0041\\udcff"}
    True
    """
    return UNSAFE.sub(_json_escape, json.dumps(obj, ensure_ascii=False, **kw))  # type: ignore[arg-type]
