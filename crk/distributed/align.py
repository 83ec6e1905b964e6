"""Operands of one operation on one global layout.

A recorded operation with distributed operands works piece by piece on every rank, which means
the global operation only when every distributed operand holds the same rows on every rank.
``u[1:]`` and ``u[:-1]`` do not (each keeps its rows where they were), nor do two arrays the user
split differently. :func:`operand_layout` (called by crk.recording for every operation with a
distributed operand) checks this cheaply: operands sharing one layout object are aligned.
Otherwise :func:`realign` records a redistribution of the later operands onto the first one's
layout (for ``u[1:] - u[:-1]`` one neighbour exchange) and runs the operation again.

Broadcasting operations (arithmetic and ufuncs) also follow numpy's rules on the global shapes:

* distributed operands must have the same number of dimensions (axis 0 of each is the
  distributed one) and the same global length;
* a replicated crk array whose leading axis lines up with the distributed axis is either of
  length 1 (broadcast) or of the global length (each rank takes its own rows: a scatter, no
  message); one of more dimensions would move the distributed axis and is refused;
* plain numpy arrays are this rank's pieces (as for ``x - data_piece``) and are left alone.

Calls that work point by point on several distributed arguments (point maps, pointwise JAX
functions) move them onto one layout first too (:func:`align_arguments`).

Every decision depends only on values every rank shares (shapes after axis 0, layouts, which
operands are distributed), so all ranks take the same branch.
"""
import types

from ..overloaded_type import register_result_types, result_types
from .layout import layout_of, resolve

REALIGN = object()      # operand_layout's answer when realign must run first

_tables = None
_elementwise = set()     # primitives of numpy's elementwise ufuncs (register_elementwise)


def register_elementwise(primitives):
    """Declare ``primitives`` elementwise with numpy broadcasting (the ufuncs' primitives,
    registered by crk.numpy_api): their results keep their distributed operands' rows."""
    global _tables
    _elementwise.update(primitives)
    _tables = None


def _rowwise_and_broadcasting():
    """(primitives whose result keeps its distributed operand's rows, broadcasting ones)."""
    global _tables
    if _tables is None:
        from .. import numpy_rules as R
        broadcasting = set(_elementwise) | {R.add, R.subtract, R.multiply, R.divide, R.power, R.mod,
                                 R.maximum, R.minimum, R.where}
        # Called on distributed arrays only with axis 0 kept: numpy_api routes sums over axis
        # 0 to the global reduction and refuses transposes and products that move it.
        rowwise = broadcasting | {R.negative, R.identity, R.local_sum, R.transpose, R.matmul}
        # x.at[rows].set(v): v holds the selected rows, not x's (crk.distributed.indexing)
        unaligned = {R.index_set, R.index_add}
        _tables = (frozenset(rowwise), frozenset(broadcasting), frozenset(unaligned))
    return _tables


def operand_layout(prim, args):
    """The layout of ``prim``'s result (None when unknown or not that of an operand), or
    REALIGN when the operands must be realigned first. Not collective."""
    rowwise, broadcasting, unaligned = _tables or _rowwise_and_broadcasting()
    if prim in unaligned:
        return None
    first = None
    ndim = 0
    for a in args:
        if isinstance(a, result_types.array) and a._ad_distributed:
            layout = a._layout
            if first is None:
                first = layout if layout is not None else layout_of(a)
                ndim = a._value.ndim
                continue
            if layout is not first and (layout is None or not layout.resolved or
                                        not first.resolved or not first.same_as(layout)):
                return REALIGN
            if a._value.ndim != ndim and prim in broadcasting:
                return REALIGN                 # realign raises the broadcasting error
    if first is None:
        return None
    if prim in broadcasting:
        for a in args:
            if isinstance(a, result_types.array) and not a._ad_distributed and \
                    _lines_up(a._value, ndim):
                return REALIGN
    return first if prim in rowwise else None


def _lines_up(value, ndim):
    """Whether a replicated operand's leading axis meets the distributed axis with length > 1
    (or goes beyond it)."""
    return value.ndim > ndim or (value.ndim == ndim and value.shape[0] != 1)


def realign(prim, args, kwargs):
    """Record ``prim`` on ``args`` after moving every distributed operand onto the first one's
    layout (and scattering replicated operands that line up with the distributed axis).
    Collective over the operands' communicator; errors are raised on every rank."""
    from ..recording import apply
    from .redistribute import redistribute_to, scatter_to
    _, broadcasting, _ = _tables or _rowwise_and_broadcasting()
    broadcasting = prim in broadcasting
    distributed = [a for a in args if isinstance(a, result_types.array) and a._ad_distributed]
    layouts = resolve(*distributed)
    target, ndim = layouts[0], distributed[0]._value.ndim
    aligned = []
    for a in args:
        if isinstance(a, result_types.array) and a._ad_distributed:
            layout = layout_of(a)
            if broadcasting and a._value.ndim != ndim:
                raise ValueError(_mismatch(prim, args, layouts, "the same number of dimensions"))
            if layout is not target:
                if layout.total != target.total:
                    raise ValueError(_mismatch(prim, args, layouts, "the same global length "
                                                                    "along axis 0"))
                if layout.same_as(target):
                    a._layout = target          # the same rows: share one layout object
                else:
                    a = redistribute_to(a, target)
        elif broadcasting and isinstance(a, result_types.array) and _lines_up(a._value, ndim):
            if a._value.ndim > ndim:
                raise ValueError(
                    f"crk {prim.name}: a replicated operand of shape {a._value.shape} would "
                    f"broadcast the distributed operands (of {ndim} dimensions) into more "
                    f"dimensions, moving their distributed axis 0; give the replicated operand "
                    f"at most {ndim} dimensions")
            if a._value.shape[0] != target.total:
                raise ValueError(_mismatch(prim, args, layouts, "a global length along axis 0 "
                                                                "that replicated operands "
                                                                "match or broadcast (length "
                                                                "1) against"))
            a = scatter_to(a, target)
        aligned.append(a)
    return apply(prim, tuple(aligned), kwargs)


def _mismatch(prim, args, layouts, what):
    shapes = []
    k = 0
    for a in args:
        if isinstance(a, result_types.array) and a._ad_distributed:
            shapes.append(f"{(layouts[k].total,) + a._value.shape[1:]} (distributed)")
            k += 1
        elif isinstance(a, result_types.array):
            shapes.append(f"{a._value.shape} (replicated)")
    return (f"crk {prim.name}: operands could not be broadcast together with global shapes "
            f"{' '.join(shapes)}; distributed operands must have {what}")


def align_arguments(args, what):
    """``args`` with every distributed crk array moved onto the first one's layout, for calls
    that work point by point on several distributed arguments (point maps, pointwise JAX
    functions): they need the same points on every rank. Collective over the arrays'
    communicator unless they already share one layout object; a different global number of
    points raises ValueError on every rank. ``what`` names the call in messages."""
    from .redistribute import redistribute_to
    distributed = [a for a in args if isinstance(a, result_types.array) and a._ad_distributed]
    if len(distributed) < 2 or all(a._layout is not None and a._layout is distributed[0]._layout
                                   for a in distributed[1:]):
        return args
    layouts = resolve(*distributed)
    target = layouts[0]
    if any(layout.total != target.total for layout in layouts):
        raise ValueError(f"{what}: the distributed arguments have different global numbers of "
                         f"points ({', '.join(str(layout.total) for layout in layouts)})")
    aligned = []
    for a in args:
        if isinstance(a, result_types.array) and a._ad_distributed and a._layout is not target:
            if a._layout.same_as(target):
                a._layout = target
            else:
                a = redistribute_to(a, target)
        aligned.append(a)
    return tuple(aligned)


# crk.recording asks this module, through the registration table, how to line up the
# distributed operands of every operation (it cannot import crk.distributed, which records).
register_result_types(align=types.SimpleNamespace(
    operand_layout=operand_layout, realign=realign, REALIGN=REALIGN))
