"""Communicator helpers: the default communicator, crk's private duplicate, compatibility checks.

Nothing here runs at import: mpi4py (which initialises MPI) is imported inside the functions.
"""

_private_keyval = None


def resolve_comm(comm=None):
    """Return ``comm``, or ``MPI.COMM_WORLD`` when it is None. Not collective."""
    if comm is not None:
        return comm
    from mpi4py import MPI
    return MPI.COMM_WORLD


def private_comm(comm):
    """crk's private duplicate of ``comm``, used for every message crk sends itself.

    Collective on first use for a given communicator (all ranks of ``comm`` must call it at the
    same point; crk only calls it inside collective operations). The duplicate is cached as an
    MPI attribute of ``comm``, so it is freed together with ``comm`` and user messages on ``comm``
    never match crk's.
    """
    global _private_keyval
    from mpi4py import MPI
    if _private_keyval is None:
        def _free(_comm, _keyval, dup):
            if dup != MPI.COMM_NULL and not MPI.Is_finalized():
                dup.Free()
        _private_keyval = MPI.Comm.Create_keyval(delete_fn=_free)
    dup = comm.Get_attr(_private_keyval)
    if dup is None:
        dup = comm.Dup()
        comm.Set_attr(_private_keyval, dup)
    return dup


def comms_compatible(a, b):
    """True when values living on communicators ``a`` and ``b`` may be combined (not collective).

    ``None`` stands for "no communicator" (a plain replicated scalar) and is compatible with any.
    Two communicators are compatible when they are the same or congruent (same ranks, same order).
    """
    if a is None or b is None or a is b:
        return True
    from mpi4py import MPI
    return MPI.Comm.Compare(a, b) in (MPI.IDENT, MPI.CONGRUENT)


def describe_comm(comm):
    """A short human description of a communicator for error messages."""
    if comm is None:
        return "no communicator"
    name = comm.Get_name() or "communicator"
    return f"{name} (size {comm.size}, rank {comm.rank})"
