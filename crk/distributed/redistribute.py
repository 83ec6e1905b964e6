"""Moving between distributed and replicated arrays, as recorded operations.

* :func:`gather` — distributed → replicated, rows in global order (one allgather); its adjoint
  gives every rank its own rows of the (replicated, complete) output adjoint: no message.
* :func:`scatter` — replicated → distributed with the given rows per rank (every rank takes its
  rows: no message); its adjoint is a gather of the rank-owned adjoints, so the replicated input
  receives its complete adjoint on every rank (nothing is left for the tape to sum).
* :func:`redistribute` — distributed → distributed with new rows per rank (messages only
  between ranks whose rows overlap); its adjoint moves the adjoint back.

All are collective over the array's communicator and work on every rank count, one included.
"""
import numpy as np

from ..overloaded_type import OverloadedType, result_types
from ..parallel.comm import resolve_comm
from ..tape import annotating, get_working_tape
from .layout import Layout, balanced, resolve
from .rowmap import Gather, RowMapBlock, Transposed, exchange_from_segments


def record_rowmap(rowmap, x, name, distributed, comm, layout=None):
    """Apply ``rowmap`` to crk value ``x``, wrap the result (distributed with ``layout``, else
    replicated) and record a RowMapBlock. Collective when the map communicates."""
    value = rowmap.apply(x._ad_create_checkpoint())
    out = result_types.wrap(value, distributed, comm)
    if distributed:
        out._layout = layout
    if annotating():
        block = RowMapBlock(rowmap, x, name)
        block.add_output(out)
        get_working_tape().add_block(block)
    return out


def _check_array(x, name, distributed):
    kind = "distributed" if distributed else "replicated"
    if not isinstance(x, result_types.array) or x._ad_distributed != distributed or np.ndim(x._value) == 0:
        given = (f"a {'distributed' if x._ad_distributed else 'replicated'} crk.ndarray of "
                 f"shape {np.shape(x._value)}" if isinstance(x, OverloadedType)
                 else type(x).__name__)
        raise TypeError(f"crk.{name}: argument 'x' must be a {kind} crk.ndarray with at least "
                        f"one dimension, got {given}")


def _target_layout(name, comm, total, counts):
    """The layout asked for by ``counts`` (None: balanced), checked against ``total`` rows."""
    size = comm.size
    if counts is None:
        return balanced(comm, total)
    if isinstance(counts, Layout):
        layout = counts
    else:
        try:
            counts = [int(c) for c in counts]
        except (TypeError, ValueError):
            raise TypeError(f"crk.{name}: argument 'counts' must be a sequence of {size} "
                            f"non-negative ints (rows per rank), got {counts!r}") from None
        if len(counts) != size or any(c < 0 for c in counts):
            raise ValueError(f"crk.{name}: argument 'counts' must give {size} non-negative row "
                             f"counts (one per rank of the communicator), got {counts}")
        layout = Layout.from_counts(comm, counts)
    if layout.total != total:
        raise ValueError(f"crk.{name}: argument 'counts' gives {layout.total} rows in all but "
                         f"the array has {total} rows (global length of axis 0)")
    return layout


def gather(x):
    """The replicated array holding every row of distributed ``x`` in global order.

    Recorded; collective over ``x.comm``. Its derivative needs no message (each rank takes its
    own rows of the replicated adjoint).
    """
    _check_array(x, "gather", True)
    (layout,) = resolve(x)
    rowmap = Gather(layout.comm, slice(0, layout.local), layout.counts, slice(0, layout.total),
                    layout.local, layout.total, where="crk.gather")
    return record_rowmap(rowmap, x, "gather", False, x._ad_comm)


def scatter(x, counts=None, comm=None):
    """The distributed array whose rank ``r`` holds rows ``offsets[r]:offsets[r + 1]`` of
    replicated ``x`` (axis 0), with ``counts`` rows per rank (default: as even as possible).

    ``counts`` must be the same on every rank. ``comm``: the communicator of the result
    (default ``x.comm``, else COMM_WORLD). Recorded; no message in the forward run, a gather in
    the adjoint. Collective over ``comm``.
    """
    _check_array(x, "scatter", False)
    comm = resolve_comm(comm if comm is not None else x._ad_comm)
    layout = _target_layout("scatter", comm, np.shape(x._value)[0], counts)
    return scatter_to(x, layout)


def scatter_to(x, layout):
    """``scatter`` onto a known layout (internal: no argument checks)."""
    comm = layout.comm
    rowmap = Transposed(Gather(comm, slice(0, layout.local), layout.counts,
                               slice(0, layout.total), layout.local, layout.total,
                               where="the adjoint of crk.scatter"))
    return record_rowmap(rowmap, x, "scatter", True, comm, layout)


def redistribute(x, counts=None):
    """Distributed ``x`` with ``counts`` rows per rank instead (default: as even as possible).

    ``counts`` must be the same on every rank. Recorded; each rank exchanges rows only with the
    ranks whose new rows overlap its old ones. Collective over ``x.comm``.
    """
    _check_array(x, "redistribute", True)
    (layout,) = resolve(x)
    target = _target_layout("redistribute", layout.comm, layout.total, counts)
    if target.same_as(layout):
        target = layout
    return redistribute_to(x, target)


def redistribute_to(x, target):
    """``redistribute`` onto a known layout (internal: no argument checks)."""
    (layout,) = resolve(x)
    rowmap = exchange_from_segments(layout, target, [(0, 0, layout.total)],
                                    token=target.token(), where="crk.redistribute")
    return record_rowmap(rowmap, x, "redistribute", True, x._ad_comm, target)
