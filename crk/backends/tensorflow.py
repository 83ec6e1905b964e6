"""TensorFlow 2 functions and Keras models on the crk tape: :func:`overload_tf`.

``f = overload_tf(g)`` records each call ``f(x, y)`` with crk values as ONE block whose four
derivative kinds are TensorFlow autodiff of ``g`` (a Python function of tensors, a
``tf.function`` or a Keras model):

* adjoint: ``tf.GradientTape.gradient`` with ``output_gradients`` (the cotangents);
* tangent-linear: ``tf.autodiff.ForwardAccumulator`` (forward mode);
* Hessian action: forward-over-back, a ForwardAccumulator around a GradientTape.

Outputs may be a tensor or any nest (tuple, list, dict) of tensors; the caller gets the same
nest with crk values as leaves. For tf.compat.v1 graphs run in a session see
:mod:`crk.backends.tensorflow_graph`.

Keras models and their weights
    ``overload_tf(model)(x)`` evaluates a Keras 3 model statelessly
    (``model.stateless_call``) with the weights the model holds at call time, recorded as
    constants. ``overload_tf(model)(x, weights=params)`` with ``params = model_params(model)``
    makes the weights recorded inputs, so ``ReducedFunctional(J, [Control(w) for w in params])``
    differentiates with respect to them. The model's variables are never written by crk;
    :func:`set_model_params` copies values (e.g. fitted ones) back into them.

Precision
    crk values are float64 and floating arguments reach ``g`` as float64 tensors (``dtype=``
    changes that); Keras weights are passed in their variables' dtype, and Keras casts inputs to
    its layers' compute dtype itself. Results come back as float64 numpy arrays. TensorFlow's
    global settings (``keras floatx``, eager mode, ...) are never changed.

Tracing
    Each derivative kind is traced once per argument signature (shapes, dtypes, which
    tangents/cotangents are zero, which arguments are differentiated) into a concrete function
    kept on the :class:`TFFunction`; every later call and every replay of every block of the same
    overloaded function reuses it (``TFFunction.trace_count`` counts traces).

Nested use: when an argument is already a TensorFlow tensor (the call happens inside the
user's own ``tf.function`` or tape), the raw function is called and nothing is recorded.

Importing this module does not import TensorFlow; that happens at the first call.
"""
import functools

import numpy as np

from ..function_block import DifferentiableFunction, record_call
from .common import import_tensorflow as _tf
from .common import is_tensorflow_value, plain_value, to_float64


class TFFunction(DifferentiableFunction):
    """A TensorFlow function of tensors as a :class:`~crk.function_block.DifferentiableFunction`.

    ``fn(*tensors)`` returns a tensor or a nest of tensors. Floating arguments are converted to
    ``dtype`` (default float64) unless ``arg_dtypes`` (a dict position -> dtype) says otherwise;
    integer/boolean arguments stay integer and are not differentiated. All methods run locally
    on the calling rank (not collective).
    """

    def __init__(self, fn, name=None, dtype="float64", arg_dtypes=None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.dtype = dtype
        self.arg_dtypes = dict(arg_dtypes or {})
        self.structure = None        # the output nest (leaves replaced by 0), set when traced
        self.trace_count = 0
        self._concrete = {}

    # -- plumbing ----------------------------------------------------------------------------
    def tensors(self, args):
        """The arguments as TensorFlow tensors of the dtypes ``fn`` receives."""
        tf = _tf()
        out = []
        for i, a in enumerate(args):
            value = np.asarray(a)
            if np.issubdtype(value.dtype, np.floating):
                out.append(tf.constant(value, dtype=self.arg_dtypes.get(i, self.dtype)))
            else:
                out.append(tf.constant(value))
        return out

    def call_flat(self, xs):
        """Call ``fn`` on tensors inside a trace: its outputs as a flat list of tensors."""
        tf = _tf()
        result = self.fn(*xs)
        self.structure = tf.nest.map_structure(lambda _: 0, result)
        return [tf.convert_to_tensor(t) for t in tf.nest.flatten(result)]

    def pack(self, values):
        """``values`` (one per flat output) in the nest ``fn`` returns."""
        return _tf().nest.pack_sequence_as(self.structure, list(values))

    def compiled(self, key, builder, tensors):
        """Run ``builder(*tensors)``, traced once per (key, signature) as a concrete function."""
        tf = _tf()
        signature = tuple((tuple(t.shape), t.dtype.name) for t in tensors)
        full_key = (key, signature)
        concrete = self._concrete.get(full_key)
        if concrete is None:
            specs = [tf.TensorSpec(t.shape, t.dtype) for t in tensors]
            concrete = tf.function(builder, autograph=False).get_concrete_function(*specs)
            self._concrete[full_key] = concrete
            self.trace_count += 1
        return concrete(*tensors)

    @staticmethod
    def _targets(outs, mask, cots):
        """(outputs, their cotangents in the outputs' dtypes) for outputs with a cotangent."""
        tf = _tf()
        targets, grads = [], []
        cots = iter(cots)
        for o, has in zip(outs, mask):
            if has:
                c = next(cots)
                if o.dtype.is_floating:
                    targets.append(o)
                    grads.append(tf.cast(c, o.dtype))
        return targets, grads

    def _split(self, flat, n_args):
        return list(flat[:n_args]), list(flat[n_args:])

    @staticmethod
    def _cotangent_inputs(cotangents):
        """(which outputs have a cotangent, those cotangents as float64 tensors)."""
        tf = _tf()
        mask = tuple(c is not None for c in cotangents)
        return mask, [tf.constant(np.asarray(c), dtype=tf.float64)
                      for c in cotangents if c is not None]

    def _pullback(self, xs, diff, mask, cs):
        """Inside a trace: the gradients of <outputs, cotangents ``cs``> with respect to
        ``xs[a]`` for ``a`` in ``diff`` (unconnected: zero), or None when no floating output
        has a cotangent."""
        tf = _tf()
        with tf.GradientTape() as tape:
            for a in diff:
                tape.watch(xs[a])
            outs = self.call_flat(xs)
        targets, grads = self._targets(outs, mask, cs)
        if not targets:
            return None
        return tape.gradient(targets, [xs[a] for a in diff], output_gradients=grads,
                             unconnected_gradients=tf.UnconnectedGradients.ZERO)

    @staticmethod
    def _accumulator(xs, which, ts):
        """A forward accumulator pushing tangents ``ts`` (cast to the inputs' dtypes) along
        ``xs[i]`` for ``i`` in ``which``."""
        tf = _tf()
        return tf.autodiff.ForwardAccumulator(
            [xs[i] for i in which], [tf.cast(t, xs[i].dtype) for i, t in zip(which, ts)])

    # -- DifferentiableFunction --------------------------------------------------------------
    def evaluate(self, args):
        xs = self.tensors(args)

        def forward(*xs):
            return self.call_flat(list(xs))
        outs = self.compiled(("eval",), forward, xs)
        return tuple(to_float64(o) if o.dtype.is_floating else o.numpy() for o in outs)

    def vjp(self, args, cotangents, argnums):
        tf = _tf()
        xs = self.tensors(args)
        diff = tuple(a for a in argnums if xs[a].dtype.is_floating)
        mask, cots = self._cotangent_inputs(cotangents)
        if not diff or not cots:
            return (None,) * len(argnums)
        n = len(xs)

        def backward(*flat):
            xs, cs = self._split(flat, n)
            g = self._pullback(xs, diff, mask, cs)
            if g is None:
                return [tf.zeros_like(xs[a], dtype=tf.float64) for a in diff]
            return [tf.cast(gi, tf.float64) for gi in g]
        results = dict(zip(diff, self.compiled(("vjp", diff, mask), backward, xs + cots)))
        return tuple(to_float64(results.get(a)) for a in argnums)

    def _tangent_inputs(self, xs, tangents):
        tf = _tf()
        which = tuple(i for i, t in enumerate(tangents)
                      if t is not None and xs[i].dtype.is_floating)
        return which, [tf.constant(np.asarray(tangents[i]), dtype=tf.float64) for i in which]

    def jvp(self, args, tangents):
        tf = _tf()
        xs = self.tensors(args)
        which, tans = self._tangent_inputs(xs, tangents)
        if not which:
            return tuple(None for _ in self.evaluate(args))
        n = len(xs)

        def forward(*flat):
            xs, ts = self._split(flat, n)
            with self._accumulator(xs, which, ts) as acc:
                outs = self.call_flat(xs)
            return [tf.cast(acc.jvp(o, unconnected_gradients=tf.UnconnectedGradients.ZERO),
                            tf.float64) if o.dtype.is_floating else tf.zeros_like(o, tf.float64)
                    for o in outs]
        return tuple(to_float64(o) for o in self.compiled(("jvp", which), forward, xs + tans))

    def hvp(self, args, tangents, cotangents, argnums):
        tf = _tf()
        xs = self.tensors(args)
        diff = tuple(a for a in argnums if xs[a].dtype.is_floating)
        which, tans = self._tangent_inputs(xs, tangents)
        mask, cots = self._cotangent_inputs(cotangents)
        if not diff or not which or not cots:
            return (None,) * len(argnums)
        n, n_t = len(xs), len(tans)

        def second(*flat):
            xs, rest = self._split(flat, n)
            ts, cs = rest[:n_t], rest[n_t:]
            # forward-over-back: the accumulator differentiates the gradient the tape computes
            with self._accumulator(xs, which, ts) as acc:
                g = self._pullback(xs, diff, mask, cs)
                if g is None:
                    return [tf.zeros_like(xs[a], dtype=tf.float64) for a in diff]
            return [tf.cast(acc.jvp(gi, unconnected_gradients=tf.UnconnectedGradients.ZERO),
                            tf.float64) for gi in g]
        results = dict(zip(diff, self.compiled(("hvp", diff, which, mask), second,
                                               xs + tans + cots)))
        return tuple(to_float64(results.get(a)) for a in argnums)


# -- Keras models ------------------------------------------------------------------------------
def _is_keras_model(obj):
    """A Keras 3 layer/model (stateless_call is Keras 3's way to run with given weights)."""
    return hasattr(obj, "stateless_call") and hasattr(obj, "trainable_variables")


def _require_keras_model(model, where):
    if not _is_keras_model(model):
        raise TypeError(f"{where}: argument 'model' must be a Keras 3 model or layer (with "
                        f"stateless_call and trainable_variables), got {type(model).__name__}")
    if not model.trainable_variables and not getattr(model, "built", True):
        raise ValueError(f"{where}: the Keras model has no weights yet; build it (give it an "
                         f"Input or call it once) first")


def model_params(model):
    """The Keras model's trainable weights as replicated crk arrays (float64), in the order of
    ``model.trainable_variables``. Not collective; every rank must hold the same weights (e.g.
    built with the same seed), as for any replicated value."""
    from ..array import array
    _require_keras_model(model, "model_params()")
    return [array(np.asarray(v.numpy(), dtype=np.float64)) for v in model.trainable_variables]


def set_model_params(model, values):
    """Copy ``values`` (crk values or arrays, one per trainable variable) into the model's
    variables, e.g. the result of a fit. Not recorded, not collective."""
    _require_keras_model(model, "set_model_params()")
    variables = model.trainable_variables
    values = list(values)
    _check_weights(variables, values, "set_model_params()")
    for var, value in zip(variables, values):
        var.assign(np.asarray(plain_value(value), dtype=var.dtype))


def _check_weights(variables, weights, where):
    if len(weights) != len(variables):
        raise ValueError(f"{where}: argument 'weights' has {len(weights)} entries but the model "
                         f"has {len(variables)} trainable variables")
    for k, (var, w) in enumerate(zip(variables, weights)):
        value = plain_value(w)
        if tuple(np.shape(value)) != tuple(var.shape):
            raise ValueError(f"{where}: argument 'weights'[{k}] ({var.name}) expected shape "
                             f"{tuple(var.shape)}, received {tuple(np.shape(value))}")


def _stateless(model, n_inputs):
    """fn(*inputs, *weights): the model evaluated with the given trainable weights."""
    def run(*xs):
        inputs, weights = xs[:n_inputs], xs[n_inputs:]
        # non-trainable state (e.g. batch-norm statistics) is read from the model, as constants
        state = [v.value for v in model.non_trainable_variables]
        out, _ = model.stateless_call(list(weights), state, *inputs)
        return out
    return run


# -- the public wrapper ------------------------------------------------------------------------
class OverloadedTF:
    """A TensorFlow function or Keras model whose calls on crk values are recorded.

    Create with :func:`overload_tf`. Calls are not collective; derivatives are computed on the
    calling rank (the tape sums replicated adjoints over ranks).
    """

    def __init__(self, fn, dtype="float64", distributed_outputs=None, name=None):
        self.fn = fn
        self.dtype = dtype
        self.distributed_outputs = distributed_outputs
        self.keras = _is_keras_model(fn)
        self.name = name or getattr(fn, "name", None) or getattr(fn, "__name__", None) or \
            type(fn).__name__
        self._functions = {}         # number of positional inputs -> TFFunction
        if not self.keras:
            functools.update_wrapper(self, fn, updated=())

    def function(self, n_inputs):
        """The :class:`TFFunction` used for calls with ``n_inputs`` positional inputs."""
        fn = self._functions.get(n_inputs)
        if fn is None:
            if self.keras:
                dtypes = {n_inputs + k: v.dtype for k, v in
                          enumerate(self.fn.trainable_variables)}
                fn = TFFunction(_stateless(self.fn, n_inputs), self.name, self.dtype, dtypes)
            else:
                fn = TFFunction(self.fn, self.name, self.dtype)
            self._functions[n_inputs] = fn
        return fn

    def __call__(self, *args, weights=None):
        """Evaluate on crk values (recorded) or plain values. ``weights`` (Keras models only):
        one value per trainable variable, e.g. :func:`model_params`; default: the model's
        current weights, recorded as constants."""
        if any(is_tensorflow_value(a) for a in args):
            if weights is not None:
                raise TypeError(f"{self.name}: 'weights' cannot be combined with TensorFlow "
                                f"tensor inputs (a nested call inside TensorFlow code)")
            return self.fn(*args)                     # nested in the user's own TF code
        if self.keras:
            variables = self.fn.trainable_variables
            if weights is None:
                weights = [np.asarray(v.numpy()) for v in variables]
            weights = list(weights)
            _check_weights(variables, weights, self.name)
            full = tuple(args) + tuple(weights)
        else:
            if weights is not None:
                raise TypeError(f"{self.name}: argument 'weights' is only for Keras models; "
                                f"pass the weights of a TensorFlow function as arguments")
            full = tuple(args)
        fn = self.function(len(args))
        outs = record_call(fn, full, distributed_outputs=self.distributed_outputs)
        return fn.pack(outs)

    def __repr__(self):
        return f"<overload_tf {self.name}>"


def overload_tf(fn=None, *, dtype="float64", distributed_outputs=None, name=None):
    """Record calls of a TensorFlow function or Keras model on the crk tape, one block per call.

    ``fn``: a Python function of tensors, a ``tf.function`` or a Keras 3 model. Usable directly
    (``f = overload_tf(g)``) or as a decorator (``@overload_tf`` / ``@overload_tf(dtype=...)``).
    ``dtype``: the dtype floating arguments reach ``fn`` in (default float64; Keras weights keep
    their variables' dtypes). ``distributed_outputs``: whether outputs are distributed (default:
    when any recorded argument is). Returns an :class:`OverloadedTF`.
    """
    if fn is None:
        return lambda f: OverloadedTF(f, dtype, distributed_outputs, name)
    return OverloadedTF(fn, dtype, distributed_outputs, name)
