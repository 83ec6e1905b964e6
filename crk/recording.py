"""Recording primitive calls: evaluate on plain values, wrap the result, add a PrimitiveBlock.

This is the hot path of the tape (every recorded operation passes here), so it is written for
speed: :func:`apply2` handles the arithmetic of AdjFloats, crk arrays and Python numbers
directly, everything else goes through the general :func:`apply`.
"""
import numpy as np

from .block_variable import BlockVariable, ShapeStub
from .overloaded_type import OverloadedType
from .parallel.comm import comms_compatible, describe_comm
from .primitive_block import _NO_KWARGS, PrimitiveBlock
from .tape import _annotating, _working_tape, get_working_tape

_wrap_output = None   # set by crk.array: (value, distributed, comm) -> overloaded object




def apply(prim, args, kwargs=None):
    """Evaluate ``prim`` on the plain values of ``args`` and record a block if any is overloaded.

    Returns an overloaded value (AdjFloat for replicated scalars, crk.ndarray otherwise) when any
    argument is overloaded; checks that distributed arguments share a communicator.
    This is the recording hot path: keep it lean.
    """
    if kwargs is None:
        kwargs = _NO_KWARGS
    values = list(args)
    deps = []
    dep_pos = []
    distributed = False
    comm = None
    vjps = prim.vjps
    for i, a in enumerate(args):
        if isinstance(a, OverloadedType):
            bv = a._bv
            if bv is None:
                bv = a.create_block_variable()
            # Compute with the object's own value (after a replay the checkpoint may hold another
            # point); re-attach it if a checkpoint executor freed the checkpoint.
            value = values[i] = a._ad_create_checkpoint()
            bv.reattach(value)
            if i not in vjps:
                raise TypeError(f"crk {prim.name}: argument {i} is not differentiable, but a "
                                f"recorded value was passed there; pass a plain value instead")
            deps.append(bv)
            dep_pos.append(i)
            a_comm = a._ad_comm
            if a_comm is not None:
                if comm is None:
                    comm = a_comm
                elif a_comm is not comm and not comms_compatible(comm, a_comm):
                    raise ValueError(
                        f"crk {prim.name}: argument {i} lives on {describe_comm(a_comm)} but an "
                        f"earlier argument lives on {describe_comm(comm)}; values from different "
                        f"communicators cannot be combined")
            if a._ad_distributed:
                distributed = True
        elif type(a) is np.ndarray and _may_change(a):
            values[i] = a.copy()    # a constant the user may still modify in place
    layout = None
    if distributed:
        # crk.distributed.align: distributed operands share one global layout (else they are
        # realigned first); the result inherits it when the primitive keeps rows.
        layout = _operand_layout(prim, args)
        if layout is _REALIGN:
            return _realign(prim, args, kwargs)
    try:
        ans = prim.fun(*values, **kwargs)
    except (ValueError, TypeError) as e:
        shapes = ", ".join(_describe_arg(a) for a in args)
        raise type(e)(f"crk {prim.name}({shapes}): {e}") from e
    if not deps:
        return ans
    local = distributed
    if prim.reduces:
        distributed = False
    out = _wrap_output(ans, distributed, comm)
    if layout is not None and distributed and type(out) is _NDArray:
        out._layout = layout
    if not _annotating.get() or not isinstance(out, OverloadedType):
        return out
    for pos in dep_pos:
        values[pos] = None          # the block reads dependencies from their checkpoints
    out_bv = out._bv
    dep_pos = tuple(dep_pos)
    positions, out_bv.keep = prim.needs(dep_pos)
    for bv, pos in zip(deps, dep_pos):
        if pos in positions:
            bv.keep = True
    _record(prim, tuple(deps), tuple(values), kwargs, dep_pos, out_bv,
            type(out_bv.checkpoint) is float, comm if local else None)
    return out


def _record(prim, deps, args, kwargs, dep_pos, out_bv, scalar_out, local_comm):
    # Unary and binary calls keep their dependencies in slots, not a tuple: on a long tape every
    # extra container is one more object for the garbage collector to traverse again and again.
    block = PrimitiveBlock.__new__(PrimitiveBlock)
    n = len(deps)
    block.dep0 = deps[0]
    block.dep1 = deps[1] if n == 2 else None
    if n > 2:
        block.more = deps
    block.out = out_bv
    block.prim = prim
    block.args = args
    if kwargs:
        block.kwargs = kwargs
    block.dep_pos = dep_pos
    block.scalar_out = scalar_out
    block.local_comm = local_comm
    tape = _working_tape.get()
    if tape is None:
        tape = get_working_tape()
    # Tape.add_block, inlined: one Python call less per recorded operation
    blocks = tape._blocks
    blocks.append(block)
    if tape.timeline is not None:
        tape.timeline.block_added(block, len(blocks) - 1)
    if tape.check_replicated:        # debug switch (Tape.add_block does the same)
        from .distributed.replication_check import check_replicated
        check_replicated(block, tape.comm)


_SCALAR_TYPES = (float, int)
_POS_01, _POS_0, _POS_1 = (0, 1), (0,), (1,)


def apply2(prim, a, b):
    """``apply`` for a two-argument primitive without keywords: the arithmetic hot path.

    Handles AdjFloats, crk arrays and Python numbers sharing one communicator; everything else
    (numpy constants, other types, mismatched communicators, errors) goes through :func:`apply`.
    """
    ta, tb = type(a), type(b)
    a_array, b_array = ta is _NDArray, tb is _NDArray
    a_rec = a_array or ta is _AdjFloat
    b_rec = b_array or tb is _AdjFloat
    if not ((a_rec or ta in _SCALAR_TYPES) and (b_rec or tb in _SCALAR_TYPES)):
        return apply(prim, (a, b))
    comm = None
    distributed = False
    if a_array:
        va = a._value
        comm = a._ad_comm
        distributed = a._ad_distributed
    else:
        va = float.__float__(a) if a_rec else a
    if b_array:
        vb = b._value
        if b._ad_comm is not comm:
            if comm is not None:
                return apply(prim, (a, b))   # compares the communicators, explains a mismatch
            comm = b._ad_comm
        distributed = distributed or b._ad_distributed
    else:
        vb = float.__float__(b) if b_rec else b
    layout = None
    if distributed:                          # see apply: crk.distributed.align
        layout = _operand_layout(prim, (a, b))
        if layout is _REALIGN:
            return _realign(prim, (a, b), None)
    try:
        ans = prim.fun(va, vb)
    except (ValueError, TypeError):
        return apply(prim, (a, b))           # recomputes and raises with a described call
    if a_array or b_array:
        out, out_bv = _new_array(ans, distributed, comm, layout)
        scalar_out = False
    else:
        ans = float(ans)
        out = float.__new__(_AdjFloat, ans)
        out._bv = out_bv = BlockVariable(ans)
        scalar_out = True
    if not _annotating.get():
        return out
    # (BlockVariable.reattach inlined: the checkpoint is re-attached if freed or stubbed)
    if a_rec:
        bva = a._bv or a.create_block_variable()
        c = bva.checkpoint
        if c is None or type(c) is ShapeStub:
            bva.checkpoint = va
        if b_rec:
            bvb = b._bv or b.create_block_variable()
            c = bvb.checkpoint
            if c is None or type(c) is ShapeStub:
                bvb.checkpoint = vb
            deps, args, dep_pos = (bva, bvb), (None, None), _POS_01
        else:
            deps, args, dep_pos = (bva,), (None, vb), _POS_0
    else:
        bvb = b._bv or b.create_block_variable()
        c = bvb.checkpoint
        if c is None or type(c) is ShapeStub:
            bvb.checkpoint = vb
        deps, args, dep_pos = (bvb,), (va, None), _POS_1
    if not scalar_out:
        positions, out_bv.keep = prim.needs(dep_pos)
        for bv, pos in zip(deps, dep_pos):
            if pos in positions:
                bv.keep = True
    _record(prim, deps, args, _NO_KWARGS, dep_pos, out_bv, scalar_out,
            comm if distributed else None)
    return out


def _new_array(value, distributed, comm, layout=None):
    """A crk.ndarray (and its BlockVariable) around a fresh result of an arithmetic op;
    ``layout``: the global layout of a distributed result (crk.distributed.layout)."""
    if type(value) is not np.ndarray or value.dtype.kind != "f" or \
            (value.ndim == 0 and not distributed):
        out = _wrap_output(value, distributed, comm)
        if layout is not None and type(out) is _NDArray:
            out._layout = layout
        return out, out._bv
    value.flags.writeable = False
    out = _NDArray.__new__(_NDArray)
    out._value = value
    out._ad_distributed = distributed
    out._ad_comm = comm
    out._layout = layout
    out._bv = bv = BlockVariable(value, distributed, comm)
    return out, bv


apply_scalar = apply2          # the scalar hot path is the same function


_AdjFloat = None   # set by crk.adjfloat (avoids an import cycle)
_NDArray = None    # set by crk.array
# set by crk.array from crk.distributed.align (avoids an import cycle)
_operand_layout = _realign = _REALIGN = None


def _may_change(a):
    """Whether an array (or the buffer it views) is writeable by someone."""
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return True
        a = a.base
    return a is not None and not isinstance(a, bytes)


def _describe_arg(a):
    if isinstance(a, OverloadedType):
        kind = "distributed" if a._ad_distributed else "replicated"
        return f"{kind} {type(a).__name__} of shape {np.shape(a._ad_create_checkpoint())}"
    if isinstance(a, np.ndarray):
        return f"ndarray of shape {a.shape}"
    return type(a).__name__
