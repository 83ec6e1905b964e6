"""The global layout of a distributed array: how many rows (entries along axis 0) each rank holds.

A :class:`Layout` gives a global index its meaning: row ``i`` of the whole array lives on the rank
``r`` with ``offsets[r] <= i < offsets[r + 1]``. Every rank knows the whole layout.

A layout is a small object shared by every array with the same rows per rank (an elementwise
result shares its operand's layout, so does ``x[:, 1]``); comparing two arrays' layouts is then
an identity test. An array made by ``crk.array(piece, distributed=True)`` starts with an
*unresolved* layout that knows only this rank's row count; the first operation that needs the
whole layout resolves it with one allgather, and every array sharing the object profits. Once
resolved a layout never changes.
"""
import numpy as np

from ..parallel.collective import allgather


class Layout:
    """Rows per rank of a distributed array on ``comm``.

    Built resolved with :meth:`from_counts` (``counts``: rows of every rank, in rank order) or
    unresolved with :meth:`unresolved` (this rank's row count only). ``counts``, ``offsets`` and
    ``total`` are available once resolved (see :func:`resolve`).
    """

    __slots__ = ("comm", "local", "counts", "offsets", "total")

    def __init__(self, comm, local, counts=None):
        self.comm = comm
        self.local = int(local)
        self.counts = None
        if counts is not None:
            self._set(counts)

    @classmethod
    def from_counts(cls, comm, counts):
        """A resolved layout. Not collective (every rank must pass the same counts)."""
        counts = tuple(int(c) for c in counts)
        return cls(comm, counts[_rank(comm)], counts)

    @classmethod
    def unresolved(cls, comm, local):
        """A layout of which this rank knows only its own ``local`` row count."""
        return cls(comm, local)

    def _set(self, counts):
        self.counts = tuple(counts)
        self.offsets = tuple(int(o) for o in np.concatenate([[0], np.cumsum(counts)]))
        self.total = self.offsets[-1]

    @property
    def resolved(self):
        return self.counts is not None

    @property
    def start(self):
        """Global index of this rank's first row."""
        return self.offsets[_rank(self.comm)]

    @property
    def stop(self):
        return self.offsets[_rank(self.comm) + 1]

    def owners(self, rows):
        """The rank owning each global row in ``rows`` (an int array, 0 <= rows < total)."""
        return np.searchsorted(np.asarray(self.offsets), rows, side="right") - 1

    def same_as(self, other):
        """Whether two resolved layouts hold the same rows on every rank."""
        return self is other or (self.counts == other.counts and other.counts is not None)

    def scaled(self, numerator, denominator=1):
        """The resolved layout with every count multiplied by numerator/denominator (exact)."""
        return Layout.from_counts(self.comm,
                                  [c * numerator // denominator for c in self.counts])

    def prefix(self, length):
        """The layout of ``length`` rows where row j lives on the rank that owns row j here
        (rows past this layout's end go to the last rank)."""
        stops = [min(o, length) for o in self.offsets[1:]]
        stops[-1] = length
        starts = [0] + stops[:-1]
        return Layout.from_counts(self.comm, [b - a for a, b in zip(starts, stops)])

    def token(self):
        """A checksum of the counts (for cross-rank consistency checks)."""
        import zlib
        return zlib.crc32(np.asarray(self.counts, dtype=np.int64).tobytes())

    def __repr__(self):
        if self.counts is None:
            return f"<Layout unresolved, {self.local} rows here>"
        return f"<Layout {self.total} rows as {list(self.counts)}>"


def _rank(comm):
    return 0 if comm is None else comm.rank


def balanced(comm, total):
    """The layout spreading ``total`` rows as evenly as possible, earlier ranks first."""
    size = 1 if comm is None else comm.size
    base, extra = divmod(int(total), size)
    return Layout.from_counts(comm, [base + (r < extra) for r in range(size)])


def layout_of(x):
    """The (possibly unresolved) layout object of distributed crk.ndarray ``x``. Not
    collective: an array without one gets an unresolved layout of its own row count."""
    layout = x._layout
    if layout is None:
        shape = np.shape(x._value)
        if not shape:
            raise ValueError("crk: a distributed array must have at least one dimension (its "
                             "distributed axis 0), but this rank holds a 0-d piece; pass "
                             "pieces of shape (rows, ...)")
        layout = x._layout = Layout.unresolved(x._ad_comm, shape[0])
    return layout


def resolve(*arrays):
    """The resolved layouts of distributed crk.ndarrays ``arrays`` (one allgather for all the
    unresolved ones; none when all are resolved). Collective over their communicator.

    Also checks that every rank's piece has the same trailing shape (axes 1 and up) and at
    least one dimension; raises ValueError on every rank otherwise.
    """
    layouts = [layout_of(x) for x in arrays]
    pending = [k for k, lay in enumerate(layouts) if not lay.resolved]
    if pending:
        comm = layouts[pending[0]].comm
        mine = [(layouts[k].local, np.shape(arrays[k]._value)[1:],
                 np.ndim(arrays[k]._value)) for k in pending]
        everyone = allgather(mine, comm)
        for j, k in enumerate(pending):
            pieces = [ranks[j] for ranks in everyone]
            _check_pieces(pieces)
            if not layouts[k].resolved:     # two arrays may share one layout object
                layouts[k]._set([count for count, _, _ in pieces])
    return layouts


def _check_pieces(pieces):
    if any(ndim == 0 for _, _, ndim in pieces):
        raise ValueError("crk: a distributed array must have at least one dimension (its "
                         "distributed axis 0), but some rank holds a 0-d piece")
    trailing = {shape for _, shape, _ in pieces}
    if len(trailing) > 1:
        described = ", ".join(f"rank {r}: {(count,) + shape}"
                              for r, (count, shape, _) in enumerate(pieces))
        raise ValueError(
            f"crk: the pieces of a distributed array must have the same shape after axis 0 on "
            f"every rank, got {described}; pass pieces split along axis 0 only (an empty "
            f"piece needs the trailing shape too, e.g. np.zeros((0, 3)))")
