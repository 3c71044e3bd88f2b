"""Real folders, real questions: is the answer right, or does `rag ask` say it has none?

    .venv/bin/python bench/realfolders.py [--data ../shared/eval] [--folders techdocs,finance]
                                          [--split all|tune|heldout] [--in-process] [--limit N]

Two folders are built into bench/.cache/realfolders/ from files on this machine (the same
files give the same folder; the report lists every file's sha256):

- ``techdocs``: package documentation as it lies on disk: Node.js API pages (md, one html),
  Git release notes, pip's topic pages, libffi's HTML manual, READMEs and NEWS files that
  Debian ships gzipped (decompressed here, as a reader would), Debian copyright files, the
  METADATA of the Python packages installed in ragcli's environment, two real PDFs and two
  made from text with fpdf2; plus two files kept gzipped and two without an extension, which
  today's `rag ingest` skips (the report counts what it took in).
- ``finance``: eight FinanceBench filings (linked from the evaluation folder, never copied into
  the repository) and three office files with invented facts (``tests/tools/finance_office``):
  a board memo .docx with a table, an investor-day .pptx and an e-mail.

The questions (bench/realfolders/questions.jsonl, written by reading those files) are asked
as a user asks them: ``rag ask --json`` in a new process per question (``--in-process``: through
``ragcli.Index`` in this process, the same code without the start-up, for quick runs; its
latency is not the user's). Each is graded on the answer text (``answer_pattern``, a regular
expression, case-insensitive) and the cited file (``source``), by ``ragcli.evaluate``:

- right: answered, the answer text matches and a citation comes from the gold source;
- confidently wrong: answered, but not right (every answer to an unanswerable question);
- rightly abstained: no_evidence on a question the folder does not answer;
- wrongly abstained: no_evidence on one it does.

Reported per split (a third of the questions, drawn with a fixed seed before any run, is
``heldout``: tune on ``tune`` only), overall, and per ``pattern`` (the failure patterns of
issue 25); every citation is re-read with ``ragcli.verify`` and with
../shared/tools/verify-citations; latency p50/p95 of the new processes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datetime import UTC

from common import (  # noqa: E402
    CACHE,
    DEFAULT_EVAL,
    ROOT,
    chunk_params,
    index_dir,
    machine,
    run_rag,
    settings_for,
    table,
    write_report,
)

import ragcli  # noqa: E402
from ragcli import pipeline  # noqa: E402
from ragcli.evaluate import (  # noqa: E402
    answer_text,
    cites,
    matches,
    outcome,
    outcome_rates,
    percentile,
    quote_is_exact,
)

QUESTIONS = ROOT / "bench" / "realfolders" / "questions.jsonl"
FOLDERS = CACHE / "realfolders"
SPLIT_SEED = 25  # issue 25; the split was drawn once, before any run, and is stored in the file

SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
DOC = Path("/usr/share/doc")
NODE = DOC / "nodejs" / "api"

# (path in the folder, source file, how): "copy", "gunzip", "pdf" (fpdf2 from the text), "link"
TECHDOCS: list[tuple[str, Path, str]] = [
    *[(f"node/{n}.md", NODE / f"{n}.md", "copy") for n in (
        "corepack", "os", "path", "punycode", "tty", "string_decoder", "querystring", "synopsis",
        "documentation", "wasi", "debugger", "intl", "domain", "embedding", "single-executable-applications",
        "index")],
    *[(f"node/{n}", DOC / "nodejs" / n, "copy") for n in ("README.md", "SECURITY.md", "glossary.md")],
    ("node/policy.html", NODE / "policy.html", "copy"),
    ("node/changelog.Debian.gz", DOC / "nodejs" / "changelog.Debian.gz", "copy"),  # kept gzipped
    *[(f"git/RelNotes/{v}.txt", DOC / "git" / "RelNotes" / f"{v}.txt", "copy") for v in (
        "2.38.0", "2.38.1", "2.38.2", "2.38.3", "2.38.4", "2.38.5",
        "2.39.0", "2.39.1", "2.39.2", "2.39.3", "2.39.4", "2.39.5")],
    ("git/README.md", DOC / "git" / "README.md", "copy"),
    ("git/NEWS.Debian.gz", DOC / "git" / "NEWS.Debian.gz", "copy"),  # kept gzipped
    ("git/copyright", DOC / "git" / "copyright", "copy"),  # no extension
    *[(f"pip/{n}.md", DOC / "python3-pip" / "html" / "topics" / f"{n}.md", "copy") for n in (
        "authentication", "index", "local-project-installs", "python-option", "repeatable-installs")],
    *[(f"pip/{n}.md", DOC / "python3-pip" / "html" / f"{n}.md", "copy") for n in ("getting-started", "installation")],
    ("pip/https-certificates.pdf", DOC / "python3-pip" / "html" / "topics" / "https-certificates.md", "pdf"),
    *[(f"debian/{p}/{n}", DOC / p / f"{n}.gz", "gunzip") for p, n in (
        ("zstd", "README.md"), ("zstd", "CONTRIBUTING.md"), ("man-db", "NEWS.md"), ("man-db", "README.md"),
        ("base-passwd", "users-and-groups.txt"), ("yq", "README.rst"), ("systemd", "ENVIRONMENT.md"),
        ("libffi8", "README.md"), ("pkgconf-bin", "README.md"), ("postgresql-common", "README.md"),
        ("python3-setuptools", "build_meta.rst"), ("zlib1g-dev", "txtvsbin.txt"))],
    ("debian/systemd/UIDS-GIDS.pdf", DOC / "systemd" / "UIDS-GIDS.md.gz", "pdf"),
    *[(f"debian/{p}/copyright.txt", DOC / p / "copyright", "copy") for p in (
        "jq", "sqlite3", "tmux", "zstd", "gzip", "less", "bc", "make", "patch", "tar")],
    ("debian/tmux/README", DOC / "tmux" / "copyright", "copy"),  # no extension (a copy under another name)
    ("pdf/libtasn1.pdf", DOC / "libtasn1-doc" / "libtasn1.pdf", "copy"),
    ("pdf/shared-mime-info-spec.pdf", DOC / "shared-mime-info" / "shared-mime-info-spec.pdf", "copy"),
    ("python/pip-vendor-README.rst", SITE / "pip" / "_vendor" / "README.rst", "copy"),
    ("python/numpy-ma-README.rst", SITE / "numpy" / "ma" / "README.rst", "copy"),
    ("python/numpy-ma-API_CHANGES.txt", SITE / "numpy" / "ma" / "API_CHANGES.txt", "copy"),
    ("python/onnxruntime-Privacy.md", SITE / "onnxruntime" / "Privacy.md", "copy"),
]
LIBFFI_HTML = DOC / "libffi8" / "html"
METADATA_BYTES = (1_000, 25_000)  # dist-info METADATA files kept: mid-sized, as a docs folder would hold
METADATA_SKIP = ("ragcli", "pandas_sns")  # this project itself; stub packages without a description

FILINGS = ("3M_2018_10K", "AMAZON_2019_10K", "COCACOLA_2017_10K", "PFIZER_2021_10K", "BOEING_2022_10K",
           "WALMART_2020_10K", "ADOBE_2017_10K", "CORNING_2021_10K")


def techdocs_plan() -> list[tuple[str, Path, str]]:
    plan = list(TECHDOCS)
    plan += [(f"libffi/{p.name}", p, "copy") for p in sorted(LIBFFI_HTML.glob("*.html"))]
    lo, hi = METADATA_BYTES
    for d in sorted(SITE.glob("*.dist-info")):
        meta = d / "METADATA"
        if meta.is_file() and lo <= meta.stat().st_size <= hi and not d.name.startswith(METADATA_SKIP):
            plan.append((f"pypi/{d.name.removesuffix('.dist-info')}-METADATA.txt", meta, "copy"))
    return plan


def _latin1(text: str) -> str:
    """Text fpdf2's core fonts can draw: typographic characters spelled in ASCII."""
    for a, b in (("…", "..."), ("→", "->"), ("“", '"'), ("”", '"'), ("‘", "'"), ("’", "'"), ("—", "-"),
                 ("–", "-"), ("•", "*"), ("≥", ">="), ("≤", "<=")):
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


def text_pdf(text: str, title: str) -> bytes:
    """A text-layer PDF of ``text`` (fpdf2, Helvetica 10 pt, fixed dates: the same bytes each time)."""
    from datetime import datetime

    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))
    pdf.set_title(title)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    for line in _latin1(text).splitlines():
        pdf.multi_cell(0, 5, line if line.strip() else " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _read_source(src: Path) -> bytes:
    return gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes()


def build_folder(name: str, data: Path) -> tuple[Path, list[dict]]:
    """(folder, manifest): the folder rebuilt from its plan when anything differs."""
    sys.path.insert(0, str(ROOT))  # tests.tools, when run as a plain script from the checkout
    from tests.tools import finance_office

    folder = FOLDERS / name
    entries: list[tuple[str, bytes | Path]] = []
    if name == "techdocs":
        for rel, src, how in techdocs_plan():
            if how == "copy":
                entries.append((rel, src.read_bytes()))
            elif how == "gunzip":
                entries.append((rel, _read_source(src)))
            elif how == "pdf":
                entries.append((rel, text_pdf(_read_source(src).decode("utf-8"), Path(rel).stem)))
    elif name == "finance":
        for f in FILINGS:
            entries.append((f"filings/{f}.pdf", (data / "financebench" / "pdfs" / f"{f}.pdf").resolve()))
        entries += [("office/board_memo_2024-10.docx", finance_office.board_memo_docx()),
                    ("office/investor_day_2024.pptx", finance_office.investor_pptx()),
                    ("office/staff_ferry.eml", finance_office.ferry_eml())]
    else:
        raise SystemExit(f"unknown folder {name!r}; known: techdocs, finance")
    manifest = []
    for rel, what in entries:
        if isinstance(what, Path):  # a link to the evaluation data, never a copy
            manifest.append({"path": rel, "link": str(what), "sha256": hashlib.sha256(what.read_bytes()).hexdigest()})
        else:
            manifest.append({"path": rel, "bytes": len(what), "sha256": hashlib.sha256(what).hexdigest()})
    stamp = folder / ".manifest.json"  # hidden: `rag ingest` skips it
    if stamp.is_file() and json.loads(stamp.read_text()) == manifest:
        return folder, manifest
    if folder.exists():
        shutil.rmtree(folder)
    for rel, what in entries:
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(what, Path):
            dest.symlink_to(what)
        else:
            dest.write_bytes(what)
    stamp.write_text(json.dumps(manifest, indent=1))
    return folder, manifest


def load_questions(path: Path = QUESTIONS) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip() and not line.lstrip().startswith("//")]


def assign_splits(path: Path = QUESTIONS, seed: int = SPLIT_SEED) -> None:
    """Give every question a ``split``: a third "heldout", drawn with ``seed`` within each
    (folder, answerable) group so that both splits have unanswerable questions of both folders,
    the rest "tune". Run once when the set is written, before any run; questions that have a
    split keep it."""
    qs = load_questions(path)
    rng = random.Random(seed)
    groups: dict[tuple[str, bool], list[dict]] = {}
    for q in qs:
        if "split" not in q:
            groups.setdefault((q["folder"], q["answerable"]), []).append(q)
    for key in sorted(groups):
        members = groups[key]
        held = set(rng.sample(range(len(members)), round(len(members) / 3)))
        for i, q in enumerate(members):
            q["split"] = "heldout" if i in held else "tune"
    path.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in qs), encoding="utf-8")


TOOL_RECIPES = ("text", "pypdf")  # the extractions verify-citations re-reads itself (raw text files, pypdf pages)


def verify_tool(out: dict, tool: Path) -> dict:
    """../shared/tools/verify-citations on one answer's citations that it has a recipe for
    (plain text, PDF); the others (HTML through inscriptis, docx, pptx, e-mail) are counted
    as not checkable by it (``ragcli.verify`` still checks them)."""
    cits = out.get("citations") or []
    mine = [c for c in cits if c.get("extraction") in TOOL_RECIPES]
    res = {"checked": len(mine), "verified": 0, "failed": 0, "uncheckable": len(cits) - len(mine), "errors": []}
    if not mine:
        return res
    p = subprocess.run([sys.executable, str(tool)], input=json.dumps({**out, "citations": mine}),
                       capture_output=True, text=True)
    res["errors"] = [line for line in p.stderr.splitlines() if line.strip()]
    res["failed"] = sum("no independent recipe" not in line for line in res["errors"])
    res["verified"] = len(mine) - res["failed"]
    return res


def grade(q: dict, out: dict) -> dict:
    answered = out.get("status") == "answered"
    text = answer_text(out)
    text_ok = answered and matches(q["answer_pattern"], text) if q.get("answer_pattern") else False
    cited = cites(out, q["source"]) if q.get("source") else False
    return {"outcome": outcome(answered, q["answerable"], text_ok and cited), "text_matches": text_ok,
            "cites_source": cited}


def summarize_rows(rows: list[dict]) -> dict:
    out = outcome_rates([(r["outcome"], r["answerable"]) for r in rows])
    lat = [r["latency_s"] for r in rows]
    n_cit = sum(r["citations"] for r in rows)
    tool = [r["verify_tool"] for r in rows]
    out.update({
        "quote_verified": sum(r["verified"] for r in rows) / n_cit if n_cit else None,
        "citations": n_cit,
        "tool_verified": sum(t["verified"] for t in tool), "tool_checked": sum(t["checked"] for t in tool),
        "tool_failed": sum(t["failed"] for t in tool), "tool_uncheckable": sum(t["uncheckable"] for t in tool),
        "latency_p50_s": percentile(lat, 50), "latency_p95_s": percentile(lat, 95),
    })
    return out


def ask_new_process(question: str, index: Path, env: dict) -> tuple[dict, float, str]:
    wall, rc, _rss, stdout, stderr = run_rag(["ask", "--json", "--index", str(index), question], env, timeout=900)
    try:
        return json.loads(stdout.strip().splitlines()[-1]), wall, stderr.strip()
    except (json.JSONDecodeError, IndexError):
        return {"status": f"error (exit {rc})", "answer": "", "citations": []}, wall, stderr.strip()[-2000:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_EVAL, help="folder with financebench/")
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--verify-tool", type=Path, help="the independent citation checker "
                    "(default: DATA/../tools/verify-citations)")
    ap.add_argument("--folders", default="techdocs,finance")
    ap.add_argument("--split", default="all", choices=("all", "tune", "heldout"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (after --split)")
    ap.add_argument("--in-process", action="store_true",
                    help="ask through ragcli.Index in this process (quick; latency is then not a user's)")
    ap.add_argument("--build-only", action="store_true", help="build the folders and ingest them, ask nothing")
    ap.add_argument("--assign-splits", action="store_true", help="give questions without a split one (seeded)")
    ap.add_argument("--out", type=Path, help="report path (default bench/results/realfolders-<time>.json)")
    args = ap.parse_args(argv)
    if args.assign_splits:
        assign_splits(args.questions)
        return 0

    tool = args.verify_tool or args.data.parent / "tools" / "verify-citations"
    if not args.build_only and not tool.is_file():
        raise SystemExit(f"{tool}: no such file; pass --verify-tool PATH (../shared/tools/verify-citations)")
    params = chunk_params("")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    folders, indexes = {}, {}
    for name in args.folders.split(","):
        folder, manifest = build_folder(name, args.data)
        folder = folder.resolve()  # one path for every checkout sharing bench/.cache (else each adds its own copy)
        index = index_dir(f"realfolders-{name}", params)
        rep = pipeline.ingest([folder], settings_for(index), params=params, follow=True)  # the filings are links
        with ragcli.Index(index) as idx:
            st = idx.status()
        in_folder = [m["path"] for m in manifest]
        held = {os.path.relpath(d, folder) for d in _documents(index)}
        folders[name] = {"files": len(manifest), "documents": len(held), "chunks": st.get("chunks"),
                         "not_in_index": sorted(set(in_folder) - held),
                         "failed": [{"path": p, "reason": r} for p, r in rep.failed],
                         "ingest_s": rep.seconds if rep.chunks else None, "manifest": manifest}
        indexes[name] = index
        print(f"{name}: {len(manifest)} files, {len(held)} in the index ({st.get('chunks')} chunks); not in it: "
              f"{', '.join(folders[name]['not_in_index']) or '-'}", file=sys.stderr)
    if args.build_only:
        return 0

    questions = [q for q in load_questions(args.questions) if q["folder"] in indexes
                 and (args.split == "all" or q["split"] == args.split)]
    if args.limit:
        questions = questions[: args.limit]
    handles = {n: ragcli.Index(i) for n, i in indexes.items()} if args.in_process else {}
    rows, models = [], {}
    for n, q in enumerate(questions, 1):
        stderr = ""
        if args.in_process:
            t0 = time.perf_counter()
            ans = handles[q["folder"]].ask(q["question"])
            out, wall, stderr = ans.to_json(), time.perf_counter() - t0, ans.reason
        else:
            out, wall, stderr = ask_new_process(q["question"], indexes[q["folder"]], env)
        g = grade(q, out)
        models = models or {k: out[k] for k in ("model", "embedder") if k in out}
        cits = out.get("citations") or []
        rows.append({**{k: q[k] for k in ("id", "folder", "split", "pattern", "answerable", "question", "source",
                                          "answer_pattern")},
                     **g, "status": out.get("status"), "answer": answer_text(out), "stderr": stderr,
                     "citations": len(cits), "verified": sum(quote_is_exact(c) for c in cits),
                     "verify_tool": verify_tool(out, tool), "latency_s": wall,
                     "cited": [{"source": str(Path(c["source"]).relative_to(FOLDERS / q["folder"]))
                                if str(c["source"]).startswith(str(FOLDERS)) else c["source"],
                                "page": c.get("page"), "quote": c["quote"]} for c in cits],
                     "timings": out.get("timings", {})})
        print(f"  [{n}/{len(questions)}] {q['id']} {g['outcome']:<16} {wall:5.1f}s  {answer_text(out)[:70]!r}",
              file=sys.stderr)
    for h in handles.values():
        h.close()

    by = {"overall": rows, **{s: [r for r in rows if r["split"] == s] for s in ("tune", "heldout")},
          **{f"folder:{f}": [r for r in rows if r["folder"] == f] for f in indexes}}
    summary = {k: summarize_rows(v) for k, v in by.items() if v}
    patterns = sorted({r["pattern"] for r in rows})
    per_pattern = {p: summarize_rows([r for r in rows if r["pattern"] == p]) for p in patterns}
    report = {"bench": "realfolders", "machine": machine(), "ragcli": str(Path(ragcli.__file__).parent),
              "commit": _commit(), "how": "in-process (ragcli.Index)" if args.in_process else
              "rag ask --json, a new process per question",
              "latency_note": "measured on a loaded 2-core machine shared with other jobs" if not args.in_process
              else "in-process: not a user's latency",
              "model": models.get("model"), "embedder": models.get("embedder"), "rag_cache": os.environ.get("RAG_CACHE"),
              "split_seed": SPLIT_SEED, "folders": folders, "summary": summary, "per_pattern": per_pattern,
              "questions": rows}
    path = write_report("realfolders", report, args.out)
    cols = ["questions", "right", "wrong", "abstained_right", "abstained_wrong", "right_of_answerable", "wrong_rate",
            "quote_verified", "latency_p50_s", "latency_p95_s"]
    print(table([{"set": k, **v} for k, v in summary.items()], ["set", *cols],
                {"latency_p50_s": ".1f", "latency_p95_s": ".1f"}))
    print()
    print(table([{"pattern": k, **v} for k, v in per_pattern.items()],
                ["pattern", "questions", "right", "wrong", "abstained_right", "abstained_wrong"]))
    print(f"\nreport: {path}")
    return 0


def _documents(index: Path) -> list[str]:
    from ragcli.index import open as open_store

    with open_store(index).reader() as st:
        return [d.path for d in st.documents()]


def _commit() -> str:
    p = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "ragcli"], capture_output=True, text=True)
    # the last commit that changed the pipeline (evaluate.py only scores): the code that answered
    last = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h", "--", "ragcli",
                           ":(exclude)ragcli/evaluate.py"], capture_output=True, text=True)
    return (p.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
            + f" (ragcli pipeline as of {last.stdout.strip()}; evaluate.py only scores)")


if __name__ == "__main__":
    raise SystemExit(main())
