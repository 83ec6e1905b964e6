"""Ending an MPI job when one rank dies of an uncaught exception.

crk agrees on failures inside its own collectives, tape sweeps and
:class:`~crk.parallel.collective_section` blocks: there an exception on one rank raises on every
rank. An exception anywhere else (while recording a tape, in user code between two collectives)
ends only the rank that raised it; the other ranks wait in their next collective, and the failed
rank waits in MPI's finalisation, so the job hangs until it is killed.

:func:`abort_on_uncaught_exception` closes that gap for a whole program: an exception that
reaches the top of any rank (or of a thread) prints that rank's traceback and calls
``comm.Abort(1)``, which ends every rank of the job at once with a non-zero status. It changes
nothing for exceptions that are caught, so crk's collective failure agreement works as before.
Running a script as ``mpiexec -n N python -m mpi4py script.py`` has the same effect.
"""
import sys
import threading
import traceback

_installed = None     # the hooks in place: (communicator or None, previous sys/threading hooks)


def abort_on_uncaught_exception(comm=None):
    """Make an uncaught exception on any rank end the whole MPI job. Not collective.

    Installs ``sys.excepthook`` and ``threading.excepthook``. When an exception reaches the top
    level of this process (or of one of its threads) the hook writes the traceback to stderr,
    each line prefixed with ``[rank r/size]``, flushes stdout and stderr, and calls
    ``comm.Abort(1)``: every rank of the job ends within moments, with a non-zero exit status.

    ``comm``: the communicator to abort (default: ``MPI.COMM_WORLD``, looked up when an exception
    arrives). Installing imports nothing: if MPI has never been initialised (mpi4py's ``MPI``
    module not imported) when an exception arrives, or it has been finalised, or it runs on one
    process, the previous hook handles the exception as usual. Calling it again replaces the
    communicator. ``SystemExit`` and exceptions caught by the program never reach the hook;
    ``python -m mpi4py`` also aborts on a non-zero ``sys.exit``.

    Call it once near the top of a script that runs under mpirun (crk's scripts do).
    """
    global _installed
    if _installed is None:
        previous = (sys.excepthook, threading.excepthook)
    else:
        previous = _installed[1]
    _installed = (comm, previous)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook


def restore_exception_hooks():
    """Put back the hooks that were in place before :func:`abort_on_uncaught_exception`."""
    global _installed
    if _installed is not None:
        sys.excepthook, threading.excepthook = _installed[1]
        _installed = None


def _excepthook(exc_type, exc, tb):
    if not _abort(exc_type, exc, tb, "") and _installed is not None:
        _installed[1][0](exc_type, exc, tb)


def _thread_excepthook(args):
    if args.exc_type is SystemExit:
        return
    where = f" in thread {args.thread.name!r}" if args.thread is not None else " in a thread"
    if not _abort(args.exc_type, args.exc_value, args.exc_traceback, where) and \
            _installed is not None:
        _installed[1][1](args)


def _abort(exc_type, exc, tb, where):
    """Print and abort if MPI runs on several processes; False if the usual hook should run."""
    comm = _live_comm()
    if comm is None:
        return False
    prefix = f"[rank {comm.rank}/{comm.size}] "
    lines = [f"crk: uncaught {exc_type.__name__} on rank {comm.rank} of {comm.size}{where}; "
             f"aborting every rank (crk.parallel.abort_on_uncaught_exception)\n"]
    lines += traceback.format_exception(exc_type, exc, tb)
    text = "".join(prefix + line for chunk in lines for line in chunk.splitlines(True))
    try:
        sys.stdout.flush()
    except Exception:         # a closed stdout must not keep the other ranks waiting
        pass
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:
        pass
    comm.Abort(1)
    return True


def _live_comm():
    """The communicator to abort, or None when there is nothing to abort."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not mpi.Is_initialized() or mpi.Is_finalized():
        return None
    comm = _installed[0] if _installed is not None and _installed[0] is not None \
        else mpi.COMM_WORLD
    return comm if comm.size > 1 else None
