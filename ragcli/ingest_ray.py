"""``rag ingest --ray``: read, chunk and embed the plan's files on a Ray cluster.

One executor of ``ingest``'s loop (see ``parsing.Executor``). The driver, the ``rag ingest``
process, keeps everything that touches the index: the plan, the writer lock, the batches
and every commit, so an ingest over Ray is incremental, atomic per batch and resumable
exactly as a local one, and reports the same. What moves to the cluster is the work per
file: a pool of actors, each holding its own embedder (loaded once, on its first file),
takes a file's bytes and returns its documents, chunks and vectors.

- **Bytes, not paths.** The driver reads each file (the plan hashed it there already) and
  ships the bytes with the size and mtime it saw: workers need no access to the files, and
  they parse exactly the bytes that were planned. The model is not shipped: every worker
  node needs the embedder's files at the same path (the same ``RAG_CACHE`` filled by
  ``rag models --fetch``, or a shared directory); a worker without them says so.
- **Bounded.** At most ``PER_ACTOR`` files are queued on an actor and ``WINDOW_PER_ACTOR``
  per actor are in flight in all (sent, or done and not yet committed); results are taken
  in plan order. Memory stays flat whatever the corpus size.
- **Devices.** One actor per CPU of the cluster, each asking for one CPU (its ONNX Runtime
  or torch then uses one thread); an embedder whose ``device`` is not "cpu" gets one actor
  per GPU instead, each asking for a GPU (``num_gpus``): Ray shows an actor only its own
  GPU, so it runs on "cuda". ``workers`` sets the number of actors; more actors than CPUs
  (GPUs) share them.

Ray is imported by ``executor`` only, which only ``--ray`` calls: no other command imports it.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import time
from collections import deque
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from .chunking import ChunkParams
from .errors import ClusterError, ModelUnavailableError, RagError, SourceError, UsageError
from .models.embedders import Embedder, embed_batched
from .parsing import Executor, Parsed, ReadLimits, Todo, parse_file

LOCAL = "local"  # --ray without an address: a cluster started for this run, stopped after it
PER_ACTOR = 2  # files queued on one actor: one it works on, one waiting
WINDOW_PER_ACTOR = 4  # files in flight per actor, done-but-not-yet-committed ones included
CONNECT_TIMEOUT_S = 5.0  # to find out that nothing listens at HOST:PORT (Ray itself retries for minutes)
INSTALL = "pip install 'ragcli[ray]'"

_ADDRESS = re.compile(r"^(auto|local|(ray://)?[\w.\-]+:\d+)$")


def check_address(address: str) -> str:
    """The value of ``--ray``, if it names a Ray cluster; else a usage error that says why.

    >>> check_address("10.0.0.5:6379"), check_address("ray://head:10001"), check_address("auto")
    ('10.0.0.5:6379', 'ray://head:10001', 'auto')
    """
    if _ADDRESS.match(address) and not Path(address).exists():
        return address
    raise UsageError(f"--ray {address!r}: not a Ray cluster address (HOST:PORT, ray://HOST:PORT or auto). "
                     f"A path goes before --ray: rag ingest {address} --ray [ADDRESS]")


def executor(address: str | None = None, workers: int | None = None) -> Executor:
    """An executor on the Ray cluster at ``address`` (None: a local one, started when there
    is a file to read and stopped after). Fails now if Ray is not installed."""
    address = check_address(address or LOCAL)
    try:
        import ray
    except ImportError:
        raise ClusterError(f"rag ingest --ray needs Ray, which is not installed here: {INSTALL}") from None
    return partial(_run, ray, address, workers)


def actor_plan(device: str, resources: Mapping[str, float], n_files: int,
               workers: int | None = None) -> tuple[int, dict[str, float]]:
    """How many actors to start, and what each asks Ray for, on a cluster with ``resources``.

    >>> actor_plan("cpu", {"CPU": 8.0}, 100)
    (8, {'num_cpus': 1.0})
    >>> actor_plan("cpu", {"CPU": 2.0}, 100, workers=3)  # shares, rounded down: all three fit
    (3, {'num_cpus': 0.6666})
    >>> actor_plan("cuda", {"CPU": 16.0, "GPU": 2.0}, 100)
    (2, {'num_cpus': 1.0, 'num_gpus': 1.0})
    >>> actor_plan("cuda:1", {"CPU": 16.0, "GPU": 2.0}, 100, workers=8)
    (8, {'num_cpus': 1.0, 'num_gpus': 0.25})
    """
    cpus, gpus = float(resources.get("CPU", 0.0)), float(resources.get("GPU", 0.0))
    on_gpu = device != "cpu"
    if cpus <= 0:
        raise ClusterError("the Ray cluster has no CPUs to run on; add a worker node (ray start --address HEAD:PORT)")
    if on_gpu and gpus <= 0:
        raise ClusterError(f"the embedder runs on device = \"{device}\" (models.toml) but the Ray cluster has no "
                           "GPUs: start GPU nodes (ray start --num-gpus N ...), or set device = \"cpu\"")
    n = max(1, min(workers or int(gpus if on_gpu else cpus) or 1, n_files))
    options = {"num_cpus": _share(cpus, n)}
    if on_gpu:
        options["num_gpus"] = _share(gpus, n)
    return n, options


def _share(total: float, n: int) -> float:
    """One unit each, or an equal share rounded down to Ray's 1/10,000 (so ``n`` of them fit)."""
    return min(1.0, math.floor(total / n * 10_000) / 10_000)


class _Worker:
    """A Ray actor: chunks and embeds the files whose bytes it is sent, with its own embedder
    (loaded on the first file). ``model_files``: the embedder's files, needed on its node too."""

    def __init__(self, embedder: Embedder, params: ChunkParams, threads: int, model_files: tuple[str, ...]) -> None:
        if embedder.device != "cpu":
            embedder.device = "cuda"  # Ray shows the actor its own GPU only (CUDA_VISIBLE_DEVICES)
        embedder.n_threads = threads  # its share of the node, not all the node's cores
        self.embedder, self.params, self.model_files = embedder, params, model_files
        self.checked = False

    def run(self, todo: Todo, data: bytes, stat: tuple[int, float], limits: ReadLimits) -> Parsed:
        if not self.checked:
            _check_model_files(self.embedder, self.model_files)
            self.checked = True
        parsed = parse_file(todo, data, self.embedder.count_tokens, self.params, stat, limits)
        texts = [c.embed for _, cs in parsed.docs for c in cs]
        if not texts:
            return parsed
        t0, load_before = time.perf_counter(), self.embedder.load_s
        vectors = embed_batched(self.embedder, texts)  # (n_chunks, dim) float32
        load = self.embedder.load_s - load_before
        return replace(parsed, vectors=vectors, embed_s=time.perf_counter() - t0 - load, load_s=load)


def model_files(embedder: Embedder) -> tuple[str, ...]:
    """The files (or folder) an embedder loads that the driver has; none for the hashing double."""
    return tuple(str(p) for p in embedder.files() if Path(p).exists())


def _check_model_files(embedder: Embedder, paths: Sequence[str]) -> None:
    """The embedder's files must be on this node at the driver's paths (they are not shipped)."""
    for path in paths:
        if not Path(path).exists():
            raise ModelUnavailableError(
                f"the Ray worker on {socket.gethostname()} has no {path}: every worker node needs the "
                f"embedder '{embedder.name}' at the same path. There, run `rag models --fetch` with the same "
                "RAG_CACHE, or share that directory between the nodes")


def _run(ray: Any, address: str, workers: int | None, todos: Sequence[Todo], embedder: Embedder,
         params: ChunkParams, limits: ReadLimits, timings: dict[str, float]) -> Generator[Parsed, None, None]:
    timings["workers"] = 0.0
    if not todos:
        return  # nothing to read: no cluster to start
    t0 = time.perf_counter()
    started = _connect(ray, address)
    actors: list = []
    try:
        n, options = actor_plan(embedder.device, ray.cluster_resources(), len(todos), workers)
        worker = ray.remote(_Worker).options(**options)
        threads = max(1, int(options["num_cpus"]))
        files = model_files(embedder)
        actors = [worker.remote(embedder, params, threads, files) for _ in range(n)]
        timings.update(cluster_start_s=time.perf_counter() - t0, workers=float(n))
        yield from _in_order(ray, actors, todos, limits)
    finally:
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()


def _connect(ray: Any, address: str) -> bool:
    """Join the cluster (or start the local one); False if this process was already in one
    (the Python API's caller, the tests): that session is used as it is and left running."""
    if ray.is_initialized():
        return False
    if address not in (LOCAL, "auto"):
        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as e:
            raise ClusterError(f"no Ray cluster answers at {address} ({e.strerror or e}): start its head node "
                               "(ray start --head) or check the address; --ray with no address starts a local one") from None
    kw: dict[str, Any] = {"include_dashboard": False} if address == LOCAL else {}
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, **kw)
    except Exception as e:  # Ray raises ConnectionError, RuntimeError, AuthenticationError, ...
        raise ClusterError(f"cannot join the Ray cluster at {address}: {type(e).__name__}: {e}") from None
    return True


def _in_order(ray: Any, actors: list, todos: Sequence[Todo], limits: ReadLimits) -> Iterator[Parsed]:
    """Send each file to the least busy actor, within the bounds; yield the results in plan order."""
    window: deque[tuple[Todo, Any]] = deque()  # plan order: an ObjectRef, or a Parsed the driver could not read
    running: dict[Any, int] = {}  # ObjectRef -> its actor, until it is done
    queued = [0] * len(actors)
    limit = WINDOW_PER_ACTOR * len(actors)
    files = iter(todos)
    todo = next(files, None)
    while todo is not None or window:
        while todo is not None and len(window) < limit and min(queued) < PER_ACTOR:
            window.append((todo, _send(actors, queued, running, todo, limits)))
            todo = next(files, None)
        while window and (isinstance(window[0][1], Parsed) or window[0][1] not in running):
            yield _result(ray, *window.popleft())
        if window:  # the oldest file is still being worked on: wait for any file to finish
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                queued[running.pop(ref)] -= 1


def _send(actors: list, queued: list[int], running: dict, todo: Todo, limits: ReadLimits) -> Any:
    path = Path(todo.path)
    try:
        data = todo.read(limits.max_file_size)
        st = path.stat()
    except SourceError as e:
        return Parsed(todo, failed=((e.path, e.reason),))
    except OSError as e:
        return Parsed(todo, failed=((todo.path, e.strerror or str(e)),))
    i = queued.index(min(queued))
    ref = actors[i].run.remote(todo, data, (st.st_size, st.st_mtime), limits)
    queued[i] += 1
    running[ref] = i
    return ref


def _result(ray: Any, todo: Todo, ref: Any) -> Parsed:
    if isinstance(ref, Parsed):
        return ref
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, RagError):
            raise e.cause from None
        raise ClusterError(f"a Ray worker failed on {todo.path}: {type(e.cause).__name__}: {e.cause}") from None
    except ray.exceptions.RayError as e:  # a worker or its node died, an object was lost
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ClusterError(f"the Ray cluster lost the work on {todo.path} ({first}); the batches committed so far "
                           "are kept: run the same command again to carry on") from None
