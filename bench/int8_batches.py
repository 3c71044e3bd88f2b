"""The int8 embedders, one text per run against batches: fidelity to fp32, and speed.

    .venv/bin/python bench/int8_batches.py [--texts 500] [--repeat 4] [--models NAME,...]

int8 activations are quantized with one scale per batch tensor (padding included), so in a
batch a text's vector depends on its batch mates. This bench shows what that costs and what
running one text at a time (ragcli's choice, ``embedders.OnnxEmbedder``) buys:

- fidelity: cosine of each int8 vector to the fp32 export's vector of the same text (the
  fp32 export equals sentence-transformers), one text per run and in batches of 2,048
  wordpieces (the fp32 embedder's batch size), per int8 model;
- stability: cosine between a text's batched and alone vectors;
- speed: chunks/s and sentences/s, both ways, alternating, median of ``--repeat`` runs.

Texts: a fixed random sample of COVID-QA chunks, as `rag ingest` stores them (an index is
built first, under bench/.cache, if missing), and the sentences of the first 400 of them.
"""

from __future__ import annotations

import argparse
import random
import re
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import CACHE, DEFAULT_EVAL, machine, table, write_report  # noqa: E402

MODELS = ("all-minilm-l6-v2-int8", "all-minilm-l6-v2-int8-fused", "all-minilm-l6-v2-int8-mixed")
BATCH_TOKENS = 2048


def chunk_texts(data: Path, n: int) -> list[str]:
    import subprocess

    loc = CACHE / "int8-batches" / "index"
    if not (loc / "index.sqlite").is_file():
        subprocess.run([sys.executable, "-m", "ragcli", "ingest", str(data / "covidqa" / "docs"), "--index", str(loc)],
                       check=True, stdout=subprocess.DEVNULL)
    con = sqlite3.connect(loc / "index.sqlite")
    texts = [r[0] for r in con.execute("SELECT embed FROM chunks ORDER BY id")]
    con.close()
    random.Random(1).shuffle(texts)
    return sorted(texts[:n], key=len)


def speed(emb, texts: list[str], batch_tokens: int) -> float:
    emb.batch_tokens = batch_tokens
    t0 = time.perf_counter()
    emb.embed(texts)
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL)
    ap.add_argument("--texts", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated int8 embedders")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import numpy as np

    from ragcli import config, pipeline

    texts = chunk_texts(args.data, args.texts)
    sentences = sorted({s for t in texts[:400] for s in re.split(r"(?<=[.!?])\s+", t) if len(s) > 20}, key=len)
    settings = config.resolve_settings()
    ref = pipeline.load_embedder(settings, "all-minilm-l6-v2").embed(texts)
    names = args.models.split(",")
    embs = {name: pipeline.load_embedder(settings, name) for name in names}
    vecs: dict[str, dict[str, np.ndarray]] = {}
    for name, emb in embs.items():
        emb.embed(texts[:8])  # warm-up
        emb.batch_tokens = 0
        alone = emb.embed(texts)  # ragcli's way: one text per run
        emb.batch_tokens = BATCH_TOKENS
        vecs[name] = {"alone": alone, "batched": emb.embed(texts)}
    # speed: the models alternate within each repeat, so a noisy minute costs them alike
    runs = {name: {k: [] for k in ("alone", "batched", "alone_s", "batched_s")} for name in names}
    for _ in range(args.repeat):
        for name, emb in embs.items():
            runs[name]["alone"].append(speed(emb, texts, 0))
            runs[name]["batched"].append(speed(emb, texts, BATCH_TOKENS))
            runs[name]["alone_s"].append(speed(emb, sentences, 0))
            runs[name]["batched_s"].append(speed(emb, sentences, BATCH_TOKENS))
    rows = []
    for name in names:
        alone, batched = vecs[name]["alone"], vecs[name]["batched"]
        for way, v in (("one text per run", alone), (f"batches of {BATCH_TOKENS} wordpieces", batched)):
            cos = np.sum(v * ref, axis=1)
            key = "alone" if way.startswith("one") else "batched"
            rows.append({"embedder": name, "how": way, "cos_fp32_mean": float(cos.mean()),
                         "cos_fp32_p5": float(np.percentile(cos, 5)), "cos_fp32_min": float(cos.min()),
                         "chunks_per_s": statistics.median(runs[name][key]),
                         "sentences_per_s": statistics.median(runs[name][key + "_s"]),
                         "runs_chunks_per_s": runs[name][key], "runs_sentences_per_s": runs[name][key + "_s"]})
        between = np.sum(alone * batched, axis=1)
        rows[-1]["cos_alone_vs_batched_mean"] = rows[-2]["cos_alone_vs_batched_mean"] = float(between.mean())
        rows[-1]["cos_alone_vs_batched_min"] = rows[-2]["cos_alone_vs_batched_min"] = float(between.min())
    report = {"bench": "int8_batches", "machine": machine(), "texts": len(texts), "sentences": len(sentences),
              "repeat": args.repeat, "rows": rows}
    path = write_report("int8-batches", report, args.out)
    print(table(rows, ["embedder", "how", "cos_fp32_mean", "cos_fp32_min", "cos_alone_vs_batched_min",
                       "chunks_per_s", "sentences_per_s"],
                {"cos_fp32_mean": ".5f", "cos_fp32_min": ".4f", "cos_alone_vs_batched_min": ".4f",
                 "chunks_per_s": ".1f", "sentences_per_s": ".1f"}))
    print(f"report: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
