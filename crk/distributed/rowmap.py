"""Row maps: the linear maps that move rows of arrays between ranks, and the block recording one.

Every global indexing, redistribution and neighbour shift of a distributed array is a linear map
``y = M x`` whose output rows are copies of input rows (``y[d] += x[s]`` for a list of row pairs,
trailing axes carried along). A row map knows, for this rank, which of its rows go where, so
``apply`` (forward and tangent) and ``transpose`` (adjoint) are one exchange each:

* :class:`Exchange` — distributed to distributed: point-to-point messages between the ranks
  whose rows overlap (neighbours only, for a shift);
* :class:`Gather` — distributed to replicated: an allgather of the contributing rows (a broadcast
  from the owner when a single row is wanted); its transpose takes this rank's part of a
  replicated array and sends nothing;
* :class:`Transposed` — a map run backwards (scatter is a transposed gather).

Row sets are slices where the pairs are contiguous (a shift, a change of layout) and integer
arrays otherwise. :class:`RowMapBlock` records a map on the tape: its four derivative kinds are
``apply`` / ``apply`` / ``transpose`` / ``transpose`` (the map is linear), run on every rank even
where this rank holds no derivative, since the map communicates.
"""
import numpy as np

from ..block import Block
from ..parallel.collective import allgather_rows, broadcast_rows, exchange_rows


def _count(rows):
    if isinstance(rows, slice):
        return rows.stop - rows.start
    return len(rows)


def _take(x, rows):
    return x[rows]


def _put(out, rows, values, unique):
    """out[rows] += values, for ``out`` zero at ``rows`` before (rows may repeat unless
    ``unique``; no row set overlaps another one put into the same ``out``)."""
    if unique:
        out[rows] = values
    elif isinstance(rows, slice):
        out[rows] += values
    else:
        np.add.at(out, rows, values)


def _rows_array(rows):
    """An int64 array for a row set given as an array, or a slice for a contiguous range."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and rows[-1] - rows[0] == rows.size - 1 and \
            (rows.size < 2 or bool(np.all(np.diff(rows) == 1))):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


class Exchange:
    """Distributed-to-distributed row map (this rank's part of it).

    ``keep``: ``[(src_rows, dst_rows)]`` copied locally; ``sends``: ``[(rank,
    src_rows)]``; ``recvs``: ``[(rank, dst_rows)]``; ``n_src`` / ``n_dst``: this rank's input
    and output row counts. ``src_unique`` / ``dst_unique``: no row repeats in the source /
    destination row sets (else contributions are summed with np.add.at). ``token``: a checksum
    of the map's arguments, compared across ranks in the exchange's agreement.
    """

    def __init__(self, comm, keep, sends, recvs, n_src, n_dst, src_unique=True,
                 dst_unique=True, token=None, where="a crk exchange of rows"):
        self.comm, self.keep, self.sends, self.recvs = comm, keep, sends, recvs
        self.n_src, self.n_dst = n_src, n_dst
        self.src_unique, self.dst_unique = src_unique, dst_unique
        self.token, self.where = token, where
        # Whether every output row (input row, for the transpose) receives exactly one row:
        # then the result needs no zeros first.
        self.dst_covered = dst_unique and n_dst == sum(_count(d) for _, d in keep) + sum(
            _count(d) for _, d in recvs)
        self.src_covered = src_unique and n_src == sum(_count(s) for s, _ in keep) + sum(
            _count(s) for _, s in sends)

    def apply(self, x):
        return self._move(np.asarray(x), self.n_dst, self.keep, self.sends, self.recvs,
                          self.dst_unique, self.dst_covered)

    def transpose(self, g):
        keep = [(dst_rows, src_rows) for src_rows, dst_rows in self.keep]
        return self._move(np.asarray(g), self.n_src, keep, self.recvs, self.sends,
                          self.src_unique, self.src_covered)

    def _move(self, x, n_out, keep, sends, recvs, unique, covered):
        trailing = x.shape[1:]
        make = np.empty if covered else np.zeros
        out = make((n_out,) + trailing, dtype=np.result_type(x, np.float64))
        for src_rows, dst_rows in keep:
            _put(out, dst_rows, _take(x, src_rows), unique)
        received = exchange_rows([(rank, _take(x, rows)) for rank, rows in sends],
                                 [(rank, (_count(rows),) + trailing) for rank, rows in recvs],
                                 self.comm, self.where, self.token)
        for (_, rows), values in zip(recvs, received):
            _put(out, rows, values, unique)
        return out


class Gather:
    """Distributed-to-replicated row map: output row ``dst_rows[k]`` receives the k-th of all
    contributing rows, taken in rank order (this rank contributes ``src_rows``).

    ``counts``: rows each rank contributes (known to all); ``dst_rows``: a slice or an int array
    over all contributions; ``n_src``: this rank's input rows; ``n_dst``: output rows.
    ``squeeze``: the output is one row without its row axis (an integer index); then the
    single contributing rank broadcasts.
    """

    def __init__(self, comm, src_rows, counts, dst_rows, n_src, n_dst, dst_unique=True,
                 squeeze=False, token=None, where="a crk gather"):
        self.comm, self.src_rows, self.counts = comm, src_rows, tuple(counts)
        self.dst_rows, self.n_src, self.n_dst = dst_rows, n_src, n_dst
        self.dst_unique, self.squeeze = dst_unique, squeeze
        self.token, self.where = token, where
        rank = 0 if comm is None else comm.rank
        start = sum(self.counts[:rank])
        self.my_dst = _subset(dst_rows, start, start + self.counts[rank])

    def apply(self, x):
        x = np.asarray(x)
        trailing = x.shape[1:]
        mine = _take(x, self.src_rows)
        if self.squeeze:
            root = next(r for r, c in enumerate(self.counts) if c)
            row = broadcast_rows(mine if _rank(self.comm) == root else None, trailing, root,
                                 self.comm, self.where, self.token)
            return row.astype(np.result_type(x, np.float64), copy=False)
        rows = allgather_rows(mine, self.counts, self.comm, self.where, self.token)
        out = np.zeros((self.n_dst,) + trailing, dtype=np.result_type(x, np.float64))
        _put(out, self.dst_rows, rows, self.dst_unique)
        return out

    def transpose(self, g):
        g = np.asarray(g, dtype=np.float64)
        if self.squeeze:
            g = g[None]
        out = np.zeros((self.n_src,) + g.shape[1:])
        _put(out, self.src_rows, _take(g, self.my_dst), False)
        return out


class Transposed:
    """The transpose of a row map, run as a map of its own."""

    def __init__(self, rowmap):
        self.rowmap = rowmap

    def apply(self, x):
        return self.rowmap.transpose(x)

    def transpose(self, g):
        return self.rowmap.apply(g)


def _subset(rows, start, stop):
    if isinstance(rows, slice):
        return slice(rows.start + start, rows.start + stop)
    return rows[start:stop]


def _rank(comm):
    return 0 if comm is None else comm.rank


# -- building maps from global row pairs --------------------------------------------------------
def exchange_from_pairs(src_layout, dst_layout, src, dst, dst_unique=True, token=None,
                        where="a crk exchange of rows"):
    """The Exchange with ``y[dst[j]] += x[src[j]]`` (global rows; int arrays of equal length,
    the same on every rank). Not collective: each rank computes its own part in O(len(src))."""
    comm = src_layout.comm
    rank = _rank(comm)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    src_owner, dst_owner = src_layout.owners(src), dst_layout.owners(dst)
    src0, dst0 = src_layout.start, dst_layout.start
    mine_out = np.flatnonzero(src_owner == rank)          # pairs whose source row is here
    mine_in = np.flatnonzero(dst_owner == rank)           # pairs whose destination is here
    # Group by the other rank, keeping pair order inside each group (both ends agree on it).
    out_order = mine_out[np.argsort(dst_owner[mine_out], kind="stable")]
    in_order = mine_in[np.argsort(src_owner[mine_in], kind="stable")]
    keep, sends, recvs = [], [], []
    for rank_to, pairs in _groups(dst_owner[out_order], out_order):
        rows = _rows_array(src[pairs] - src0)
        if rank_to == rank:
            keep.append((rows, _rows_array(dst[pairs] - dst0)))
        else:
            sends.append((int(rank_to), rows))
    for rank_from, pairs in _groups(src_owner[in_order], in_order):
        if rank_from != rank:
            recvs.append((int(rank_from), _rows_array(dst[pairs] - dst0)))
    src_unique = len(np.unique(src)) == len(src)
    return Exchange(comm, keep, sends, recvs, src_layout.counts[rank], dst_layout.counts[rank],
                    src_unique, dst_unique, token, where)


def _groups(keys, items):
    """(key, items) runs of equal consecutive keys."""
    if not len(keys):
        return []
    cuts = np.flatnonzero(np.diff(keys)) + 1
    return [(int(k[0]), part) for k, part in zip(np.split(keys, cuts), np.split(items, cuts))]


def exchange_from_segments(src_layout, dst_layout, segments, token=None,
                           where="a crk exchange of rows"):
    """The Exchange copying contiguous segments ``(src_start, dst_start, length)`` of global
    rows: ``y[dst_start + k] = x[src_start + k]``. Not collective; each rank finds its own
    messages by bisection, which go only to the ranks whose rows overlap its own."""
    comm = src_layout.comm
    rank = _rank(comm)
    so, do = src_layout.offsets, dst_layout.offsets
    keep, sends, recvs = [], {}, {}
    for s0, d0, length in segments:
        shift = d0 - s0
        # rows of this segment held here, by destination rank
        a, b = max(so[rank], s0), min(so[rank + 1], s0 + length)
        for r_dst, lo, hi in _pieces(do, a + shift, b + shift):
            rows = slice(lo - shift - so[rank], hi - shift - so[rank])
            if r_dst == rank:
                keep.append((rows, slice(lo - do[rank], hi - do[rank])))
            else:
                sends.setdefault(r_dst, []).append(rows)
        # rows of this segment landing here, by source rank
        a, b = max(do[rank], d0), min(do[rank + 1], d0 + length)
        for r_src, lo, hi in _pieces(so, a - shift, b - shift):
            if r_src != rank:
                recvs.setdefault(r_src, []).append(slice(lo + shift - do[rank],
                                                         hi + shift - do[rank]))
    return Exchange(comm, keep, [(r, _union(rs)) for r, rs in sorted(sends.items())],
                    [(r, _union(rs)) for r, rs in sorted(recvs.items())],
                    src_layout.counts[rank], dst_layout.counts[rank], True, True, token, where)


def _pieces(offsets, lo, hi):
    """(rank, a, b): the parts of the global row range [lo, hi) held by each rank."""
    if lo >= hi:
        return []
    first = int(np.searchsorted(offsets, lo, side="right")) - 1
    out = []
    for r in range(first, len(offsets) - 1):
        a, b = max(lo, offsets[r]), min(hi, offsets[r + 1])
        if offsets[r] >= hi:
            break
        if a < b:
            out.append((r, a, b))
    return out


def _union(slices):
    """One row set for several slices (in order): a slice when they join up, else an array."""
    if len(slices) == 1:
        return slices[0]
    return _rows_array(np.concatenate([np.arange(s.start, s.stop) for s in slices]))


# -- the recorded block -------------------------------------------------------------------------
class RowMapBlock(Block):
    """One row map on the tape: ``y = M x`` for a crk value ``x``.

    Its derivatives are the map itself (tangent) and its transpose (adjoint, and the Hessian
    term: the map is linear). Each hook runs on every rank with zeros standing in for a missing
    derivative, since the map may communicate. Contributions to a replicated input are complete
    on every rank (a scatter's adjoint gathers), so the tape sums nothing.
    """

    reduces_over_ranks = True

    def __init__(self, rowmap, x, name):
        super().__init__()
        self.rowmap = rowmap
        self.name = name
        self.add_dependency(x)

    def _as_output(self, value):
        if isinstance(self._outputs[0].checkpoint, float):
            return float(value)
        return value

    def _as_input(self, value):
        if isinstance(self._dependencies[0].checkpoint, float):
            return float(np.asarray(value).reshape(()))
        return value

    def recompute_component(self, inputs, block_variable, idx, prepared):
        return self._as_output(self.rowmap.apply(inputs[0]))

    def evaluate_tlm(self, relevant_outputs=None):
        dep = self._dependencies[0]
        d = dep.tlm_value
        if d is None:
            d = np.zeros(np.shape(dep.checkpoint))
        self._outputs[0].add_tlm_output(self._as_output(self.rowmap.apply(d)))

    def evaluate_adj(self, relevant_dependencies=None, hessian=False):
        out, dep = self._outputs[0], self._dependencies[0]
        shape = np.shape(out.checkpoint)
        g = out.adj_value
        dep.add_adj_output(self._as_input(self.rowmap.transpose(
            np.zeros(shape) if g is None else np.reshape(g, shape))))
        if hessian:
            h = out.hessian_value
            dep.add_hessian_output(self._as_input(self.rowmap.transpose(
                np.zeros(shape) if h is None else np.reshape(h, shape))))

    def __repr__(self):
        return f"<RowMapBlock {self.name}>"
