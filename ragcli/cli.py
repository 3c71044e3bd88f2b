"""The ``rag`` command: argument parsing, printing and exit codes, nothing else.

The exit codes, and which outcome gets which, live in ``exits``.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from . import __version__
from .config import DEFAULT_K, DEFAULT_MODE, Mode, Settings, resolve_settings
from .display import json_line, safe
from .errors import EmptyScopeError, RagError, UsageError
from .exits import EPILOG, Exit, of_answer, of_batch, of_ingest
from .formats import block_label, kind_for, of_kind
from .terminal import IngestLine, StatusLine, colour_enabled, exit_on_interrupt, is_terminal, paint, plural

if TYPE_CHECKING:
    from .evaluate import Scored
    from .types import Answer


app = typer.Typer(
    name="rag",
    help="Answer questions about your own documents, offline, with exact verified quotes.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

IndexOpt = typer.Option(
    None, "--index", help="Index directory, or a PostgreSQL URL postgresql://user@host:port/db[?schema=NAME] "
    "(env RAG_INDEX; default $XDG_DATA_HOME/ragcli).")
ModelsOpt = typer.Option(None, "--models", help="Extra models.toml whose entries add to / override the built-in ones.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable output on stdout.")
DebugOpt = typer.Option(False, "--debug", help="Show a Python traceback on errors.")
TopOpt = typer.Option(None, "-k", "--top", min=1, max=100,
                      help="Passages retrieved; their sentences compete to be shown to the model [default: 10].")
ModelOpt = typer.Option(None, "--model", help="LLM from the registry (env RAG_MODEL).")
ModeOpt = typer.Option(DEFAULT_MODE, "--mode", case_sensitive=False,
                       help="Retrieval: by meaning (dense), by words (lexical, BM25), or both fused (hybrid).")
PathOpt = typer.Option(None, "--path", help="Only documents this path, folder or glob names ('*COCA*', "
                       "'docs/*.pdf'); repeatable: any of them.")
TypeOpt = typer.Option(None, "--type", help="Only documents of these types: pdf,docx,html,text,… or a suffix "
                       "such as md; comma-separated or repeated.")
SinceOpt = typer.Option(None, "--since", help="Only documents whose file was modified at or after this ISO date "
                        "or date-time (2026-01-01, 2026-01-01T09:30).")


_PLAIN = {"no_color": False}  # --no-color, set by the app's callback


def _err(msg: str) -> None:
    """One line on stderr; whatever it quotes (a file name, a reason with a document's bytes)
    is shown escaped (``display.safe``), so it can neither drive the terminal nor break the line.
    On a terminal with colour (``terminal.colour_enabled``) its label is coloured: errors and
    failures red, warnings and skipped files yellow."""
    line = safe(msg)
    if colour_enabled(sys.stderr, _PLAIN["no_color"]):
        for label, style in _LABELS:
            if line.startswith(label):
                line = paint(label, style, True) + line[len(label):]
                break
    print(line, file=sys.stderr, flush=True)


_LABELS = (("rag: error:", "red"), ("rag: internal error:", "red"), ("failed:", "red"),
           ("rag: warning:", "yellow"), ("rag: no evidence:", "yellow"), ("skipped:", "yellow"),
           ("rag: interrupted;", "yellow"))


def _out(line: str = "") -> None:
    """One line of human output on stdout, escaped like ``_err``'s."""
    print(safe(line))


INTERRUPTED = "rag: interrupted; nothing was changed"


def _run(debug: bool, fn: Callable[[], int], interrupted: Callable[[], str] = lambda: INTERRUPTED) -> None:
    """Run one command body; map errors to messages and exit codes in one place.
    ``interrupted`` gives the command's own line for a Ctrl-C."""
    try:
        code = fn()
    except RagError as e:
        if debug:
            import traceback

            traceback.print_exc()
        _err(f"rag: no evidence: {e}" if isinstance(e, EmptyScopeError) else f"rag: error: {e}")
        code = e.exit_code
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while cleaning up changes nothing
        # A KeyboardInterrupt raised inside exec()/eval() of a string (dataclasses and pydantic
        # build code that way while modules load) leaves CPython's "unhandled KeyboardInterrupt"
        # flag set even once handled, and the process then ends killed by SIGINT instead of
        # exiting 130. Running any string through exec() clears the flag.
        exec("pass")
        _err(interrupted())
        code = Exit.INTERRUPTED
    except BrokenPipeError:
        code = 0
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
    except Exception as e:  # a bug: say so briefly, the traceback only on request
        if debug:
            import traceback

            traceback.print_exc()
        _err(f"rag: internal error: {type(e).__name__}: {e} (run again with --debug for details)")
        code = Exit.ERROR
    raise typer.Exit(code)


def _settings(index: Optional[str], models: Optional[Path], **kw: object) -> Settings:
    return resolve_settings(index=index, models=models, **kw)


def _display_path(p: str) -> str:
    """Relative when under the current directory; control characters (a newline or an ESC in a
    file name) and bidi overrides escaped (``display.safe``), so one failure stays one line
    and a name shows what it is."""
    try:
        rel = os.path.relpath(p)
    except ValueError:
        rel = ".."
    return safe(p if rel.startswith("..") else rel)


def _above_zero(flag: str, value: float, unit: str) -> float:
    """A flag's number if it is finite and above 0 (nan, inf, 0 and -1 are refused, exit 2)."""
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{flag} {value:g}: give a number of {unit} above 0")
    return value


def _megabytes(flag: str, value: float) -> int:
    return max(1, int(_above_zero(flag, value, "MB") * 1e6))


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(None, help="Files and directories (recursive)."),
    index: Optional[str] = IndexOpt,
    models: Optional[Path] = ModelsOpt,
    exclude: list[str] = typer.Option([], "--exclude", help="Skip files/directories matching this glob (repeatable)."),
    hidden: bool = typer.Option(False, "--hidden", help="Also ingest hidden files and directories (.git, .venv, ...)."),
    follow: bool = typer.Option(False, "-L", "--follow", help="Follow symbolic links met in directories (links named "
                                "as PATH always are). Devices, FIFOs and /proc, /sys, /dev are never read."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Re-ingest everything from scratch (no PATH: the recorded ones)."),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="Embedder for a new or rebuilt index (env RAG_EMBEDDER)."),
    max_file_size: float = typer.Option(50.0, "--max-file-size", help="Skip files larger than this many MB (> 0)."),
    max_text_size: float = typer.Option(20.0, "--max-text-size",
                                        help="Fail a file that yields more than this many MB (million characters) "
                                        "of text, attachments included (> 0)."),
    file_timeout: float = typer.Option(300.0, "--file-timeout", metavar="SECONDS",
                                       help="Fail a file that takes longer than this to read and chunk; a PDF gets "
                                       "as long again for each page read by OCR (> 0)."),
    max_parse_memory: float = typer.Option(2000.0, "--max-parse-memory", metavar="MB",
                                           help="Fail a file whose reading needs more memory than this in its "
                                           "worker process (> 0)."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Fail at once if another ingest is writing the index."),
    batch_size: int = typer.Option(1000, "--batch-size", min=1,
                                   help="Chunks per atomic batch (an interrupted ingest keeps its committed batches)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0,
                                          help="Processes that read and chunk files, at most this machine's CPUs "
                                          "[default: CPUs - 1, at most 4; one for a few files; 0: read in this "
                                          "process, without the time and memory limits]; with --ray, Ray workers "
                                          "[default: the cluster's CPUs, or GPUs]."),
    ray: Optional[str] = typer.Option(
        None, "--ray", metavar="[ADDRESS]",
        help="Read, chunk and embed on a Ray cluster: ADDRESS (HOST:PORT, ray://HOST:PORT, auto) or, with "
        "none, a local one started for this run. Batches are still committed here. Needs: pip install "
        "'ragcli[ray]'; every node needs the embedder's files at the same path (see README)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Read again the files that failed before "
                                      "and have not changed (by default they are reported as failing, unread)."),
    accept_known: bool = typer.Option(False, "--accept-known-failures", envvar="RAG_ACCEPT_KNOWN_FAILURES",
                                      help="Exit 0, not 3, when the only failures are files that failed before and "
                                      "have not changed (for scheduled runs; env RAG_ACCEPT_KNOWN_FAILURES=1)."),
    watch: bool = typer.Option(False, "--watch", help="Then keep the index in line as files change (added, "
                               "edited, renamed, deleted), one line per change, until Ctrl-C. Needs: pip install "
                               "'ragcli[watch]'."),
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Add files to the index; changed files are re-read, deleted ones removed.
    No PATH: the directories the index was built from (and an old index is upgraded)."""

    def body() -> int:
        from .pipeline import ingest as do_ingest
        from .pipeline import watch as do_watch

        settings = _settings(index, models, embedder=embedder)
        status = StatusLine(is_terminal(sys.stderr))
        bar.append(IngestLine(status))
        options = dict(
            follow=follow, max_file_size=_megabytes("--max-file-size", max_file_size),
            max_text_size=_megabytes("--max-text-size", max_text_size),
            file_timeout=_above_zero("--file-timeout", file_timeout, "seconds"),
            max_parse_memory=_megabytes("--max-parse-memory", max_parse_memory), wait=not no_wait,
            on_message=lambda m: (status.clear(), _err(m)), batch_chunks=batch_size, workers=workers, ray=ray,
            tally=bar[0], retry_failed=retry_failed,
        )
        try:
            if watch:
                def shown(event: object) -> None:
                    status.clear()
                    watching.append(event)
                    _watch_event(event, as_json)

                do_watch([str(p) for p in paths or []], settings, shown, excludes=exclude, include_hidden=hidden,
                         rebuild=rebuild, **options)
                return Exit.OK
            report = do_ingest([str(p) for p in paths or []], settings, excludes=exclude, include_hidden=hidden,
                               rebuild=rebuild, **options)
        finally:
            status.clear()
        _report_ingest(report, as_json)
        return of_ingest(bool(report.failed), report.only_known_failures, accept_known)

    bar: list[IngestLine] = []  # the body's, for the interruption message
    watching: list[object] = []  # the events shown by --watch (the first: the first ingest is done)

    def interrupted() -> str:
        if watching:
            return ("rag: interrupted; the index is intact: every change shown was committed. "
                    "Run the same command again to catch up on the rest")
        kept = bar[0].kept() if bar else "nothing of this run was committed yet"
        return f"rag: interrupted; the index is intact: {kept}. Run the same command again to carry on"

    _run(debug, body, interrupted)


def _report_ingest(report, as_json: bool, extra: Optional[dict] = None) -> None:
    """An ``IngestReport``: one JSON object, or the failures and skipped files on stderr and
    one summary line on stdout."""
    if as_json:
        print(json_line({**(extra or {}), **report.to_json()}), flush=True)
        return
    for path, reason in report.failed:
        _err(f"failed: {_display_path(path)}: {reason}")
    for line in _skipped_lines(report.skipped):
        _err(line)
    if report.resumed:
        _out(f"resumed: {plural(len(report.resumed), 'file')} committed by an interrupted ingest "
             f"{'was' if len(report.resumed) == 1 else 'were'} kept")
    _out(
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
        f"{len(report.removed)} removed, {len(report.failed)} failed, {len(report.skipped)} skipped "
        f"({plural(report.chunks, 'chunk')} embedded in {report.seconds:.1f}s) -> {report.index}"
    )
    sys.stdout.flush()


def _watch_event(event, as_json: bool) -> None:
    """One ``watch.Event``: a JSON object per line, or one human line (failures on stderr)."""
    from .watch import Change, Retrying, Synced, Watching

    if isinstance(event, Synced):
        _report_ingest(event.report, as_json, {"event": "synced"})
    elif isinstance(event, Watching):
        if as_json:
            print(json_line({"event": "watching", "paths": list(event.paths)}), flush=True)
        else:
            _err(f"watching {', '.join(_display_path(p) for p in event.paths)} for changes (Ctrl-C stops)")
    elif isinstance(event, Retrying):
        if as_json:
            print(json_line({"event": "retrying", "error": event.error, "paths": event.paths}), flush=True)
        _err(f"rag: warning: the index could not be updated ({event.error}); "
             f"{plural(event.paths, 'changed path')} will be tried again")
    elif isinstance(event, Change):
        if as_json:
            print(json_line(event.to_json()), flush=True)
        elif event.what == "failed":
            _err(f"failed: {_display_path(event.path)}: {event.reason}")
        else:
            count = f" ({plural(event.chunks, 'chunk')})" if event.what != "removed" else ""
            _out(f"{event.what}: {_display_path(event.path)}{count}")
            sys.stdout.flush()


SKIPPED_LISTED = 10  # up to this many skipped files are named one by one; more are counted by reason


def _skipped_lines(skipped: tuple[tuple[str, str], ...]) -> list[str]:
    """What the walk met and did not read, for stderr: each file when there are few, else a
    count per reason (the full list is in ``--json``)."""
    if len(skipped) <= SKIPPED_LISTED:
        return [f"skipped: {_display_path(p)}: {why}" for p, why in skipped]
    counts: dict[str, int] = {}
    for _, why in skipped:
        counts[why] = counts.get(why, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    lines = [f"skipped: {n} x {why}" for why, n in ranked[:SKIPPED_LISTED]]
    rest = ranked[SKIPPED_LISTED:]
    if rest:
        lines.append(f"skipped: {sum(n for _, n in rest)} x {len(rest)} other reasons")
    return [*lines, f"skipped: {len(skipped)} files in all (--json lists each one)"]


@app.command()
def search(
    query: Optional[str] = typer.Argument(None, help="What to look for ('-', or none with a pipe: standard input)."),
    k: int = typer.Option(DEFAULT_K, "-k", "--top", min=1, max=1000, help="Number of passages."),
    mode: Mode = ModeOpt,
    path: Optional[list[str]] = PathOpt,
    type_: Optional[list[str]] = TypeOpt,
    since: Optional[str] = SinceOpt,
    index: Optional[str] = IndexOpt,
    models: Optional[Path] = ModelsOpt,
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Show the passages that best match QUERY (no language model)."""
    from .scope import parse_scope

    def body() -> int:
        scope = None
        try:
            scope = parse_scope(path, type_, since)
            return _search_body(query, index, models, k, mode, as_json, debug, scope)
        except RagError as e:  # with --json, `| jq` sees the error too (stderr still gets the line)
            if as_json:
                print(json_line({"error": str(e), "exit_code": e.exit_code,
                                 **({"filters": scope.to_json()} if scope else {})}), flush=True)
            raise

    _run(debug, body)


def _search_body(query: Optional[str], index: Optional[str], models: Optional[Path], k: int, mode: Mode,
                 as_json: bool, debug: bool, scope=None) -> int:
    from .locators import locator
    from .pipeline import search as do_search

    q = _read_question(query)
    res = do_search(q, _settings(index, models), k=k, mode=mode, scope=scope or None)
    for h in res.hits:
        c, page = h.chunk, h.origin.page_of(h.chunk.page)
        row = {
            "rank": h.rank, "score": round(h.score, 6), "similarity": round(h.similarity, 6),
            "locator": locator(c.source, page, c.line_start),
            "source": c.source, "sha256": c.sha256, "page": page,
            "line_start": c.line_start, "line_end": c.line_end, "start": c.start, "end": c.end,
            "encoding": h.origin.text_encoding, "text": c.text,
            **({"filters": scope.to_json()} if scope else {}),
        }
        if as_json:
            print(json_line(row))
        else:
            where = _where(c.source, page, c.line_start, c.line_end, of_kind(h.origin.kind).page_label)
            opens = locator(_display_path(c.source), page, c.line_start)
            _out(f"{h.rank}. {where}  (score {h.score:.3f})  {opens}")
            _out("   " + " ".join(c.text.split())[:400])
    if not res.hits and not as_json:
        _err("no matching passages")
    return Exit.OK


def _where(source: str, page: Optional[int], a: int, b: int, label: str = "p.") -> str:
    lines = f"l.{a}" if a == b else f"l.{a}-{b}"
    return f"{_display_path(source)} {label}{page} {lines}" if page else f"{_display_path(source)} {lines}"


def _cited_where(c) -> str:
    """'deck.pptx slide 3 "Results" l.4', 'notes.docx ¶12-13 l.23-25', 'scan.pdf p.2 (OCR) l.3'.
    Pages and blocks are named as ``rag search`` names them: by the source's row in ``formats``."""
    fmt = of_kind(kind_for(c.extraction, c.source))
    where = _where(c.source, c.page, c.line_start, c.line_end, fmt.page_label)
    if c.unit:
        name = block_label(c.unit)
        span = f"{c.unit_start}" if c.unit_start == c.unit_end else f"{c.unit_start}-{c.unit_end}"
        path, _, lines = where.rpartition(" ")
        where = f"{path} {name}{span} {lines}"
    if c.title:
        path, _, lines = where.rpartition(" ")
        where = f'{path} "{c.title}" {lines}'
    return where + (f" ({fmt.note})" if fmt.note and c.extraction in fmt.also else "")


STDIN_QUESTION_BYTES = 1_000_000  # read no more of standard input than this (the question limit is in characters)


def _read_question(arg: Optional[str]) -> str:
    """The question from the argument or standard input, as text; ``pipeline.check_question``
    checks its length and content. Bytes that are not UTF-8 are a usage error either way: on
    the command line they arrive as lone surrogates (Python's ``surrogateescape``)."""
    if arg is None or arg == "-":
        if arg is None and sys.stdin.isatty():
            raise UsageError("give a question as an argument, or '-' to read it from standard input")
        data = sys.stdin.buffer.read(STDIN_QUESTION_BYTES + 1)
        if len(data) > STDIN_QUESTION_BYTES:
            from .pipeline import MAX_QUESTION_CHARS

            raise UsageError(f"the question on standard input is larger than {STDIN_QUESTION_BYTES} bytes; "
                             f"the limit is {MAX_QUESTION_CHARS} characters: pass a shorter question")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("the question on standard input is not UTF-8 text") from None
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("the question argument is not valid UTF-8 text: pass it in UTF-8 "
                         "(check the encoding of the terminal or script that sends it)") from None
    return arg


class _Draft:
    """Shows the model's answer text as it is generated (``rag ask`` on a terminal), escaped
    like every other line: the model may copy a document's bytes."""

    def __init__(self) -> None:
        self.shown = False
        self.before: Callable[[], None] = lambda: None  # erases the status line at the first piece

    def __call__(self, piece: str) -> None:
        if not self.shown:
            self.before()
        self.shown = True
        sys.stdout.write(safe(piece))
        sys.stdout.flush()


def _report_answer(ans: Answer, as_json: bool, draft: Optional[_Draft] = None) -> int:
    """Print an answer (JSON, or the text and its sources for people) and give the exit code."""
    if as_json:
        print(json_line(ans.to_json()))
    else:
        if draft is not None and draft.shown:
            sys.stdout.write("\r\033[K")  # replace the streamed draft with the final text
        _out(ans.answer)
        if ans.citations:
            _out()
            _out("Sources:")
            for c in ans.citations:
                checked = "file" if c.verified == "file" else "the index's copy (file not on this machine)"
                _out(f"[{c.id}] {_cited_where(c)}  (verified against {checked})")
                if c.context:
                    _out(f"    under: {' '.join(c.context.split())}")
                _out(f'    "{" ".join(c.quote.split())}"')
    if ans.status == "no_evidence":
        if ans.reason and not as_json:
            _err(f"rag: no evidence: {ans.reason}")
        return of_answer(False)
    if ans.reason:
        _err(f"rag: warning: {ans.reason}")
    return of_answer(True)


@app.command()
def ask(
    question: Optional[str] = typer.Argument(None, help="The question ('-' or none with a pipe: standard input)."),
    k: Optional[int] = TopOpt,
    model: Optional[str] = ModelOpt,
    mode: Mode = ModeOpt,
    path: Optional[list[str]] = PathOpt,
    type_: Optional[list[str]] = TypeOpt,
    since: Optional[str] = SinceOpt,
    index: Optional[str] = IndexOpt,
    models: Optional[Path] = ModelsOpt,
    as_json: bool = JsonOpt,
    batch: Optional[str] = typer.Option(None, "--batch", help="JSONL of questions (FILE, or '-': standard input); "
                                        "one JSON answer a line on stdout, a summary on stderr."),
    debug: bool = DebugOpt,
) -> None:
    """Answer QUESTION from the index, citing verified quotes."""

    def body() -> int:
        from .pipeline import ask as do_ask
        from .scope import parse_scope

        scope = parse_scope(path, type_, since)
        if batch is not None:
            return _ask_batch(batch, question, index, models, model, k, mode, scope)
        q = _read_question(question)
        settings = _settings(index, models, model=model)
        draft = _Draft() if sys.stdout.isatty() and not as_json else None
        line = StatusLine(is_terminal(sys.stderr))
        if draft is not None:
            draft.before = line.clear

        def stop() -> None:  # on Ctrl-C: erase the status line, end a streamed line
            line.clear()
            if draft is not None and draft.shown:
                sys.stdout.write("\n")
                sys.stdout.flush()

        with exit_on_interrupt("rag: interrupted; no answer was given", before=stop):
            line.show("searching the index…")
            try:
                ans = do_ask(q, settings, k=k, mode=mode, on_text=draft, on_status=line.show, scope=scope or None)
            finally:
                line.clear()
            return _report_answer(ans, as_json, draft)

    _run(debug, body)


def _ask_batch(source: str, question: Optional[str], index: Optional[str], models: Optional[Path],
               model: Optional[str], k: Optional[int], mode: Mode, scope=None) -> int:
    """``rag ask --batch``: ``batch.run_batch`` over a file or standard input."""
    from .api import Index
    from .batch import run_batch

    if question is not None:
        raise UsageError("give either a question or --batch FILE, not both")
    try:
        stream = sys.stdin if source == "-" else open(source, encoding="utf-8", errors="strict")
    except OSError as e:
        raise UsageError(f"cannot read the batch file {source}: {e.strerror}") from None

    def emit(row: dict) -> None:
        print(json_line(row), flush=True)

    try:
        with Index(index, models=models, model=model) as idx:
            summary = run_batch(stream, idx, emit, k=k, mode=mode, scope=scope)
    except UnicodeDecodeError:
        raise UsageError(f"the batch input {source} is not UTF-8 text") from None
    finally:
        if stream is not sys.stdin:
            stream.close()
    if not summary.questions:
        raise UsageError(f"the batch input {source} holds no question")
    _err(summary.line())
    return of_batch(summary.questions, summary.no_evidence)


def _eval_progress(r: Scored) -> None:
    mark = {True: "ok  ", False: "MISS", None: "    "}[r.correct if r.correct is not None else r.source_hit]
    _err(f"{mark} {r.status:<11} {r.latency_s:5.1f}s  {r.question[:70]}")


def _report_eval(file: Path, model_name: str, rows: list[Scored], summary: dict, as_json: bool) -> int:
    """Print `rag eval`'s report: JSON, or the summary and the missed questions for people."""
    if as_json:
        print(json_line({"file": str(file), "model": model_name, "summary": summary,
                         "questions": [r.__dict__ for r in rows]}, default=str))
        return Exit.OK
    pct = lambda v: "-" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    _out(f"questions:          {summary['questions']} ({summary['answerable']} answerable, "
         f"{summary['unanswerable']} unanswerable)")
    _out(f"answer accuracy:    {pct(summary['accuracy'])}   token F1 {pct(summary['f1'])}")
    _out(f"cites the source:   {pct(summary['source_hit'])}")
    _out(f"quotes verified:    {pct(summary['quote_verified'])} of {summary['citations']} citations")
    _out(f"answered:           {pct(summary['answered'])}   (no evidence: {pct(summary['wrong_no_evidence'])})")
    if summary["unanswerable"]:
        _out(f"abstained right:    {pct(summary['abstention'])}")
    _out(f"latency:            p50 {summary['latency_p50_s']:.1f}s  p95 {summary['latency_p95_s']:.1f}s")
    misses = [r for r in rows if r.correct is False or r.source_hit is False or r.abstained_right is False]
    if misses:
        _out()
        _out("missed:")
        for r in misses:
            _out(f"  - {r.question}  ({r.status})")
    return Exit.OK


@app.command(name="eval")
def eval_(
    file: Path = typer.Argument(..., help='JSONL: {"question": ..., "answer": ... (optional), "source": ... (optional)}'),
    k: Optional[int] = TopOpt,
    model: Optional[str] = ModelOpt,
    mode: Mode = ModeOpt,
    index: Optional[str] = IndexOpt,
    models: Optional[Path] = ModelsOpt,
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Check answers and citations on your own questions: accuracy, citation hits, latency."""

    def body() -> int:
        from .evaluate import read_eval_file
        from .pipeline import evaluate, models_for

        golds = read_eval_file(file)
        settings = _settings(index, models, model=model)
        show = sys.stderr.isatty() and not as_json

        rows, summary = evaluate(golds, settings, k=k, mode=mode, on_result=_eval_progress if show else None)
        model_name = settings.model or models_for(settings).registry.default_llm
        return _report_eval(file, model_name, rows, summary, as_json)

    _run(debug, body)


@app.command()
def status(
    index: Optional[str] = IndexOpt,
    models: Optional[Path] = ModelsOpt,
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Where the index is and what it holds."""

    def body() -> int:
        from .index import summary
        from .pipeline import status as do_status

        st = do_status(_settings(index, models))
        if as_json:
            print(json_line(st))
            return Exit.OK
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st["last_ingest"])) if st["last_ingest"] else "never"
        _out(f"index:       {st['index']}")
        _out(f"documents:   {st['documents']} ({st['pages']} pages)")
        _out(f"chunks:      {st['chunks']} ({st['spans']} sentences)")
        _out(f"embedder:    {st['embedder']} (dim {st['dim']}, {st['embedder_backend']})")
        _out(f"vectors:     {summary(st['vectors'])}")
        _out(f"size:        {st['size_bytes'] / 1e6:.1f} MB")
        _out(f"last ingest: {when}")
        for r in st["roots"]:
            _out(f"source:      {r}")
        return Exit.OK

    _run(debug, body)


@app.command("models")
def models_cmd(
    fetch: bool = typer.Option(False, "--fetch", help="Assemble/download and verify the default models (or --model)."),
    model: Optional[str] = typer.Option(None, "--model", help="With --fetch: this LLM instead of the default."),
    models: Optional[Path] = ModelsOpt,
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """List the models in the registry; --fetch prepares them for offline use."""

    def body() -> int:
        from .pipeline import fetch_models, list_models

        settings = _settings(None, models, model=model)
        if fetch:
            for name, path in fetch_models(settings):
                _err(f"ready: {name} -> {path}")
        rows = list_models(settings)
        if as_json:
            for r in rows:
                print(json_line(r))
            return Exit.OK
        width = max([24, *(len(safe(r["name"])) for r in rows)])  # a user's long model name keeps the columns
        for r in rows:
            flag = "*" if r["default"] else " "
            avail = "available" if r["available"] else "not installed"
            _out(f"{flag} {r['kind']:<8} {safe(r['name']):<{width}} {avail:<14} {r['description']}")
        _out("(* = default)")
        for r in rows:
            if not r["available"] and r["install"]:
                _out(f"to install {safe(r['name'])}: {r['install']}")
        return Exit.OK

    _run(debug, body, lambda: "rag: interrupted; the models already prepared are kept (a file is only ever "
         "put in place whole); run it again for the rest")


@app.command("verify")
def verify_cmd(
    file: Optional[Path] = typer.Argument(None, help="`rag ask --json` output to check (default: standard input)."),
    max_file_size: float = typer.Option(50.0, "--max-file-size", help="Do not read cited files larger than this many MB."),
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Re-check every quote of `rag ask --json` output against its file, by the documented recipes.

    Exit 0 when every citation verifies, 1 when one fails or cannot be checked here, 2 when the
    input is not `rag ask --json` output (or holds no citation)."""

    def body() -> int:
        from . import recheck

        limit = int(max_file_size * 1e6)
        if file is None or str(file) == "-":
            if file is None and sys.stdin.isatty():
                raise UsageError("pipe `rag ask --json` output into rag verify, or give the file that holds it")
            data = sys.stdin.buffer.read(limit + 1)
        else:
            try:
                data = recheck.read_regular_file(str(file), limit)
            except recheck.Unreadable as e:
                raise UsageError(f"{_display_path(str(file))}: {e}") from None
        if len(data) > limit:
            raise UsageError(f"the input is larger than --max-file-size {max_file_size:g} MB")
        results = recheck.check(recheck.citations_of(data), limit)
        counts = {s: sum(r.status == s for r in results) for s in (recheck.OK, recheck.FAILED, recheck.UNCHECKABLE)}
        if as_json:
            print(json_line({"verified": counts[recheck.OK], "failed": counts[recheck.FAILED],
                              "not_checkable": counts[recheck.UNCHECKABLE], "citations": len(results),
                              "results": [r.to_json() for r in results]}))
        else:
            several = len({r.answer for r in results}) > 1
            for r in results:
                _out(_verify_line(r, several))
            _out(f"{counts[recheck.OK]} of {len(results)} citations verified"
                  + (f", {counts[recheck.FAILED]} failed" if counts[recheck.FAILED] else "")
                  + (f", {counts[recheck.UNCHECKABLE]} not checkable here" if counts[recheck.UNCHECKABLE] else ""))
        return Exit.OK if counts[recheck.OK] == len(results) else Exit.ERROR

    _run(debug, body)


def _verify_line(r, several: bool) -> str:
    """'[1] ok notes.md l.3-4', '[2] FAILED deck.pptx p.2: why' (answer number first when several)."""
    try:
        rel = os.path.relpath(r.source)
    except ValueError:
        rel = ".."
    where = r.source if rel.startswith("..") else rel
    if isinstance(r.page, int) and not isinstance(r.page, bool):
        where += f" p.{r.page}"
    if r.line_start is not None:
        end = r.line_start if r.line_end is None else r.line_end
        where += f" l.{r.line_start}" if r.line_start == end else f" l.{r.line_start}-{end}"
    head = (f"{r.answer}:" if several else "") + f"[{r.id}]"
    if r.status == "ok":
        return f"{head} ok {where}"
    return f"{head} {'FAILED' if r.status == 'failed' else 'not checkable'} {where}: {r.reason}"


@app.command("ls")
def ls_cmd(
    patterns: Optional[list[str]] = typer.Argument(None, help="Paths, folders or globs ('*.pdf'); none: every document."),
    index: Optional[str] = IndexOpt,
    models: Optional[Path] = ModelsOpt,
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """List the documents in the index (pages, chunks, when each was ingested), then the files
    the last ingest failed or skipped, with the reason."""

    def body() -> int:
        from . import index as stores
        from .manage import chunk_counts, documents, unindexed

        store = stores.open(_settings(index, models).index)
        docs = documents(store, tuple(patterns or ()))
        chunks = chunk_counts(store)
        for d in docs:
            row = {"path": d.path, "status": "indexed", "kind": d.kind, "pages": d.n_pages,
                   "chunks": chunks.get(d.path), "bytes": d.size, "sha256": d.sha256, "ingested_at": d.ingested_at}
            if as_json:
                print(json_line(row))
            else:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.ingested_at))
                n = "" if row["chunks"] is None else f"{row['chunks']:>5} chunks  "
                _out(f"{d.n_pages:>4} pages  {n}{when}  {_display_path(d.path)}")
        others = unindexed(store, tuple(patterns or ()))
        if as_json:
            for u in others:
                print(json_line(u.to_json()))
        else:
            for u in others:
                if u.status == "failed":
                    _out(f"failed: {_display_path(u.path)}: {u.reason}")
            for line in _skipped_lines(tuple((u.path, u.reason) for u in others if u.status == "skipped")):
                _out(line)
        if not docs and not others and patterns:
            _err("rag: no document in the index matches " + " ".join(patterns))
        return Exit.OK

    _run(debug, body)


@app.command("rm")
def rm_cmd(
    patterns: list[str] = typer.Argument(..., help="Paths, folders or globs ('*.pdf') of documents to remove."),
    index: Optional[str] = IndexOpt,
    models: Optional[Path] = ModelsOpt,
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Remove documents from the index (the files are not touched); removing nothing is not an error."""

    def body() -> int:
        from . import index as stores
        from .manage import remove

        r = remove(stores.open(_settings(index, models).index), tuple(patterns))
        if as_json:
            print(json_line(r.to_json()))
        else:
            for p in r.paths:
                _out(f"removed: {_display_path(p)}")
            _out(f"{len(r.paths)} documents removed ({r.chunks} chunks, {r.spans} sentences, {r.pages} pages)")
        return Exit.OK

    _run(debug, body)


@app.command("mcp")
def mcp_cmd(
    read_only: bool = typer.Option(False, "--read-only", help="Offer no tool that changes the index (no sync, no remove)."),
    model: Optional[str] = ModelOpt,
    index: Optional[str] = IndexOpt,
    models: Optional[Path] = ModelsOpt,
    debug: bool = DebugOpt,
) -> None:
    """Serve the index to an AI agent: a Model Context Protocol server on stdin/stdout."""

    def body() -> int:
        try:
            import mcp  # noqa: F401  (an extra: only this command needs it)
        except ImportError:
            raise UsageError("`rag mcp` needs the MCP SDK: pip install 'ragcli[mcp]'") from None
        from .api import Index
        from .mcp_server import serve

        serve(Index(index, models=models, model=model), read_only=read_only)
        return Exit.OK

    _run(debug, body)


def version_callback(value: bool) -> None:
    if value:
        print(f"ragcli {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True, help="Show the version."),
    no_color: bool = typer.Option(False, "--no-color", help="No colour on the terminal (also: NO_COLOR set to anything)."),
) -> None:
    """Answer questions about your own documents, offline, with exact verified quotes."""
    _PLAIN["no_color"] = no_color


def _ray_without_address(args: list[str]) -> list[str]:
    """``--ray`` may come without its value (a local cluster): give it "local" then, as typer
    has no options with an optional value.

    >>> _ray_without_address(["ingest", "docs", "--ray"]), _ray_without_address(["ingest", "--ray", "--json", "d"])
    (['ingest', 'docs', '--ray', 'local'], ['ingest', '--ray', 'local', '--json', 'd'])
    >>> _ray_without_address(["ingest", "d", "--ray", "head:6379"]), _ray_without_address(["ingest", "--", "--ray"])
    (['ingest', 'd', '--ray', 'head:6379'], ['ingest', '--', '--ray'])
    """
    out = list(args)
    for i, a in enumerate(out):
        if a == "--":
            break
        if a == "--ray" and (i + 1 == len(out) or out[i + 1].startswith("-")):
            return out[: i + 1] + ["local"] + out[i + 1 :]
    return out


def run() -> None:
    app(prog_name="rag", args=_ray_without_address(sys.argv[1:]))
