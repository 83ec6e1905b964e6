"""Communicator helpers: the default communicator, the argument check, crk's private duplicate,
compatibility checks.

Every public crk function that takes a communicator takes it as the keyword ``comm`` and passes
it through :func:`resolve_comm` (or :func:`check_comm`), so a wrong object is refused at the
call with the same message everywhere. Nothing here runs at import: mpi4py (which initialises
MPI) is imported inside the functions.
"""
import sys

_private_keyval = None
_privates = []      # crk's private communicators: one per distinct ordered group of ranks


def check_comm(comm, where, argument="comm"):
    """Return ``comm`` if it is an mpi4py intracommunicator, else raise TypeError naming
    ``argument`` of ``where``, what was expected and what came. Not collective.

    A communicator exists only once mpi4py.MPI is imported, so a wrong object is refused
    without importing (and initialising) MPI.
    """
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is not None and isinstance(comm, MPI.Intracomm):
        return comm
    raise TypeError(f"{where}: argument '{argument}' must be an mpi4py communicator "
                    f"(mpi4py.MPI.Intracomm, e.g. MPI.COMM_WORLD), got {type(comm).__name__}")


def resolve_comm(comm=None, where="crk"):
    """Return ``comm`` (checked by :func:`check_comm`), or ``MPI.COMM_WORLD`` when it is None.
    Not collective."""
    if comm is not None:
        return check_comm(comm, where)
    from mpi4py import MPI
    return MPI.COMM_WORLD


def private_comm(comm):
    """crk's private duplicate of ``comm``, used for every message crk sends itself.

    Congruent communicators (same ranks, same order, e.g. ``comm`` and ``comm.Dup()``) share
    one private communicator, so a failure agreed over one matches a collective over the other.
    Collective when a new one must be made (all ranks of ``comm`` call it at the same point;
    crk only calls it inside collective operations); cached on ``comm`` as an MPI attribute.
    The private communicators live until MPI is finalised.
    """
    global _private_keyval
    from mpi4py import MPI
    if _private_keyval is None:
        _private_keyval = MPI.Comm.Create_keyval()
    dup = comm.Get_attr(_private_keyval)
    if dup is None:
        for candidate in _privates:       # the same decision on every rank: same history
            if MPI.Comm.Compare(comm, candidate) in (MPI.IDENT, MPI.CONGRUENT):
                dup = candidate
                break
        else:
            dup = comm.Dup()
            _privates.append(dup)
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
