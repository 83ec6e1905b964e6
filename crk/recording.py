"""Recording primitive calls: evaluate on plain values, wrap the result, add a PrimitiveBlock.

This is the hot path of the tape (every recorded operation passes here), so it is written for
speed: :func:`apply2` handles the arithmetic of AdjFloats, crk arrays and Python numbers
directly, everything else goes through the general :func:`apply`. The value types are not
imported (their operators call this module): they are read from the registration table
:data:`crk.overloaded_type.result_types`. Which values are kept is asked of
:mod:`crk.lifetime`.
"""
import numpy as np

from .block_variable import BlockVariable
from .lifetime import ShapeStub, keep_read_values
from .overloaded_type import OverloadedType, result_types
from .parallel.comm import comms_compatible, describe_comm
from .primitive_block import NO_KWARGS, PrimitiveBlock
from .tape import _annotating, _working_tape, get_working_tape


def apply(prim, args, kwargs=None):
    """Evaluate ``prim`` on the plain values of ``args`` and record a block if any is overloaded.

    Returns an overloaded value (AdjFloat for replicated scalars, crk.ndarray otherwise) when any
    argument is overloaded; checks that distributed arguments share a communicator.
    This is the recording hot path: keep it lean.
    """
    if kwargs is None:
        kwargs = NO_KWARGS
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
        align = result_types.align
        layout = align.operand_layout(prim, args)
        if layout is align.REALIGN:
            return align.realign(prim, args, kwargs)
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
    out = result_types.wrap(ans, distributed, comm)
    if layout is not None and distributed and type(out) is result_types.array:
        out._layout = layout
    if not _annotating.get() or not isinstance(out, OverloadedType):
        return out
    for pos in dep_pos:
        values[pos] = None          # the block reads dependencies from their checkpoints
    out_bv = out._bv
    dep_pos = tuple(dep_pos)
    keep_read_values(prim, deps, dep_pos, out_bv)
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
    if tape.observers:
        tape.notify_observers(block, len(blocks) - 1)


_SCALAR_TYPES = (float, int)
_POS_01, _POS_0, _POS_1 = (0, 1), (0,), (1,)
_NO_VALUES = (None, None)


def apply2(prim, a, b):
    """``apply`` for a two-argument primitive without keywords: the arithmetic hot path.

    Handles AdjFloats, crk arrays and Python numbers sharing one communicator; everything else
    (numpy constants, other types, mismatched communicators, errors) goes through :func:`apply`.
    """
    array_type = result_types.array
    scalar_type = result_types.scalar
    ta, tb = type(a), type(b)
    a_array, b_array = ta is array_type, tb is array_type
    a_rec = a_array or ta is scalar_type
    b_rec = b_array or tb is scalar_type
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
        align = result_types.align
        layout = align.operand_layout(prim, (a, b))
        if layout is align.REALIGN:
            return align.realign(prim, (a, b), None)
    try:
        ans = prim.fun(va, vb)
    except (ValueError, TypeError):
        return apply(prim, (a, b))           # recomputes and raises with a described call
    if a_array or b_array:
        out, out_bv = _new_array(ans, distributed, comm, array_type, layout)
        scalar_out = False
    else:
        ans = float(ans)
        out = float.__new__(scalar_type, ans)
        out._bv = out_bv = BlockVariable(ans)
        scalar_out = True
    if not _annotating.get():
        return out
    # The block is built here rather than by _record (one call and one tuple less per
    # operation); BlockVariable.reattach is inlined: a freed or stubbed checkpoint gets the
    # object's value back.
    block = PrimitiveBlock.__new__(PrimitiveBlock)
    if a_rec:
        bva = a._bv or a.create_block_variable()
        c = bva.checkpoint
        if c is None or type(c) is ShapeStub:
            bva.checkpoint = va
        block.dep0 = bva
        if b_rec:
            bvb = b._bv or b.create_block_variable()
            c = bvb.checkpoint
            if c is None or type(c) is ShapeStub:
                bvb.checkpoint = vb
            block.dep1 = bvb
            block.args = _NO_VALUES
            dep_pos = _POS_01
        else:
            block.dep1 = None
            block.args = (None, vb)
            dep_pos = _POS_0
    else:
        bvb = b._bv or b.create_block_variable()
        c = bvb.checkpoint
        if c is None or type(c) is ShapeStub:
            bvb.checkpoint = vb
        block.dep0 = bvb
        block.dep1 = None
        block.args = (va, None)
        dep_pos = _POS_1
    if not scalar_out:                       # scalars are never dropped
        keep_read_values(prim, block._dependencies, dep_pos, out_bv)
    block.out = out_bv
    block.prim = prim
    block.dep_pos = dep_pos
    block.scalar_out = scalar_out
    block.local_comm = comm if distributed else None
    tape = _working_tape.get()
    if tape is None:
        tape = get_working_tape()
    blocks = tape._blocks                    # Tape.add_block, inlined as in _record
    blocks.append(block)
    if tape.observers:
        tape.notify_observers(block, len(blocks) - 1)
    return out


def _new_array(value, distributed, comm, array_type, layout=None):
    """A crk.ndarray (and its BlockVariable) around a fresh result of an arithmetic op;
    ``layout``: the global layout of a distributed result (crk.distributed.layout)."""
    if type(value) is not np.ndarray or value.dtype.kind != "f" or \
            (value.ndim == 0 and not distributed):
        out = result_types.wrap(value, distributed, comm)
        if layout is not None and type(out) is array_type:
            out._layout = layout
        return out, out._bv
    value.flags.writeable = False
    out = array_type.__new__(array_type)
    out._value = value
    out._ad_distributed = distributed
    out._ad_comm = comm
    out._layout = layout
    out._bv = bv = BlockVariable(value, distributed, comm)
    return out, bv


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
