"""JAX point maps: constitutive relations written in JAX, per-point Jacobians by ``vmap``.

``@point_map(((-1,), (-1, 2), ()), (-1, 2))`` turns a function of batched arrays (``u`` of
shape (n,), ``g`` of shape (n, 2), a scalar parameter ``p``) into a :class:`JaxPointMap`
(``bare=True``: a plain function, the map as its ``point_map`` attribute). Calling it with crk
values records one block; its derivatives are JAX
transforms of the function; :meth:`JaxPointMap.jacobians` gives the per-point Jacobians of shape
(n, *out, *in) for all points at once: ``jacfwd`` (fewer inputs than outputs) or ``jacrev``
(otherwise) of the function at one point, vectorised over the points by ``vmap``, a chunk of
points at a time, with memory O(n × in × out).

Programs are compiled once per padded shape and shared by every call and block of the map
(``trace_counts`` counts the traces). The point axis of every compiled call is padded to a
bucket size (:func:`crk.backends.jax.bucket_size`); a call with distributed arguments uses the
bucket of the LARGEST local point count over the ranks, so every rank compiles and runs the same
programs (that agreement is a small collective at each such call). The plain-value methods
(``evaluate``, ``vjp``, ``jvp``, ``hvp``, ``jacobians``), called directly or by a composed map,
see only local values and pad to the local bucket. Everything runs in float64 without touching
JAX's global flag (see :mod:`crk.backends.jax`).
"""
import collections
import inspect

import numpy as np

from ..backends.jax import (JaxCall, Kernels, bucket_size, contains_tracer, float64, import_jax,
                            pad_points, resolve_device, shared_bucket)
from ..function_block import record_call
from ..overloaded_type import OverloadedType
from ..tape import annotating
from .point_map import PointMap, plain_float64, point_map_decorator
from .shapes import apply_pointwise


def _parameter_names(fn, count):
    """Names for error messages: ``fn``'s parameters when it takes exactly ``count``
    positional ones and nothing else, else None. (Laxer than
    :func:`crk.cr.shapes.positional_names`, which raises on an arity mismatch.)"""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if len(params) == count and all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                                    for p in params):
        return tuple(p.name for p in params)
    return None


class _PointMapCall(JaxCall):
    """One call of a JAX point map: checks the outputs against the declared shapes."""

    def __init__(self, point_map, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.point_map = point_map

    def evaluate(self, args):
        outs = super().evaluate(tuple(plain_float64(a) for a in args))
        pm = self.point_map
        if len(outs) != pm.n_outputs:
            raise ValueError(f"{pm.name}: declared {pm.n_outputs} output(s), the function "
                             f"returned {len(outs)} array(s)")
        for k, (o, s) in enumerate(zip(outs, pm.out_point_shapes)):
            if np.shape(o)[1:] != s:
                raise ValueError(f"{pm.name}: output {k} was declared with per-point shape {s} "
                                 f"(shape (-1, *{s})) but the function returned shape "
                                 f"{np.shape(o)} for {self.n} points")
        return outs


class JaxPointMap(PointMap):
    """A point map written in JAX. See the module docstring.

    ``fn``: with ``batched=True`` (default) a function of batched arrays (pointwise arguments
    with the point axis first, parameters as declared) returning batched outputs, computing
    each point independently; with ``batched=False`` a function of ONE point, vectorised here by
    ``jax.vmap``. ``in_shapes``/``out_shapes``: as for :class:`~crk.cr.point_map.PointMap`
    (``(-1, *s)`` pointwise, a plain shape for a parameter); at least one argument and every
    output must be pointwise; ``pointwise`` overrides the argument kinds as in
    :func:`crk.cr.shapes.apply_pointwise`. ``remat``: True (default, as for
    :func:`crk.overload_jax`) keeps no linearisation between the forward pass and the adjoint
    (rematerialised there); False keeps JAX's vjp residuals, which cost memory proportional to
    the points times the intermediates.
    ``jit``: compile (and pad to buckets). ``backend``: a JAX platform name or device.
    """

    def __init__(self, fn, in_shapes, out_shapes, pointwise=None, name=None, arg_names=None,
                 batched=True, jit=True, remat=True, backend=None):
        if not callable(fn):
            raise TypeError(f"JaxPointMap: expected a function, got {type(fn).__name__}")
        name = name or getattr(fn, "__name__", "jax point map")
        in_shapes = apply_pointwise(in_shapes, pointwise, name)
        if arg_names is None:
            arg_names = _parameter_names(fn, len(tuple(in_shapes)))
        super().__init__(in_shapes, out_shapes, name=name, arg_names=arg_names)
        if not any(self.pointwise):
            raise ValueError(f"{name}: at least one argument must be pointwise (shape "
                             f"(-1, ...)); got in_shapes={tuple(in_shapes)}")
        if not all(self.out_pointwise):
            raise ValueError(f"{name}: every output of a point map is per point (shape "
                             f"(-1, ...)); got out_shapes={tuple(out_shapes)}")
        self.fn = fn
        self.batched = bool(batched)
        self.jit = bool(jit)
        self.remat = bool(remat)
        self.backend = backend
        self.trace_counts = collections.Counter()
        self.kernels = Kernels(self._batched_fn, self.jit, self.trace_counts)
        self._device = None

    # -- the function in batched and per-point form -----------------------------------------
    def _as_tuple(self, out):
        return (out,) if self.single_output else tuple(out)

    def _batched_fn(self, args):
        if self.batched:
            return self._as_tuple(self.fn(*args))
        in_axes = tuple(0 if pw else None for pw in self.pointwise)
        return self._as_tuple(import_jax().vmap(self.fn, in_axes=in_axes)(*args))

    # -- calls on plain values ---------------------------------------------------------------
    def _bucket(self, n):
        return bucket_size(n) if self.jit else n

    def _call(self, args, diff_pos, bucket=None, keep_residuals=False):
        jax = import_jax()
        n = self._points(args)
        bucket = self._bucket(n) if bucket is None else bucket
        if self._device is None and self.backend is not None:
            self._device = resolve_device(self.backend)
        treedef = jax.tree_util.tree_structure(tuple(range(self.n_outputs)))
        avals = [((bucket,) + s, np.dtype(np.float64)) for s in self.out_point_shapes]
        return _PointMapCall(self, self.name, self.kernels, tuple(sorted(diff_pos)),
                             self.pointwise, n, bucket, keep_residuals, self._device,
                             out_spec=(treedef, avals))

    def evaluate(self, args):
        return self._call(args, ()).evaluate(args)

    def vjp(self, args, cotangents, argnums):
        args = tuple(plain_float64(a) for a in args)
        return self._call(args, argnums).vjp(args, cotangents, argnums)

    def jvp(self, args, tangents):
        args = tuple(plain_float64(a) for a in args)
        diff = tuple(i for i, t in enumerate(tangents) if t is not None)
        if not diff:
            n = self._points(args)
            return tuple(np.zeros((n,) + s) for s in self.out_point_shapes)
        return self._call(args, diff).jvp(args, tangents)

    def hvp(self, args, tangents, cotangents, argnums):
        args = tuple(plain_float64(a) for a in args)
        diff = set(argnums) | {i for i, t in enumerate(tangents) if t is not None}
        return self._call(args, diff).hvp(args, tangents, cotangents, argnums)

    # -- recorded calls ----------------------------------------------------------------------
    def __call__(self, *args):
        """Evaluate on n points; records one block when an argument is a recorded crk value.

        Collective over the communicator of the distributed arguments, if any (the ranks agree
        on the padded point count); otherwise not collective. Inside an outer JAX transform
        (an argument is a tracer) the function is called directly and nothing is recorded.
        """
        if contains_tracer(args):
            out = self._batched_fn(args)
            return out[0] if self.single_output else out
        from ..distributed.align import align_arguments
        args = align_arguments(args, self.name)     # distributed: the same points on every rank
        n = self.check_args(args)
        args = tuple(a if isinstance(a, OverloadedType) else plain_float64(a) for a in args)
        distributed = [a for a, pw in zip(args, self.pointwise)
                       if pw and isinstance(a, OverloadedType) and a._ad_distributed]
        bucket = shared_bucket(n, distributed[0]._ad_comm) if distributed and self.jit \
            else self._bucket(n)
        diff_pos = tuple(i for i, a in enumerate(args) if isinstance(a, OverloadedType))
        keep = not self.remat and annotating() and bool(diff_pos)
        call = self._call([plain_float64(a) for a in args], diff_pos, bucket, keep)
        outs = record_call(call, args, distributed_outputs=bool(distributed))
        return outs[0] if self.single_output else outs

    def jacobians(self, *args, argnums=None, mode=None, chunk_size=None):
        """Per-point Jacobians ``J[o][k]``, shape (n, *out_point_shape, *in_shape).

        Uses the point-map property (the outputs at a point depend only on that point's
        inputs): the function is differentiated at ONE point (``jacfwd``: a tangent e_j gives
        column j, forward; ``jacrev``: a cotangent e_i gives row i, reverse, pointwise
        arguments only) and that is vectorised over the points (``vmap``); all basis vectors
        of a pass go at once with one primal per point. ``mode``: None picks forward or
        reverse for the pointwise arguments by the number of basis vectors (forward on a tie),
        "forward"/"reverse" force it;
        parameters always go forward. A chunk of ``chunk_size`` points per compiled call
        (default :data:`~crk.cr.point_map.JACOBIAN_CHUNK`), so the extra memory is the
        Jacobian plus one chunk's temporaries; at most two compiled shapes per ``argnums``
        (full chunks and the last one). Not recorded; not collective.
        """
        return self._jacobians(args, argnums, mode, chunk_size, values=False)

    def value_and_jacobians(self, *args, argnums=None, mode=None, chunk_size=None):
        """The outputs and the per-point Jacobians (as :meth:`jacobians`) from the same compiled
        passes: the outputs are their primal, so they cost next to nothing extra."""
        return self._jacobians(args, argnums, mode, chunk_size, values=True)

    def _jacobians(self, args, argnums, mode, chunk_size, values):
        plan = self._jacobian_plan(args, argnums, mode)
        args = tuple(plain_float64(a) for a in args)
        reverse = plan.reverse
        jax = import_jax()
        program = self.kernels._program(
            "jacobians", (plan.argnums, reverse, values),
            lambda: self._jacobian_program(plan, reverse, values))
        if self._device is None and self.backend is not None:
            self._device = resolve_device(self.backend)

        def fill(chunk, blocks, outs=None):
            c = self._points(chunk)
            bucket = self._bucket(c)
            with float64():
                xs = tuple(pad_points(a, bucket) if pw else a
                           for a, pw in zip(chunk, self.pointwise))
                if self._device is not None:      # (else as in JaxCall._put)
                    xs = tuple(jax.device_put(x, self._device) for x in xs)
                result = program(xs)
            primal, jac = result if values else (None, result)
            for row, jac_row in zip(blocks, jac):
                for block, j in zip(row, jac_row):
                    block[...] = np.asarray(j)[:c]
            for out, y in zip(outs or (), primal or ()):
                out[...] = np.asarray(y)[:c]
        return self._chunked_jacobians(args, plan, fill, chunk_size, values=values)

    def _jacobian_program(self, plan, reverse, values=False):
        """The traced body of :meth:`jacobians` on padded arrays ``xs``: blocks[o][k] of shape
        (points, out_sizes[o], in_sizes[k]); with ``values`` (outputs, blocks), the outputs
        being the primal of the same pass (``has_aux``: computed once per point).

        The batched function is differentiated as a function of ONE point (its pointwise
        arguments given a point axis of length 1), by ``jacfwd`` (forward arguments) or
        ``jacrev`` (pointwise arguments when ``reverse``), and that per-point Jacobian is
        vectorised over the points by ``vmap``. XLA then computes each point's few tangents
        together with its primal; on a 3D stored energy (9 × 9 second derivatives per point)
        this is about three times faster than pushing whole-batch basis tangents through the
        batched gradient."""
        jax = import_jax()
        argnums, in_sizes, out_sizes = plan.argnums, plan.in_sizes, plan.out_sizes
        backward = plan.pointwise if reverse else ()
        forward = tuple(k for k in range(len(argnums)) if k not in backward)
        in_axes = tuple(0 if pw else None for pw in self.pointwise)

        def at_point(*args):                  # (outputs, the same outputs as aux)
            outs = self._batched_fn(tuple(a[None] if pw else a
                                          for a, pw in zip(args, self.pointwise)))
            outs = tuple(o[0] for o in outs)
            return outs, outs

        def program(xs):
            c = next(x for x, pw in zip(xs, self.pointwise) if pw).shape[0]
            blocks, primal = {}, None
            for ks, transform in ((forward, jax.jacfwd), (backward, jax.jacrev)):
                if not ks:
                    continue
                jac, primal = jax.vmap(
                    transform(at_point, argnums=tuple(argnums[k] for k in ks), has_aux=True),
                    in_axes=in_axes)(*xs)
                for o, row in enumerate(jac):         # (c, *out, *in) -> (c, out, in)
                    for k, j in zip(ks, row):
                        blocks[o, k] = j.reshape(c, out_sizes[o], in_sizes[k])
            jac = [[blocks[o, k] for k in range(len(argnums))] for o in range(len(out_sizes))]
            if not values:
                return jac
            return tuple(self._batched_fn(xs) if primal is None else primal), jac
        return program


def point_map(in_shapes, out_shape, bare=False, pointwise=None, name=None, **options):
    """Decorator: a JAX function of batched arrays as a :class:`JaxPointMap`.

    As :func:`crk.cr.autograd.point_map`: ``@point_map(((-1,), (-1, 2), ()), (-1, 2),
    bare=True)`` declares arguments u (n,), g (n, 2) and a scalar parameter, and one output of
    shape (n, 2); ``pointwise`` overrides the argument kinds. ``bare``: False returns the
    :class:`JaxPointMap`; True a plain function calling it, the map available as
    ``f.point_map``. ``options`` go to :class:`JaxPointMap` (``batched``, ``jit``,
    ``remat``, ``backend``).
    """
    return point_map_decorator(
        lambda fn: JaxPointMap(fn, in_shapes, out_shape, pointwise=pointwise, name=name,
                               **options), bare)
