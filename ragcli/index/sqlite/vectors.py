"""Vectors on disk: append-only segments, memory-mapped, plus an approximate index at scale.

A segment is two ``.npy`` files written once: ``<name>.vec.npy`` (n, dim) float32 unit rows
and ``<name>.ids.npy`` (n,) int64 chunk ids, ascending. Appending a batch writes one new
segment, so a commit costs time in proportion to the batch, never to the index. Readers
memory-map the segments (``np.load(mmap_mode="r")``): a new process opens them in
microseconds and reads only the pages a search touches. Deleted chunks are tombstones
(ids the search skips) until their segment is merged.

Above ``ANN_MIN_ROWS`` live vectors an IVF index with 8-bit scalar-quantised codes (``ann-<name>.faiss``, FAISS's own
format, memory-mapped) covers the chunks with id below ``upto``; its candidates are
re-scored exactly from the segments, and the chunks added since (ids >= ``upto``) are
searched exactly. Its ``nprobe`` is tuned when it is built, on a sample of the index's own
vectors, to reach recall@10 >= ``TARGET_RECALL`` against exact search. The segments stay
the one full-precision copy; the 8-bit codes are 1/4 of their size. (IVF-PQ codes would be
smaller, but training 96 product quantisers took minutes on 2 cores, against seconds.)

This module knows files and numpy; which segments exist is the database's business
(``writer`` records them, ``reader`` lists them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import crash
from . import private
from .schema import SEGMENTS, fsync_dir

if TYPE_CHECKING:
    import numpy as np

ANN_MIN_ROWS = 100_000  # below this, exact search is fast enough (about 10 ms on 2 cores)
TARGET_RECALL = 0.97  # tuned for, with margin over the 0.95 promised
RERANK = 200  # approximate candidates re-scored exactly, at least
EXACT_SUBSET = 10_000  # a scoped search over at most this many vectors is exact (about as fast as IVF)


class VectorFileError(ValueError):
    """A segment file that exists but is not what the database says (truncated, garbage)."""


@dataclass(frozen=True)
class SegmentRow:
    name: str
    rows: int
    first_id: int
    last_id: int


@dataclass(frozen=True)
class AnnInfo:
    file: str  # ann-<token>.faiss in segments/
    upto: int  # covers chunk ids < upto
    rows: int  # vectors it holds
    nlist: int
    nprobe: int
    recall: float  # recall@10 against exact search, measured when built
    trained_rows: int  # rows it was trained on (retrained when the index grows 8x)


def new_name(prefix: str = "") -> str:
    """A file name no other segment has: ``prefix`` and 12 random hex digits."""
    return f"{prefix}{os.urandom(6).hex()}"


def seg_dir(index_dir: Path) -> Path:
    return index_dir / SEGMENTS


def segment_files(index_dir: Path, name: str) -> tuple[Path, Path]:
    d = seg_dir(index_dir)
    return d / f"{name}.vec.npy", d / f"{name}.ids.npy"


def segment_paths(name: str) -> list[str]:
    """A segment's files, relative to the index directory (what ``loose_files`` records).

    >>> segment_paths("b3-00ff")
    ['segments/b3-00ff.vec.npy', 'segments/b3-00ff.ids.npy']
    """
    return [f"{SEGMENTS}/{name}.vec.npy", f"{SEGMENTS}/{name}.ids.npy"]


def ann_name() -> str:
    """A new approximate-index file name (in ``segments/``)."""
    return f"ann-{new_name()}.faiss"


def _new_file(path: Path):
    """``path`` created 0600 (``O_EXCL``, no link followed), open for binary writing."""
    return os.fdopen(private.create(path), "wb")


def _write_npy(path: Path, arr) -> None:
    import numpy as np

    with _new_file(path) as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def write_segment(index_dir: Path, name: str, ids, vecs, stage: str) -> list[Path]:
    """Write a segment: temporary files, fsync, crash point ``{stage}:vectors-written`` (or
    ``merge:written``), rename, fsync the directory. Returns the final paths; the database
    does not name them yet, so until the caller commits they are orphans."""
    import numpy as np

    private.make_dir(seg_dir(index_dir))
    d = seg_dir(index_dir)
    finals = list(segment_files(index_dir, name))
    tmps = [p.with_name(p.name + ".tmp") for p in finals]
    _write_npy(tmps[0], np.ascontiguousarray(vecs, dtype=np.float32))
    _write_npy(tmps[1], np.ascontiguousarray(ids, dtype=np.int64))
    crash.point("batch:vectors-written" if stage == "batch" else "merge:written")
    for t, f in zip(tmps, finals, strict=True):
        os.replace(t, f)
    fsync_dir(d)
    if stage == "batch":
        crash.point("batch:vectors-renamed")
    return finals


def write_segment_blocks(index_dir: Path, name: str, blocks, n: int, dim: int) -> list[Path]:
    """``write_segment`` for ``n`` rows arriving as (ids, vecs) blocks: one block in memory."""
    import numpy as np

    d = seg_dir(index_dir)
    finals = list(segment_files(index_dir, name))
    tmps = [p.with_name(p.name + ".tmp") for p in finals]
    with _new_file(tmps[0]) as fv, _new_file(tmps[1]) as fi:
        np.lib.format.write_array_header_1_0(fv, {"descr": "<f4", "fortran_order": False, "shape": (n, dim)})
        np.lib.format.write_array_header_1_0(fi, {"descr": "<i8", "fortran_order": False, "shape": (n,)})
        seen = 0
        for ids, vecs in blocks:
            fv.write(np.ascontiguousarray(vecs, dtype="<f4").tobytes())
            fi.write(np.ascontiguousarray(ids, dtype="<i8").tobytes())
            seen += len(ids)
        if seen != n:
            raise ValueError(f"segment {name}: expected {n} rows, got {seen}")
        for fh in (fv, fi):
            fh.flush()
            os.fsync(fh.fileno())
    crash.point("merge:written")
    for t, f in zip(tmps, finals, strict=True):
        os.replace(t, f)
    fsync_dir(d)
    return finals


@dataclass
class Segment:
    name: str
    ids: np.ndarray  # (n,) int64 ascending, memory-mapped
    vecs: np.ndarray  # (n, dim) float32, memory-mapped


def npy_header(fd: int) -> tuple[str, tuple[int, ...], int]:
    """(dtype descr, shape, data offset) of the .npy file open as ``fd``, read without numpy.

    >>> import io, os, tempfile, numpy as np
    >>> f = tempfile.TemporaryFile(); np.save(f, np.zeros((3, 2), np.float32)); f.flush()
    >>> npy_header(f.fileno())
    ('<f4', (3, 2), 128)
    """
    import ast

    head = os.pread(fd, 4096, 0)
    if head[:6] != b"\x93NUMPY" or len(head) < 10:
        raise VectorFileError("not a .npy file")
    size_bytes = 2 if head[6] == 1 else 4
    n = int.from_bytes(head[8 : 8 + size_bytes], "little")
    start = 8 + size_bytes
    try:
        d = ast.literal_eval(head[start : start + n].decode("latin1"))
        return str(d["descr"]), tuple(int(x) for x in d["shape"]), start + n
    except (ValueError, SyntaxError, KeyError, TypeError, UnicodeDecodeError):
        raise VectorFileError("its .npy header is unreadable") from None


@dataclass
class SegmentFiles:
    """A segment's two files, held open (so a merge deleting them cannot pull them away) and
    checked by header and size, without numpy: what ``rag status`` needs."""

    row: SegmentRow
    vec_fd: int
    ids_fd: int

    @classmethod
    def open(cls, index_dir: Path, row: SegmentRow, dim: int) -> SegmentFiles:
        vec_path, ids_path = segment_files(index_dir, row.name)
        vec_fd = os.open(vec_path, os.O_RDONLY)  # FileNotFoundError: the caller retries or reports
        try:
            ids_fd = os.open(ids_path, os.O_RDONLY)
        except OSError:
            os.close(vec_fd)
            raise
        files = cls(row, vec_fd, ids_fd)
        try:
            for fd, descr, shape, name in ((vec_fd, "<f4", (row.rows, dim), vec_path.name),
                                           (ids_fd, "<i8", (row.rows,), ids_path.name)):
                got_descr, got_shape, offset = npy_header(fd)
                if (got_descr, got_shape) != (descr, shape):
                    raise VectorFileError(f"{name} holds {got_shape} {got_descr}, the database says {shape} {descr}")
                item = 4 if descr == "<f4" else 8
                if os.fstat(fd).st_size < offset + item * (shape[0] * (shape[1] if len(shape) > 1 else 1)):
                    raise VectorFileError(f"{name} is truncated")
        except VectorFileError as e:
            files.close()
            raise VectorFileError(f"segment {row.name}: {e}") from None
        return files

    def load(self, dim: int) -> Segment:
        """Memory-map both files (through the open descriptors: a deleted file stays readable)."""
        import numpy as np

        vecs = np.load(f"/proc/self/fd/{self.vec_fd}", mmap_mode="r", allow_pickle=False)
        ids = np.load(f"/proc/self/fd/{self.ids_fd}", mmap_mode="r", allow_pickle=False)
        if self.row.rows and (int(ids[0]) != self.row.first_id or int(ids[-1]) != self.row.last_id):
            raise VectorFileError(f"segment {self.row.name} holds ids {ids[0]}..{ids[-1]}, the database says "
                                  f"{self.row.first_id}..{self.row.last_id}")
        return Segment(self.row.name, ids, vecs)

    def close(self) -> None:
        for fd in (self.vec_fd, self.ids_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def open_segment(index_dir: Path, row: SegmentRow, dim: int) -> Segment:
    """Memory-map one segment; FileNotFoundError if it is gone, VectorFileError if it is bad."""
    import numpy as np

    vec_path, ids_path = segment_files(index_dir, row.name)
    try:
        vecs = np.load(vec_path, mmap_mode="r", allow_pickle=False)
        ids = np.load(ids_path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise VectorFileError(f"{vec_path.name} is unreadable ({e})") from None
    if vecs.dtype != np.float32 or vecs.shape != (row.rows, dim) or ids.shape != (row.rows,) or ids.dtype != np.int64:
        raise VectorFileError(f"segment {row.name} holds {vecs.shape} {vecs.dtype} vectors, "
                              f"the database says ({row.rows}, {dim}) float32")
    if row.rows and (int(ids[0]) != row.first_id or int(ids[-1]) != row.last_id):
        raise VectorFileError(f"segment {row.name} holds ids {ids[0]}..{ids[-1]}, the database says "
                              f"{row.first_id}..{row.last_id}")
    return Segment(row.name, ids, vecs)


def read_blocks(index_dir: Path, rows: Sequence[SegmentRow], block: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vecs) blocks read with plain reads, not a memory map: a merge or an index build
    over a million vectors keeps only one block in memory."""
    import numpy as np

    for row in rows:
        vec_path, ids_path = segment_files(index_dir, row.name)
        ids = np.load(ids_path, allow_pickle=False)
        vm = np.load(vec_path, mmap_mode="r", allow_pickle=False)
        offset, dim = vm.offset, vm.shape[1]
        del vm
        with open(vec_path, "rb") as fh:
            for lo in range(0, row.rows, block):
                n = min(block, row.rows - lo)
                fh.seek(offset + lo * dim * 4)
                buf = np.frombuffer(fh.read(n * dim * 4), dtype=np.float32).reshape(n, dim)
                yield ids[lo : lo + n], buf


@dataclass
class VectorSet:
    """The vectors of one committed state: segments, tombstones, optionally an ANN index."""

    dim: int
    segments: list[Segment]
    dead: np.ndarray  # (m,) int64 sorted: deleted chunk ids whose vectors are still on disk
    ann_info: AnnInfo | None = None
    ann_path: Path | None = None  # the IVF-SQ8 file, memory-mapped on the first search (FAISS imported then)
    _ann: object | None = None
    _keep: list = field(default_factory=list)  # FAISS selector objects kept alive

    @property
    def ann(self):  # -> faiss.Index | None
        if self._ann is None and self.ann_path is not None:
            import faiss

            faiss.omp_set_num_threads(1)  # one query at a time: threads cost more than they save
            self._ann = faiss.read_index(str(self.ann_path), faiss.IO_FLAG_MMAP)
            if self._ann.ntotal != self.ann_info.rows or self._ann.d != self.dim:
                raise VectorFileError(f"{self.ann_path.name} holds {self._ann.ntotal} vectors of dimension "
                                      f"{self._ann.d}, the database says {self.ann_info.rows} of {self.dim}")
        return self._ann

    @property
    def rows(self) -> int:
        return sum(len(s.ids) for s in self.segments)

    @property
    def live(self) -> int:
        """Vectors of existing chunks: rows minus the tombstoned ones still on disk."""
        return self.rows - sum(len(d) for s in self.segments if (d := self._dead_rows(s)) is not None)

    def _dead_rows(self, seg: Segment):
        import numpy as np

        if not len(self.dead) or not len(seg.ids):
            return None
        pos = np.searchsorted(seg.ids, self.dead)  # where each dead id would sit in this segment
        inside = pos < len(seg.ids)
        pos, dead = pos[inside], self.dead[inside]
        pos = pos[np.asarray(seg.ids[pos]) == dead]
        return pos if len(pos) else None

    def _exact(self, q, k: int, min_id: int = 0) -> list[tuple[int, float]]:
        import numpy as np

        best_ids, best_scores = [], []
        for seg in self.segments:
            if not len(seg.ids) or int(seg.ids[-1]) < min_id:
                continue
            lo = int(np.searchsorted(seg.ids, min_id)) if min_id else 0
            scores = np.asarray(seg.vecs[lo:] @ q, dtype=np.float32)
            dead = self._dead_rows(seg)
            if dead is not None:
                dead = dead[dead >= lo] - lo
                scores[dead] = -np.inf
            take = min(k, len(scores))
            top = np.argpartition(-scores, take - 1)[:take]
            best_ids.append(np.asarray(seg.ids[lo:][top]))
            best_scores.append(scores[top])
        if not best_ids:
            return []
        ids, scores = np.concatenate(best_ids), np.concatenate(best_scores)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(ids[i]), float(scores[i])) for i in order if np.isfinite(scores[i])]

    def _exact_within(self, q, k: int, allowed) -> list[tuple[int, float]]:
        """``_exact`` over the chunk ids ``allowed`` only ((n,) int64 ascending)."""
        import numpy as np

        best_ids, best_scores = [], []
        for seg in self.segments:
            if not len(seg.ids):
                continue
            lo = int(np.searchsorted(allowed, int(seg.ids[0]), side="left"))
            hi = int(np.searchsorted(allowed, int(seg.ids[-1]), side="right"))
            want = allowed[lo:hi]
            if not len(want):
                continue
            rows = np.searchsorted(seg.ids, want)
            rows = rows[np.asarray(seg.ids[rows]) == want]  # ids this segment really holds
            dead = self._dead_rows(seg)
            if dead is not None:
                rows = np.setdiff1d(rows, dead, assume_unique=True)
            if not len(rows):
                continue
            # ascending rows: the map read in order. einsum, not BLAS: OpenBLAS's threads made this
            # matrix-vector product 30x slower (24 ms against 0.8 for 10,000 rows) on 2 busy cores
            scores = np.einsum("ij,j->i", seg.vecs[rows], q).astype(np.float32, copy=False)
            take = min(k, len(scores))
            top = np.argpartition(-scores, take - 1)[:take]
            best_ids.append(np.asarray(seg.ids[rows[top]]))
            best_scores.append(scores[top])
        if not best_ids:
            return []
        ids, scores = np.concatenate(best_ids), np.concatenate(best_scores)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(ids[i]), float(scores[i])) for i in order]

    def search(self, query, k: int, exact: bool = False, nprobe: int | None = None,
               allowed=None) -> list[tuple[int, float]]:
        """The ``k`` best (chunk id, cosine) for a unit query vector, best first; ``allowed``:
        only these chunk ids ((n,) int64 ascending), chosen before ranking, never after. Up to
        ``EXACT_SUBSET`` of them are searched exactly; more, through the approximate index
        with a bitmap of them (FAISS skips the others inside its lists) and ``nprobe`` raised
        as they thin those lists out."""
        import numpy as np

        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(-1))
        if k <= 0 or (allowed is not None and not len(allowed)):
            return []
        if allowed is not None and (self.ann_info is None or exact or len(allowed) <= EXACT_SUBSET):
            return self._exact_within(q, k, np.asarray(allowed, dtype=np.int64))
        if self.ann_info is None or exact:
            return self._exact(q, k)
        import faiss

        info = self.ann_info
        probe = nprobe or info.nprobe
        if allowed is None:
            tail = self._exact(q, k, min_id=info.upto)  # added since the ANN index was built
            if len(self.dead):
                batch = faiss.IDSelectorBatch(self.dead)
                sel = faiss.IDSelectorNot(batch)
                self._keep[:] = [batch, sel]
            else:
                sel = None
        else:
            allowed = np.asarray(allowed, dtype=np.int64)
            tail = self._exact_within(q, k, allowed[allowed >= info.upto])
            sel = self._bitmap(allowed[allowed < info.upto])
            share = max(1e-6, np.count_nonzero(allowed < info.upto) / max(1, info.rows))
            # lists thinned to ``share``: probe more of them. Half as many allowed vectors as an unscoped
            # search sees kept recall@10 at 0.978 for a 10% scope of 1M (all of them: 0.995, 2.5x the time)
            probe = min(info.nlist, max(probe, int(np.ceil(probe / (2 * share)))))
        params = faiss.SearchParametersIVF(nprobe=probe)
        if sel is not None:
            params.sel = sel
        n_cand = max(RERANK, 10 * k)
        _, cand = self.ann.search(q.reshape(1, -1), n_cand, params=params)
        cand = cand[0][cand[0] >= 0]
        out = list(zip(cand.tolist(), (self.get(cand) @ q).tolist(), strict=True)) if len(cand) else []
        out += tail
        out.sort(key=lambda t: -t[1])
        return out[:k]

    def _bitmap(self, ids):
        """A FAISS selector of ``ids`` minus the tombstones: one bit per chunk id (1M ids: 125 KB)."""
        import faiss
        import numpy as np

        n = int(ids[-1]) + 1 if len(ids) else 1
        mask = np.zeros(n, dtype=bool)
        mask[ids] = True
        if len(self.dead):
            mask[self.dead[self.dead < n]] = False
        bits = np.packbits(mask, bitorder="little")  # FAISS reads bit (id & 7) of byte id >> 3
        sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        self._keep[:] = [bits, sel]
        return sel

    def get(self, ids: Sequence[int]):
        """Stored vectors by chunk id, (len(ids), dim); KeyError for an id that has none."""
        import numpy as np

        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        if not len(ids):
            return out
        firsts = np.array([int(s.ids[0]) if len(s.ids) else 2**62 for s in self.segments], dtype=np.int64)
        which = np.searchsorted(firsts, ids, side="right") - 1  # segment of each id
        for s_no in np.unique(which):
            sel = np.nonzero(which == s_no)[0]
            seg = self.segments[int(s_no)] if s_no >= 0 else None
            rows = np.searchsorted(seg.ids, ids[sel]) if seg is not None else np.full(len(sel), -1)
            bad = (rows < 0) | (rows >= (len(seg.ids) if seg is not None else 0))
            if not bad.any():
                bad = np.asarray(seg.ids[rows]) != ids[sel]
            if bad.any():
                raise KeyError(int(ids[sel][np.nonzero(bad)[0][0]]))
            order = np.argsort(rows, kind="stable")  # ascending rows read the memory map in order
            out[sel[order]] = seg.vecs[rows[order]]
        return out

    def describe(self) -> dict:
        d: dict = {"segments": len(self.segments), "vectors": self.live, "tombstones": len(self.dead)}
        if self.ann_info is None:
            d["search"] = "exact"
        else:
            a = self.ann_info
            d.update(search="approximate", ann=f"IVF{a.nlist},SQ8", ann_vectors=a.rows, nprobe=a.nprobe,
                     ann_recall_at_10=round(a.recall, 4), exact_vectors=self.live - a.rows)
        return d


# -- the approximate index ------------------------------------------------------------------------


def build_ann(index_dir: Path, rows: Sequence[SegmentRow], dim: int, dead, n_live: int,
              previous: tuple[object, AnnInfo] | None, vs: VectorSet, name: str) -> tuple[Path, AnnInfo]:
    """Write an IVF-SQ8 index over every live vector to ``segments/name``; reuse ``previous``'s
    training when the index has grown less than 8x since. Returns the file (not yet named by
    the database)."""
    import faiss
    import numpy as np

    upto = max(r.last_id for r in rows) + 1
    dead = np.asarray(dead, dtype=np.int64)
    import os as _os

    faiss.omp_set_num_threads(max(1, _os.cpu_count() or 1))  # building: all cores
    if previous is not None and n_live < 8 * previous[1].trained_rows:
        index = faiss.clone_index(previous[0])  # a memory-mapped index cannot grow: copy it
        trained, nlist, start = previous[1].trained_rows, previous[1].nlist, previous[1].upto
    else:
        nlist = int(min(4096, max(64, round(np.sqrt(n_live)))))
        index = faiss.index_factory(dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        want = min(n_live, 40 * nlist)
        sample = []
        for _ids, block in read_blocks(index_dir, rows):
            take = rng.random(len(block)) < want / max(n_live, 1)
            sample.append(np.array(block[take]))
        index.train(np.concatenate(sample))
        trained, start = n_live, 0
    for ids, block in read_blocks(index_dir, rows):
        keep = ids >= start
        if len(dead):
            keep &= ~np.isin(ids, dead)
        if keep.any():
            index.add_with_ids(np.ascontiguousarray(block[keep]), np.ascontiguousarray(ids[keep]))
    nprobe, recall = _tune(index, vs, upto, rows, index_dir)
    d = seg_dir(index_dir)
    private.make_dir(d)
    tmp = d / (name + ".tmp")
    os.close(private.create(tmp))  # 0600, no link: FAISS then writes into this file
    faiss.write_index(index, str(tmp))
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    crash.point("merge:written")
    os.replace(tmp, d / name)
    fsync_dir(d)
    return d / name, AnnInfo(name, upto, int(index.ntotal), nlist, nprobe, recall, trained)


def _tune(index, vs: VectorSet, upto: int, rows: Sequence[SegmentRow] = (), index_dir: Path | None = None,
          n_queries: int = 200) -> tuple[int, float]:
    """Smallest nprobe whose recall@10 (ANN + exact re-scoring vs exact) reaches the target,
    on ``n_queries`` of the index's own vectors (each query's own id left out). The exact
    answers come from one blockwise pass over the segments (plain reads, bounded memory)."""
    import numpy as np

    rng = np.random.default_rng(1)
    live = [s for s in vs.segments if len(s.ids)]
    dead = set(vs.dead.tolist())
    picks: list[int] = []
    for _ in range(n_queries * 2):
        seg = live[int(rng.integers(len(live)))]
        cid = int(seg.ids[int(rng.integers(len(seg.ids)))])
        if cid not in dead and cid not in picks:
            picks.append(cid)
        if len(picks) == n_queries:
            break
    queries = vs.get(picks)
    best_s = np.full((len(picks), 11), -np.inf, dtype=np.float32)
    best_i = np.full((len(picks), 11), -1, dtype=np.int64)
    blocks = read_blocks(index_dir, rows) if index_dir is not None else (
        (np.asarray(s.ids), np.asarray(s.vecs)) for s in vs.segments)
    for ids, block in blocks:
        keep = ~np.isin(ids, vs.dead) if len(vs.dead) else slice(None)
        ids, block = ids[keep], block[keep]
        if not len(ids):
            continue
        scores = queries @ block.T  # (n_queries, block)
        s_all = np.concatenate([best_s, scores], axis=1)
        i_all = np.concatenate([best_i, np.broadcast_to(ids, scores.shape)], axis=1)
        top = np.argpartition(-s_all, 10, axis=1)[:, :11]
        best_s, best_i = np.take_along_axis(s_all, top, 1), np.take_along_axis(i_all, top, 1)
    best_i = np.take_along_axis(best_i, np.argsort(-best_s, axis=1), 1)  # best first
    truth = [[int(i) for i in row if i != cid and i >= 0][:10] for row, cid in zip(best_i, picks, strict=True)]
    trial = VectorSet(vs.dim, vs.segments, vs.dead, AnnInfo("", upto, int(index.ntotal), 0, 1, 0.0, 0), _ann=index)
    nlist = index.nlist
    best = (nlist, 1.0)
    for nprobe in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
        if nprobe > nlist:
            break
        hits = 0
        for q, cid, t in zip(queries, picks, truth, strict=True):
            got = [i for i, _ in trial.search(q, 11, nprobe=nprobe) if i != cid][:10]
            hits += len(set(got) & set(t))
        recall = hits / max(1, sum(len(t) for t in truth))
        if recall >= TARGET_RECALL:
            return nprobe, recall
        best = (nprobe, recall)
    return best
