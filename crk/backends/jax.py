"""JAX functions on the crk tape: :func:`overload_jax`.

``f = overload_jax(g)`` records each call ``f(x, y)`` with crk values as ONE block whose four
derivative kinds are JAX transforms of ``g``: adjoint by ``jax.vjp``, tangent-linear by
``jax.jvp``, Hessian action by forward-over-reverse (``jax.jvp`` of ``jax.vjp``). Outputs may be
any pytree of arrays; the caller gets the same pytree with crk values as leaves.

Float64 without touching JAX's global flag
    crk values are float64. JAX computes in float32 unless 64-bit types are enabled, and the
    usual switch, ``jax.config.update("jax_enable_x64", True)``, is global: it would change every
    other JAX program in the process. crk instead runs all of its own JAX work (tracing,
    compiling, executing, building derivative programs) inside ``jax.enable_x64(True)``, JAX's
    scoped, thread-local context manager (see :func:`float64`). ``jax.config.jax_enable_x64``
    is the same before and after importing and using crk, and user JAX code outside crk calls
    keeps its own precision. Compiled programs are cached per precision by JAX, so crk's
    float64 programs never collide with the user's float32 ones.

Nested use
    When any argument is a JAX tracer (the call happens inside ``jax.grad``/``jit``/``vmap`` of
    an outer function), the raw function is called: nothing is recorded, the caller's transform
    composes, and the caller's precision applies.

Compilation
    With ``jit=True`` the forward, vjp, jvp and Hessian programs are compiled once per
    (argument shapes, dtypes, static arguments) and shared by every call and every replay of
    every block of the same overloaded function (they live on the function object, see
    ``trace_counts``). ``pointwise`` functions pad the point axis to a bucket size shared by all
    ranks (:func:`bucket_size`), so every rank compiles the same programs and a new local point
    count rarely means a new compilation.
"""
import collections
import functools
import importlib.util
import weakref

import numpy as np

from ..function_block import DifferentiableFunction, record_call
from ..overloaded_type import OverloadedType
from ..tape import annotating


def _jax():
    try:
        import jax
    except ImportError:   # pragma: no cover - depends on the installation
        raise ImportError("crk's JAX backend needs JAX: pip install 'crk[jax]'") from None
    return jax


def float64():
    """Context manager under which crk runs JAX: 64-bit types on, for this thread only.

    ``jax.enable_x64(True)`` is a scoped setting; JAX's global ``jax_enable_x64`` flag is not
    changed. Not collective.
    """
    return _jax().enable_x64(True)


def _is_recorded(value):
    return isinstance(value, OverloadedType)


def contains_tracer(tree):
    """True when any leaf of ``tree`` is a JAX tracer (we are inside an outer transform)."""
    jax = _jax()
    return any(isinstance(leaf, jax.core.Tracer)
               for leaf in jax.tree_util.tree_leaves(tree, is_leaf=_is_recorded))


def resolve_device(backend):
    """The JAX device for ``backend``: None (JAX's default), a platform name or a Device."""
    if backend is None:
        return None
    jax = _jax()
    if isinstance(backend, str):
        try:
            return jax.devices(backend)[0]
        except RuntimeError as e:
            raise ValueError(f"backend={backend!r}: JAX has no such platform here "
                             f"(available: {[d.platform for d in jax.devices()]}): {e}") from None
    return backend


# -- point buckets: every rank compiles the same programs ----------------------------------------
def bucket_size(n):
    """The padded length for ``n`` points: at least 8, with at most 4 significant bits.

    (8, 9, ..., 15, 16, 18, ..., 30, 32, 36, ...): padding adds less than 1/8 of the points, and
    the number of distinct compiled shapes grows only logarithmically with n.
    """
    n = max(int(n), 8)
    shift = n.bit_length() - 4
    return -(-n >> shift) << shift


def shared_bucket(n, comm):
    """:func:`bucket_size` of the largest local point count over ``comm``.

    Collective over ``comm`` (every rank calls it at the same point) when ``comm`` has more than
    one rank.
    """
    from ..parallel.collective import max_over_ranks
    return bucket_size(max_over_ranks(int(n), comm))


def pad_points(a, size, zeros=False):
    """``a`` with axis 0 extended to ``size``: repeating its last point, or with zeros.

    Forward inputs are padded with a copy of a real point so padded rows never produce NaN or
    inf, which would leak into parameter derivatives (0 * NaN = NaN); tangents and cotangents
    are padded with zeros so padded rows contribute exactly nothing.
    """
    a = np.asarray(a)
    n = a.shape[0]
    if n == size:
        return a
    if zeros or n == 0:
        fill = np.zeros((size - n,) + a.shape[1:], dtype=a.dtype)
    else:
        fill = np.broadcast_to(a[-1:], (size - n,) + a.shape[1:])
    return np.concatenate([a, fill])


# -- compiled programs -------------------------------------------------------------------------
def _with_diff(fn, xs, diff_pos):
    """``fn`` as a function of the leaves at ``diff_pos`` only (the others fixed to ``xs``)."""
    def g(*diff):
        full = list(xs)
        for p, d in zip(diff_pos, diff):
            full[p] = d
        return fn(tuple(full))
    return g


class Kernels:
    """The programs of one function for one call signature (static values, input structure).

    ``fn(leaves) -> output pytree``. Each program is built (and, with ``jit``, compiled by JAX
    per shape/dtype) once and reused by every block. ``counts[kind]`` counts how often a
    program's Python body ran, i.e. traces under jit.
    """

    def __init__(self, fn, use_jit, counts):
        self.fn = fn
        self.use_jit = use_jit
        self.counts = counts
        self._programs = {}

    def _program(self, kind, diff_pos, make):
        key = (kind, diff_pos)
        program = self._programs.get(key)
        if program is None:
            body = make()
            counts = self.counts

            def counted(*a):
                counts[kind] += 1
                return body(*a)
            program = _jax().jit(counted) if self.use_jit else counted
            self._programs[key] = program
        return program

    def forward(self):
        return self._program("forward", None, lambda: self.fn)

    def forward_vjp(self, diff_pos):
        jax, fn = _jax(), self.fn
        return self._program("forward_vjp", diff_pos, lambda: lambda xs: jax.vjp(
            _with_diff(fn, xs, diff_pos), *[xs[p] for p in diff_pos]))

    def vjp(self, diff_pos):
        jax, fn = _jax(), self.fn
        return self._program("vjp", diff_pos, lambda: lambda xs, ct: jax.vjp(
            _with_diff(fn, xs, diff_pos), *[xs[p] for p in diff_pos])[1](ct))

    def vjp_from_residuals(self):
        return self._program("vjp_residuals", None, lambda: lambda pullback, ct: pullback(ct))

    def jvp(self, diff_pos):
        jax, fn = _jax(), self.fn
        return self._program("jvp", diff_pos, lambda: lambda xs, ts: jax.jvp(
            _with_diff(fn, xs, diff_pos), tuple(xs[p] for p in diff_pos), tuple(ts))[1])

    def hvp(self, diff_pos):
        jax, fn = _jax(), self.fn

        def make():
            def second_order(xs, ts, ct):
                def pulled_back(*diff):
                    return jax.vjp(_with_diff(fn, xs, diff_pos), *diff)[1](ct)
                return jax.jvp(pulled_back, tuple(xs[p] for p in diff_pos), tuple(ts))[1]
            return second_order
        return self._program("hvp", diff_pos, make)


# -- one call ------------------------------------------------------------------------------------
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
    vjp linearisation of the last evaluation for the adjoint (``checkpoint=False``).
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
        return _jax().device_put(value, self.device)

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
        jax = _jax()
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
        jax = _jax()
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
        jax = _jax()
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
        jax = _jax()
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
        jax = _jax()
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
        """Bytes of device memory held for the adjoint (0 after release or with checkpoint)."""
        if self._residuals is None:
            return 0
        return sum(getattr(leaf, "nbytes", 0)
                   for leaf in _jax().tree_util.tree_leaves(self._residuals[1]))


# -- the overloaded function ---------------------------------------------------------------------
def _positions(nums, what):
    if nums is None:
        return None
    nums = (nums,) if isinstance(nums, (int, np.integer)) else tuple(nums)
    if not all(isinstance(n, (int, np.integer)) for n in nums):
        raise TypeError(f"overload_jax(): {what} must be an int or a tuple of ints, got {nums!r}")
    return tuple(int(n) for n in nums)


def _resolve(nums, n_args, what, name):
    out = []
    for k in nums:
        if not -n_args <= k < n_args:
            raise ValueError(f"{name}: {what} contains {k} but the function was called with "
                             f"{n_args} positional argument(s)")
        out.append(k % n_args)
    return tuple(sorted(set(out)))


class JaxFunction:
    """A JAX function whose calls with crk values are recorded. Made by :func:`overload_jax`.

    ``trace_counts`` counts the traces of each compiled program (kind → count), shared by all
    calls and blocks of this function; ``last_call`` is the :class:`JaxCall` of the last
    recorded call (for inspection).
    """

    def __init__(self, func, argnums=None, static_argnums=None, checkpoint=False, jit=True,
                 pointwise=False, backend=None):
        if not callable(func):
            raise TypeError(f"overload_jax(): expected a function, got {type(func).__name__}")
        if importlib.util.find_spec("jax") is None:
            raise ImportError("crk.overload_jax needs JAX: pip install 'crk[jax]'")
        functools.update_wrapper(self, func)
        self.func = func
        self.name = getattr(func, "__name__", type(func).__name__)
        self.argnums = _positions(argnums, "argnums")
        self.static_argnums = _positions(static_argnums, "static_argnums") or ()
        if self.argnums is not None and set(self.argnums) & set(self.static_argnums):
            raise ValueError(f"overload_jax({self.name}): argnums={self.argnums} and "
                             f"static_argnums={self.static_argnums} overlap; a static argument "
                             f"cannot be differentiated")
        if not isinstance(pointwise, (bool, np.bool_)):
            pointwise = tuple(bool(p) for p in pointwise)
        self.pointwise = pointwise
        self.checkpoint = bool(checkpoint)
        self.jit = bool(jit)
        self.backend = backend
        self.trace_counts = collections.Counter()
        self.last_call = None
        self._kernels = {}
        self._device = None

    def __repr__(self):
        return f"<crk.overload_jax {self.name}>"

    # -- nested use inside an outer JAX transform -------------------------------------------
    def _call_nested(self, args, kwargs):
        jax = _jax()
        recorded = [v for v in jax.tree_util.tree_leaves((args, kwargs), is_leaf=_is_recorded)
                    if _is_recorded(v)]
        if recorded and annotating():
            raise TypeError(
                f"{self.name}: called inside a JAX transform (some arguments are JAX tracers) "
                f"together with recorded crk values; the outer transform cannot see the crk "
                f"tape, so their derivatives would be lost. Pass plain values (x.value), or "
                f"call it under crk.stop_annotating().")
        plain = jax.tree_util.tree_map(
            lambda v: v._ad_create_checkpoint() if _is_recorded(v) else v, (args, kwargs),
            is_leaf=_is_recorded)
        return self.func(*plain[0], **plain[1])

    # -- calls -------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        """Evaluate; records one block when an argument is a recorded crk value.

        Not collective, except for a ``pointwise`` function called with distributed arguments:
        then the ranks of their communicator agree on the padded point count (a small
        allreduce), so every rank must make the call.
        """
        jax = _jax()
        if contains_tracer((args, kwargs)):
            return self._call_nested(args, kwargs)
        static_pos = self._check_static(args, kwargs)
        dynamic_pos = [i for i in range(len(args)) if i not in static_pos]
        leaves, treedef = jax.tree_util.tree_flatten(tuple(args[i] for i in dynamic_pos),
                                                     is_leaf=_is_recorded)
        leaf_arg = [i for i in dynamic_pos
                    for _ in jax.tree_util.tree_leaves(args[i], is_leaf=_is_recorded)]
        record = annotating()
        leaves, diff_pos = self._differentiated(leaves, leaf_arg, dynamic_pos, len(args), record)
        point_args = self._pointwise_positions(len(args), dynamic_pos)
        point_mask = tuple(i in point_args for i in leaf_arg)
        n, bucket, distributed = self._points(leaves, leaf_arg, point_mask)
        kernels = self._kernels_for(len(args), static_pos, tuple(args[i] for i in static_pos),
                                    kwargs, treedef)
        if self._device is None and self.backend is not None:
            self._device = resolve_device(self.backend)
        call = JaxCall(self.name, kernels, diff_pos, point_mask, n, bucket,
                       keep_residuals=record and not self.checkpoint and bool(diff_pos),
                       device=self._device)
        outs = record_call(call, leaves, distributed_outputs=distributed)
        if record and diff_pos:
            self.last_call = call
        floats, aux = iter(outs), iter(call.aux_outputs)
        return jax.tree_util.tree_unflatten(
            call.out_treedef, [next(floats) if f else next(aux) for f in call.out_float])

    def _check_static(self, args, kwargs):
        """Positions of the static arguments; checks they (and keywords) are hashable."""
        static_pos = _resolve(self.static_argnums, len(args), "static_argnums", self.name)
        for i in static_pos:
            if _is_recorded(args[i]):
                raise TypeError(f"{self.name}: argument {i} is a recorded crk value but is "
                                f"listed in static_argnums; static arguments are compile-time "
                                f"constants and cannot be differentiated")
        for what, value in [(f"argument {i}", args[i]) for i in static_pos] + \
                [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]:
            try:
                hash(value)
            except TypeError:
                raise TypeError(f"{self.name}: {what} is static (a compile-time constant) so it "
                                f"must be hashable, got {type(value).__name__}; pass arrays "
                                f"positionally as non-static arguments") from None
        return static_pos

    def _differentiated(self, leaves, leaf_arg, dynamic_pos, n_args, record):
        """(plain-or-recorded leaves, positions of the recorded leaves to differentiate)."""
        diff_args = set(dynamic_pos if self.argnums is None else
                        _resolve(self.argnums, n_args, "argnums", self.name))
        leaves = list(leaves)
        diff_pos = []
        for p, (v, i) in enumerate(zip(leaves, leaf_arg)):
            if not _is_recorded(v):
                if isinstance(v, float):          # a Python float is a float64 constant
                    leaves[p] = np.asarray(v, dtype=np.float64)
            elif i in diff_args:
                diff_pos.append(p)
            elif record:
                raise TypeError(
                    f"{self.name}: argument {i} is a recorded crk value but is not in "
                    f"argnums={self.argnums}; its derivative would be silently dropped. Add {i} "
                    f"to argnums, or pass its plain value (x.value) to use it as a constant.")
            else:                                  # nothing is recorded: just its value
                leaves[p] = v._ad_create_checkpoint()
        return leaves, diff_pos

    def _pointwise_positions(self, n_args, dynamic_pos):
        if isinstance(self.pointwise, tuple):
            if len(self.pointwise) != n_args:
                raise ValueError(f"{self.name}: pointwise={self.pointwise} has "
                                 f"{len(self.pointwise)} entries but the function was called "
                                 f"with {n_args} positional arguments")
            return {i for i in dynamic_pos if self.pointwise[i]}
        return set(dynamic_pos) if self.pointwise else set()

    def _points(self, leaves, leaf_arg, point_mask):
        """(local points n, padded points, outputs distributed) — n is None if not pointwise."""
        n, first, comm, distributed = None, None, None, False
        for v, i, pw in zip(leaves, leaf_arg, point_mask):
            dist = _is_recorded(v) and v._ad_distributed
            if dist and not pw:
                why = ("it is not declared pointwise" if self.pointwise else
                       "the function is not declared pointwise")
                raise ValueError(
                    f"{self.name}: argument {i} is distributed (each rank holds its own "
                    f"points) but {why}, so the function would see only this rank's piece. "
                    f"Declare pointwise=True (or a tuple per argument) if it maps each point "
                    f"(row) independently; otherwise make the argument replicated.")
            if not pw:
                continue
            shape = np.shape(v._ad_create_checkpoint() if _is_recorded(v) else v)
            if not shape:
                raise ValueError(f"{self.name}: argument {i} is declared pointwise but is a "
                                 f"scalar; pointwise arguments have the point axis first")
            if n is None:
                n, first = shape[0], i
            elif shape[0] != n:
                raise ValueError(f"{self.name}: pointwise argument {i} has {shape[0]} points "
                                 f"(axis 0) but argument {first} has {n}")
            if dist:
                distributed, comm = True, v._ad_comm
        if n is None:
            return None, None, False
        if not self.jit:
            return n, n, distributed
        bucket = shared_bucket(n, comm) if distributed else bucket_size(n)
        return n, bucket, distributed

    def _kernels_for(self, n_args, static_pos, static_vals, kwargs, treedef):
        key = (n_args, static_pos, static_vals, tuple(sorted(kwargs.items())), treedef)
        kernels = self._kernels.get(key)
        if kernels is None:
            jax, func = _jax(), self.func

            def fn(leaves):
                dynamic = iter(jax.tree_util.tree_unflatten(treedef, leaves))
                static = dict(zip(static_pos, static_vals))
                full = [static[i] if i in static else next(dynamic) for i in range(n_args)]
                return func(*full, **kwargs)
            kernels = self._kernels[key] = Kernels(fn, self.jit, self.trace_counts)
        return kernels


def overload_jax(func=None, argnums=None, static_argnums=None, checkpoint=False, jit=True,
                 pointwise=False, backend=None):
    """Record calls of the JAX function ``func`` on the crk tape, one block per call.

    Use directly (``f = overload_jax(g)``), as ``@overload_jax``, as ``@overload_jax(argnums=0)``
    or through ``functools.partial`` / ``jax.tree_util.Partial(overload_jax, argnums=(0, 1))``.

    ``argnums``: positions of the arguments to differentiate (default: every non-static one).
        Arguments may be arrays, floats or pytrees (tuples, lists, dicts) of them; recorded crk
        values among them become the block's dependencies, plain values are constants. A
        recorded crk value at a position NOT in ``argnums`` is an error (its derivative would be
        silently lost): pass ``x.value`` to use it as a constant.
    ``static_argnums``: positions of compile-time constants (hashable; ints, strings, tuples),
        as for ``jax.jit``. Keyword arguments are static too.
    ``checkpoint``: False (default) keeps the vjp linearisation of the forward pass (JAX
        residuals, often larger than inputs and outputs) in the block and reuses it in the
        adjoint while the inputs are unchanged; replays at new inputs recompute it;
        ``Block.release()`` drops it. True keeps nothing but the inputs and outputs the tape
        holds anyway, and recomputes the linearisation in the adjoint.
    ``jit``: compile forward and derivative programs (once per shape/dtype/static values);
        False runs them op by op.
    ``pointwise``: True (every non-static argument) or a tuple of bools (one per positional
        argument): these arguments have the point axis first and the function maps every point
        independently; every output then has the point axis first. Only pointwise arguments may
        be distributed (each rank evaluates its own points; outputs are distributed); the other
        arguments are parameters that must be replicated, and their adjoint contributions are
        summed over ranks by the tape.
    ``backend``: a JAX platform name ("cpu", "gpu") or a ``jax.Device`` to run on (default:
        JAX's default device; see :func:`crk.parallel.configure_devices`).

    Everything runs in float64 (scoped, see the module docstring). Called inside an outer JAX
    transform, the function records nothing and behaves like ``func``.
    """
    options = dict(argnums=argnums, static_argnums=static_argnums, checkpoint=checkpoint,
                   jit=jit, pointwise=pointwise, backend=backend)
    if func is None:
        return functools.partial(overload_jax, **options)
    return JaxFunction(func, **options)
