"""``rag mcp``: the real server in its own process, driven by the MCP SDK's own stdio client.

Each test starts ``python -m ragcli mcp`` (or, for an answered ``ask``, the same server with a
scripted generator: ``tests/mcp_scripted.py``) and talks to it with ``ClientSession`` over
``stdio_client``: initialize, list tools, call each tool, follow a sync job to its end, an
over-budget result, bad arguments (a tool error; the server answers the next call), a
document changed between calls, --read-only, and paths outside the index's roots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import anyio
import pytest

from .conftest import ROOT, SAMPLE, rag

mcp = pytest.importorskip("mcp")
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402

ALL_TOOLS = {"search", "ask", "read", "status", "job", "sync", "remove"}


@pytest.fixture
def env(hash_models: Path, tmp_path: Path) -> dict:
    return {"RAG_MODELS": str(hash_models), "RAG_INDEX": str(tmp_path / "idx")}


@pytest.fixture
def docs(env: dict, tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    shutil.copytree(SAMPLE, d)
    r = rag("ingest", str(d), env=env)
    assert r.returncode == 0, r.stderr
    return d


@contextlib.asynccontextmanager
async def session(env: dict, *args: str, script: list[str] | None = None):
    """A connected, initialized client session to a fresh server process (``s.init``: the
    server's answer to initialize); the whole conversation must end within 300 s."""
    cmd = script or ["-m", "ragcli", "mcp", *args]
    params = StdioServerParameters(command=sys.executable, args=cmd, env={**os.environ, **env}, cwd=str(ROOT))
    with anyio.fail_after(300), open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as s:
            s.init = await s.initialize()
            yield s


async def call(s: ClientSession, tool: str, **args) -> dict:
    r = await s.call_tool(tool, args)
    assert not r.is_error, r.content[0].text
    return json.loads(r.content[0].text)


async def error(s: ClientSession, tool: str, **args) -> str:
    r = await s.call_tool(tool, args)
    assert r.is_error, r.content
    return r.content[0].text


def run(coro) -> None:
    anyio.run(lambda: coro)


def test_initialize_list_tools_and_call_each_read_tool(env: dict, docs: Path) -> None:
    async def body():
        async with session(env) as s:
            assert s.init.server_info.name == "ragcli"
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == ALL_TOOLS
            assert "query" in tools["search"].input_schema["properties"]

            found = await call(s, "search", query="k-quant family Q4_K_M", k=3, mode="lexical")
            top = found["results"][0]
            assert top["source"].endswith("quantization_and_gguf.md") and found["truncated"] is False
            assert top["locator"] == f"{top['source']}:{top['line_start']}"
            assert "untrusted" in found and "text" in found["untrusted"]
            src = Path(top["source"]).read_text(encoding="utf-8")
            assert src[top["start"]:top["end"]] == top["text"]

            got = await call(s, "read", locator=top["locator"], before=1, after=1)
            assert got["source"] == top["source"] and got["sentences"]
            assert sum(1 for x in got["sentences"] if x["hit"]) == 1
            for x in got["sentences"]:
                assert src[x["start"]:x["end"]] == x["text"]  # exact text, exact offsets

            st = await call(s, "status")
            assert st["documents"] == sum(1 for p in SAMPLE.iterdir()) and st["roots"] == [str(docs)]

            no = await call(s, "ask", question="zebra quokka xylophone marmalade")
            assert no["status"] == "no_evidence" and no["reason"] and no["citations"] == []

    run(body())


def test_ask_answers_with_verified_citations(env: dict, docs: Path, tmp_path: Path) -> None:
    script = [str(ROOT / "tests" / "mcp_scripted.py"), env["RAG_INDEX"]]

    async def body():
        async with session(env, script=script) as s:
            a = await call(s, "ask", question="What does the K in Q4_K_M stand for?")
            assert a["status"] == "answered" and a["support"] == "verified" and a["citations"]
            c = a["citations"][0]
            assert Path(c["source"]).read_text(encoding="utf-8")[c["start"]:c["end"]] == c["quote"]
            assert c["locator"] == f"{c['source']}:{c['line_start']}"

    run(body())


def test_search_and_ask_take_path_type_and_since_filters(env: dict, docs: Path) -> None:
    async def body():
        async with session(env) as s:
            schema = {t.name: t for t in (await s.list_tools()).tools}["search"].input_schema["properties"]
            assert {"path", "type", "since"} <= set(schema)
            q = "tokens context window quantization"
            assert not any(r["source"].endswith("sampling_notes.txt")
                           for r in (await call(s, "search", query=q, k=5))["results"])
            found = await call(s, "search", query=q, k=5, path=["*sampling*"])
            assert len(found["results"]) == 5 and all(r["source"].endswith("sampling_notes.txt")
                                                      for r in found["results"])
            assert found["filters"] == {"path": ["*sampling*"], "type": [], "since": None}
            typed = await call(s, "search", query=q, k=4, type=["pdf"], since="2000-01-01")
            assert typed["results"] and all(r["source"].endswith(".pdf") for r in typed["results"])
            none = await call(s, "search", query=q, path=["*COCA*"])
            assert none["results"] == [] and "no indexed document matches --path '*COCA*'" in none["reason"]
            no = await call(s, "ask", question="What is a context window?", path=["*COCA*"])
            assert no["status"] == "no_evidence" and "no indexed document matches" in no["reason"]
            assert no["filters"]["path"] == ["*COCA*"]
            assert "unknown document type 'xls'" in await error(s, "search", query=q, type=["xls"])
            assert "--since takes an ISO date" in await error(s, "ask", question=q, since="soon")

    run(body())


def test_over_budget_result_is_truncated_with_a_cursor_that_continues(env: dict, docs: Path) -> None:
    async def body():
        async with session(env) as s:
            whole = await call(s, "search", query="model", k=20, budget=80_000)
            assert len(json.dumps(whole, ensure_ascii=False)) > 2000
            assert not whole["truncated"] and len(whole["results"]) > 3
            seen, cursor = [], None
            for _ in range(40):
                part = await call(s, "search", query="model", k=20, budget=2000, **({"cursor": cursor} if cursor else {}))
                assert len(json.dumps(part, ensure_ascii=False)) <= 2000
                seen += [(r["source"], r["start"]) for r in part["results"]]
                if not part["truncated"]:
                    break
                assert part["cursor"]
                cursor = part["cursor"]
            assert seen == [(r["source"], r["start"]) for r in whole["results"]]

    run(body())


def test_bad_arguments_are_tool_errors_and_the_server_stays_up(env: dict, docs: Path) -> None:
    async def body():
        async with session(env) as s:
            assert await error(s, "search", query="x", k="many")
            assert "budget" in await error(s, "search", query="x", budget=5)
            assert "empty" in await error(s, "search", query="   ")
            assert "no job" in await error(s, "job", id="nope")
            assert "not a locator" in await error(s, "read", locator="")
            assert await error(s, "nosuchtool")
            assert (await call(s, "status"))["documents"] > 0  # still answering

    run(body())


def test_paths_are_limited_to_the_index_roots(env: dict, docs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("the password is hunter2\n")

    async def body():
        async with session(env) as s:
            assert "outside" in await error(s, "read", locator=f"{outside}:1")
            assert "outside" in await error(s, "read", locator="/etc/passwd:1")
            assert "outside" in await error(s, "sync", paths=[str(outside)])
            assert "outside" in await error(s, "remove", path=str(outside))
            assert "not in the index" in await error(s, "read", locator=f"{docs}/nothing-here.md:1")

    run(body())


def test_read_only_offers_no_sync_or_remove(env: dict, docs: Path) -> None:
    async def body():
        async with session(env, "--read-only") as s:
            assert {t.name for t in (await s.list_tools()).tools} == ALL_TOOLS - {"sync", "remove"}
            assert await error(s, "sync")
            assert (await call(s, "status"))["read_only"] is True

    run(body())


def test_a_document_changed_between_calls_then_synced_by_a_job_then_removed(env: dict, docs: Path) -> None:
    note = docs / "rag_and_citations.txt"

    async def wait(s: ClientSession, job: dict) -> dict:
        for _ in range(600):
            j = await call(s, "job", id=job["job"])
            if j["state"] != "running":
                return j
            await asyncio.sleep(0.1)
        raise AssertionError("the job never finished")

    async def body():
        async with session(env) as s:
            assert (await call(s, "read", locator=f"{note}:1"))["sentences"]  # readable before the change
            note.write_text("Aardvarks tunnel under the zeppelin hangar.\n" + note.read_text(encoding="utf-8"))
            assert "changed since it was ingested" in await error(s, "read", locator=f"{note}:1")

            t0 = time.monotonic()
            job = await call(s, "sync", paths=[str(docs)])
            assert job["state"] == "running" and time.monotonic() - t0 < 5  # returns at once
            again = await s.call_tool("sync", {})  # refused while the first runs (it may have finished)
            assert not again.is_error or "already running" in again.content[0].text
            done = await wait(s, job)
            if not again.is_error:
                await wait(s, json.loads(again.content[0].text))
            assert done["state"] == "done", done
            assert done["result"]["updated"] == [str(note)]
            got = await call(s, "search", query="aardvarks zeppelin hangar", k=1, mode="lexical")
            assert got["results"][0]["source"] == str(note)
            first = (await call(s, "read", locator=f"{note}:1", before=0, after=0))["sentences"][0]
            assert first["text"] == "Aardvarks tunnel under the zeppelin hangar."
            assert (await call(s, "status"))["last_sync"]["state"] == "done"

            gone = await call(s, "remove", path=str(note))
            assert gone["documents"] == 1 and gone["chunks"] > 0 and gone["sentences"] > 0
            assert (await call(s, "remove", path=str(note)))["documents"] == 0  # idempotent
            after = await call(s, "search", query="aardvarks zeppelin hangar", k=5, mode="lexical")
            assert all(r["source"] != str(note) for r in after["results"])

    run(body())


def test_readme_client_configs_start_this_server() -> None:
    """The README's JSON snippets parse and name `rag mcp`, the command the tests above run."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Agents (MCP)"):text.index("## Python")]
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", section, re.S)]
    assert len(blocks) == 2
    for b in blocks:
        (cfg,) = (b.get("mcpServers") or b["servers"]).values()
        assert cfg["command"] == "rag" and cfg["args"][0] == "mcp"
    assert "claude mcp add ragcli -- rag mcp" in section
