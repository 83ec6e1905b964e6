"""tf.compat.v1 graphs run in a session on the crk tape: :func:`run_tensorflow_graph`.

``run_tensorflow_graph(outputs, feed_dict)`` does what ``session.run(outputs, feed_dict)``
does and records ONE block whose four derivative kinds run derivative ops of the same graph:

* adjoint: ``tf.gradients(outputs, inputs, grad_ys=w)`` with placeholders ``w`` for the
  output cotangents;
* tangent-linear: the double-gradient trick. ``G(w) = tf.gradients(outputs, inputs, grad_ys=w)``
  is linear in ``w``, so ``tf.gradients(G, w, grad_ys=x_dot)`` is the Jacobian action on
  ``x_dot`` (forward accumulators cannot reach ops that already exist in a graph);
* Hessian action: gradients of gradients, ``tf.gradients(G, inputs, grad_ys=x_dot)``.

The derivative ops are added to the graph ONCE per (graph, outputs, fed keys), lazily (each
kind when first needed), and cached; later calls, replays and derivative sweeps only run them,
so the graph stops growing. Unfed cotangent/tangent placeholders default to zero. The cache
is keyed weakly by graph and holds tensors by name, so it never keeps a dropped graph alive.

Feeds and controls
    ``feed_dict`` maps placeholders (or any feedable tensor) to crk values (recorded inputs) or
    plain values (constants). A graph's variables become inputs too: :func:`get_params_feed_dict`
    returns ``{variable.ref(): crk value}`` to merge into ``feed_dict``. A fed variable is not
    written: its value is fed to every ``ReadVariableOp`` of it on the way to the outputs, so the
    session's variables keep their values. (TensorFlow ignores a fed resource variable itself,
    and ``tf.Variable`` objects cannot be dict keys outside their graph: hence ``ref()``.)

Values come back as float64 numpy arrays, whatever the graph's dtypes (Keras layers usually
compute in float32); they are cast to each fed tensor's dtype when fed.

Importing this module does not import TensorFlow; that happens at the first call.
"""
import contextlib
import weakref

import numpy as np

from ..function_block import DifferentiableFunction, record_call
from .common import import_tensorflow as _tf
from .common import plain_value, to_float64

_derivatives = weakref.WeakKeyDictionary()   # graph -> {(outputs, feeds): _GraphDerivatives}


def _v1():
    return _tf().compat.v1


class _Feed:
    """One feed_dict entry: a label for messages, the names of the tensors that receive its
    value, its dtype and shape."""

    def __init__(self, label, tensors, dtype, shape):
        self.label, self.dtype, self.shape = label, dtype, shape
        self.names = [t.name for t in tensors]


def _identify(key, graph, where):
    """(cache id, kind, object) of a feed_dict key: a tensor, a tf.Variable or a variable ref."""
    tf = _tf()
    if hasattr(key, "deref") and not isinstance(key, tf.Tensor):
        key = key.deref()
    if isinstance(key, tf.Variable):
        if not hasattr(key, "handle"):
            raise TypeError(f"{where}: feed_dict key {key.name} is a reference variable; crk feeds "
                            f"resource variables only (the default since TensorFlow 2)")
        if key.handle.graph is not graph:
            raise ValueError(f"{where}: feed_dict key {key.name} belongs to another graph than "
                             f"the outputs")
        return ("variable", key.handle.name), "variable", key
    if isinstance(key, tf.Tensor) and hasattr(key, "graph"):
        if key.graph is not graph:
            raise ValueError(f"{where}: feed_dict key {key.name} belongs to another graph than "
                             f"the outputs")
        if not graph.is_feedable(key):
            raise ValueError(f"{where}: feed_dict key {key.name} cannot be fed")
        return ("tensor", key.name), "tensor", key
    raise TypeError(f"{where}: feed_dict keys must be placeholders (graph tensors), "
                    f"tf.Variables or variable.ref() keys, got {type(key).__name__}")


def _ancestors(tensors):
    """Every op the given tensors depend on (data and control inputs)."""
    seen, stack = set(), [t.op for t in tensors]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def _variable_reads(var, ancestors, where):
    """The ReadVariableOp outputs of ``var`` that the outputs depend on."""
    reads = []
    for op in var.handle.consumers():
        if op not in ancestors:
            continue
        if op.type != "ReadVariableOp":
            raise ValueError(f"{where}: variable {var.name} is used by op {op.name} of type "
                             f"{op.type}, which takes the variable itself rather than its value; "
                             f"crk can feed only variables read through ReadVariableOp")
        reads.append(op.outputs[0])
    return reads


class _GraphDerivatives:
    """Derivative ops of one (graph, outputs, feeds), built on first need and kept.

    Everything is held by tensor name and the graph by weak reference, so this cache (keyed
    weakly by the graph) never keeps a graph alive.
    """

    def __init__(self, graph, outputs, feeds):
        self._graph = weakref.ref(graph)
        self.outputs = [y.name for y in outputs]
        self.feeds = feeds
        self._grads = self._tangents = self._tlm = self._hess = None

    @contextlib.contextmanager
    def _building(self):
        """Context for adding ops: the graph, under a name scope of crk's own."""
        graph = self._graph()
        with graph.as_default(), _tf().name_scope("crk_derivatives"):
            yield graph

    @staticmethod
    def _names(tensors):
        return [None if t is None else _tf().convert_to_tensor(t).name for t in tensors]

    @staticmethod
    def _get(graph, names):
        return [None if n is None else graph.get_tensor_by_name(n) for n in names]

    def _differentiable(self):
        """(feed index, tensor name) of every fed floating tensor."""
        return [(k, n) for k, f in enumerate(self.feeds) if f.dtype.is_floating
                for n in f.names]

    def _per_feed(self, flat_grads):
        tf = _tf()
        per = [[] for _ in self.feeds]
        for (k, _), g in zip(self._differentiable(), flat_grads):
            if g is not None:
                per[k].append(tf.convert_to_tensor(g))
        return [None if not gs else (gs[0] if len(gs) == 1 else tf.add_n(gs)) for gs in per]

    def gradients(self):
        """(cotangent placeholder per output, gradient per feed or None), by name."""
        if self._grads is None:
            tf, v1 = _tf(), _v1()
            with self._building() as graph:
                ys = self._get(graph, self.outputs)
                cots = [v1.placeholder_with_default(tf.zeros_like(y), shape=y.shape,
                                                    name="cotangent") for y in ys]
                xs = self._get(graph, [n for _, n in self._differentiable()])
                flat = v1.gradients(ys, xs, grad_ys=cots) if xs else []
                self._grads = (self._names(cots), self._names(self._per_feed(flat)))
        return self._grads

    def tangents(self):
        """Tangent placeholder per feed (None for an unused or integer feed), by name."""
        if self._tangents is None:
            tf, v1 = _tf(), _v1()
            with self._building() as graph:
                tangents = []
                for f in self.feeds:
                    if f.names and f.dtype.is_floating:
                        x = graph.get_tensor_by_name(f.names[0])
                        tangents.append(v1.placeholder_with_default(
                            tf.zeros_like(x), shape=x.shape, name="tangent"))
                    else:
                        tangents.append(None)
                self._tangents = self._names(tangents)
        return self._tangents

    def _pairs(self, graph):
        """(gradient, tangent placeholder) tensors of every feed the outputs depend on."""
        _, grads = self.gradients()
        return [(g, t) for g, t in zip(self._get(graph, grads), self._get(graph, self.tangents()))
                if g is not None]

    def tlm(self):
        """Output tangent per output (None where unconnected), by name: the derivative of the
        gradient (linear in the cotangents) with respect to the cotangents, along the tangents."""
        if self._tlm is None:
            cots, _ = self.gradients()
            with self._building() as graph:
                pairs = self._pairs(graph)
                tangents = _v1().gradients([g for g, _ in pairs], self._get(graph, cots),
                                           grad_ys=[t for _, t in pairs]) \
                    if pairs else [None] * len(self.outputs)
                self._tlm = self._names(tangents)
        return self._tlm

    def hessian(self):
        """Second-order term per feed, d/dx <G(x, w), x_dot>, by name."""
        if self._hess is None:
            with self._building() as graph:
                pairs = self._pairs(graph)
                xs = self._get(graph, [n for _, n in self._differentiable()])
                flat = _v1().gradients([g for g, _ in pairs], xs,
                                       grad_ys=[t for _, t in pairs]) \
                    if pairs else [None] * len(xs)
                self._hess = self._names(self._per_feed(flat))
        return self._hess


class GraphFunction(DifferentiableFunction):
    """One (session, outputs, feeds) as a DifferentiableFunction; arguments are the feed values
    in feed_dict order. Runs locally on the calling rank (not collective)."""

    def __init__(self, derivatives, session, name):
        self.derivatives = derivatives
        self.session = session
        self.name = name

    def _feed(self, args, extra=()):
        feed = {}
        for f, value in zip(self.derivatives.feeds, args):
            for name in f.names:
                feed[name] = value
        for name, value in extra:
            if name is not None and value is not None:
                feed[name] = value
        return feed

    def _run(self, fetches, feed):
        wanted = [f for f in fetches if f is not None]
        values = iter(self.session.run(wanted, feed_dict=feed) if wanted else [])
        return tuple(None if f is None else to_float64(next(values)) for f in fetches)

    def evaluate(self, args):
        return self._run(self.derivatives.outputs, self._feed(args))

    def vjp(self, args, cotangents, argnums):
        cots, grads = self.derivatives.gradients()
        feed = self._feed(args, zip(cots, cotangents))
        return self._run([grads[a] for a in argnums], feed)

    def jvp(self, args, tangents):
        outputs = self.derivatives.tlm()
        return self._run(outputs, self._feed(args, zip(self.derivatives.tangents(), tangents)))

    def hvp(self, args, tangents, cotangents, argnums):
        hess = self.derivatives.hessian()
        cots, _ = self.derivatives.gradients()
        feed = self._feed(args, list(zip(cots, cotangents)) +
                          list(zip(self.derivatives.tangents(), tangents)))
        return self._run([hess[a] for a in argnums], feed)


def _session(session, graph, where):
    if session is None:
        session = _v1().get_default_session()
        if session is None:
            raise RuntimeError(f"{where}: no session; pass session=... or call inside "
                               f"`with sess.as_default():`")
    if session.graph is not graph:
        raise ValueError(f"{where}: the session runs another graph than the one the outputs "
                         f"belong to")
    return session


def _derivatives_for(graph, outputs, keys, where):
    """The cached _GraphDerivatives of (graph, outputs, keys); built on first use."""
    tf = _tf()
    identified = [_identify(k, graph, where) for k in keys]
    cache_key = (tuple(o.name for o in outputs), tuple(i for i, _, _ in identified))
    per_graph = _derivatives.setdefault(graph, {})
    found = per_graph.get(cache_key)
    if found is not None:
        return found
    ancestors = _ancestors(outputs)
    feeds = []
    for _, kind, obj in identified:
        if kind == "variable":
            feeds.append(_Feed(obj.name, _variable_reads(obj, ancestors, where),
                               tf.as_dtype(obj.dtype).base_dtype, obj.shape))
        else:
            feeds.append(_Feed(obj.name, [obj], obj.dtype.base_dtype, obj.shape))
    found = per_graph[cache_key] = _GraphDerivatives(graph, list(outputs), feeds)
    return found


def _check_value(feed, value, where):
    shape = np.shape(plain_value(value))
    if not feed.shape.is_compatible_with(shape):
        raise ValueError(f"{where}: the value fed to {feed.label} has shape {shape}, "
                         f"expected {feed.shape}")


def run_tensorflow_graph(outputs, feed_dict, session=None, distributed_outputs=None):
    """``session.run(outputs, feed_dict)``, recorded as one block.

    ``outputs``: a floating graph tensor or a list/tuple of them. ``feed_dict``: placeholders,
    tf.Variables or ``variable.ref()`` keys (see :func:`get_params_feed_dict`) mapped to crk
    values (recorded) or plain values (constants). ``session``: default the default session
    (``with sess.as_default():``). ``distributed_outputs``: whether outputs are distributed
    (default: when any recorded fed value is). Returns crk values (float64) in the form of
    ``outputs`` (plain numpy arrays when nothing fed is recorded). Not collective.
    """
    tf = _tf()
    where = "run_tensorflow_graph()"
    single = isinstance(outputs, tf.Tensor)
    out_list = [outputs] if single else list(outputs)
    if not out_list:
        raise ValueError(f"{where}: argument 'outputs' is empty")
    for k, y in enumerate(out_list):
        if not (isinstance(y, tf.Tensor) and hasattr(y, "graph")) or \
                not y.dtype.is_floating:
            raise TypeError(f"{where}: argument 'outputs' must be floating graph tensors; entry "
                            f"{k} is {y!r}")
    graph = out_list[0].graph
    if any(y.graph is not graph for y in out_list):
        raise ValueError(f"{where}: argument 'outputs' mixes tensors of different graphs")
    if not isinstance(feed_dict, dict):
        raise TypeError(f"{where}: argument 'feed_dict' must be a dict, got "
                        f"{type(feed_dict).__name__}")
    session = _session(session, graph, where)
    derivatives = _derivatives_for(graph, out_list, list(feed_dict), where)
    values = list(feed_dict.values())
    for feed, value in zip(derivatives.feeds, values):
        _check_value(feed, value, where)
    name = f"tensorflow graph ({', '.join(y.name for y in out_list)})"
    outs = record_call(GraphFunction(derivatives, session, name), values,
                       distributed_outputs=distributed_outputs)
    return outs[0] if single else list(outs)


def get_params_feed_dict(session=None, variables=None):
    """``{variable.ref(): crk value}`` for the graph's trainable variables (or ``variables``),
    holding their current values (float64, replicated). Merge it into the feed_dict of
    :func:`run_tensorflow_graph` so the variables become recorded inputs (controls)::

        params = get_params_feed_dict()
        y = run_tensorflow_graph(out, {x: x_value, **params})
        rf = ReducedFunctional(J, [Control(p) for p in params.values()])

    Not collective; every rank must hold the same variable values (replicated).
    """
    from ..array import array
    v1 = _v1()
    if session is None:
        session = v1.get_default_session()
        if session is None:
            raise RuntimeError("get_params_feed_dict(): no session; pass session=... or call "
                               "inside `with sess.as_default():`")
    if variables is None:
        variables = session.graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)
    variables = list(variables)
    values = session.run(variables) if variables else []
    return {v.ref(): array(np.asarray(value, dtype=np.float64))
            for v, value in zip(variables, values)}
