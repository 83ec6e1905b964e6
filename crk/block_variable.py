"""BlockVariable: one value on the tape — its checkpoint and its derivative accumulators."""
from .lifetime import ShapeStub


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

    ``keep`` says a derivative rule (of the producing block or of a consumer) reads this value;
    :mod:`crk.lifetime` sets it and decides when a value is swapped for a shape stub.

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

    def accumulate(self, adj, hess, local_comm=None):
        """Add a block's adjoint (``adj``) and second-order (``hess``) contributions, None for
        zero. ``local_comm``: the communicator over which the contributing block's
        contributions to replicated values are rank-local (None: complete on every rank); for
        a replicated variable they are then kept apart and summed over ranks before use."""
        if local_comm is not None and not self.distributed:
            self.add_partial(adj, hess, local_comm)
            return
        if adj is not None:
            self.adj_value = adj if self.adj_value is None else self.adj_value + adj
        if hess is not None:
            self.hessian_value = hess if self.hessian_value is None else self.hessian_value + hess

    def add_partial(self, adj, hess, comm):
        """Add rank-local contributions (to be summed over ``comm`` before use)."""
        partial = self.partial
        if partial is None:
            partial = self.partial = _Partial(comm)
        if adj is not None:
            partial.adj = adj if partial.adj is None else partial.adj + adj
        if hess is not None:
            partial.hess = hess if partial.hess is None else partial.hess + hess

    def reduce_partials(self, hessian, comm):
        """Sum the rank-local contributions over ``comm`` into adj (and hessian) values.

        Collective. Which variables are reduced is decided by the tape's structure (the plan),
        never by whether this rank happened to receive a contribution, so every rank calls this
        for the same variables in the same order. ``hessian``: the sweep carries second-order
        adjoints too.
        """
        from .parallel.collective import sum_over_ranks
        partial, self.partial = self.partial, None
        adj = partial.adj if partial is not None and partial.adj is not None \
            else zeros_like(self.checkpoint)
        self.add_adj_output(_same_kind(sum_over_ranks(adj, comm), self.checkpoint))
        if hessian:
            hess = partial.hess if partial is not None and partial.hess is not None \
                else zeros_like(self.checkpoint)
            self.add_hessian_output(_same_kind(sum_over_ranks(hess, comm), self.checkpoint))

    def reattach(self, value):
        """Give the checkpoint back ``value``, the value of the object this variable belongs
        to, if a checkpoint executor freed it or it was dropped for a stub; else leave it.
        Not collective. (Inlined in crk.recording.apply2, the arithmetic hot path.)"""
        checkpoint = self.checkpoint
        if checkpoint is None or type(checkpoint) is ShapeStub:
            self.checkpoint = value

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


def zeros_like(value):
    """A zero of the kind of ``value`` (0.0 for a float, else a zero numpy array)."""
    import numpy as np
    if isinstance(value, float):
        return 0.0
    return np.zeros_like(value)


def _same_kind(reduced, like):
    if isinstance(like, float):
        return float(reduced)
    return reduced
