"""OverloadedType: the interface a value type implements to live on the tape, and the tables
the value types register into.

A type stores its BlockVariable and converts between itself and the plain value the tape holds.
Built-in types: :class:`crk.AdjFloat` (replicated scalars) and :class:`crk.ndarray` (replicated or
distributed numpy arrays). Two registration tables, filled when those modules define their
classes (autograd's way: the core names no value type, the types register with the core):

* :data:`result_types` — the types recorded results are made of, the function wrapping a
  primitive's plain result, and the alignment of distributed operands (read by
  :mod:`crk.recording`, whose arithmetic the types' operators call, so it cannot import them);
* the converters of :func:`create_overloaded_object` (:func:`register_overloaded_type`), for
  wrapping a user's plain value; backends may register their own.
"""
import numpy as np

from .block_variable import BlockVariable

_converters = []   # (type, converter) pairs, consulted in order by create_overloaded_object


class ResultTypes:
    """The crk types of recorded results. ``scalar``: the replicated scalar type (AdjFloat),
    ``array``: the array type (crk.ndarray), ``wrap(value, distributed, comm)``: a primitive's
    plain result as a new crk value of the right type, ``align``: the module deciding the
    global layout of an operation's distributed operands and result (crk.distributed.align:
    ``operand_layout``, ``realign``, ``REALIGN``). Set once each by
    :func:`register_result_types`."""

    __slots__ = ("scalar", "array", "wrap", "align")

    def __init__(self):
        self.scalar = self.array = self.wrap = self.align = None


result_types = ResultTypes()


def register_result_types(scalar=None, array=None, wrap=None, align=None):
    """Register the scalar type, the array type, the result-wrapping function and/or the
    operand alignment (see :class:`ResultTypes`); called by crk.adjfloat, crk.array and
    crk.distributed.align at import."""
    if scalar is not None:
        result_types.scalar = scalar
    if array is not None:
        result_types.array = array
    if wrap is not None:
        result_types.wrap = wrap
    if align is not None:
        result_types.align = align


class OverloadedType:
    """Mixin for values that can be recorded.

    Subclasses provide a ``_bv`` slot (or attribute) and implement:

    ``_ad_create_checkpoint()``
        the plain value the tape keeps for this object (must not change afterwards);
    ``_ad_from_value(value)`` (classmethod-like, on an instance used as template)
        a new object of the same type, distribution and communicator holding plain ``value``;
    ``_ad_distributed`` / ``_ad_comm``
        whether each rank holds its own piece, and the communicator (None if none).
    """

    __slots__ = ()
    _ad_distributed = False
    _ad_comm = None

    @property
    def block_variable(self):
        bv = self._bv
        if bv is None:
            bv = self.create_block_variable()
        return bv

    def create_block_variable(self):
        """Give this object a fresh BlockVariable holding its current value; returns it."""
        bv = BlockVariable(self._ad_create_checkpoint(), self._ad_distributed, self._ad_comm)
        self._bv = bv
        return bv

    def _ad_create_checkpoint(self):
        raise NotImplementedError

    def _ad_from_value(self, value):
        raise NotImplementedError


def plain_value(value):
    """The plain value of a crk value (what the tape holds); any other value unchanged."""
    return value._ad_create_checkpoint() if isinstance(value, OverloadedType) else value


def plain_of_shape(value, shape, scalar, what):
    """The plain value of ``value`` as an output weight or direction: a float if ``scalar``,
    else a float64 array of ``shape`` (a ValueError naming ``what`` otherwise). Not collective."""
    value = plain_value(value)
    if scalar:
        return float(value)
    value = np.asarray(value, dtype=np.float64)
    if value.shape != shape:
        raise ValueError(f"{what}: expected shape {shape}, got {value.shape}")
    return value


def register_overloaded_type(python_type, converter):
    """Teach :func:`create_overloaded_object` to wrap values of ``python_type``."""
    _converters.append((python_type, converter))


def create_overloaded_object(obj, *, comm=None, distributed=False):
    """Wrap a plain value as an overloaded one (pyadjoint's name): floats become AdjFloat,
    numpy arrays crk.ndarray; overloaded values are returned unchanged. ``comm`` (keyword-only,
    an mpi4py communicator) and ``distributed`` as for :func:`crk.array`."""
    if isinstance(obj, OverloadedType):
        return obj
    for python_type, converter in _converters:
        if isinstance(obj, python_type):
            return converter(obj, comm=comm, distributed=distributed)
    raise TypeError(f"create_overloaded_object(): no crk overloaded type for "
                    f"{type(obj).__name__}; expected a float, a numpy array or a backend value")
