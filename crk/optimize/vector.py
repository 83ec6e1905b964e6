"""The free controls of a reduced functional as one flat vector, replicated or distributed.

Two layouts of the same numbers:

* the **global** vector (scipy, checkpoint files): the free controls one after the other, in
  control order, each flattened in C order; a distributed control contributes its global array
  (the ranks' pieces in rank order). It is the same vector whatever the number of ranks, and every
  rank holds all of it, bit-identical.
* the **owned** block (PETSc Vecs for TAO): what this rank owns of the global vector, in control
  order: its piece of every distributed control, and on rank 0 only, the replicated controls.
  Nothing is stored twice across ranks.

Converting between per-control values and either layout costs at most one collective.
"""
import numpy as np

from ..overloaded_type import OverloadedType, plain_value
from ..parallel.collective import agree, allgather


class ControlLayout:
    """Flattening of ``controls`` (a list of :class:`crk.Control`) restricted to the indices in
    ``free``, over ``comm``. Collective to construct (one allgather of the local sizes).

    ``values`` below are lists with one plain value per control (all controls, free or not:
    a float for a scalar control, this rank's piece for a distributed one).
    """

    def __init__(self, controls, free, comm):
        self.controls = list(controls)
        self.free = list(free)
        self.comm = comm
        self.rank = comm.rank
        local = [int(np.prod(self.controls[k].shape)) for k in self.free]
        distributed = [self.controls[k].distributed for k in self.free]
        self.any_distributed = any(distributed) and comm.size > 1
        counts = allgather(local, comm) if self.any_distributed else [local] * comm.size
        self.counts = np.array(counts, dtype=np.int64).reshape(comm.size, len(self.free))
        # per free control: (index, distributed, local size, global size, global offset)
        self.entries = []
        offset = 0
        for j, (k, dist) in enumerate(zip(self.free, distributed)):
            n_local = local[j]
            n_global = int(self.counts[:, j].sum()) if dist and comm.size > 1 else n_local
            self.entries.append((k, dist, n_local, n_global, offset))
            offset += n_global
        self.size = offset
        self.replicated_size = sum(n for _, d, n, _, _ in self.entries if not d)
        self.owned_size = sum(n for _, d, n, _, _ in self.entries
                              if d or self.rank == 0)

    # -- global vector --------------------------------------------------------------------
    def gather(self, values):
        """The global vector (identical on every rank) of per-control ``values``. Collective
        when a free control is distributed and there are several ranks."""
        x = np.empty(self.size)
        pieces = [np.ravel(np.asarray(values[k], dtype=np.float64))
                  for k, d, _, _, _ in self.entries if d]
        gathered = allgather(pieces, self.comm) if self.any_distributed else [pieces]
        d_index = 0
        for k, dist, n_local, n_global, offset in self.entries:
            if dist:
                x[offset:offset + n_global] = np.concatenate(
                    [np.ravel(ranks[d_index]) for ranks in gathered]) if n_global else []
                d_index += 1
            else:
                x[offset:offset + n_local] = np.ravel(np.asarray(values[k], dtype=np.float64))
        return x

    def scatter(self, x, base):
        """Per-control values from global vector ``x``; fixed controls keep ``base``'s values.
        Not collective."""
        values = list(base)
        for j, (k, dist, n_local, n_global, offset) in enumerate(self.entries):
            start = offset + (int(self.counts[:self.rank, j].sum()) if dist else 0)
            values[k] = self._shaped(k, x[start:start + n_local])
        return values

    def split_global(self, x):
        """Global vector ``x`` as a list of per-free-control flat arrays (not collective)."""
        return [x[offset:offset + n] for _, _, _, n, offset in self.entries]

    # -- owned block ------------------------------------------------------------------------
    def owned(self, values):
        """This rank's owned block of per-control ``values`` (not collective)."""
        parts = [np.ravel(np.asarray(values[k], dtype=np.float64))
                 for k, dist, _, _, _ in self.entries if dist or self.rank == 0]
        return np.concatenate(parts) if parts else np.zeros(0)

    def from_owned(self, block, base):
        """Per-control values from this rank's owned ``block``; replicated controls come from
        rank 0's block (one collective when there are several ranks and replicated free
        controls). Fixed controls keep ``base``'s values."""
        values = list(base)
        replicated = None
        if self.replicated_size and self.comm.size > 1:
            mine = self._replicated_part(block) if self.rank == 0 else None
            replicated = allgather(mine, self.comm)[0]
        position, r_position = 0, 0
        for k, dist, n_local, _, _ in self.entries:
            if dist or self.rank == 0:
                values[k] = self._shaped(k, block[position:position + n_local])
                position += n_local
            else:
                values[k] = self._shaped(k, replicated[r_position:r_position + n_local])
            if not dist:
                r_position += n_local
        return values

    def _replicated_part(self, block):
        parts, position = [], 0
        for _, dist, n_local, _, _ in self.entries:
            if not dist:
                parts.append(block[position:position + n_local])
            position += n_local
        return np.concatenate(parts) if parts else np.zeros(0)

    def owned_range(self):
        """(start, end) of this rank's owned block in the PETSc ordering (rank-major)."""
        sizes = allgather(self.owned_size, self.comm)
        start = int(sum(sizes[:self.rank]))
        return start, start + self.owned_size

    # -- bounds -------------------------------------------------------------------------------
    def bounds(self, bounds):
        """Per-control ``bounds`` as global (lower, upper) vectors with ±inf for none.

        ``bounds``: None, or one entry per control (a single (lower, upper) pair when there is
        one control); each entry None or a pair whose parts are None, a number, or an array of
        the control's shape (this rank's piece for a distributed control) -- a pair of arrays,
        not scipy's list of per-entry pairs. Entries of fixed controls are ignored. A bad
        argument on one rank raises on every rank. Collective.
        """
        lower, upper = self.bound_values(bounds)
        lo, hi = self.gather(lower), self.gather(upper)
        _check_order(lo, hi)
        return lo, hi

    def owned_bounds(self, bounds):
        """Like :meth:`bounds`, but this rank's owned blocks (lower, upper). Collective."""
        lower, upper = self.bound_values(bounds)
        lo, hi = self.owned(lower), self.owned(upper)
        error = None
        try:
            _check_order(lo, hi)
        except ValueError as e:
            error = e
        agree(self.comm, error, where="crk.optimize bounds")
        return lo, hi

    def bound_values(self, bounds):
        """(lower, upper): one plain value per control (±inf where unbounded). Collective: a
        bad argument on one rank raises on every rank."""
        error, lower, upper = None, None, None
        try:
            lower, upper = self._bound_values(bounds)
        except (TypeError, ValueError) as e:
            error = e
        agree(self.comm, error, where="crk.optimize bounds")
        return lower, upper

    def _bound_values(self, bounds):
        n = len(self.controls)
        if n == 1 and bounds is not None and _is_pair(bounds):
            bounds = [bounds]
        if bounds is None:
            bounds = [None] * n
        if not isinstance(bounds, (list, tuple)) or len(bounds) != n:
            raise ValueError(
                f"bounds: expected one (lower, upper) pair (or None) per control, {n} in all, "
                f"got {_describe(bounds)}")
        lower, upper = [None] * n, [None] * n
        for k, pair in enumerate(bounds):
            if pair is None:
                pair = (None, None)
            if not _is_pair(pair):
                raise ValueError(f"bounds: entry {k} must be None or a (lower, upper) pair, "
                                 f"got {_describe(pair)}")
            for side, value, fill, out in (("lower", pair[0], -np.inf, lower),
                                           ("upper", pair[1], np.inf, upper)):
                out[k] = self._bound(k, side, fill if value is None else value)
        return lower, upper

    def _bound(self, k, side, value):
        control = self.controls[k]
        arr = np.asarray(plain_value(value), dtype=np.float64)
        if np.any(np.isnan(arr)):
            raise ValueError(f"bounds: the {side} bound of control {k} contains NaN")
        if arr.ndim == 0:
            return float(arr) if control.scalar else np.full(control.shape, float(arr))
        if arr.shape != tuple(control.shape):
            kind = "this rank's piece of the distributed control" if control.distributed \
                else "the control"
            raise ValueError(f"bounds: the {side} bound of control {k} must be a number or an "
                             f"array of shape {tuple(control.shape)} ({kind}), got shape "
                             f"{arr.shape}")
        return arr

    def _shaped(self, k, flat):
        control = self.controls[k]
        if control.scalar:
            return float(flat[0])
        return np.array(flat, dtype=np.float64).reshape(control.shape)


def _check_order(lo, hi):
    if np.any(lo > hi):
        j = int(np.argmax(lo > hi))
        raise ValueError(f"bounds: lower bound {lo[j]} exceeds upper bound {hi[j]} (entry {j} "
                         f"of the free controls)")


def _is_pair(value):
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(
        v is None or isinstance(v, (OverloadedType, np.ndarray, list, tuple)) or np.ndim(v) == 0
        for v in value)


def _describe(value):
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"
