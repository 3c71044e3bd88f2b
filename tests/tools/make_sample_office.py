"""Write ``sample_corpus/running_models_on_a_laptop.docx`` and ``sample_corpus/cpu_inference_checklist.pptx``.

The files are committed; re-run this script only after editing the text below:

    .venv/bin/python tests/tools/make_sample_office.py [OUTPUT_DIR]

They are built with python-docx and python-pptx, the libraries ragcli reads them with, and
use headings, a table and speaker notes so that every part of both loaders is exercised by
the demo corpus. Core properties carry a fixed date; zip member timestamps still change
between runs, so the bytes (not the text) differ if you re-run it.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXED_DATE = datetime(2024, 1, 1, 0, 0, 0)

DOCX_TITLE = "Running Language Models on a Laptop"
DOCX_SECTIONS = [
    ("Memory comes first", [
        "The first question about running a model locally is whether its weights fit in memory. "
        "A model's weights take roughly its parameter count times the bytes per weight: a 7 billion "
        "parameter model needs about 14 GB in 16-bit floats and about 4 GB when quantized to 4 bits.",
        "The KV cache and the runtime need memory on top of the weights. A good rule of thumb is to "
        "leave at least 2 GB free beyond the size of the model file.",
    ]),
    ("Threads and cores", [
        "On a CPU, token generation is limited by memory bandwidth more than by arithmetic. Using more "
        "threads than there are physical cores usually makes generation slower, not faster.",
        "Prompt processing is different: it is compute bound, so it benefits from every core the "
        "machine has.",
    ]),
    ("Typical sizes", [
        "The table below lists approximate file sizes of common quantized models.",
    ]),
]
DOCX_TABLE = [
    ("Model size", "Q4_K_M file", "Memory to leave free"),
    ("0.5B parameters", "about 0.4 GB", "1 GB"),
    ("1.5B parameters", "about 1.1 GB", "2 GB"),
    ("7B parameters", "about 4.4 GB", "6 GB"),
]
DOCX_CLOSING = ("A laptop with 16 GB of memory can run a 7 billion parameter model at 4 bits, but a "
                "smaller model often answers questions about documents just as well and twice as fast.")

PPTX_SLIDES = [
    ("CPU inference checklist", ["Settings that matter when there is no GPU"], ""),
    ("Before you start", [
        "Check that the model file's sha256 matches the published one before first use.",
        "Close other memory-hungry programs so the model is not swapped out to disk.",
    ], "Swapping turns a response of a few seconds into one of several minutes."),
    ("Speed", [
        "Set the number of threads to the number of physical cores, not logical ones.",
        "Keep prompts short: on two cores, every 100 prompt tokens add about half a second.",
        "Batch embedding requests: 32 texts per batch is a good default for small embedders.",
    ], "Hyper-threading rarely helps token generation on laptops."),
]


def write_docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.created = d.core_properties.modified = FIXED_DATE
    d.core_properties.title = DOCX_TITLE
    d.add_heading(DOCX_TITLE, 0)
    for heading, paragraphs in DOCX_SECTIONS:
        d.add_heading(heading, 1)
        for p in paragraphs:
            d.add_paragraph(p)
    table = d.add_table(rows=len(DOCX_TABLE), cols=len(DOCX_TABLE[0]))
    for r, row in enumerate(DOCX_TABLE):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    d.add_paragraph(DOCX_CLOSING)
    d.save(str(path))


def write_pptx(path: Path) -> None:
    from pptx import Presentation

    prs = Presentation()
    prs.core_properties.created = prs.core_properties.modified = FIXED_DATE
    for i, (title, bullets, notes) in enumerate(PPTX_SLIDES):
        slide = prs.slides.add_slide(prs.slide_layouts[0 if i == 0 else 1])
        slide.shapes.title.text = title
        frame = slide.placeholders[1].text_frame
        frame.text = bullets[0]
        for b in bullets[1:]:
            frame.add_paragraph().text = b
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    prs.save(str(path))


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "sample_corpus"
    write_docx(out / "running_models_on_a_laptop.docx")
    write_pptx(out / "cpu_inference_checklist.pptx")
    print("wrote", out / "running_models_on_a_laptop.docx", out / "cpu_inference_checklist.pptx")
