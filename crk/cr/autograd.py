"""Autograd point maps: a function written with ``autograd.numpy`` as a crk :class:`PointMap`.

::

    import autograd.numpy as np
    from crk.cr.autograd import point_map

    @point_map(((-1,), (-1, 2), ()), (-1, 2), bare=True)
    def flux(u, g, p):                      # u: (n,), g: (n, 2), p: a float shared by all points
        mu = (np.sum(g * g, axis=1) + 1.e-12) ** ((p - 2.) / 2.)
        return np.reshape(mu, mu.shape + (1,)) * g

Calling ``flux`` on crk values records one block on the tape (all four derivative kinds);
on plain numpy values it just computes. ``flux.point_map`` is the :class:`AutogradPointMap`,
which also gives batched per-point Jacobians (:meth:`AutogradPointMap.jacobians`).

How derivatives are taken. Autograd only ever sees plain numpy values: crk values are
unwrapped first, and nothing is registered into autograd's boxes or vector spaces. The map is
stateless between forward and adjoint (each derivative call re-traces the function), so the
tape holds only the map's inputs and outputs.

* vjp: reverse mode (``autograd.core.make_vjp``).
* jvp: forward mode (``autograd.core.make_jvp``). Some autograd primitives (e.g. ``inv`` and
  ``det`` in ``autograd.numpy.linalg``) have no forward rule; for those the jvp is the
  derivative of the (linear) vjp with respect to its cotangent ("double vjp"), chosen once per
  set of differentiated arguments and remembered.
* hvp: reverse-over-reverse, ``d/dx <vjp(x, w), t>``, which is the second-order term because
  the Hessian of ``<F, w>`` is symmetric.

Batched per-point Jacobians rely on one assumption, the defining property of a point map: the
outputs at point p depend only on the pointwise inputs at point p (and on the parameters).
Then a tangent that is the unit vector e_j at *every* point gives, in one forward pass, column
j of every point's Jacobian; a cotangent e_i on every point gives, in one reverse pass, row i
of every point's Jacobian. crk takes whichever needs fewer passes. Parameters are shared by all
points, so a reverse pass would sum their derivative over points: their columns are always
computed forward. Memory is the Jacobian (n × out × in) plus one pass's temporaries, never
the forward pass replicated per output component. A map that mixes points (np.mean over the
point axis, np.roll, ...) breaks the assumption and its ``jacobians`` are wrong; its
vjp/jvp/hvp are still right.

Importing this module does not import autograd; that happens at the first evaluation.
"""
import contextlib
import warnings

import numpy as np

from .point_map import PointMap, plain_float64, point_map_decorator
from .shapes import apply_pointwise, positional_names

_INDEPENDENT = "Output seems independent of input"


def _autograd_core():
    """autograd's make_vjp / make_jvp / tuple builder, imported on first use."""
    from autograd import builtins, core
    return core.make_vjp, core.make_jvp, builtins.tuple


def _isbox(value):
    from autograd.tracer import isbox
    return isbox(value)


@contextlib.contextmanager
def _quiet():
    """Autograd warns when an output does not depend on the differentiated input (a zero
    derivative, e.g. the second derivative of a linear map); that is a normal case here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_INDEPENDENT)
        yield


class AutogradPointMap(PointMap):
    """A point map defined by a function written with ``autograd.numpy``.

    ``func(*args)`` takes one value per entry of ``in_shapes`` and returns one array (a single
    ``out_shapes``) or a tuple of arrays. See :func:`point_map` for shapes and ``pointwise``.
    Calls are not collective: every method works on this rank's points only (the tape does any
    reduction over ranks).
    """

    #: Reverse on a tie in ``jacobians``: all reverse passes share one traced forward pass
    #: (3D stress in scripts/bench_pointwise.py: about 2x faster than 9 forward passes).
    jacobian_reverse_on_tie = True

    def __init__(self, func, in_shapes, out_shapes, pointwise=None, name=None):
        name = name or getattr(func, "__name__", "autograd point map")
        in_shapes = apply_pointwise(in_shapes, pointwise, name)
        names = positional_names(func, len(in_shapes))
        super().__init__(in_shapes, out_shapes, name=name, arg_names=names)
        self.func = func
        self._forward_ok = {}     # frozenset(argnums) -> does autograd's forward mode work?

    # -- calling -------------------------------------------------------------------------------
    def __call__(self, *args):
        """Evaluate on crk values (recording one block) or plain values (just computing).

        Inside an enclosing autograd trace (arguments are autograd boxes) the function is
        called directly, so point maps compose with autograd.
        """
        from ..distributed.align import align_arguments
        args = align_arguments(args, self.name)     # distributed: the same points on every rank
        self.check_args(args)
        if any(_isbox(a) for a in args):
            return self.func(*args)
        return super().__call__(*args)

    @staticmethod
    def _plain_args(args):
        return tuple(plain_float64(a) for a in args)

    def _traced(self, args, argnums):
        """``func`` as a function of the tuple of arguments ``argnums`` (others fixed), whose
        result is one array or an autograd tuple of the outputs."""
        make_tuple = _autograd_core()[2]

        def traced(x):
            full = list(args)
            for k, a in enumerate(argnums):
                full[a] = x[k]
            outs = self._output_tuple(self.func(*full))
            return outs[0] if self.single_output else make_tuple(outs)
        return traced

    def _cotangent(self, cotangents, n):
        """Output cotangents (None = zero) in the structure the traced function returns."""
        cot = tuple(np.zeros(s) if c is None else np.asarray(c, dtype=np.float64)
                    for c, s in zip(cotangents, self.output_shapes(n)))
        return cot[0] if self.single_output else cot

    # -- DifferentiableFunction hooks (plain values in, plain values out) ----------------------
    def evaluate(self, args):
        """Outputs at this rank's points: a tuple of arrays, shapes checked against out_shapes."""
        args = self._plain_args(args)
        outs = tuple(np.asarray(o, dtype=np.float64)
                     for o in self._output_tuple(self.func(*args)))
        self._check_outputs(outs, self._points(args))
        return outs

    def vjp(self, args, cotangents, argnums):
        """Cotangent of each argument in ``argnums`` (parameters: this rank's points' sum)."""
        argnums = tuple(argnums)
        if all(c is None for c in cotangents) or not argnums:
            return (None,) * len(argnums)
        args = self._plain_args(args)
        make_vjp = _autograd_core()[0]
        with _quiet():
            pullback, _ = make_vjp(self._traced(args, argnums), tuple(args[a] for a in argnums))
            grads = pullback(self._cotangent(cotangents, self._points(args)))
        return tuple(np.asarray(g, dtype=np.float64) for g in grads)

    def jvp(self, args, tangents):
        """Tangent of each output for argument ``tangents`` (None = zero)."""
        argnums = tuple(a for a, t in enumerate(tangents) if t is not None)
        if not argnums:
            return (None,) * self.n_outputs
        args = self._plain_args(args)
        return self._jvp(args, argnums, tuple(np.asarray(tangents[a], dtype=np.float64)
                                              for a in argnums))

    def hvp(self, args, tangents, cotangents, argnums):
        """Second-order term per argument in ``argnums``: d/dt vjp(args + t·tangents, cot).

        Reverse over reverse: the gradient of x ↦ <vjp(x, cot), tangents>.
        """
        argnums = tuple(argnums)
        moving = tuple(a for a, t in enumerate(tangents) if t is not None)
        if not moving or not argnums or all(c is None for c in cotangents):
            return (None,) * len(argnums)
        args = self._plain_args(args)
        union = tuple(sorted(set(argnums) | set(moving)))
        traced = self._traced(args, union)
        cot = self._cotangent(cotangents, self._points(args))
        directions = [(k, np.asarray(tangents[a], dtype=np.float64))
                      for k, a in enumerate(union) if tangents[a] is not None]
        make_vjp = _autograd_core()[0]
        import autograd.numpy as anp

        def along_tangents(x):
            pullback, _ = make_vjp(traced, x)
            grads = pullback(cot)
            return sum(anp.sum(grads[k] * t) for k, t in directions)

        with _quiet():
            second, _ = make_vjp(along_tangents, tuple(args[a] for a in union))
            result = second(1.0)
        return tuple(np.asarray(result[union.index(a)], dtype=np.float64) for a in argnums)

    # -- forward mode with a fallback ----------------------------------------------------------
    def _jvp(self, args, argnums, tangents):
        """Output tangents (a tuple) for ``tangents`` of arguments ``argnums``."""
        traced = self._traced(args, argnums)
        x = tuple(args[a] for a in argnums)
        key = frozenset(argnums)
        if self._forward_ok.get(key, True):
            make_jvp = _autograd_core()[1]
            try:
                with _quiet():
                    _, out_dot = make_jvp(traced, x)(tangents)
                self._forward_ok[key] = True
            except NotImplementedError:       # a primitive without a forward rule
                self._forward_ok[key] = False
        if not self._forward_ok[key]:
            # The vjp is linear in its cotangent w, so its derivative in w, pulled back along
            # the tangents, is J·tangents. Costs a traced reverse pass instead of a forward one.
            make_vjp = _autograd_core()[0]
            with _quiet():
                pullback, y = make_vjp(traced, x)
                zero = tuple(np.zeros_like(o) for o in (y if not self.single_output else (y,)))
                double, _ = make_vjp(pullback, zero[0] if self.single_output else zero)
                out_dot = double(tuple(tangents))
        out_dot = (out_dot,) if self.single_output else tuple(out_dot)
        return tuple(np.asarray(o, dtype=np.float64) for o in out_dot)

    def forward_mode_available(self, args, argnums):
        """Whether autograd has forward-mode rules for every primitive the function applies to
        arguments ``argnums`` (decided by one zero-tangent forward pass, then remembered)."""
        key = frozenset(argnums)
        if key not in self._forward_ok:
            make_jvp = _autograd_core()[1]
            x = tuple(np.asarray(args[a]) for a in argnums)
            try:
                with _quiet():
                    make_jvp(self._traced(args, tuple(argnums)), x)(
                        tuple(np.zeros_like(v) for v in x))
                self._forward_ok[key] = True
            except NotImplementedError:
                self._forward_ok[key] = False
        return self._forward_ok[key]

    # -- batched per-point Jacobians -----------------------------------------------------------
    def jacobians(self, *args, argnums=None, mode=None, chunk_size=None):
        """Per-point Jacobians ``J[o][k]`` of output o with respect to argument ``argnums[k]``.

        Shape ``(n, *out_point_shape, *in_point_shape)`` for a pointwise argument and
        ``(n, *out_point_shape, *param_shape)`` for a parameter. Batched over points: one
        forward pass per input component or one reverse pass per output component, each
        vectorised over a chunk of ``chunk_size`` points (default
        :data:`~crk.cr.point_map.JACOBIAN_CHUNK`), so the extra memory is the Jacobian plus one
        chunk's trace. ``mode``: None picks the one with fewer passes (reverse on a tie, as a
        traced forward pass is shared by all reverse passes, and also when autograd lacks a
        forward rule), "forward" or "reverse" force it for the pointwise arguments; parameters
        always go forward. Needs pointwise outputs and the point-map property (module
        docstring). Not collective; records nothing.
        """
        plan = self._jacobian_plan(args, argnums, mode)
        argnums, pointwise = plan.argnums, plan.pointwise
        args = self._plain_args(args)
        # (forward_mode_available probes with one point: a full-size probe would cost a pass)
        reverse = plan.reverse or (bool(pointwise) and mode is None and
                                   not self.forward_mode_available(
                                       tuple(a[:1] if pw else a
                                             for a, pw in zip(args, self.pointwise)),
                                       tuple(argnums[k] for k in pointwise)))
        forward = [k for k in range(len(argnums)) if not (reverse and k in pointwise)]

        def fill(chunk, blocks):      # blocks[o][k]: (chunk, out, in), filled in place
            for k in forward:
                self._jacobian_columns(chunk, argnums[k], [row[k] for row in blocks])
            if reverse:
                self._jacobian_rows(chunk, tuple(argnums[k] for k in pointwise),
                                    [[row[k] for k in pointwise] for row in blocks])
        return self._chunked_jacobians(args, plan, fill, chunk_size)

    def _jacobian_columns(self, args, a, blocks):
        """Fill column j of every point's Jacobian w.r.t. argument a, one jvp per j."""
        n = blocks[0].shape[0]
        for j in range(blocks[0].shape[2]):
            tangent = np.zeros(np.shape(args[a]))
            if self.pointwise[a]:
                tangent.reshape(n, -1)[:, j] = 1.0   # e_j at every point
            else:
                tangent.reshape(-1)[j] = 1.0
            for block, out_dot in zip(blocks, self._jvp(args, (a,), (tangent,))):
                block[:, :, j] = out_dot.reshape(n, -1)

    def _jacobian_rows(self, args, argnums, blocks):
        """Fill row i of every point's Jacobian w.r.t. pointwise ``argnums``: one traced forward
        pass, then one reverse pass per output component i."""
        make_vjp = _autograd_core()[0]
        shapes = self.output_shapes(self._points(args))
        with _quiet():
            pullback, _ = make_vjp(self._traced(args, argnums), tuple(args[a] for a in argnums))
            for o, (row, shape) in enumerate(zip(blocks, shapes)):
                n = shape[0]
                for i in range(row[0].shape[1]):
                    cot = [None] * self.n_outputs
                    cot[o] = np.zeros(shape)
                    cot[o].reshape(n, -1)[:, i] = 1.0          # e_i at every point
                    grads = pullback(self._cotangent(cot, n))
                    for block, g in zip(row, grads):
                        block[:, i, :] = np.reshape(g, (n, -1))


def point_map(in_shapes, out_shape, bare=False, pointwise=None, name=None):
    """Decorator: a function written with ``autograd.numpy`` as a point map.

    ``in_shapes``: one shape per argument. ``(-1, *s)``: a pointwise argument, ``n`` points of
    shape ``s`` (its leading axis is the point axis); a plain shape such as ``()`` or ``(3,)``:
    a parameter shared by all points (on crk values it must be replicated).
    ``out_shape``: one shape, or a tuple of shapes for several outputs (then the function
    returns a tuple); pointwise outputs are declared ``(-1, *s)`` likewise.
    ``pointwise``: None derives each argument's kind from ``in_shapes``; a bool (all
    arguments) or a list of bools (one per argument) overrides it: True means the argument
    carries the point axis (``s`` is read as ``(-1, *s)``), False that it is shared by all
    points (``(-1, *s)`` is read as ``s``). See :func:`crk.cr.shapes.apply_pointwise`.
    ``bare``: False returns the :class:`AutogradPointMap` (callable, plus ``jacobians``,
    ``vjp``, ``jvp``, ``hvp``, ``compose``); True returns a plain function with the same name
    and docstring that calls it, the map available as ``f.point_map``.
    ``name``: the map's name in messages (default the function's name).

    Calling with wrong shapes raises ValueError naming the argument (by its Python name), the
    expected and the received shape.
    """
    return point_map_decorator(
        lambda func: AutogradPointMap(func, in_shapes, out_shape, pointwise=pointwise, name=name),
        bare)
