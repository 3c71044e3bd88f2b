"""`rag ingest` locally against `rag ingest --ray`, the same corpus into PostgreSQL.

``sample_corpus/`` copied ``--copies`` times (in subfolders, so every file is new to the index)
is ingested with the default embedder into a throwaway PostgreSQL server (``tests/pg_server``;
or ``--url``), one schema per run, three ways, each a new `rag ingest --json` process:

- ``local``: parse workers and the embedder in this machine's processes (the default ingest);
- ``ray (own cluster)``: ``--ray`` with no address: the run starts a local Ray cluster and stops it;
- ``ray (running cluster)``: ``--ray HOST:PORT``, a cluster this script started beforehand with
  ``ray.init`` (what ``ray start --head`` gives a team): the run only joins it.

Per run: wall time of the process (start-up and model loading included), chunks, chunks/s,
and the ingest's own timings (``cluster_start_s``, summed ``embed_s``, ``workers``). The three
indexes must hold the same chunks.

    .venv/bin/python bench/ray_ingest.py                  # 8 copies (72 files), a throwaway server
    .venv/bin/python bench/ray_ingest.py --copies 32 --url postgresql://me@db/bench
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, machine, postgres_server, run_rag, table, with_schema, write_report  # noqa: E402


def corpus(copies: int, work: Path) -> Path:
    d = work / "corpus"
    for i in range(copies):
        shutil.copytree(ROOT / "sample_corpus", d / f"copy{i:02d}")
    return d


def chunk_keys(url: str) -> set[tuple]:
    from ragcli import index

    with index.open(url).reader() as st:
        ids = [r[0] for r in st.con.execute("SELECT id FROM chunks")]
        return {(c.source.split("/corpus/")[1], c.page, c.start, c.end) for c, _ in st.chunks(ids).values()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=8, help="copies of sample_corpus/ (9 files each)")
    ap.add_argument("--url", help="an existing PostgreSQL (with CREATE EXTENSION vector done); default: a throwaway one")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    # The running cluster's token, for the `rag` processes that join it (set before Ray is imported)
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    tmp = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    rows, keys = [], {}
    try:
        with contextlib.ExitStack() as stack:
            url = postgres_server(stack, args.url, tmp)
            docs = corpus(args.copies, tmp)
            stamp = int(time.time())
            cluster_s = None
            for n, name in enumerate(("local", "ray (own cluster)", "ray (running cluster)")):
                flags = ["--ray"] if n else []
                if n == 2:  # started only now: idle, it would still take memory from the first two runs
                    import ray

                    t0 = time.perf_counter()
                    ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
                    stack.callback(ray.shutdown)
                    cluster_s = time.perf_counter() - t0
                    flags.append(ray.get_runtime_context().gcs_address)
                location = with_schema(url, f"raybench_{stamp}_{n}")
                print(f"{name}: rag ingest {' '.join(flags)} ...", file=sys.stderr)
                load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
                wall, code, peak_mb, out, err = run_rag(["ingest", str(docs), "--index", location, "--json", *flags],
                                                        env)
                if code != 0:
                    raise SystemExit(f"{name}: rag ingest exited {code}: {err[-2000:]}")
                rep = json.loads(out)
                t = rep["timings"]
                rows.append({"run": name, "files": len(rep["added"]), "chunks": rep["chunks"], "wall_s": wall,
                             "chunks_per_s": rep["chunks"] / wall, "ingest_s": rep["seconds"],
                             "cluster_start_s": t.get("cluster_start_s"), "workers": int(t["workers"]),
                             "embed_s": t["embed_s"], "embedder_load_s": t["embedder_load_s"],
                             "commit_s": t["commit_s"], "driver_peak_mb": peak_mb})
                rows[-1]["load_average_1m_before"] = load_before
                print(rows[-1], file=sys.stderr)
                keys[name] = chunk_keys(location)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    first = next(iter(keys.values()))
    assert all(k == first for k in keys.values()), "the runs indexed different chunks"
    report = {"bench": "ray_ingest", "machine": machine(), "load_average_1m_at_end": os.getloadavg()[0],
              "copies": args.copies, "store": "postgresql", "running_cluster_start_s": cluster_s,
              "same_chunks": True, "rows": rows}
    cols = ["run", "files", "chunks", "wall_s", "chunks_per_s", "cluster_start_s", "workers", "embed_s", "driver_peak_mb"]
    print(table(rows, cols, {"wall_s": ".1f", "chunks_per_s": ".1f", "cluster_start_s": ".1f", "embed_s": ".1f",
                             "driver_peak_mb": ".0f"}))
    print(write_report("ray-ingest", report, args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
