"""How the ONNX embedder uses the cores: one session on all of them, or one single-threaded
session per core side by side ("lanes", ragcli's way), on idle cores and while a PDF parser
holds one (as an ingest's parse worker does).

    .venv/bin/python bench/embed_lanes.py [--texts 400] [--repeat 3] [--embedder NAME]

Both ways run through ``embedders.OnnxEmbedder``; the old way only overrides how many
sessions it keeps and how many intra-op threads each gets (ONNX Runtime's defaults
otherwise, thread spinning included). The busy core is a second process extracting the
text of FinanceBench filings with pypdf, page after page, for the whole timed run. The two
ways alternate, ``--repeat`` times each; the report keeps every run and the medians.
Texts: a fixed random sample of COVID-QA chunks as `rag ingest` stores them (the index
``bench/int8_batches.py`` builds under bench/.cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import DEFAULT_EVAL, machine, table, write_report  # noqa: E402
from bench.int8_batches import chunk_texts  # noqa: E402

PARSER = """
import sys, itertools
from pypdf import PdfReader
for path in itertools.cycle(sys.argv[1:]):
    for page in PdfReader(path).pages:
        page.extract_text()
"""


def one_session(emb):
    """The way before lanes: one session, intra-op threads on every core."""
    import onnxruntime as ort

    def load():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.enable_mem_pattern = False
        return ort.InferenceSession(str(emb.onnx_path), opts, providers=["CPUExecutionProvider"])

    emb.lanes = lambda: 1
    emb._load = load
    return emb


def rate(emb, texts: list[str], pdfs: list[Path] | None) -> float:
    parser = subprocess.Popen([sys.executable, "-c", PARSER, *map(str, pdfs)]) if pdfs else None
    try:
        if parser:
            time.sleep(1.0)  # the parser is past its imports and reading pages
        t0 = time.perf_counter()
        emb.embed(texts)
        return len(texts) / (time.perf_counter() - t0)
    finally:
        if parser:
            parser.kill()
            parser.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL)
    ap.add_argument("--texts", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--embedder", default=None, help="an ONNX embedder in models.toml (default: the default)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import numpy as np

    from ragcli import config, pipeline

    texts = chunk_texts(args.data, args.texts)
    pdfs = sorted((args.data / "financebench" / "pdfs").glob("*.pdf"))[:4]
    if not pdfs:
        sys.exit(f"no FinanceBench PDFs under {args.data / 'financebench' / 'pdfs'}: pass --data")
    settings = config.resolve_settings()
    ways = {"one session, all cores": one_session(pipeline.load_embedder(settings, args.embedder)),
            "lanes (one single-threaded session per core)": pipeline.load_embedder(settings, args.embedder)}
    vecs = {w: e.embed(texts) for w, e in ways.items()}  # warm-up, and the vectors to compare
    a, b = vecs.values()
    runs: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):
        for load, busy in (("idle cores", None), ("a pypdf parser on one core", pdfs)):
            for way, emb in ways.items():
                runs.setdefault((way, load), []).append(rate(emb, texts, busy))
    rows = [{"way": way, "cores": load, "chunks_per_s": statistics.median(r), "runs": r}
            for (way, load), r in runs.items()]
    for load in ("idle cores", "a pypdf parser on one core"):
        old, new = (r for r in rows if r["cores"] == load)
        new["vs_one_session"] = new["chunks_per_s"] / old["chunks_per_s"]
    report = {"bench": "embed_lanes", "machine": machine(), "embedder": next(iter(ways.values())).name,
              "texts": len(texts), "repeat": args.repeat, "parser_pdfs": [p.name for p in pdfs],
              "cos_between_ways_min": float(np.sum(a * b, axis=1).min()), "rows": rows}
    path = write_report("embed-lanes", report, args.out)
    print(table(rows, ["way", "cores", "chunks_per_s", "vs_one_session"],
                {"chunks_per_s": ".1f", "vs_one_session": ".2f"}))
    print(f"vectors, the two ways: cosine >= {report['cos_between_ways_min']:.6f}")
    print(f"report: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
