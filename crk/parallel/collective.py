"""Collective operations with failure agreement.

Every message crk itself sends goes through this module, on crk's private duplicate of the
communicator. Each collective first *agrees* on failure: a tiny MAX-allreduce of a flag. A rank
that hit an exception calls :func:`agree` with that exception instead of carrying on; because every
crk collective starts with the same agreement call, the failing rank's call matches whatever crk
collective the other ranks reach next (or the agreement that closes every tape sweep), and all
ranks raise together instead of leaving some blocked.

Reductions are deterministic: the same bits on every rank, whatever MPI's reduction algorithm.
"""
import numpy as np

from .comm import private_comm

# Above this many elements a reduction goes Reduce-to-root + Bcast instead of Allgather + ordered sum.
_ALLGATHER_LIMIT = 4096


class CollectiveError(RuntimeError):
    """Raised on the ranks that did not fail, when a collective section failed on other ranks.

    ``failures`` maps each failing rank to ``"ExceptionType in <where>: message"``. The failing
    ranks themselves raise their original exception.
    """

    def __init__(self, message, failures):
        super().__init__(message)
        self.failures = dict(failures)


def agree(comm, error=None, where="a crk collective section", token=None):
    """Agree across ``comm`` whether any rank failed. Collective: every rank of ``comm`` calls.

    A rank passes the exception it caught as ``error`` (or None). If no rank failed this returns
    None. Otherwise the failing ranks re-raise their own exception and every other rank raises
    :class:`CollectiveError` naming the failing ranks and their messages.

    ``token`` (an int, e.g. a checksum of an index every rank must pass alike) is compared in
    the same message: if the ranks passed different tokens, every rank raises ValueError.
    """
    if error is not None and getattr(error, "_crk_agreed", False):
        raise error      # already agreed on by every rank: never agree twice on one failure
    if comm is None or comm.size == 1:
        if error is not None:
            raise error
        return
    from mpi4py import MPI
    pcomm = private_comm(comm)
    # One message shape for every agreement, so a failing rank's agreement matches whichever
    # crk collective the other ranks are in.
    token = 0 if token is None else int(token)
    flag = np.array([0 if error is None else 1, token, -token], dtype=np.int64)
    pcomm.Allreduce(MPI.IN_PLACE, flag, op=MPI.MAX)
    if not flag[0]:
        if flag[1] != -flag[2]:
            raise _mark_agreed(ValueError(
                f"crk: the ranks passed different arguments to {where}; an index or other "
                f"argument of an operation on a distributed array must be the same on every "
                f"rank (look for a rank-dependent value)"))
        return
    text = None if error is None else f"{type(error).__name__} in {where}: {error}"
    messages = pcomm.allgather(text)
    failures = {rank: msg for rank, msg in enumerate(messages) if msg is not None}
    if error is not None:
        others = sorted(set(failures) - {comm.rank})
        if others and hasattr(error, "add_note"):
            error.add_note(f"crk: ranks {others} failed in {where} too")
        _mark_agreed(error)
        raise error
    detail = "; ".join(f"rank {r}: {m}" for r, m in sorted(failures.items()))
    raise _mark_agreed(CollectiveError(
        f"another rank failed ({detail}); rank {comm.rank} stopped in {where}", failures))


def _mark_agreed(error):
    try:
        error._crk_agreed = True
    except AttributeError:      # exception types with __slots__: nothing to mark
        pass
    return error


def sum_over_ranks(value, comm):
    """Sum ``value`` (a float or numpy array, same shape on all ranks) over ``comm``. Collective.

    The result is bit-for-bit identical on every rank: small values are gathered and summed in
    rank order; larger arrays are reduced on rank 0 and broadcast. Returns a float for a float
    input, else an ndarray.
    """
    if comm is None or comm.size == 1:
        return value
    from mpi4py import MPI
    agree(comm, where="a crk sum over ranks")
    pcomm = private_comm(comm)
    scalar = np.ndim(value) == 0 and not isinstance(value, np.ndarray)
    shape = np.shape(value)
    local = np.array(value, dtype=np.result_type(value, np.float64)).reshape(-1)
    if local.size <= _ALLGATHER_LIMIT:
        gathered = np.empty((comm.size, local.size), dtype=local.dtype)
        pcomm.Allgather(local, gathered)
        total = gathered[0].copy()
        for piece in gathered[1:]:      # in rank order, identically on every rank
            total += piece
    else:
        total = np.empty_like(local)
        pcomm.Reduce(local, total, op=MPI.SUM, root=0)
        pcomm.Bcast(total, root=0)
    return float(total[0]) if scalar else total.reshape(shape)


def allgather_array(value, comm):
    """Every rank's numpy ``value`` (same shape on all ranks) stacked along a new first axis, in
    rank order: shape ``(comm.size, *value.shape)``, identical on every rank. Collective."""
    local = np.array(value, dtype=np.result_type(value, np.float64), order="C")
    if comm is None or comm.size == 1:
        return local[None].copy()
    agree(comm, where="a crk gather over ranks")
    gathered = np.empty((comm.size,) + local.shape, dtype=local.dtype)
    private_comm(comm).Allgather(local, gathered)
    return gathered


def exclusive_scan(value, comm, reverse=False):
    """The sum of ``value`` (a float or array, same shape on all ranks) over the ranks before
    this one (after it with ``reverse``), summed in rank order; zero on the first rank. Collective.

    Every rank's result is a sum in a fixed order, so it is the same whatever MPI does. The
    prefix offsets of a distributed scan (cumsum along the distributed axis).
    """
    scalar = np.ndim(value) == 0 and not isinstance(value, np.ndarray)
    everyone = allgather_array(value, comm)
    rank = 0 if comm is None else comm.rank
    before = everyone[rank + 1:][::-1] if reverse else everyone[:rank]
    total = np.zeros_like(everyone[0])
    for piece in before:
        total += piece
    return float(total) if scalar else total


def argmax_over_ranks(values, indices, comm, minimum=False):
    """Global indices of the maximum (``minimum``: the minimum) over ranks, position by position.

    ``values``: each rank's best local values (an array, the same shape on every rank);
    ``indices``: their global indices (int, -1 where this rank has no candidate, e.g. an empty
    piece). Ties go to the lowest global index, and a NaN wins over any number (the first NaN,
    as numpy's argmax/argmin). Returns an int array, identical on every rank. Collective.
    """
    all_values = allgather_array(np.asarray(values, dtype=np.float64), comm)
    all_indices = allgather_array(np.asarray(indices, dtype=np.float64), comm).astype(np.int64)
    best_value = np.full(all_values.shape[1:], np.nan)
    best_index = np.full(all_values.shape[1:], -1, dtype=np.int64)
    for value, index in zip(all_values, all_indices):
        valid = index >= 0
        empty = best_index < 0
        better = (value < best_value) if minimum else (value > best_value)
        better |= np.isnan(value) & ~np.isnan(best_value)
        tie = ((value == best_value) | (np.isnan(value) & np.isnan(best_value))) & \
            (index < best_index)
        take = valid & (empty | better | tie)
        best_value = np.where(take, value, best_value)
        best_index = np.where(take, index, best_index)
    return best_index


def allgather(value, comm):
    """Every rank's ``value`` (any picklable object), as a list in rank order. Collective."""
    if comm is None or comm.size == 1:
        return [value]
    agree(comm, where="a crk allgather")
    return private_comm(comm).allgather(value)


def max_over_ranks(value, comm):
    """Maximum of an int or float over ``comm``; identical on every rank. Collective."""
    if comm is None or comm.size == 1:
        return value
    from mpi4py import MPI
    agree(comm, where="a crk maximum over ranks")
    buf = np.array([value])
    private_comm(comm).Allreduce(MPI.IN_PLACE, buf, op=MPI.MAX)
    return buf[0].item()


class collective_section:
    """``with collective_section(comm=comm):`` — a block of user code that all ranks of ``comm``
    (keyword-only, default COMM_WORLD) run.

    If the block raises on some ranks, those ranks call :func:`agree` with their exception on the
    way out, which matches the agreement that every crk collective (and the end of this section)
    performs on the other ranks, so every rank raises instead of hanging. Collective.
    """

    def __init__(self, *, comm=None, where="a collective section"):
        from .comm import resolve_comm
        self.comm = resolve_comm(comm, "collective_section()")
        self.where = where

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and not isinstance(exc, Exception):
            return False  # KeyboardInterrupt / SystemExit: do not try to talk to other ranks
        agree(self.comm, exc, where=self.where)
        return False


# -- moving rows of distributed arrays (crk.distributed) --------------------------------------
# Rows travel as float64 whatever the array's dtype, so both ends of a message always agree on
# its type (a rank that holds no derivative sends zeros it made itself).
_ROWS_TAG = 7191


def _rows_buffer(rows):
    return np.ascontiguousarray(rows, dtype=np.float64)


def exchange_rows(sends, recv_shapes, comm, where="a crk exchange of rows", token=None):
    """Point-to-point exchange of row blocks. Collective: every rank of ``comm`` calls, also
    with nothing to send or receive (the failure agreement is global; the data only goes to
    the ranks named).

    ``sends``: ``[(rank, array), ...]``; ``recv_shapes``: ``[(rank, shape), ...]``; both in an
    order every pair of ranks agrees on (at most one message per ordered pair). Returns the
    received float64 arrays in the order of ``recv_shapes``. ``token``: see :func:`agree`.
    """
    agree(comm, where=where, token=token)
    if not sends and not recv_shapes:
        return []
    pcomm = private_comm(comm)
    received = [np.empty(shape) for _, shape in recv_shapes]
    requests = [pcomm.Irecv(buf, source=rank, tag=_ROWS_TAG)
                for (rank, _), buf in zip(recv_shapes, received)]
    outgoing = [_rows_buffer(rows) for _, rows in sends]      # alive until Waitall
    requests += [pcomm.Isend(buf, dest=rank, tag=_ROWS_TAG)
                 for (rank, _), buf in zip(sends, outgoing)]
    from mpi4py import MPI
    MPI.Request.Waitall(requests)
    return received


def broadcast_rows(rows, shape, root, comm, where="a crk broadcast", token=None):
    """``rows`` (a float64 array of ``shape``) from rank ``root`` on every rank. Collective;
    ranks other than ``root`` pass None. ``token``: see :func:`agree`."""
    if comm is None or comm.size == 1:
        return _rows_buffer(rows).reshape(shape)
    agree(comm, where=where, token=token)
    buf = _rows_buffer(rows).reshape(shape) if comm.rank == root else np.empty(shape)
    if buf.size:
        private_comm(comm).Bcast(buf, root=root)
    return buf


def allgather_rows(rows, counts, comm, where="a crk gather", token=None):
    """Every rank's ``rows`` (shape ``(counts[rank], *trailing)``) concatenated in rank order on
    every rank, as float64. Collective; ``counts`` must be known to every rank. ``token``: see
    :func:`agree`."""
    rows = _rows_buffer(rows)
    if comm is None or comm.size == 1:
        return rows
    agree(comm, where=where, token=token)
    trailing = rows.shape[1:]
    width = int(np.prod(trailing, dtype=np.int64))
    sizes = np.asarray(counts, dtype=np.int64) * width
    out = np.empty((int(sum(counts)),) + trailing)
    if out.size:
        from mpi4py import MPI
        displacements = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        private_comm(comm).Allgatherv(rows.reshape(-1),
                                      [out.reshape(-1), sizes, displacements, MPI.DOUBLE])
    return out
