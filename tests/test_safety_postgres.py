"""Do no harm on a PostgreSQL server (issue 24): ragcli drops nothing it did not create, never
prints a password, and says in one line what happened when the server goes away.

Real server (``conftest.pg_server_url``), a fresh database per test (with the ``vector``
extension in ``public``, as a DBA would install it), the real ``rag`` command, the hashing
embedder. The server trusts local connections, so a password in the URL is accepted and
ignored: what these tests check is only that it is never shown.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import SAMPLE, rag

psycopg = pytest.importorskip("psycopg")
SECRET = "Sekr3t-9f1c"  # a password no message may contain
_dbs = itertools.count(1)


@pytest.fixture
def db(pg_server_url: str) -> str:
    """A database of its own on the session's server, with pgvector installed in ``public``."""
    name = f"safe{os.getpid()}_{next(_dbs)}"
    with psycopg.connect(pg_server_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    url = pg_server_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE EXTENSION vector")
    yield url
    with psycopg.connect(pg_server_url, autocommit=True) as con:
        con.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    shutil.copytree(SAMPLE, d)
    return d


@pytest.fixture
def env(hash_models: Path) -> dict:
    return {"RAG_MODELS": str(hash_models)}


def sql(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as con:
        cur = con.execute(query)
        return cur.fetchall() if cur.description else []


def schemas(url: str) -> set[str]:
    return {n for (n,) in sql(url, "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                                   "AND nspname <> 'information_schema'")}


def tables(url: str, schema: str) -> set[str]:
    return {n for (n,) in sql(url, f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}'")}


def extension(url: str) -> list[tuple]:
    return sql(url, "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                    "WHERE e.extname = 'vector'")


def top_source(env: dict, index: str, query: str) -> str:
    r = rag("search", query, "-k", "1", "--json", "--index", index, env=env)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout.decode().splitlines()[0])["source"]


# -- case 2: a rebuild drops only what ragcli created -------------------------------------------


def test_a_schema_holding_user_tables_is_refused_and_nothing_is_touched(db: str, env: dict, docs: Path) -> None:
    sql(db, "CREATE TABLE public.customers (id int PRIMARY KEY, name text); "
            "INSERT INTO public.customers VALUES (1, 'Ada'), (2, 'Grace')")
    before = (schemas(db), tables(db, "public"))
    for extra in ((), ("--rebuild",)):
        r = rag("ingest", str(docs), *extra, "--index", db + "?schema=public", env=env)
        err = r.stderr.decode()
        assert r.returncode == 2, err
        assert len(err.strip().splitlines()) == 1 and "'public'" in err and "customers" in err, err
        assert "?schema=NEWNAME" in err and "Nothing was changed" in err, err
        assert (schemas(db), tables(db, "public")) == before
    r = rag("search", "anything", "--index", db + "?schema=public", env=env)  # not an index: said so
    assert r.returncode == 2 and "customers" in r.stderr.decode()
    assert sql(db, "SELECT name FROM public.customers ORDER BY id") == [("Ada",), ("Grace",)]
    assert extension(db) == [("public",)]


def test_a_rebuild_leaves_the_extension_other_schemas_and_a_second_index_working(db: str, env: dict,
                                                                                 docs: Path, tmp_path: Path) -> None:
    """Index A in ``public`` (the extension lives there too), index B in its own schema, and a
    user's table with a vector column elsewhere: rebuilding A keeps all of it."""
    sql(db, "CREATE SCHEMA crm; CREATE TABLE crm.items (id int, v vector(3)); "
            "INSERT INTO crm.items VALUES (1, '[1,2,3]')")
    other = tmp_path / "other"
    other.mkdir()
    (other / "alpacas.md").write_text("# Alpacas\n\nA llama named Nube guards the alpacas at night.\n")
    a, b = db + "?schema=public", db + "?schema=b"
    assert rag("ingest", str(docs), "--index", a, env=env).returncode == 0
    assert rag("ingest", str(other), "--index", b, env=env).returncode == 0
    r = rag("ingest", str(docs), "--rebuild", "--json", "--index", a, env=env)
    assert r.returncode == 0, r.stderr.decode()
    assert len(json.loads(r.stdout)["added"]) == 9
    assert top_source(env, a, "GBNF grammar constrained decoding").endswith("grammars_and_constrained_decoding.md")
    assert top_source(env, b, "llama guards alpacas").endswith("alpacas.md")
    assert extension(db) == [("public",)]
    assert sql(db, "SELECT id, v::text FROM crm.items") == [(1, "[1,2,3]")]
    assert schemas(db) == {"public", "b", "crm"}  # no staging or old schema left behind


def test_leftover_old_and_staging_schemas_that_are_not_ragclis_are_never_dropped(db: str, env: dict,
                                                                                docs: Path) -> None:
    sql(db, "CREATE SCHEMA idx__old; CREATE TABLE idx__old.keep (x int); INSERT INTO idx__old.keep VALUES (1); "
            "CREATE SCHEMA idx__staging; CREATE TABLE idx__staging.keep (x int); "
            "INSERT INTO idx__staging.keep VALUES (2)")
    index = db + "?schema=idx"
    assert rag("ingest", str(docs), "--index", index, env=env).returncode == 0
    r = rag("ingest", str(docs), "--rebuild", "--index", index, env=env)
    err = r.stderr.decode()
    assert r.returncode == 2 and "'idx__staging'" in err and "keep" in err, err
    assert sql(db, "SELECT x FROM idx__old.keep") == [(1,)] and sql(db, "SELECT x FROM idx__staging.keep") == [(2,)]
    assert rag("status", "--index", index, env=env).returncode == 0  # the index itself is as it was


def test_an_earlier_ragclis_leftover_old_schema_is_dropped_and_its_indexes_keep_working(db: str, env: dict,
                                                                                       docs: Path) -> None:
    """What ragcli before the marker left: an index schema of exactly its tables (no marker), and
    an ``__old`` schema its rebuild could not drop in time. The index is read, written, marked
    and rebuilt; the leftover goes, being ragcli's tables and nothing else."""
    index, leftover = db + "?schema=idx", db + "?schema=spare"
    for url in (index, leftover):
        assert rag("ingest", str(docs), "--index", url, env=env).returncode == 0
        sql(db, f"DROP TABLE {url.rsplit('=', 1)[1]}.ragcli_index")  # as an earlier ragcli left it
    sql(db, "ALTER SCHEMA spare RENAME TO idx__old")
    assert top_source(env, index, "GBNF grammar").endswith("grammars_and_constrained_decoding.md")
    r = rag("ingest", str(docs), "--json", "--index", index, env=env)
    assert r.returncode == 0 and len(json.loads(r.stdout)["unchanged"]) == 9, r.stderr.decode()
    assert "idx__old" not in schemas(db) and any("idx__old" in n for n in json.loads(r.stdout)["notes"])
    assert sql(db, "SELECT role FROM idx.ragcli_index") == [("index",)]
    assert rag("ingest", str(docs), "--rebuild", "--index", index, env=env).returncode == 0
    assert top_source(env, index, "GBNF grammar").endswith("grammars_and_constrained_decoding.md")


def test_an_empty_schema_a_dba_made_is_adopted_and_never_dropped(db: str, env: dict, docs: Path) -> None:
    """A user who may create tables only in schemas a DBA made for it (no CREATE on the database)."""
    role = f"app{os.getpid()}"
    sql(db, f"DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; CREATE SCHEMA shared; "
            f"GRANT USAGE, CREATE ON SCHEMA shared TO {role}")
    index = db.replace("://postgres@", f"://{role}@") + "?schema=shared"
    try:
        r = rag("ingest", str(docs), "--json", "--index", index, env=env)
        assert r.returncode == 0 and len(json.loads(r.stdout)["added"]) == 9, r.stderr.decode()
        r = rag("ingest", str(docs), "--rebuild", "--index", index, env=env)  # needs shared__staging
        err = r.stderr.decode()
        assert r.returncode == 1 and len(err.strip().splitlines()) == 1, err
        assert f'CREATE SCHEMA "shared__staging" AUTHORIZATION "{role}"' in err, err
        sql(db, f"CREATE SCHEMA shared__staging; GRANT USAGE, CREATE ON SCHEMA shared__staging TO {role}")
        r = rag("ingest", str(docs), "--rebuild", "--json", "--index", index, env=env)
        assert r.returncode == 0 and len(json.loads(r.stdout)["added"]) == 9, r.stderr.decode()
        assert top_source(env, index, "GBNF grammar").endswith("grammars_and_constrained_decoding.md")
        owners = dict(sql(db, "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace "
                              "WHERE nspname LIKE 'shared%'"))
        assert owners == {"shared": "postgres", "shared__staging": "postgres"}  # both still the DBA's
    finally:
        sql(db, f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_a_view_of_the_users_on_index_tables_stops_the_rebuild_not_the_view(db: str, env: dict,
                                                                            docs: Path) -> None:
    index = db + "?schema=idx"
    assert rag("ingest", str(docs), "--index", index, env=env).returncode == 0
    sql(db, "CREATE SCHEMA reports; CREATE VIEW reports.n_docs AS SELECT count(*) AS n FROM idx.documents")
    r = rag("ingest", str(docs), "--rebuild", "--index", index, env=env)
    err = r.stderr.decode()
    assert r.returncode == 1 and len(err.strip().splitlines()) == 1 and "n_docs" in err, err
    assert sql(db, "SELECT n FROM reports.n_docs") == [(9,)]
    assert top_source(env, index, "GBNF grammar").endswith("grammars_and_constrained_decoding.md")


# -- case 6: no password is ever shown ---------------------------------------------------------

FORMS = {"user part": "postgresql://postgres:{pw}@{rest}", "query": "postgresql://postgres@{rest}&password={pw}"}


def with_password(db: str, form: str, schema: str) -> str:
    rest = db.split("://postgres@", 1)[1] + f"?schema={schema}"
    return FORMS[form].format(pw=SECRET, rest=rest)


def no_secret(r: subprocess.CompletedProcess) -> str:
    out = r.stdout.decode() + r.stderr.decode()
    assert SECRET not in out, out
    return out


@pytest.mark.parametrize("form", sorted(FORMS))
def test_status_and_the_ingest_report_hide_the_password(db: str, env: dict, docs: Path, form: str) -> None:
    index = with_password(db, form, "idx")
    r = rag("ingest", str(docs), "--json", "--index", index, env=env)
    assert r.returncode == 0, r.stderr.decode()
    no_secret(r)
    shown = json.loads(r.stdout)["index"]
    assert "***" in shown and shown == index.replace(SECRET, "***")
    r = rag("ingest", str(docs), "--index", index, env=env)
    assert r.returncode == 0 and "***" in no_secret(r)
    r = rag("status", "--json", "--index", index, env=env)
    assert r.returncode == 0 and json.loads(no_secret(r).strip())["index"] == shown
    r = rag("status", "--index", index, env=env)
    assert r.returncode == 0 and f"index:       {shown}" in no_secret(r)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_an_embedder_mismatch_hides_the_password_and_its_hint_runs_as_given(db: str, env: dict, docs: Path,
                                                                           form: str) -> None:
    index = with_password(db, form, "idx")
    assert rag("ingest", str(docs), "--index", index, env=env).returncode == 0
    for r in (rag("ingest", str(docs), "--embedder", "hash-slow", "--index", index, env=env),
              rag("search", "GBNF", "--index", index, env={**env, "RAG_EMBEDDER": "hash-slow"})):
        err = no_secret(r)
        assert r.returncode == 1 and "***" in err and "(with the password in PGPASSWORD or ~/.pgpass)" in err, err
    command = err.split("rebuild it: ", 1)[1].split(" (with the password")[0]  # what a user copies
    words = shlex.split(command)
    assert words[0] == "RAG_EMBEDDER=hash-slow" and words[1] == "rag" and "***" not in command, command
    r = subprocess.run([sys.executable, "-m", "ragcli", *words[2:], "--json"], capture_output=True,
                       env={**os.environ, **env, "RAG_EMBEDDER": "hash-slow"})  # PGPASSWORD: not needed here
    assert r.returncode == 0 and len(json.loads(r.stdout)["added"]) == 9, r.stderr.decode()


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_connection_error_hides_the_password(db: str, env: dict, form: str) -> None:
    index = with_password(db, form, "idx").replace(db.split("@", 1)[1].split("/")[0], "127.0.0.1:1")
    for command in (("status",), ("search", "x"), ("ingest", str(SAMPLE))):
        r = rag(*command, "--index", index, env=env)
        err = no_secret(r)
        assert r.returncode == 1 and "cannot connect" in err and "***" in err, err


@pytest.mark.parametrize("index", [
    "postgresql://me:pa%zz{pw}@127.0.0.1:1/db",
    "postgresql://me@127.0.0.1:1/db?password=pa%zz{pw}",
    "postgresql://me@127.0.0.1:1/db?sslpassword={pw}%g",
    "postgresql://me:{pw}/x@127.0.0.1:1/db",  # an unescaped '/' in the password: cannot be parsed
])
def test_a_malformed_url_is_a_usage_error_that_hides_the_password(env: dict, index: str) -> None:
    for command in (("status",), ("ingest", str(SAMPLE))):
        r = rag(*command, "--index", index.format(pw=SECRET), env=env)
        err = no_secret(r)
        assert r.returncode == 2 and len(err.strip().splitlines()) == 1 and "internal error" not in err, err
        assert "percent-escape" in err or "cannot be parsed" in err, err


# -- clear errors ----------------------------------------------------------------------------


def test_an_unknown_url_parameter_is_a_usage_error_naming_it(db: str, env: dict) -> None:
    for command in (("status",), ("search", "x"), ("ingest", str(SAMPLE))):
        r = rag(*command, "--index", db + "?schema=idx&foo=bar", env=env)
        err = r.stderr.decode()
        assert r.returncode == 2 and "'foo'" in err and "internal error" not in err, err


def test_a_server_closing_the_connection_mid_ingest_says_so_and_the_next_run_carries_on(db: str, env: dict,
                                                                                        docs: Path,
                                                                                        tmp_path: Path) -> None:
    """The ingest's connection is terminated (pg_terminate_backend, as a DBA or a server restart
    would) while it sits inside its second batch's transaction, held there by a pause point."""
    index, go = db + "?schema=idx", tmp_path / "go"
    held = {**os.environ, **env, "RAGCLI_PAUSE_AT": "batch:vectors-written@2", "RAGCLI_PAUSE_UNTIL": str(go)}
    proc = subprocess.Popen([sys.executable, "-m", "ragcli", "ingest", str(docs), "--index", index,
                             "--batch-size", "5", "--workers", "0"], env=held,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, backend = time.monotonic() + 300, None  # a backstop only: the pause waits for us
        # Held at the pause: inside batch 2's transaction, its last statement the run's batch count,
        # with batch 1 committed (read in the statement's snapshot, taken before the activity).
        while backend is None and proc.poll() is None and time.monotonic() < deadline:
            try:
                rows = sql(db, "SELECT a.pid FROM pg_stat_activity a WHERE a.state = 'idle in transaction' "
                               f"AND a.application_name LIKE 'ragcli ingest pid {proc.pid} %' "
                               "AND a.query LIKE 'UPDATE runs SET batches%' "
                               "AND (SELECT max(batches) FROM idx.runs) >= 1")
            except psycopg.errors.UndefinedTable:
                rows = []  # no index yet
            backend = rows[0][0] if rows else time.sleep(0.1)
        assert backend is not None, proc.communicate()
        assert sql(db, f"SELECT pg_terminate_backend({backend})") == [(True,)]
    finally:
        go.touch()
    out, err = proc.communicate(timeout=300)
    text = err.decode()
    assert proc.returncode == 1 and len(text.strip().splitlines()) == 1, text
    assert "closed the connection" in text and "intact" in text and "Run the ingest again" in text, text
    assert "internal error" not in text
    r = rag("status", "--json", "--index", index, env=env)  # also checks the row counts
    assert r.returncode == 0, r.stderr.decode()
    st = json.loads(r.stdout)
    assert 1 <= st["documents"] < 9
    r = rag("ingest", str(docs), "--json", "--index", index, env=env)
    assert r.returncode == 0, r.stderr.decode()
    rep = json.loads(r.stdout)
    assert len(rep["resumed"]) == st["documents"] and len(rep["added"]) == 9 - st["documents"]


# -- a rebuild's switch-over and readers ------------------------------------------------------


def _waiting_on_lock(db: str, what: str) -> bool:
    return bool(sql(db, "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        f"AND application_name LIKE 'ragcli {what} pid {os.getpid()} %'"))


def _until(check, thread) -> None:
    deadline = time.monotonic() + 120  # a backstop only: the state is polled, not guessed
    while not check() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert check(), "never reached"


def test_the_switch_over_waits_for_a_search_in_progress_and_later_searches_read_the_new_index(db: str) -> None:
    """Reader 1 holds the old tables; the rebuild's switch waits for it (nothing dropped under
    it); reader 2, opened meanwhile, waits too and then reads the new tables, not the dropped ones."""
    import threading

    import numpy as np

    from ragcli import index

    from .test_index_store import DIM, IndexInfo, write
    from .test_index_store import docs as synthetic

    store = index.open(db + "?schema=idx")
    rng = np.random.default_rng(7)
    write(store, synthetic(rng, 0, 4))
    newer = IndexInfo("synthetic", "synthetic-32b", DIM, {"chunk_tokens": 2})
    results: dict = {}
    with store.lock():
        w = store.writer(newer, rebuild=True)
        w.begin_run(["/c"], True)
        w.commit_batch([], synthetic(rng, 100, 2, tag="new"))
        first = store.reader()
        switch = threading.Thread(target=lambda: results.update(finished=w.finish()))
        switch.start()
        _until(lambda: _waiting_on_lock(db, "ingest"), switch)

        def read() -> None:
            with store.reader() as r:
                results["second"] = (r.counts()["documents"], r.info.embedder_id, len(r.documents()))

        second = threading.Thread(target=read)
        second.start()
        _until(lambda: _waiting_on_lock(db, "search"), second)
        assert first.counts()["documents"] == 4 and len(first.documents()) == 4  # the old index, whole
        first.close()
        switch.join(120)
        second.join(120)
        w.close()
    assert "finished" in results and results["second"] == (2, "synthetic-32b", 2)
    assert schemas(db) == {"public", "idx"}


@pytest.mark.parametrize("at", ["batch:vectors-written@1", "batch:db-committed@1", "rebuild:swapped"])
def test_a_rebuild_killed_anywhere_leaves_one_whole_index_and_the_users_tables(db: str, env: dict, docs: Path,
                                                                              at: str) -> None:
    index = db + "?schema=public"
    sql(db, "CREATE SCHEMA crm; CREATE TABLE crm.items (id int, v vector(3)); INSERT INTO crm.items VALUES (1, '[1,2,3]')")
    assert rag("ingest", str(docs), "--index", index, env=env).returncode == 0
    r = rag("ingest", str(docs), "--rebuild", "--batch-size", "5", "--workers", "0", "--index", index,
            env={**env, "RAGCLI_CRASH_AT": at})
    assert r.returncode == -9, r.stderr.decode()
    st = json.loads(rag("status", "--json", "--index", index, env=env).stdout)
    assert st["documents"] == 9
    r = rag("ingest", str(docs), "--rebuild", "--json", "--index", index, env=env)
    assert r.returncode == 0, r.stderr.decode()
    rep = json.loads(r.stdout)
    assert len(rep["added"]) + len(rep["resumed"]) == 9
    if at == "batch:db-committed@1":  # the rebuild's committed batch is kept
        assert rep["notes"] == ["carrying on with an unfinished rebuild"] and rep["resumed"]
    assert top_source(env, index, "GBNF grammar").endswith("grammars_and_constrained_decoding.md")
    assert schemas(db) == {"public", "crm"} and extension(db) == [("public",)]
    assert sql(db, "SELECT v::text FROM crm.items") == [("[1,2,3]",)]


def test_a_first_rebuild_killed_before_it_finishes_leaves_no_index_and_says_so(db: str, env: dict,
                                                                              docs: Path) -> None:
    index = db + "?schema=fresh"
    r = rag("ingest", str(docs), "--rebuild", "--batch-size", "5", "--workers", "0", "--index", index,
            env={**env, "RAGCLI_CRASH_AT": "batch:db-committed@1"})
    assert r.returncode == -9
    for command in (("status",), ("search", "GBNF")):
        r = rag(*command, "--index", index, env=env)
        err = r.stderr.decode()
        assert r.returncode == 1 and "no index at" in err and "rag ingest PATH --index" in err, err
    r = rag("ingest", str(docs), "--rebuild", "--json", "--index", index, env=env)
    assert r.returncode == 0 and "carrying on with an unfinished rebuild" in json.loads(r.stdout)["notes"]
    assert json.loads(rag("status", "--json", "--index", index, env=env).stdout)["documents"] == 9
