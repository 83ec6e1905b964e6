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

Modules
    This module is the public face: :func:`overload_jax` and its argument handling
    (:class:`JaxFunction`: static and differentiated arguments, pytrees, pointwise checks). One
    call's block lives in :mod:`crk.backends._jax_call` (:class:`JaxCall`); precision, devices,
    padding and the compiled-program cache in :mod:`crk.backends._jax_kernels`. The names other
    crk modules use from those two are re-exported here.
"""
import collections
import functools
import importlib.util

import numpy as np

from ..function_block import record_call
from ..tape import annotating
from .common import is_recorded, plain_value
from ._jax_call import JaxCall
from ._jax_kernels import (Kernels, bucket_size, float64, import_jax, pad_points, resolve_device,
                           shared_bucket, with_differentiated)

__all__ = ["JaxCall", "JaxFunction", "Kernels", "bucket_size", "contains_tracer", "float64",
           "import_jax", "overload_jax", "pad_points", "resolve_device", "shared_bucket",
           "with_differentiated"]


def contains_tracer(tree):
    """True when any leaf of ``tree`` is a JAX tracer (we are inside an outer transform)."""
    jax = import_jax()
    return any(isinstance(leaf, jax.core.Tracer)
               for leaf in jax.tree_util.tree_leaves(tree, is_leaf=is_recorded))


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

    def __init__(self, func, argnums=None, static_argnums=None, remat=True, jit=True,
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
        self.remat = bool(remat)
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
        jax = import_jax()
        recorded = [v for v in jax.tree_util.tree_leaves((args, kwargs), is_leaf=is_recorded)
                    if is_recorded(v)]
        if recorded and annotating():
            raise TypeError(
                f"{self.name}: called inside a JAX transform (some arguments are JAX tracers) "
                f"together with recorded crk values; the outer transform cannot see the crk "
                f"tape, so their derivatives would be lost. Pass plain values (x.value), or "
                f"call it under crk.stop_annotating().")
        plain = jax.tree_util.tree_map(plain_value, (args, kwargs), is_leaf=is_recorded)
        return self.func(*plain[0], **plain[1])

    # -- calls -------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        """Evaluate; records one block when an argument is a recorded crk value.

        Not collective, except for a ``pointwise`` function called with distributed arguments:
        then the ranks of their communicator agree on the padded point count (a small
        allreduce), so every rank must make the call.
        """
        jax = import_jax()
        if contains_tracer((args, kwargs)):
            return self._call_nested(args, kwargs)
        from ..distributed.align import align_arguments
        args = align_arguments(args, self.name)     # distributed: the same points on every rank
        static_pos = self._check_static(args, kwargs)
        dynamic_pos = [i for i in range(len(args)) if i not in static_pos]
        leaves, treedef = jax.tree_util.tree_flatten(tuple(args[i] for i in dynamic_pos),
                                                     is_leaf=is_recorded)
        leaf_arg = [i for i in dynamic_pos
                    for _ in jax.tree_util.tree_leaves(args[i], is_leaf=is_recorded)]
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
                       keep_residuals=record and not self.remat and bool(diff_pos),
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
            if is_recorded(args[i]):
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
            if not is_recorded(v):
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
            dist = is_recorded(v) and v._ad_distributed
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
            shape = np.shape(plain_value(v))
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
            jax, func = import_jax(), self.func

            def fn(leaves):
                dynamic = iter(jax.tree_util.tree_unflatten(treedef, leaves))
                static = dict(zip(static_pos, static_vals))
                full = [static[i] if i in static else next(dynamic) for i in range(n_args)]
                return func(*full, **kwargs)
            kernels = self._kernels[key] = Kernels(fn, self.jit, self.trace_counts)
        return kernels


def overload_jax(func=None, argnums=None, static_argnums=None, remat=True, jit=True,
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
    ``remat``: rematerialise (JAX's name, as in ``jax.remat``) the vjp linearisation in the
        adjoint. True (the default, as for point maps) keeps nothing between forward and
        adjoint but the inputs and outputs the tape holds anyway, so a tape's memory is that of
        its values whatever the function computes inside, and checkpointed loops bound it;
        the adjoint costs one more forward evaluation. False keeps the linearisation (JAX
        residuals, often much larger than inputs and outputs) in the block and reuses it in
        the adjoint while the inputs are unchanged; replays at new inputs recompute it;
        ``Block.release()`` drops it.
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
    options = dict(argnums=argnums, static_argnums=static_argnums, remat=remat,
                   jit=jit, pointwise=pointwise, backend=backend)
    if func is None:
        return functools.partial(overload_jax, **options)
    return JaxFunction(func, **options)
