"""BlockVariable: one value on the tape — its checkpoint and its derivative accumulators."""


class BlockVariable:
    """The tape's record of one value.

    ``checkpoint`` is the plain value (float, numpy array, ...) the tape computes with; it is the
    only route by which blocks reach forward values, so a checkpoint executor can free it and
    restore it. A BlockVariable does not refer to the Block that produced it: blocks refer to
    their variables, never the reverse, so a dropped tape is freed at once by reference counting.
    ``adj_value`` / ``tlm_value`` / ``hessian_value`` hold derivative values during sweeps.

    ``distributed`` says whether each rank holds its own piece (True) or every rank holds the same
    value (False, "replicated"); ``comm`` is the communicator (None for plain scalars).
    Adjoint contributions to a replicated value that were computed from rank-local data are kept
    apart in ``partial`` and summed over ranks once, before the value's adjoint is read.

    ``keep`` says a derivative rule (of the producing block or of a consumer) reads this value.
    When it is False and the user's object is gone, the tape may swap the value for a shape
    stub (shape and dtype, no data); replays recompute it where needed.

    Slots are few on purpose: a long tape holds one of these per recorded value, and each slot
    is traversed by the garbage collector.
    """

    __slots__ = ("checkpoint", "adj_value", "tlm_value", "hessian_value", "distributed", "comm",
                 "partial", "keep", "__weakref__")

    def __init__(self, checkpoint, distributed=False, comm=None):
        self.checkpoint = checkpoint
        self.adj_value = None
        self.tlm_value = None
        self.hessian_value = None
        self.distributed = distributed
        self.comm = comm
        self.partial = None
        self.keep = True

    # pyadjoint-compatible accumulators -----------------------------------------------------
    def add_adj_output(self, value):
        if value is not None:
            self.adj_value = value if self.adj_value is None else self.adj_value + value

    def add_tlm_output(self, value):
        if value is not None:
            self.tlm_value = value if self.tlm_value is None else self.tlm_value + value

    def add_hessian_output(self, value):
        if value is not None:
            self.hessian_value = value if self.hessian_value is None else self.hessian_value + value

    def add_partial(self, adj, hess, comm):
        """Add rank-local contributions (to be summed over ``comm`` before use)."""
        partial = self.partial
        if partial is None:
            partial = self.partial = _Partial(comm)
        if adj is not None:
            partial.adj = adj if partial.adj is None else partial.adj + adj
        if hess is not None:
            partial.hess = hess if partial.hess is None else partial.hess + hess

    def reduce_partials(self, hessian=False):
        """Sum the rank-local contributions over ranks into adj (and hessian) values. Collective.

        Whether a variable has partial contributions depends only on the tape's structure, so
        every rank calls this for the same variables in the same order. ``hessian`` says whether
        the sweep also carries second-order adjoints.
        """
        from .parallel.collective import sum_over_ranks
        partial, self.partial = self.partial, None
        adj = partial.adj if partial.adj is not None else _zeros_like(self.checkpoint)
        self.add_adj_output(_same_kind(sum_over_ranks(adj, partial.comm), self.checkpoint))
        if hessian:
            hess = partial.hess if partial.hess is not None else _zeros_like(self.checkpoint)
            self.add_hessian_output(_same_kind(sum_over_ranks(hess, partial.comm),
                                               self.checkpoint))

    def reset(self):
        self.adj_value = self.tlm_value = self.hessian_value = self.partial = None

    def __repr__(self):
        kind = "distributed" if self.distributed else "replicated"
        return f"<BlockVariable {kind} {type(self.checkpoint).__name__}>"


class _Partial:
    """Rank-local adjoint contributions awaiting their sum over ``comm``."""

    __slots__ = ("comm", "adj", "hess")

    def __init__(self, comm):
        self.comm, self.adj, self.hess = comm, None, None


def _zeros_like(value):
    import numpy as np
    if isinstance(value, float):
        return 0.0
    return np.zeros_like(value)


def _same_kind(reduced, like):
    if isinstance(like, float):
        return float(reduced)
    return reduced


class ShapeStub:
    """Marker base; see :func:`stub_like`."""


def _stub_class():
    import numpy as np

    class _ShapeStub(np.ndarray, ShapeStub):
        """A dropped value's stand-in: right shape and dtype, zero strides, no data."""
    return _ShapeStub


_STUB = None
_stubs = {}     # (shape, dtype) -> the shared stub: stubs are read-only, so one of each will do


def stub_like(value):
    """A zero-byte array with the shape and dtype of ``value`` (see BlockVariable.keep)."""
    key = (value.shape, value.dtype)
    stub = _stubs.get(key)
    if stub is None:
        global _STUB
        import numpy as np
        if _STUB is None:
            _STUB = _stub_class()
        if len(_stubs) > 1024:
            _stubs.clear()
        stub = _stubs[key] = np.broadcast_to(np.zeros((), value.dtype), value.shape).view(_STUB)
    return stub


def is_stub(value):
    return isinstance(value, ShapeStub)
