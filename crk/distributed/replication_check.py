"""The debug switch: after each recorded operation, are its replicated values the same everywhere?

Turned on per tape with ``crk.Tape(check_replicated=True)`` or for every tape made while the
environment variable ``CRK_CHECK_REPLICATED=1`` is set: the tape then has a
:class:`ReplicationCheck` observer, told of every recorded block, which calls
:func:`check_replicated`. That compares a 64-bit hash of every replicated input and output of
the block across ranks (one allgather of a few bytes) and, at the first difference, raises
:class:`ReplicationError` on every rank naming the block and where the user's code recorded it.
A differing input that no block produced (a control or constant made from rank-dependent data)
is reported at its first use. Off, the switch costs nothing (no observer).
"""
import hashlib
import os
import sys

import numpy as np

from ..parallel.collective import allgather

ENVIRONMENT_VARIABLE = "CRK_CHECK_REPLICATED"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ReplicationError(RuntimeError):
    """A replicated value differs between ranks (raised on every rank)."""


def enabled_by_environment():
    """Whether ``CRK_CHECK_REPLICATED`` asks for the check (read when a tape is made)."""
    return os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() not in ("", "0", "false",
                                                                            "no", "off")


def _digest(value):
    if value is None:
        return None
    array = np.ascontiguousarray(np.asarray(value, dtype=np.float64))
    h = hashlib.blake2b(digest_size=8)
    h.update(repr(array.shape).encode())
    h.update(array.tobytes())
    return h.digest()


def recorded_at():
    """``file:line`` of the innermost caller outside the crk package (the user's code)."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR + os.sep):
        frame = frame.f_back
    if frame is None:
        return "an unknown place"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def check_replicated(block, comm):
    """Check that the replicated inputs and outputs of ``block`` (just recorded) are
    bit-identical on every rank of ``comm``. Collective; raises ReplicationError on every rank
    when they are not."""
    if comm is None or comm.size == 1:
        return
    entries = [("input", k, bv) for k, bv in enumerate(block._dependencies)
               if not bv.distributed] + \
              [("output", k, bv) for k, bv in enumerate(block._outputs) if not bv.distributed]
    mine = [_digest(bv.checkpoint) for _, _, bv in entries]
    everyone = allgather(mine, comm)
    for j, (kind, k, bv) in enumerate(entries):
        digests = [d[j] if j < len(d) else None for d in everyone]
        if len(set(digests)) > 1:
            groups = {}
            for rank, d in enumerate(digests):
                groups.setdefault(d, []).append(rank)
            described = "; ".join(f"ranks {ranks}" for ranks in groups.values())
            cause = ("it was made outside recorded operations (a control or constant built "
                     "from rank-dependent data), or changed in place" if kind == "input" else
                     "this operation computed it differently on different ranks (a "
                     "rank-dependent computation of a value declared replicated)")
            raise ReplicationError(
                f"crk: replicated {kind} {k} of {block!r} (recorded at {recorded_at()}) "
                f"differs between ranks (equal within: {described}); {cause}. Replicated "
                f"values must be bit-identical on every rank.")


class ReplicationCheck:
    """A tape observer (crk.Tape.add_observer) running :func:`check_replicated` on every block
    recorded on ``tape``, over the tape's communicator. Collective per recorded block."""

    def __init__(self, tape):
        self.tape = tape

    def block_added(self, block, index):
        check_replicated(block, self.tape.comm)
