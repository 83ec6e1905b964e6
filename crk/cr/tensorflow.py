"""TensorFlow point maps: a function of TensorFlow tensors as a crk :class:`PointMap`.

::

    import tensorflow as tf
    from crk.cr.tensorflow import point_map

    @point_map(((-1,), (-1, 2), ()), (-1, 2), bare=True)
    def flux(u, g, p):                      # u: (n,), g: (n, 2), p: a scalar shared by all points
        mu = (tf.reduce_sum(g * g, axis=1) + 1.e-12) ** ((p - 2.) / 2.)
        return mu[:, None] * g

Calling ``flux`` on crk values records one block on the tape (all four derivative kinds);
on plain numpy values it just computes. Arguments reach the function as float64 tensors
(``dtype=`` changes that). Derivatives (see :mod:`crk.backends.tensorflow`): vjp by
``tf.GradientTape``, jvp by ``tf.autodiff.ForwardAccumulator``, hvp forward-over-back; each is
traced once per argument signature and reused by every call and replay.

Batched per-point Jacobians (:meth:`TFPointMap.jacobians`) rely on the point-map property:
the outputs at point p depend only on the pointwise inputs at point p (and the parameters).
Then a forward-mode tangent e_j at *every* point gives column j of every point's Jacobian in
one pass, and reverse mode per output component gives the rows: ``tf.GradientTape.
batch_jacobian``, which vectorises the reverse passes over the output components. crk takes
whichever needs fewer passes; parameters (shared by all points) always go forward, one pass per
parameter component, since a reverse pass would sum their derivative over the points. Memory is
the Jacobian (n × out × in) plus the passes' temporaries, never the forward pass replicated per
output component.

Importing this module does not import TensorFlow.
"""
import functools

from ..backends.common import import_tensorflow, is_tensorflow_value
from ..backends.tensorflow import TFFunction
from .point_map import PointMap, plain_value, point_map_decorator
from .shapes import apply_pointwise, positional_names


class TFPointMap(PointMap):
    """A point map defined by a function of TensorFlow tensors.

    ``fn(*tensors)`` takes one tensor per entry of ``in_shapes`` and returns one tensor (a
    single ``out_shapes``) or a tuple of tensors. See :func:`point_map` for shapes and
    ``pointwise``. Not collective: every method works on this rank's points only (the tape does
    any reduction over ranks).
    """

    #: A TF graph keeps every pass's temporaries of a ``jacobians`` call alive at once, so its
    #: chunks are smaller than the other backends' (3D stress on 2·10^5 points: extra memory
    #: 2.2-2.7x the Jacobian with 2^15 points per chunk, 1.5x with 2^14, 1.2x with 2^13; but
    #: 2^13 is 1.5x slower in 2D, where each call does little work).
    jacobian_chunk = 1 << 14
    #: Reverse (``batch_jacobian``) on a tie: 1.1-1.5x faster in scripts/bench_pointwise.py.
    jacobian_reverse_on_tie = True

    def __init__(self, fn, in_shapes, out_shapes, pointwise=None, name=None, dtype="float64"):
        name = name or getattr(fn, "__name__", "tensorflow point map")
        in_shapes = apply_pointwise(in_shapes, pointwise, name)
        names = positional_names(getattr(fn, "python_function", fn), len(in_shapes))
        super().__init__(in_shapes, out_shapes, name=name, arg_names=names)
        self.fn = fn
        self.function = TFFunction(self._outputs, name, dtype)

    def _outputs(self, *xs):
        """``fn``'s result as a tuple with one tensor per declared output (inside a trace)."""
        return self._output_tuple(self.fn(*xs), kind="tensors")

    def __call__(self, *args):
        """Evaluate on crk values (recording one block) or plain values (just computing).

        On TensorFlow tensors (inside the user's own TensorFlow code) the function is called
        directly, so point maps compose with TensorFlow.
        """
        if any(is_tensorflow_value(a) for a in args):
            return self.fn(*args)
        return super().__call__(*args)

    @staticmethod
    def _plain(args):
        return tuple(plain_value(a) for a in args)

    # -- DifferentiableFunction hooks (plain values in, plain float64 values out) -------------
    def evaluate(self, args):
        """Outputs at this rank's points: a tuple of arrays, shapes checked against out_shapes."""
        args = self._plain(args)
        outs = self.function.evaluate(args)
        self._check_outputs(outs, self._points(args))
        return outs

    def vjp(self, args, cotangents, argnums):
        """Cotangent of each argument in ``argnums`` (parameters: this rank's points' sum)."""
        return self.function.vjp(self._plain(args), cotangents, tuple(argnums))

    def jvp(self, args, tangents):
        """Tangent of each output for argument ``tangents`` (None = zero)."""
        if all(t is None for t in tangents):
            return (None,) * self.n_outputs
        return self.function.jvp(self._plain(args), tangents)

    def hvp(self, args, tangents, cotangents, argnums):
        """Second-order term per argument in ``argnums``: d/dt vjp(args + t·tangents, cot)."""
        return self.function.hvp(self._plain(args), tangents, cotangents, tuple(argnums))

    # -- batched per-point Jacobians -----------------------------------------------------------
    def jacobians(self, *args, argnums=None, mode=None, chunk_size=None):
        """Per-point Jacobians ``J[o][k]`` of output o with respect to argument ``argnums[k]``.

        Shape ``(n, *out_point_shape, *in_point_shape)`` for a pointwise argument and
        ``(n, *out_point_shape, *param_shape)`` for a parameter, float64. ``mode``: None picks
        forward (one pass per input component) or reverse (``batch_jacobian``, vectorised over
        output components) for the pointwise arguments, whichever needs fewer passes (reverse
        on a tie); "forward"/"reverse" force it. Parameters always go forward. A chunk of
        ``chunk_size`` points per graph call (default :attr:`jacobian_chunk`; at most two traced
        shapes per ``argnums``). Needs pointwise outputs and the point-map property (module
        docstring). Not collective; records nothing.
        """
        plan = self._jacobian_plan(args, argnums, mode)
        argnums, pointwise = plan.argnums, plan.pointwise
        reverse = plan.reverse
        build = functools.partial(self._jacobian_graph, argnums=argnums, in_sizes=plan.in_sizes,
                                  out_sizes=plan.out_sizes,
                                  reversed_args=pointwise if reverse else ())

        def fill(chunk, blocks):
            xs = self.function.tensors(chunk)
            computed = iter(self.function.compiled(("jacobians", argnums, reverse), build, xs))
            for row in blocks:
                for block in row:
                    block[...] = next(computed).numpy()
        return self._chunked_jacobians(self._plain(args), plan, fill, chunk_size)

    def _jacobian_graph(self, *xs, argnums, in_sizes, out_sizes, reversed_args):
        """Traced body of :meth:`jacobians`: the (n, out, in) blocks, output-major."""
        tf = import_tensorflow()
        zero = tf.UnconnectedGradients.ZERO
        xs = list(xs)
        blocks = {}
        for k, a in enumerate(argnums):
            if k in reversed_args:
                continue
            columns = [[] for _ in out_sizes]
            basis = tf.eye(in_sizes[k], dtype=xs[a].dtype)
            for j in range(in_sizes[k]):
                e_j = tf.reshape(basis[j], self.in_point_shapes[a])
                # pointwise: e_j at every point gives column j at every point in one pass
                tangent = tf.broadcast_to(e_j, tf.shape(xs[a])) if self.pointwise[a] else e_j
                with tf.autodiff.ForwardAccumulator([xs[a]], [tangent]) as acc:
                    outs = self.function.call_flat(xs)
                for o, out in enumerate(outs):
                    columns[o].append(tf.reshape(acc.jvp(out, unconnected_gradients=zero),
                                                 [-1, out_sizes[o]]))
            for o in range(len(out_sizes)):
                blocks[o, k] = tf.stack(columns[o], axis=-1)
        if reversed_args:
            flat = {k: tf.reshape(xs[argnums[k]], [-1, in_sizes[k]]) for k in reversed_args}
            with tf.GradientTape(persistent=True) as tape:
                full = list(xs)
                for k, f in flat.items():
                    tape.watch(f)
                    full[argnums[k]] = tf.reshape(f, tf.shape(xs[argnums[k]]))
                targets = [tf.reshape(out, [-1, size]) for out, size in
                           zip(self.function.call_flat(full), out_sizes)]
            for o, target in enumerate(targets):
                for k in reversed_args:
                    blocks[o, k] = tape.batch_jacobian(target, flat[k],
                                                       unconnected_gradients=zero)
            del tape
        return [tf.cast(blocks[o, k], tf.float64)
                for o in range(len(out_sizes)) for k in range(len(argnums))]


def point_map(in_shapes, out_shape, bare=False, pointwise=None, name=None, dtype="float64"):
    """Decorator: a function of TensorFlow tensors as a point map (as
    :func:`crk.cr.autograd.point_map`).

    ``in_shapes``: one shape per argument; ``(-1, *s)`` is pointwise (n points of shape s), a
    plain shape such as ``()`` a parameter shared by all points (replicated on crk values).
    ``out_shape``: one shape, or a tuple of shapes for several outputs (then the function returns
    a tuple). ``pointwise``: overrides the kinds read from ``in_shapes`` (see
    :func:`crk.cr.shapes.apply_pointwise`). ``bare``: False returns the :class:`TFPointMap`;
    True a plain function calling it, the map available as ``f.point_map``. ``dtype``: the dtype
    arguments reach the function in (default float64).

    Calling with wrong shapes raises ValueError naming the argument, the expected and the
    received shape.
    """
    return point_map_decorator(
        lambda fn: TFPointMap(fn, in_shapes, out_shape, pointwise=pointwise, name=name,
                              dtype=dtype), bare)
