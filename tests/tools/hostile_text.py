"""A corpus whose text and file names try to drive the terminal they are printed on.

``write_corpus(root)`` makes a folder (its own name carries an escape) holding:

- a markdown file whose *name* carries CSI, OSC 52, a C1 CSI and a bidi override, and whose
  text carries every sequence in ``SEQUENCES`` inside ordinary sentences about llamas;
- an HTML file with the same escapes as character references (``&#27;``, ``&#x202e;``);
- a quoted-printable e-mail whose body decodes to ESC (``=1B``) and a bidi override;
- an e-mail whose charset name carries ESC (it fails to ingest, and the reason quotes it).

``RAW`` finds what must never reach a terminal raw: C0 controls but newline, DEL, C1, and the
bidi embeddings, overrides, isolates and marks. Used by tests/test_safety_output.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SEQUENCES = {
    "csi": "\x1b[2J\x1b[31m",  # clear the screen, then red
    "osc52": "\x1b]52;c;cHduZWQ=\x07",  # write "pwned" to the clipboard
    "osc8": "\x1b]8;;https://evil.example/\x1b\\the care guide\x1b]8;;\x1b\\",  # a forged link
    "c1": "\x9b2J",  # U+009B: a one-character CSI
    "del": "\x7f",
    "bidi": "\u202e\u2066",  # right-to-left override, left-to-right isolate
}
RAW = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

DIR_NAME = "docs\x1b[1m\u202e"
TEXT_NAME = "llama-care\x1b]52;c;cHduZWQ=\x07\x9b2J\u202edm.md"
TEXT = (
    "# Llama care\n\n"
    f"Llamas need fresh hay{SEQUENCES['csi']} and clean water every single day of the year.\n"
    f"Llamas hum softly{SEQUENCES['osc52']} when they are content with their herd.\n"
    f"Read {SEQUENCES['osc8']} before you buy your first llama for the farm.\n"
    f"Llamas live about twenty years{SEQUENCES['c1']} when they are cared for well.\n"
    f"Llamas spit{SEQUENCES['del']} at each other over food, rarely at people.\n"
    f"Llamas guard sheep{SEQUENCES['bidi']} against foxes and coyotes on many farms.\n"
)
HTML_NAME = "camels.html"
HTML = (
    "<html><body><h1>Camels</h1>\n"
    "<p>Camels store fat in their humps&#27;[2J and can walk for days across the desert.</p>\n"
    "<p>Camels close their nostrils&#x1b;]52;c;cHduZWQ=&#7; against blowing sand in storms.</p>\n"
    "<p>Camels rest their knees on the ground&#x202e; when they kneel down to sleep.</p>\n"
    "</body></html>\n"
)
QP_NAME = "dromedary.eml"
QP = (
    "From: keeper@example.org\nTo: you@example.org\nSubject: Dromedaries\n"
    "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n\n"
    "Dromedaries cross the hot desert=1B[2J for many days without any water.=\n"
    "\nDromedaries have one hump=E2=80=AE and camels from Asia have two humps.\n"
)
BAD_CHARSET_NAME = "charset.eml"
BAD_CHARSET = (
    b'From: a@example.org\nSubject: hello\nContent-Type: text/plain; charset="x\x1b[31m\x1b]52;c;cHduZWQ=\x07"\n\n'
    b"Alpacas are smaller than llamas and are kept for their fleece.\n"
)


@dataclass(frozen=True)
class Corpus:
    root: Path  # the folder to ingest
    text: Path  # the markdown file with the escaping name
    html: Path
    qp: Path
    bad_charset: Path  # fails to ingest; its reason quotes the charset name


def write_corpus(base: Path) -> Corpus:
    root = base / DIR_NAME
    root.mkdir()
    text, html, qp, bad = root / TEXT_NAME, root / HTML_NAME, root / QP_NAME, root / BAD_CHARSET_NAME
    text.write_text(TEXT, encoding="utf-8")
    html.write_text(HTML, encoding="utf-8")
    qp.write_text(QP, encoding="ascii")
    bad.write_bytes(BAD_CHARSET)
    return Corpus(root, text, html, qp, bad)


def raw_found(output: bytes | str) -> list[str]:
    """The raw terminal-driving characters in ``output`` (empty: safe to show)."""
    text = output.decode("utf-8", "surrogateescape") if isinstance(output, bytes) else output
    return RAW.findall(text)
