"""Value lifetime: which values the tape keeps, which it drops to shape stubs, and what a replay
must recompute. Every module that keeps or drops a recorded value asks this one.

The rule
    A BlockVariable's ``keep`` flag says some derivative rule reads its value: a rule of the
    block that produced it or of a block that consumes it (``Primitive.needs`` from
    :func:`crk.primitive.defneeds`; a hand-written Block may read anything, so its values are
    always kept), or the value is a control, or no block on the tape can recompute it. A value
    whose flag is False is swapped for a :class:`ShapeStub` (its shape and dtype, no data) once
    the user's object holding it is gone (:func:`object_released`), and again after a replay's
    last use of it (:func:`drop_unneeded`). Rules may always read shapes, so a stub serves them.
    Before a block that is replayed reads a stub, the replay recomputes it
    (:func:`missing_inputs`).

Sweep state (the one piece of module state)
    A user object can die in the middle of a sweep (the cyclic garbage collector runs whenever
    it likes). Drops are then deferred until every running sweep has ended (:class:`sweeping`),
    so a sweep never finds a value gone that it checked was there. ``_sweeps_running`` counts the
    sweeps running in this process and ``_deferred`` holds the drops waiting for them.

Nothing here is collective.
"""
import numpy as np


class ShapeStub(np.ndarray):
    """A dropped value's stand-in: right shape and dtype, zero strides, no data.

    Only derivative rules that read shapes ever see one; replays recompute the value before
    any block that reads it runs.
    """


_stubs = {}     # (shape, dtype) -> the shared stub: stubs are read-only, so one of each will do


def stub_like(value):
    """A zero-byte array with the shape and dtype of ``value``."""
    key = (value.shape, value.dtype)
    stub = _stubs.get(key)
    if stub is None:
        if len(_stubs) > 1024:
            _stubs.clear()
        stub = _stubs[key] = np.broadcast_to(np.zeros((), value.dtype),
                                             value.shape).view(ShapeStub)
    return stub


def is_stub(value):
    return type(value) is ShapeStub


# -- keeping ------------------------------------------------------------------------------------
def pin(bv):
    """Keep ``bv``'s value for good: a hand-written block's hooks, a control, or a value no
    block can recompute any more reads it."""
    bv.keep = True


def keep_read_values(prim, deps, dep_pos, out_bv):
    """Set the keep flags of a recorded call of ``prim``: its output's from whether a rule reads
    the output, and those of the dependencies (at argument positions ``dep_pos``) whose values a
    rule reads. A dependency's flag is only ever raised: another block may read it."""
    positions, out_bv.keep = prim.needs(dep_pos)
    for bv, pos in zip(deps, dep_pos):
        if pos in positions:
            bv.keep = True


# -- dropping -----------------------------------------------------------------------------------
_sweeps_running = 0
_deferred = []


def object_released(bv, value):
    """The user's object holding ``value`` (the checkpoint of ``bv``) is gone: swap the value
    for a stub if no rule reads it, now or after the running sweeps."""
    if _sweeps_running:
        _deferred.append((bv, value))
    elif not bv.keep and bv.checkpoint is value:
        bv.checkpoint = stub_like(value)


class sweeping:
    """Context of a running sweep: value drops wait until every sweep has ended."""

    def __enter__(self):
        global _sweeps_running
        _sweeps_running += 1

    def __exit__(self, *exc):
        global _sweeps_running
        _sweeps_running -= 1
        if not _sweeps_running:
            while _deferred:
                bv, value = _deferred.pop()
                object_released(bv, value)
        return False


def drop_unneeded(variables):
    """Swap the values of ``variables`` that no derivative rule reads for shape stubs."""
    for bv in variables:
        value = bv.checkpoint
        if not bv.keep and value is not None and hasattr(value, "shape") and \
                not is_stub(value) and value.ndim:
            bv.checkpoint = stub_like(value)


# -- replays ------------------------------------------------------------------------------------
def producers(tape_blocks):
    """{BlockVariable: index of the block producing it} over ``tape_blocks``."""
    return {bv: i for i, b in enumerate(tape_blocks) for bv in b._outputs}


def missing_inputs(tape_blocks, producer_of, blocks):
    """(tape index, block) pairs, in tape order, to rerun so that ``blocks`` recompute from
    real values: the producers of the stubs they read, and of the stubs those read.

    ``producer_of``: :func:`producers` of ``tape_blocks``. Stubs always have a producing block
    (values no block produced are never dropped).
    """
    running = set(map(id, blocks))
    pending = [d for b in blocks for d in b._dependencies if is_stub(d.checkpoint)]
    extra = {}
    while pending:
        bv = pending.pop()
        i = producer_of.get(bv)
        if i is None:
            raise RuntimeError(
                "crk: a value needed to replay this tape was dropped (no derivative rule "
                "reads it) and no block on this tape produces it: it was computed off the "
                "tape or the tape was cleared. Keep the object that holds it alive, or "
                "record the computation of that value on this tape.")
        block = tape_blocks[i]
        if i in extra or id(block) in running:
            continue
        extra[i] = block
        pending.extend(d for d in block._dependencies if is_stub(d.checkpoint))
    return [(i, extra[i]) for i in sorted(extra)]


def has_stub_inputs(blocks):
    """Whether any of ``blocks`` reads a stub (cheap test before :func:`missing_inputs`)."""
    return any(is_stub(d.checkpoint) for b in blocks for d in b._dependencies)


def last_uses(blocks, outputs):
    """For replays of ``blocks`` (in order): position k -> the values produced by ``blocks``
    that no later block reads, except ``outputs`` and scalars (candidates for
    :func:`drop_unneeded` after block k)."""
    last = {}
    outputs = set(outputs)
    for k, block in enumerate(blocks):
        for d in block._dependencies:
            if d in last:
                last[d] = k
        for o in block._outputs:
            if o not in outputs and not isinstance(o.checkpoint, float):
                last[o] = k
    drop = {}
    for bv, k in last.items():
        drop.setdefault(k, []).append(bv)
    return drop


def stored_form(value, keep):
    """What a snapshot holds for a value: the value, or its stub when no rule reads it."""
    if not keep and isinstance(value, np.ndarray) and value.ndim and not is_stub(value):
        return stub_like(value)
    return value
