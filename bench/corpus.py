"""Real folders through the real `rag ingest`: growth, an interrupted ingest resumed, and a
folder of long PDFs against an earlier ragcli, in one run.

- COVID-QA's 98 papers ingested 1x, 4x and 16x (copies under other names, in subfolders):
  wall time, chunks/s and peak memory of the whole process tree (the ingest and its parse
  workers, sampled every 0.25 s) per size;
- the 16x ingest killed (SIGKILL) half way, then run again: what it kept, what it resumed;
- the 39 FinanceBench filings (5,700 PDF pages): this ragcli against an earlier checkout
  (``--baseline-src``, e.g. today's main), same folder, same machine, one after the other.

    git worktree add bench/.cache/baseline 4d7c054        # the ragcli to compare with
    .venv/bin/python bench/corpus.py --baseline-src bench/.cache/baseline

Figures depend on the embedder each ragcli uses by default (its models.toml); the report
records both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import CACHE, DEFAULT_EVAL, ROOT, machine, run_tree, table, write_report  # noqa: E402


def rag_cmd(src: Path | None = None) -> list[str]:
    return [sys.executable, "-m", "ragcli"]


def env_for(src: Path | None) -> dict:
    """The environment that runs the ragcli checked out at ``src``; run it with ``cwd=src``
    (``python -m`` puts the current directory first on sys.path, before PYTHONPATH)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = str((src or ROOT).resolve())
    return env


def copies(papers: Path, n: int, work: Path) -> Path:
    d = work / f"covid-{n}x"
    if d.exists():
        return d
    for i in range(n):
        sub = d / f"copy{i:02d}"
        sub.mkdir(parents=True)
        for p in sorted(papers.iterdir()):
            if p.is_file():
                shutil.copy(p, sub / f"c{i:02d}-{p.name}")
    return d


def ingest(folder: Path, location: Path, env: dict, **kw) -> dict:
    r = run_tree([*rag_cmd(), "ingest", str(folder), "--index", str(location), "--json"], env,
                 cwd=Path(env["PYTHONPATH"]), **kw)
    out = {k: r[k] for k in ("wall_s", "rc", "peak_tree_mb")} | {"load_after": os.getloadavg()[0]}
    if r["rc"] in (0, 3):
        rep = json.loads(r["stdout"])
        out.update(chunks=rep["chunks"], added=len(rep["added"]), resumed=len(rep.get("resumed", [])),
                   failed=len(rep["failed"]), chunks_per_s=rep["chunks"] / max(r["wall_s"], 1e-9),
                   timings=rep.get("timings", {}))
    elif r["rc"] != -9:
        raise SystemExit(f"ingest of {folder} failed ({r['rc']}): {r['stderr'][-2000:]}")
    return out


def status(location: Path, env: dict) -> dict:
    r = run_tree([*rag_cmd(), "status", "--json", "--index", str(location)], env, cwd=Path(env["PYTHONPATH"]))
    return json.loads(r["stdout"]) if r["rc"] == 0 else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL)
    ap.add_argument("--copies", default="1,4,16")
    ap.add_argument("--baseline-src", type=Path, default=None, help="an earlier ragcli checkout to compare with")
    ap.add_argument("--skip-covid", action="store_true")
    ap.add_argument("--skip-new", action="store_true", help="FinanceBench: only the --baseline-src ragcli")
    ap.add_argument("--work", type=Path, default=CACHE / "corpus")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    env = env_for(None)
    fetch = run_tree([*rag_cmd(), "models", "--fetch"], env)  # set-up, not timed
    if fetch["rc"] != 0:
        raise SystemExit(fetch["stderr"])
    report: dict = {"machine": machine(), "covid": [], "financebench": []}
    path = write_report("corpus", report, args.out)  # rewritten after every row: a cut run keeps its rows

    def save() -> None:
        write_report("corpus", report, path)
    if not args.skip_covid:
        papers = args.data / "covidqa" / "docs"
        sizes = [int(c) for c in args.copies.split(",")]
        per_chunk_s = None
        for n in sizes:
            folder = copies(papers, n, args.work)
            loc = args.work / f"idx-covid-{n}x"
            shutil.rmtree(loc, ignore_errors=True)
            if n == max(sizes) and per_chunk_s is not None and n > 1:
                expected = per_chunk_s * n  # seconds, from the smaller runs
                cut = ingest(folder, loc, env, kill_after=expected / 2)
                kept = status(loc, env)
                rest = ingest(folder, loc, env)
                report["covid"].append({"copies": n, "what": "killed half way", **cut,
                                        "documents_kept": kept.get("documents", 0)})
                report["covid"].append({"copies": n, "what": "run again (resumes)", **rest})
            else:
                row = ingest(folder, loc, env)
                report["covid"].append({"copies": n, "what": "ingest", **row})
                per_chunk_s = row["wall_s"] / n
            save()
            print(table(report["covid"][-1:], ["copies", "what", "wall_s", "chunks", "chunks_per_s",
                                               "peak_tree_mb", "resumed"]), file=sys.stderr, flush=True)
    pdfs = args.data / "financebench" / "pdfs"
    runs = ([] if args.skip_new else [("this ragcli", None)]) + \
        ([("baseline", args.baseline_src.resolve())] if args.baseline_src else [])
    for name, src in runs:
        loc = args.work / f"idx-financebench-{name.replace(' ', '-')}"
        shutil.rmtree(loc, ignore_errors=True)
        e = env_for(src)
        if src is not None:
            run_tree([*rag_cmd(), "models", "--fetch"], e, cwd=src)
        row = {"ragcli": name, "src": str(src or ROOT), **ingest(pdfs, loc, e)}
        st = status(loc, e)
        row.update(documents=st.get("documents"), pages=st.get("pages"), embedder=st.get("embedder"),
                   embedder_backend=st.get("embedder_backend", "sentence-transformers"))
        report["financebench"].append(row)
        save()
        print(table([row], ["ragcli", "wall_s", "chunks", "chunks_per_s", "peak_tree_mb", "pages", "failed"]),
              file=sys.stderr, flush=True)
    if len(report["financebench"]) == 2:
        new, old = report["financebench"]
        report["financebench_speedup"] = old["wall_s"] / new["wall_s"]
    cols = ["copies", "what", "wall_s", "chunks", "chunks_per_s", "peak_tree_mb", "resumed", "documents_kept"]
    print(table(report["covid"], cols, {"wall_s": ".1f", "chunks_per_s": ".1f", "peak_tree_mb": ".0f"}))
    print(table(report["financebench"], ["ragcli", "embedder_backend", "wall_s", "chunks", "chunks_per_s",
                                         "peak_tree_mb", "pages", "failed"],
                {"wall_s": ".1f", "chunks_per_s": ".1f", "peak_tree_mb": ".0f"}))
    save()
    print(f"report: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
