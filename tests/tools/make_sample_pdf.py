"""Write ``sample_corpus/context_windows_and_kv_cache.pdf`` from the text kept in this file.

The PDF is committed; re-run this script only after editing ``PAGES`` below:

    .venv/bin/python tests/tools/make_sample_pdf.py [OUTPUT.pdf]

Design choices, so that ``pypdf``'s ``extract_text()`` gives clean text on every page:

* a core font (Helvetica), so the text is plain WinAnsi and needs no embedded font: keep
  ``PAGES`` to ASCII (the script refuses anything else);
* left-aligned paragraphs (justified text is drawn with stretched word spacing), no
  hyphenation, one explicit page per section, so each page holds distinct content;
* a fixed creation date and a fixed file id, so re-running gives identical bytes.

Questions in ``tests/fixtures/sample_qa.json`` cite pages of this file by number; if you move
text between pages, update them and run ``tests/tools/check_sample_qa.py``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "sample_corpus" / "context_windows_and_kv_cache.pdf"

TITLE = "Context Windows and the KV Cache"
SUBTITLE = "A short guide for people who run language models on their own computer"
FIXED_DATE = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)

# One entry per page: (heading, [paragraphs]). A paragraph starting with "* " is a bullet.
PAGES: list[tuple[str, list[str]]] = [
    (
        "1. What a context window is",
        [
            "A language model does not remember a conversation the way a person does. Each time "
            "it produces a token, it looks at a block of preceding tokens and nothing else. The "
            "largest block it can look at is called its context window, or context length, and "
            "it is always measured in tokens rather than words or characters.",
            "Everything the model is meant to take into account has to fit inside this window "
            "at the same time. For a question-answering assistant that includes:",
            "* the system prompt and the instructions about how to answer;",
            "* every retrieved passage placed in the prompt;",
            "* the user's question, and any earlier turns of the conversation;",
            "* the answer itself, which grows by one token at every step.",
            "Context windows have grown quickly. Llama 2, released in July 2023, has a context "
            "window of 4,096 tokens. Llama 3, released in April 2024, doubled that to 8,192 "
            "tokens, and Llama 3.1 raised it to 128K, which is 131,072 tokens. A window of "
            "4,096 tokens holds roughly 3,000 words of English, or about six pages of an "
            "ordinary book.",
            "A large advertised window is an upper limit, not a promise. A model trained with "
            "a long window can still pay less attention to material in the middle of a long "
            "prompt than to material at its start and end. For a local assistant, a smaller "
            "prompt with a few well-chosen passages usually gives better answers than a huge "
            "prompt stuffed with everything that might be relevant, and it is much faster.",
        ],
    ),
    (
        "2. Prefill and decode",
        [
            "Generating an answer happens in two phases that behave very differently.",
            "In the prefill phase the model reads the whole prompt. All prompt tokens are "
            "known in advance, so they can be processed in parallel, in large batches that "
            "keep the processor busy. Prefill is limited by raw arithmetic speed, and its "
            "cost grows faster than the prompt: in the attention layers every token is "
            "compared with every earlier token, so doubling the prompt roughly quadruples "
            "that part of the work. The time the user waits before the first word appears, "
            "the time to first token, is mostly prefill.",
            "In the decode phase the model produces the answer one token at a time. Each new "
            "token depends on the one before it, so there is nothing to run in parallel "
            "within a single answer. For every token, all of the model's weights have to be "
            "read from memory once. Decode speed is therefore limited by memory bandwidth "
            "rather than by arithmetic, which is why a quantized model, with fewer bytes to "
            "read, generates noticeably faster.",
            "This is why tools such as llama.cpp report two different speeds: prompt "
            "processing in tokens per second, which is often several hundred on a laptop, "
            "and generation in tokens per second, which is often between 5 and 30.",
            "The model also needs to know where each token sits in the sequence. Most current "
            "open models use rotary position embeddings, or RoPE, described by Su and "
            "colleagues in 2021. RoPE encodes position by rotating the query and key vectors "
            "by an angle that depends on the position. A model usually handles positions "
            "beyond its training length poorly, but RoPE scaling methods can stretch the "
            "usable window, often with some further fine-tuning.",
        ],
    ),
    (
        "3. The KV cache",
        [
            "Inside each attention layer, every token is turned into three vectors: a query, "
            "a key and a value. A new token's query is compared with the keys of all earlier "
            "tokens, and the result decides how much of each earlier token's value flows into "
            "the new token's representation.",
            "The keys and values of earlier tokens never change once they have been computed. "
            "Recomputing them at every step would waste almost all of the work, so inference "
            "engines store them in memory instead. This store is called the KV cache, from "
            "K for keys and V for values. With the cache, producing one more token only "
            "requires computing the keys and values of that one token and appending them.",
            "The cache is the main memory cost of a long context, and it is easy to estimate. Its size in bytes is:",
            "KV cache bytes = 2 x layers x KV heads x head dimension x context length x bytes per element",
            "The factor 2 is there because both keys and values are stored. The number of "
            "layers, the number of key-value heads and the head dimension come from the "
            "model's architecture. The context length is the number of token positions the "
            "cache is allocated for, and the bytes per element are 2 for a 16-bit cache.",
            "Two things follow directly from the formula. First, the cache grows linearly "
            "with the context length: reserving twice as many positions costs twice as much "
            "memory, whether or not they are ever used. Second, the cache is completely "
            "separate from the weights. A model file that fits in memory can still fail to "
            "load if a very large context is requested, because the cache is allocated on "
            "top of the weights.",
        ],
    ),
    (
        "4. Worked examples and grouped-query attention",
        [
            "Llama 2 7B has 32 layers and 32 attention heads with a head dimension of 128. "
            "Every head has its own keys and values, so with a 16-bit cache one token takes "
            "2 x 32 x 32 x 128 x 2 = 524,288 bytes, which is exactly 0.5 MiB per token. "
            "Filling the whole Llama 2 window therefore needs 2 GiB for the KV cache, on top "
            "of the memory for the weights.",
            "Newer models cut this cost with grouped-query attention, or GQA, introduced by "
            "Ainslie and colleagues in 2023. In GQA several query heads share one key-value "
            "head, so there are fewer keys and values to store. The extreme case, in which "
            "all query heads share a single key-value head, is multi-query attention, "
            "proposed by Noam Shazeer in 2019.",
            "Llama 3 8B uses only 8 key-value heads. It has the same 32 layers, 32 query "
            "heads and head dimension of 128, so each key-value head serves a group of four "
            "query heads. "
            "One token now takes 2 x 32 x 8 x 128 x 2 = 131,072 bytes, or 128 KiB, a quarter "
            "of the Llama 2 figure. A window of 8,192 tokens needs 1 GiB.",
            "Long windows remain expensive even with GQA. Filling the 131,072-token window "
            "of Llama 3.1 8B with a 16-bit cache takes 16 GiB, more than the weights of the "
            "model itself.",
            "A simple way to remember the arithmetic: for any model, the cache per token in "
            "bytes is 4 x layers x KV heads x head dimension for a 16-bit cache, and the "
            "total is that figure multiplied by the number of positions you reserve.",
        ],
    ),
    (
        "5. Practical settings",
        [
            "In llama.cpp the context size is chosen when the model is loaded, with the "
            "option -c or its long form --ctx-size. Asking for more context than the task "
            "needs wastes memory, because the whole cache is reserved up front.",
            "The cache itself can be stored at reduced precision. The options --cache-type-k "
            "and --cache-type-v select the data type of the keys and the values; setting "
            "both to q8_0 roughly halves the memory of a 16-bit cache with very little loss "
            "of quality. Quantizing the value cache requires flash attention to be enabled "
            "with the -fa option.",
            "When a conversation outgrows the window, something has to give. Common "
            "strategies are to drop the oldest turns, to replace them with a short summary, "
            "or to keep the system prompt fixed and shift out older tokens as new ones "
            "arrive. None of these is free: whatever leaves the window is invisible to the "
            "model from then on.",
            "For a retrieval-augmented assistant, a written token budget helps. With a "
            "4,096-token window, a reasonable split is about 400 tokens for instructions, "
            "about 2,400 tokens for retrieved passages, about 200 tokens for the question, "
            "and about 1,000 tokens kept free for the answer. If the passages do not fit, "
            "retrieve fewer of them rather than cutting each one short, because a passage "
            "that is cut in half may lose the sentence that holds the answer.",
            "Finally, measure rather than guess. Count prompt tokens with the model's own "
            "tokenizer, watch the memory use reported at load time, and note the prompt "
            "processing speed: it tells you how long a user will wait before the first word "
            "of every answer.",
        ],
    ),
]


def build(out: Path) -> Path:
    from fpdf import FPDF

    for heading, paragraphs in PAGES:
        for text in (heading, *paragraphs):
            if not text.isascii():
                raise SystemExit(f"non-ASCII text in PAGES (core fonts are WinAnsi): {text[:60]!r}")

    class _PDF(FPDF):
        def footer(self) -> None:  # called by fpdf2 with automatic page breaks suspended
            self.set_y(-16)
            self.set_font("Helvetica", "", 9)
            self.cell(0, 5, f"Page {self.page_no()} of {len(PAGES)}", align="C")

    pdf = _PDF(format="A4", unit="mm")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(TITLE)
    pdf.set_author("ragcli project")
    pdf.set_subject(SUBTITLE)
    pdf.set_creator("tests/tools/make_sample_pdf.py")
    pdf.set_producer("ragcli sample corpus")
    pdf.set_lang("en")
    pdf.set_margins(left=22, top=22, right=22)
    pdf.set_auto_page_break(auto=True, margin=22)
    # A fixed document id instead of one derived from the current time.
    if hasattr(pdf, "file_id"):
        pdf.file_id = lambda: "<3A1B0C5E7D9F2468ACE013579BDF2468><3A1B0C5E7D9F2468ACE013579BDF2468>"

    width = pdf.w - pdf.l_margin - pdf.r_margin
    for number, (heading, paragraphs) in enumerate(PAGES, start=1):
        pdf.add_page()
        if number == 1:
            pdf.set_font("Helvetica", "B", 18)
            pdf.multi_cell(width, 9, TITLE, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", "I", 11)
            pdf.multi_cell(width, 6, SUBTITLE + ".", align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(6)
        pdf.set_font("Helvetica", "B", 14)
        pdf.multi_cell(width, 8, heading, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        pdf.set_font("Helvetica", "", 11)
        for text in paragraphs:
            if text.startswith("* "):
                pdf.set_x(pdf.l_margin + 4)
                pdf.multi_cell(width - 4, 6, "- " + text[2:], align="L", new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            else:
                pdf.multi_cell(width, 6, text, align="L", new_x="LMARGIN", new_y="NEXT")
                pdf.ln(3)
        if pdf.page != number:
            raise SystemExit(f"section {number} overflowed onto another page; shorten it")

    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    path = build(out)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(PAGES)} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
