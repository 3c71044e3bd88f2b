"""``rag search`` for scripts: the query from standard input like ``ask``; with ``--json`` an
error is a JSON object on stdout as well as a line on stderr; a ``locator`` a person can
open (``path:line``, ``file.pdf#page=N``) in JSON and in human output. Real processes."""

from __future__ import annotations

import json

import pytest

from .conftest import rag


@pytest.fixture
def env(sample_env: dict) -> dict:
    return sample_env


@pytest.mark.parametrize("how", ["argument", "dash", "pipe"])
def test_query_from_argument_or_stdin_with_locators(env: dict, how: str) -> None:
    q = "KV cache memory context length"
    args = {"argument": ("search", q), "dash": ("search", "-"), "pipe": ("search",)}[how]
    r = rag(*args, "--json", "-k", "10", stdin=None if how == "argument" else q, env=env)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert rows
    for h in rows:
        want = f"{h['source']}#page={h['page']}" if h["page"] else f"{h['source']}:{h['line_start']}"
        assert h["locator"] == want
    assert any("#page=" in h["locator"] for h in rows)  # the PDF about KV caches is paged
    human = rag(*args, "-k", "10", stdin=None if how == "argument" else q, env=env).stdout.decode()
    assert "#page=" in human


def test_text_files_have_path_colon_line_locators(env: dict) -> None:
    r = rag("search", "WordPiece prefix", "--mode", "lexical", "--json", "-k", "1", env=env)
    (h,) = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert h["source"].endswith("tokenization.md") and h["locator"] == f"{h['source']}:{h['line_start']}"
    human = rag("search", "WordPiece prefix", "--mode", "lexical", "-k", "1", env=env).stdout.decode()
    assert f"tokenization.md:{h['line_start']}" in human


@pytest.mark.parametrize("args,stdin,code", [
    (("search", "", "--json"), None, 2),
    (("search", "-", "--json"), "   ", 2),
    (("search", "x", "--json", "--index", "/nonexistent/idx"), None, 1),
])
def test_json_errors_are_a_json_object_on_stdout_and_a_line_on_stderr(env: dict, args: tuple, stdin, code: int) -> None:
    r = rag(*args, stdin=stdin, env=env)
    assert r.returncode == code
    err = json.loads(r.stdout)
    assert err["exit_code"] == code and err["error"] and err["error"] in r.stderr.decode()
