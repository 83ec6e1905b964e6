"""One recorded call of a JAX function: :class:`JaxCall`, the DifferentiableFunction of a block.

A :class:`JaxCall` holds what one call signature needs to evaluate and differentiate on plain
numpy leaves: the shared compiled programs (:class:`~crk.backends._jax_kernels.Kernels`), which
leaves are differentiated and which are pointwise, the local and padded point counts, and the
output structure. It pads pointwise inputs to the bucket size on the way in and cuts the
padding off on the way out; with ``keep_residuals`` it keeps the vjp linearisation of its last
evaluation and reuses it in the adjoint while the inputs are the same objects.

Every method runs locally on the calling rank (not collective). Importing this module does not
import JAX.
"""
import weakref

import numpy as np

from ..function_block import DifferentiableFunction
from ._jax_kernels import import_jax, float64, pad_points


def _fingerprint(value):
    """Identify an input value cheaply: arrays by identity (without keeping them alive; crk
    values are immutable), scalars by their bits (the tape re-creates float objects)."""
    if isinstance(value, np.ndarray) and value.ndim:
        return weakref.ref(value)
    return np.asarray(value, dtype=np.float64).tobytes()


def _same_value(fingerprint, value):
    if isinstance(fingerprint, weakref.ref):
        return fingerprint() is value
    return np.ndim(value) == 0 and np.asarray(value, dtype=np.float64).tobytes() == fingerprint


class JaxCall(DifferentiableFunction):
    """One call of a JAX function on plain leaves: the DifferentiableFunction of one block.

    ``args`` are the flattened dynamic leaves of the call. ``diff_pos``: the leaves that are
    differentiated (the recorded ones). ``point_mask``/``n``/``bucket``: which leaves are
    pointwise, the local number of points and the padded number. ``keep_residuals``: keep the
    vjp linearisation of the last evaluation for the adjoint (``remat=False``).
    """

    def __init__(self, name, kernels, diff_pos, point_mask, n, bucket, keep_residuals, device,
                 out_spec=None):
        self.name = name
        self.kernels = kernels
        self.diff_pos = tuple(diff_pos)
        self.point_mask = tuple(point_mask)
        self.n = n
        self.bucket = bucket
        self.keep_residuals = keep_residuals
        self.device = device
        self.out_treedef = None
        self.out_avals = None      # (shape, dtype) of each output leaf, padded
        self.out_float = None      # which output leaves are floating (recorded)
        self.aux_outputs = None    # values of the non-floating output leaves (not recorded)
        self._residuals = None
        if out_spec is not None:   # outputs known in advance: derivatives without evaluating
            self.out_treedef, self.out_avals = out_spec
            self.out_float = [True] * len(self.out_avals)

    # -- conversion --------------------------------------------------------------------------
    def _put(self, value, pointwise, zeros=False):
        if pointwise and self.bucket != self.n:
            value = pad_points(value, self.bucket, zeros)
        # Without a device, the compiled program takes the numpy array itself: its C++ call
        # path moves it to JAX's default device in a fraction of device_put's time.
        return value if self.device is None else import_jax().device_put(value, self.device)

    def _inputs(self, args):
        return tuple(self._put(np.asarray(a), pw) for a, pw in zip(args, self.point_mask))

    def _host(self, value, pointwise):
        value = np.asarray(value)
        return value[:self.n] if pointwise and self.bucket != self.n else value

    @property
    def _empty(self):
        return self.n == 0

    def _cotangents(self, cotangents):
        """Full output cotangent pytree (zeros for None, float0 for non-floating outputs)."""
        jax = import_jax()
        cts, it = [], iter(cotangents)
        pointwise = self.n is not None
        for (shape, dtype), is_float in zip(self.out_avals, self.out_float):
            if not is_float:
                cts.append(np.zeros(shape, dtype=jax.dtypes.float0))
                continue
            c = next(it)
            c = np.zeros(shape, dtype) if c is None else np.asarray(c, dtype=dtype)
            cts.append(self._put(c, pointwise, zeros=True))
        return jax.tree_util.tree_unflatten(self.out_treedef, cts)

    def _tangents(self, args, tangents):
        return tuple(self._put(np.zeros_like(np.asarray(args[p])) if tangents[p] is None
                               else np.asarray(tangents[p], dtype=np.asarray(args[p]).dtype),
                               self.point_mask[p], zeros=True)
                     for p in self.diff_pos)

    # -- DifferentiableFunction --------------------------------------------------------------
    def evaluate(self, args):
        jax = import_jax()
        with float64():
            if self._empty:
                return self._evaluate_empty(args)
            xs = self._inputs(args)
            if self.keep_residuals and self.diff_pos:
                out, pullback = self.kernels.forward_vjp(self.diff_pos)(xs)
                self._residuals = (tuple(_fingerprint(args[p]) for p in self.diff_pos), pullback)
            else:
                out = self.kernels.forward()(xs)
        leaves, treedef = jax.tree_util.tree_flatten(out)
        self._describe_outputs(leaves, treedef)
        pointwise = self.n is not None
        self.aux_outputs = [self._host(v, pointwise) for v, f in zip(leaves, self.out_float)
                            if not f]
        return tuple(self._host(v, pointwise) for v, f in zip(leaves, self.out_float) if f)

    def _evaluate_empty(self, args):
        """No local points: shapes from an abstract evaluation, nothing computed or compiled."""
        jax = import_jax()
        shapes = tuple(jax.ShapeDtypeStruct(((self.bucket,) + np.shape(a)[1:]) if pw
                                            else np.shape(a), np.asarray(a).dtype)
                       for a, pw in zip(args, self.point_mask))
        out = jax.eval_shape(self.kernels.fn, shapes)
        leaves, treedef = jax.tree_util.tree_flatten(out)
        self._describe_outputs(leaves, treedef)
        zeros = [np.zeros((0,) + tuple(v.shape[1:]), dtype=v.dtype) for v in leaves]
        self.aux_outputs = [z for z, f in zip(zeros, self.out_float) if not f]
        return tuple(z for z, f in zip(zeros, self.out_float) if f)

    def _describe_outputs(self, leaves, treedef):
        jax = import_jax()
        self.out_treedef = treedef
        dtypes = [np.dtype(v.dtype) if hasattr(v, "dtype") else np.asarray(v).dtype
                  for v in leaves]
        self.out_avals = [(tuple(np.shape(v)), d) for v, d in zip(leaves, dtypes)]
        self.out_float = []
        for k, (v, dtype) in enumerate(zip(leaves, dtypes)):
            if jax.numpy.issubdtype(dtype, jax.numpy.complexfloating):
                raise TypeError(f"{self.name}: output leaf {k} is complex ({dtype}); crk "
                                f"records real floating-point values")
            self.out_float.append(bool(jax.numpy.issubdtype(dtype, jax.numpy.floating)))
            if self.n is not None and (not np.shape(v) or np.shape(v)[0] != self.bucket):
                raise ValueError(
                    f"{self.name}: declared pointwise, so every output needs the point axis "
                    f"first (length {self.bucket} as called), but output leaf {k} has shape "
                    f"{tuple(np.shape(v))}")

    def _select(self, grads, argnums):
        by_pos = dict(zip(self.diff_pos, grads))
        return tuple(None if by_pos.get(a) is None else self._host(by_pos[a], self.point_mask[a])
                     for a in argnums)

    def _zeros(self, args, argnums):
        return tuple(np.zeros_like(np.asarray(args[a], dtype=float)) for a in argnums)

    def vjp(self, args, cotangents, argnums):
        if self._empty:
            return self._zeros(args, argnums)
        with float64():
            ct = self._cotangents(cotangents)
            res = self._residuals
            if res is not None and all(_same_value(fp, args[p])
                                       for fp, p in zip(res[0], self.diff_pos)):
                grads = self.kernels.vjp_from_residuals()(res[1], ct)
            else:
                grads = self.kernels.vjp(self.diff_pos)(self._inputs(args), ct)
        return self._select(grads, argnums)

    def jvp(self, args, tangents):
        if self._empty:
            return tuple(np.zeros((0,) + s[1:], d)
                         for (s, d), f in zip(self.out_avals, self.out_float) if f)
        jax = import_jax()
        with float64():
            out = self.kernels.jvp(self.diff_pos)(self._inputs(args),
                                                  self._tangents(args, tangents))
        leaves = jax.tree_util.tree_leaves(out)
        pointwise = self.n is not None
        return tuple(self._host(v, pointwise) for v, f in zip(leaves, self.out_float) if f)

    def hvp(self, args, tangents, cotangents, argnums):
        if self._empty:
            return self._zeros(args, argnums)
        with float64():
            grads = self.kernels.hvp(self.diff_pos)(
                self._inputs(args), self._tangents(args, tangents), self._cotangents(cotangents))
        return self._select(grads, argnums)

    def release(self):
        self._residuals = None

    def residual_bytes(self):
        """Bytes of device memory held for the adjoint (0 after release or with remat)."""
        if self._residuals is None:
            return 0
        return sum(getattr(leaf, "nbytes", 0)
                   for leaf in import_jax().tree_util.tree_leaves(self._residuals[1]))
