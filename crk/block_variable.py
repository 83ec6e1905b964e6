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
    Adjoint contributions to a replicated value that were computed from rank-local data go to
    ``adj_partial`` / ``hess_partial`` and are summed over ``partial_comm`` once, before the
    value's adjoint is read.
    """

    __slots__ = ("checkpoint", "adj_value", "tlm_value", "hessian_value",
                 "distributed", "comm", "adj_partial", "hess_partial", "partial_comm",
                 "is_control", "__weakref__")

    def __init__(self, checkpoint, distributed=False, comm=None):
        self.checkpoint = checkpoint
        self.adj_value = None
        self.tlm_value = None
        self.hessian_value = None
        self.distributed = distributed
        self.comm = comm
        self.adj_partial = None
        self.hess_partial = None
        self.partial_comm = None
        self.is_control = False

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
        self.partial_comm = comm
        if adj is not None:
            self.adj_partial = adj if self.adj_partial is None else self.adj_partial + adj
        if hess is not None:
            self.hess_partial = hess if self.hess_partial is None else self.hess_partial + hess

    def reduce_partials(self, hessian=False):
        """Sum the rank-local contributions over ranks into adj (and hessian) values. Collective.

        Whether a variable has partial contributions depends only on the tape's structure, so
        every rank calls this for the same variables in the same order. ``hessian`` says whether
        the sweep also carries second-order adjoints.
        """
        from .parallel.collective import sum_over_ranks
        comm = self.partial_comm
        self.partial_comm = None
        adj, hess = self.adj_partial, self.hess_partial
        self.adj_partial = self.hess_partial = None
        if adj is None:
            adj = _zeros_like(self.checkpoint)
        self.add_adj_output(_same_kind(sum_over_ranks(adj, comm), self.checkpoint))
        if hessian:
            if hess is None:
                hess = _zeros_like(self.checkpoint)
            self.add_hessian_output(_same_kind(sum_over_ranks(hess, comm), self.checkpoint))

    def reset(self):
        self.adj_value = self.tlm_value = self.hessian_value = None
        self.adj_partial = self.hess_partial = self.partial_comm = None

    def __repr__(self):
        kind = "distributed" if self.distributed else "replicated"
        return f"<BlockVariable {kind} {type(self.checkpoint).__name__}>"


def _zeros_like(value):
    import numpy as np
    if isinstance(value, float):
        return 0.0
    return np.zeros_like(value)


def _same_kind(reduced, like):
    if isinstance(like, float):
        return float(reduced)
    return reduced
