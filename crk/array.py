"""crk.ndarray: a numpy array on the tape, replicated or distributed over a communicator.

A crk.ndarray wraps a read-only numpy array. Arithmetic, indexing, numpy ufuncs and the functions
in :mod:`crk.numpy_api` are recorded. Values are immutable: ``x[i] = v`` is refused (use
``x = x.at[i].set(v)``), and ``x += y`` rebinds ``x`` to a new recorded value.

Distributed arrays are split along axis 0: each rank holds its own piece (possibly empty), and the
array means the whole global array: indexing along axis 0 is global (see
:mod:`crk.distributed.indexing`), reductions over axis 0 are global (:mod:`crk.numpy_api`).
``.value``, ``.shape`` and ``np.asarray(x)`` are this rank's piece.
"""
import numpy as np

from . import numpy_api as api
from . import numpy_rules as R
from .adjfloat import AdjFloat
from .block_variable import BlockVariable
from .lifetime import object_released
from .overloaded_type import (OverloadedType, plain_value, register_overloaded_type,
                              register_result_types)
from .parallel.comm import resolve_comm
from .distributed import indexing as _indexing
from .recording import apply, apply2


class ndarray(OverloadedType):
    """A recorded numpy array. Create with :func:`crk.array`.

    ``distributed``: each rank holds its own piece along axis 0 (else replicated: all ranks hold
    the same value). ``comm``: the communicator (None for a replicated array not tied to one).
    """

    # _layout: the global layout of a distributed array (crk.distributed.layout), None until
    # an operation needs it or hands down its operand's
    __slots__ = ("_value", "_bv", "_ad_distributed", "_ad_comm", "_layout")
    __array_priority__ = 100.0
    __hash__ = None

    def __init__(self, value, distributed=False, comm=None):
        value = np.array(value)            # a private copy: the caller's array stays theirs
        value.flags.writeable = False
        self._value = value
        self._bv = None
        self._ad_distributed = distributed
        self._ad_comm = comm
        self._layout = None

    @classmethod
    def _owning(cls, value, distributed, comm):
        """A crk.ndarray taking ownership of ``value`` (a fresh result nobody else holds)."""
        if value.flags.writeable:
            value.flags.writeable = False
        self = cls.__new__(cls)
        self._value = value
        self._bv = None
        self._ad_distributed = distributed
        self._ad_comm = comm
        self._layout = None
        return self

    def __del__(self):
        # The user's object is gone, so no new block can read this value; crk.lifetime decides
        # whether the tape keeps it (the test here only spares that call for kept values).
        try:
            bv = self._bv
        except AttributeError:       # construction failed half-way
            return
        if bv is not None and not bv.keep and bv.checkpoint is self._value:
            object_released(bv, self._value)

    # -- OverloadedType ----------------------------------------------------------------------
    def _ad_create_checkpoint(self):
        return self._value

    def _ad_from_value(self, value):
        return ndarray(np.asarray(value, dtype=self._value.dtype), self._ad_distributed,
                       self._ad_comm)

    def create_block_variable(self):
        bv = BlockVariable(self._value, self._ad_distributed, self._ad_comm)
        self._bv = bv
        return bv

    # -- array attributes --------------------------------------------------------------------
    @property
    def value(self):
        """The (read-only) numpy value of this rank's piece."""
        return self._value

    @property
    def distributed(self):
        return self._ad_distributed

    @property
    def comm(self):
        return self._ad_comm

    shape = property(lambda self: self._value.shape)
    dtype = property(lambda self: self._value.dtype)
    ndim = property(lambda self: self._value.ndim)
    size = property(lambda self: self._value.size)

    def global_shape(self):
        """Shape of the whole array (axis 0 summed over ranks when distributed). Collective."""
        shape = self._value.shape
        if not self._ad_distributed or not shape:
            return shape
        from .distributed.layout import resolve
        return (resolve(self)[0].total,) + shape[1:]

    def __len__(self):
        if self._ad_distributed:
            _refuse_local(self, "len()", "x.global_shape()[0] (collective) or x.shape[0] (the "
                                         "rows of this rank's piece)")
        return len(self._value)

    def __iter__(self):
        if self._ad_distributed:
            _refuse_local(self, "iteration", "iterate over crk.gather(x) (replicated) or over "
                                             "x.value (this rank's piece, unrecorded)")
        for i in range(len(self._value)):
            yield self[i]

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and dtype != self._value.dtype:
            return self._value.astype(dtype)
        if copy:
            return self._value.copy()
        return self._value

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return api.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return api.array_function(func, args, kwargs)

    def __repr__(self):
        kind = "distributed" if self._ad_distributed else "replicated"
        return f"crk.array({np.array2string(self._value, separator=', ')}, {kind})"

    def __bool__(self):
        if self._ad_distributed:
            _refuse_local(self, "bool()", "reduce it first (crk.sum, np.any(x.value), ...)")
        return bool(self._value)

    def __float__(self):
        if self._ad_distributed:
            _refuse_local(self, "float()", "index it (float(x[0]) is replicated) or gather it")
        return float(self._value)

    def item(self):
        """The plain Python scalar of a one-element array (not recorded)."""
        if self._ad_distributed:
            _refuse_local(self, "item()", "index it (float(x[0]) is replicated) or gather it")
        return self._value.item()

    def tolist(self):
        if self._ad_distributed:
            _refuse_local(self, "tolist()", "use crk.gather(x).tolist() for the whole array or "
                                            "x.value.tolist() for this rank's piece")
        return self._value.tolist()

    # -- recorded arithmetic -----------------------------------------------------------------
    def __add__(self, o): return apply2(R.add, self, o)
    def __radd__(self, o): return apply2(R.add, o, self)
    def __sub__(self, o): return apply2(R.subtract, self, o)
    def __rsub__(self, o): return apply2(R.subtract, o, self)
    def __mul__(self, o): return apply2(R.multiply, self, o)
    def __rmul__(self, o): return apply2(R.multiply, o, self)
    def __truediv__(self, o): return apply2(R.divide, self, o)
    def __rtruediv__(self, o): return apply2(R.divide, o, self)
    def __pow__(self, o): return apply2(R.power, self, o)
    def __rpow__(self, o): return apply2(R.power, o, self)
    def __matmul__(self, o): return api.matmul(self, o)
    def __rmatmul__(self, o): return api.matmul(o, self)
    def __mod__(self, o): return apply2(R.mod, self, o)
    def __rmod__(self, o): return apply2(R.mod, o, self)
    # floor division is piecewise constant: zero derivative, a plain array
    def __floordiv__(self, o): return self._value // plain_value(o)
    def __rfloordiv__(self, o): return plain_value(o) // self._value
    def __divmod__(self, o): return self // o, self % o
    def __neg__(self): return apply(R.negative, (self,))
    def __pos__(self): return self
    def __abs__(self): return apply(R.absolute, (self,))

    # comparisons give plain boolean arrays (zero derivative)
    def __lt__(self, o): return self._value < plain_value(o)
    def __le__(self, o): return self._value <= plain_value(o)
    def __gt__(self, o): return self._value > plain_value(o)
    def __ge__(self, o): return self._value >= plain_value(o)
    def __eq__(self, o): return self._value == plain_value(o)
    def __ne__(self, o): return self._value != plain_value(o)

    # -- indexing ----------------------------------------------------------------------------
    def __getitem__(self, index):
        """``x[index]``; on a distributed array axis 0 is indexed globally (collective, see
        crk.distributed.indexing)."""
        if self._ad_distributed:
            return _indexing.getitem(self, _plain_index(index))
        return apply(R.getitem, (self,), dict(index=_plain_index(index)))

    def __setitem__(self, index, value):
        raise TypeError(
            "crk.ndarray does not support item assignment: recorded values are immutable, so an "
            "in-place change would be lost to the tape. Write x = x.at[index].set(value) "
            "(or .add(value)), which records a new value.")

    @property
    def at(self):
        """Functional updates: ``x.at[i].set(v)`` / ``x.at[i].add(v)`` return new recorded arrays."""
        return _IndexUpdater(self)

    # -- methods mirroring numpy -------------------------------------------------------------
    @property
    def T(self): return api.transpose(self)
    def sum(self, axis=None, keepdims=False): return api.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return api.mean(self, axis, keepdims)
    def dot(self, other): return api.dot(self, other)
    def reshape(self, *shape):
        return api.reshape(self, shape[0] if len(shape) == 1 else shape)
    def ravel(self): return api.ravel(self)
    def flatten(self): return api.ravel(self)
    def squeeze(self, axis=None): return api.squeeze(self, axis)
    def transpose(self, *axes): return api.transpose(self, axes[0] if len(axes) == 1 else
                                                     (axes or None))
    def copy(self): return api.copy(self)
    def prod(self, axis=None, keepdims=False): return api.prod(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return api.max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return api.min(self, axis, keepdims)
    def cumsum(self, axis=None): return api.cumsum(self, axis)
    def var(self, axis=None, ddof=0, keepdims=False): return api.var(self, axis, ddof, keepdims)
    def std(self, axis=None, ddof=0, keepdims=False): return api.std(self, axis, ddof, keepdims)
    def clip(self, min=None, max=None): return api.clip(self, min, max)
    def argmax(self, axis=None): return np.argmax(self, axis)
    def argmin(self, axis=None): return np.argmin(self, axis)


class _IndexUpdater:
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index):
        return _IndexUpdate(self.array, _plain_index(index))


class _IndexUpdate:
    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array, self.index = array, index

    def set(self, value):
        return self._update(value, add=False)

    def add(self, value):
        return self._update(value, add=True)

    def _update(self, value, add):
        x = self.array
        if x._ad_distributed:
            return _indexing.update(x, self.index, value, add)
        if isinstance(value, OverloadedType) and value._ad_distributed:
            raise ValueError(
                f"crk: x.at[...].{'add' if add else 'set'}(value): value is distributed but x is "
                f"replicated; gather the value (crk.gather) or scatter x (crk.scatter) first")
        return apply(R.index_add if add else R.index_set, (x, value), dict(index=self.index))


def _plain_index(index):
    """The index as the tape keeps it: arrays and lists become private read-only copies (the
    user may reuse their buffers), recorded values their plain (integer) values."""
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    if isinstance(index, OverloadedType):
        value = index._ad_create_checkpoint()
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            raise TypeError("crk.ndarray indices must be integers, slices or boolean masks, "
                            "not recorded floating-point values")
        index = value
    if isinstance(index, (list, np.ndarray)):
        index = np.array(index)
        index.flags.writeable = False
    return index


def _refuse_local(x, what, instead):
    """Refuse a conversion of a distributed array whose numpy meaning would be global but
    whose value here is only this rank's piece (on every rank alike: x.distributed is)."""
    raise TypeError(f"crk: {what} of a distributed crk.ndarray would see only this rank's piece; "
                    f"{instead}")


def _contains_overloaded(values):
    if isinstance(values, OverloadedType):
        return True
    if isinstance(values, (list, tuple)):
        return any(_contains_overloaded(v) for v in values)
    return False


def _stack_nested(values):
    if isinstance(values, (list, tuple)):
        return api.stack([_stack_nested(v) for v in values])
    return values


def array(values, *, comm=None, distributed=False, dtype=None):
    """Create a recorded numpy array (crk.ndarray).

    ``values``: anything ``numpy.array`` accepts (a generator is consumed); recorded values
    inside lists are stacked on the tape. ``distributed=True``: ``values`` is this rank's piece
    along axis 0 of a distributed array on ``comm`` (keyword-only; an mpi4py communicator,
    default COMM_WORLD). A replicated array (the default) must hold the same value on every
    rank; ``comm`` is then optional. ``dtype``: a floating dtype (default float64; integer
    input becomes float64). Not collective.
    """
    if hasattr(values, "__next__"):
        values = list(values)
    if distributed:
        comm = resolve_comm(comm, "crk.array()")
    elif comm is not None:
        resolve_comm(comm, "crk.array()")
    if isinstance(values, ndarray):
        if values._ad_distributed != bool(distributed):
            kind = "distributed" if values.distributed else "replicated"
            raise ValueError(
                f"crk.array(): argument 'values' is a {kind} crk.ndarray but "
                f"distributed={distributed!r} was asked; crk cannot change an array's "
                f"distribution")
        return api.copy(values)
    if _contains_overloaded(values):
        out = _stack_nested(values)
        return out if isinstance(out, ndarray) else api.copy(out)
    value = np.array(values, dtype=dtype)
    if not np.issubdtype(value.dtype, np.floating):
        if np.issubdtype(value.dtype, np.complexfloating):
            raise TypeError("crk.array(): argument 'values' is complex; crk records real "
                            "floating-point values")
        if value.dtype == object:
            raise TypeError("crk.array(): argument 'values' could not be converted to a "
                            "floating-point array (numpy gave an object array)")
        value = value.astype(np.float64)
    if distributed and value.ndim == 0:
        raise ValueError("crk.array(): argument 'values' is this rank's piece of a distributed "
                         "array and needs at least one dimension (the distributed axis 0), got "
                         "a scalar; pass an array of shape (rows, ...)")
    return ndarray._owning(value, bool(distributed), comm)


def wrap_result(value, distributed, comm):
    """Wrap a primitive's plain result: AdjFloat for replicated scalars, else crk.ndarray."""
    if not distributed and (type(value) is float or np.ndim(value) == 0):
        out = AdjFloat(value)
        out._bv = BlockVariable(float(value))
        return out
    value = np.asarray(value)
    if value.dtype.kind != "f":
        return value                       # integer/boolean results are not differentiable
    out = ndarray._owning(value, distributed, comm)
    # keep stays True unless a recorded block says no rule reads it (crk.lifetime.keep_read_values).
    out._bv = BlockVariable(out._value, distributed, comm)
    return out


register_result_types(array=ndarray, wrap=wrap_result)
register_overloaded_type(np.ndarray, lambda v, comm=None, distributed=False:
                         array(v, comm=comm, distributed=distributed))
register_overloaded_type((int, np.floating, np.integer),
                         lambda v, comm=None, distributed=False: AdjFloat(float(v)))
