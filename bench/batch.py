"""``rag ask --batch`` against N separate ``rag ask`` processes: same questions, one run.

    .venv/bin/python bench/batch.py [--n 4] [--out bench/results/batch-DATE.json]

Ingests ``sample_corpus/`` with the default models into a temporary index, takes the first
N questions of ``tests/fixtures/sample_qa.json``, then times (1) N new ``rag ask --json``
processes, one after the other, and (2) one ``rag ask --batch -`` with the same N lines.
Reports wall seconds and questions/s of each and their ratio, and checks both gave the same
statuses. The machine is shared and noisy: compare the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rag(args: list[str], env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ragcli", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=3600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / f"batch-{time.strftime('%Y%m%d')}.json")
    a = ap.parse_args()
    questions = [q["question"] for q in json.loads((ROOT / "tests/fixtures/sample_qa.json").read_text())][: a.n]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RAG_INDEX": str(Path(tmp) / "idx"), "HF_HUB_OFFLINE": "1"}
        r = rag(["ingest", str(ROOT / "sample_corpus")], env)
        assert r.returncode == 0, r.stderr
        t0 = time.perf_counter()
        single = []
        for q in questions:
            r = rag(["ask", "--json", q], env)
            assert r.returncode in (0, 4), r.stderr
            single.append(json.loads(r.stdout)["status"])
        t_single = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = rag(["ask", "--batch", "-"], env, stdin="".join(json.dumps({"question": q}) + "\n" for q in questions))
        t_batch = time.perf_counter() - t0
        assert r.returncode in (0, 4), r.stderr
        batched = [json.loads(x)["status"] for x in r.stdout.splitlines()]
    report = {
        "questions": len(questions), "separate_processes_s": round(t_single, 2), "batch_s": round(t_batch, 2),
        "separate_q_per_s": round(len(questions) / t_single, 3), "batch_q_per_s": round(len(questions) / t_batch, 3),
        "speedup": round(t_single / t_batch, 2), "statuses_separate": single, "statuses_batch": batched,
        "same_statuses": single == batched, "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
