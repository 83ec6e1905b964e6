"""PointMap: a vectorised constitutive relation evaluated at many points at once.

A point map takes per-point arguments (shape ``(n, *s)``, declared ``(-1, *s)``) and parameters
shared by all points (declared by their plain shape, e.g. ``()``), and returns per-point outputs
(declared ``(-1, *s)``). Backends (JAX, Autograd, TensorFlow) implement the plain-value hooks of
:class:`~crk.function_block.DifferentiableFunction` plus :meth:`PointMap.jacobians`; this base
checks shapes, records calls on the tape and composes maps, and holds what every backend's map
shares: output and ``jacobians`` argument checks and the ``point_map`` decorator
(:func:`point_map_decorator`). Reading shape declarations is in :mod:`crk.cr.shapes`.

Per-point Jacobians have shape ``(n, *out_point_shape, *in_shape)`` where ``in_shape`` is the
per-point shape of a pointwise argument or the full shape of a parameter; they are computed for
all points at once, with memory proportional to points × inputs × outputs.
"""
import collections
import functools

import numpy as np

from ..overloaded_type import plain_value
from ..function_block import DifferentiableFunction, record_call
from ..overloaded_type import OverloadedType
from .shapes import format_shape, is_shape, parse_shape


def plain_float64(value):
    """The plain value of a crk value or array-like as a float64 numpy array."""
    return np.asarray(plain_value(value), dtype=np.float64)


#: What :meth:`PointMap._jacobian_plan` checked and worked out for a ``jacobians`` call:
#: the point count, the differentiated arguments, the flat sizes of each output's and each
#: argument's per-point value, the indices k (into argnums) of the pointwise arguments, and
#: whether those go by reverse passes (one per output component) rather than forward ones (one
#: per input component; parameters always go forward).
JacobianPlan = collections.namedtuple(
    "JacobianPlan", "n argnums out_sizes in_sizes pointwise reverse")

#: Points per pass in ``jacobians``: the Jacobian is filled a chunk of points at a time, so a
#: pass's temporaries (the traced forward pass, tangents, cotangents) stay small next to the
#: Jacobian itself (measured in scripts/bench_pointwise.py), while a chunk is still large enough
#: that the per-pass overhead (tracing or dispatch, tens of microseconds) is negligible.
JACOBIAN_CHUNK = 1 << 15


class PointMap(DifferentiableFunction):
    """Base class of point maps. See the module docstring for shapes.

    ``in_shapes``: one shape per argument; ``out_shapes``: one shape (single output) or a tuple
    of shapes (several outputs). ``arg_names`` name the arguments in error messages.
    """

    #: Default points per pass of :meth:`jacobians` (see :data:`JACOBIAN_CHUNK`).
    jacobian_chunk = JACOBIAN_CHUNK
    #: With ``mode=None``, whether ``jacobians`` takes reverse passes when they are as many as
    #: the forward ones (backends whose reverse passes share one traced forward pass).
    jacobian_reverse_on_tie = False

    def __init__(self, in_shapes, out_shapes, name="point map", arg_names=None):
        self.name = name
        parsed = [parse_shape(s, f"{name}: in_shapes[{i}]") for i, s in enumerate(in_shapes)]
        self.pointwise = tuple(p for p, _ in parsed)
        self.in_point_shapes = tuple(s for _, s in parsed)
        self.single_output = is_shape(tuple(out_shapes))
        outs = (tuple(out_shapes),) if self.single_output else tuple(out_shapes)
        parsed = [parse_shape(s, f"{name}: out_shapes[{i}]") for i, s in enumerate(outs)]
        self.out_pointwise = tuple(p for p, _ in parsed)
        self.out_point_shapes = tuple(s for _, s in parsed)
        self.arg_names = tuple(arg_names) if arg_names is not None else \
            tuple(f"argument {i}" for i in range(len(self.pointwise)))

    @property
    def n_inputs(self):
        return len(self.pointwise)

    @property
    def n_outputs(self):
        return len(self.out_pointwise)

    # -- shape checking ----------------------------------------------------------------------
    def _describe(self, i):
        name = self.arg_names[i]
        return name if name.startswith("argument") else f"argument '{name}' ({i})"

    def check_args(self, args):
        """Check argument count and shapes; returns the number of points n (None if none)."""
        if len(args) != self.n_inputs:
            raise TypeError(f"{self.name}: expected {self.n_inputs} arguments "
                            f"({', '.join(self.arg_names)}), got {len(args)}")
        n = None
        for i, a in enumerate(args):
            shape = np.shape(plain_value(a))
            if self.pointwise[i]:
                expected = ("n",) + self.in_point_shapes[i]
                if len(shape) != len(expected) or shape[1:] != self.in_point_shapes[i]:
                    raise ValueError(f"{self.name}: {self._describe(i)} expected shape "
                                     f"{format_shape(expected)} (n points), received {shape}")
                if n is None:
                    n = shape[0]
                elif shape[0] != n:
                    raise ValueError(f"{self.name}: {self._describe(i)} has {shape[0]} points "
                                     f"but an earlier argument has {n}")
            else:
                if shape != self.in_point_shapes[i]:
                    raise ValueError(f"{self.name}: {self._describe(i)} (a parameter) expected "
                                     f"shape {self.in_point_shapes[i]}, received {shape}")
                if isinstance(a, OverloadedType) and a._ad_distributed:
                    raise ValueError(f"{self.name}: {self._describe(i)} is a parameter shared "
                                     f"by all points, so it must be replicated, not distributed")
        return n

    def output_shapes(self, n):
        return tuple(((n,) if pw else ()) + s
                     for pw, s in zip(self.out_pointwise, self.out_point_shapes))

    def _points(self, args):
        """The number of points of plain ``args``: the leading length of the first pointwise
        argument (None if no argument is pointwise)."""
        for a, pw in zip(args, self.pointwise):
            if pw:
                return np.shape(a)[0]
        return None

    # -- checks the backends share -----------------------------------------------------------
    def _output_tuple(self, result, kind="arrays"):
        """The user function's ``result`` as a tuple with one entry per declared output;
        ``kind`` names what the function should return (``"arrays"``, ``"tensors"``)."""
        if self.single_output:
            return (result,)
        if not isinstance(result, (tuple, list)) or len(result) != self.n_outputs:
            got = f"a {type(result).__name__}" if not isinstance(result, (tuple, list)) \
                else f"{len(result)} values"
            raise ValueError(f"{self.name}: declared {self.n_outputs} outputs, so the function "
                             f"must return a tuple of {self.n_outputs} {kind}; it returned {got}")
        return tuple(result)

    def _check_outputs(self, outs, n):
        """ValueError unless the evaluated outputs ``outs`` have the declared shapes for ``n``
        points (n None: no pointwise argument)."""
        for i, (out, expected) in enumerate(zip(outs, self.output_shapes(n))):
            if np.shape(out) != expected:
                spec = expected if n is None else ("n",) + expected[1:]
                raise ValueError(f"{self.name}: output {i} should have shape "
                                 f"{format_shape(spec)}{'' if n is None else f' with n = {n}'}, "
                                 f"but the function returned shape {np.shape(out)}")

    def _jacobian_plan(self, args, argnums, mode):
        """Check a :meth:`jacobians` call and pick forward or reverse passes by ``mode``
        (None: the fewer passes, see ``jacobian_reverse_on_tie``; "forward" or "reverse");
        returns its :data:`JacobianPlan`."""
        n = self.check_args(args)
        argnums = tuple(range(self.n_inputs)) if argnums is None else tuple(argnums)
        for a in argnums:
            if not 0 <= a < self.n_inputs:
                raise ValueError(f"{self.name}.jacobians: argnums entry {a} is not an argument "
                                 f"index (the map takes {self.n_inputs} arguments)")
        if n is None or not all(self.out_pointwise):
            raise ValueError(f"{self.name}.jacobians: per-point Jacobians need at least one "
                             f"pointwise argument and only pointwise outputs")
        if mode not in (None, "forward", "reverse"):
            raise ValueError(f"{self.name}.jacobians: argument 'mode' must be None, 'forward' "
                             f"or 'reverse', got {mode!r}")
        out_sizes = tuple(int(np.prod(s)) for s in self.out_point_shapes)
        in_sizes = tuple(int(np.prod(self.in_point_shapes[a])) for a in argnums)
        pointwise = tuple(k for k, a in enumerate(argnums) if self.pointwise[a])
        backward, forward = sum(out_sizes), sum(in_sizes[k] for k in pointwise)
        reverse = bool(pointwise) and (mode == "reverse" or mode is None and (
            backward < forward or backward == forward and self.jacobian_reverse_on_tie))
        return JacobianPlan(n, argnums, out_sizes, in_sizes, pointwise, reverse)

    def _chunked_jacobians(self, args, plan, fill, chunk_size=None, values=False):
        """Allocate the Jacobian blocks once and let ``fill`` compute them a chunk of points at
        a time, so the extra memory is the Jacobian plus one chunk's temporaries.

        ``args``: plain arrays. ``fill(chunk_args, blocks)`` writes, for the points of
        ``chunk_args`` (pointwise arguments sliced, parameters whole), ``blocks[o][k]`` of shape
        (chunk, out_size[o], in_size[k]) (views into the result). ``chunk_size``: points per
        chunk (default the class's ``jacobian_chunk``). Returns ``J[o][k]`` shaped
        (n, *out_point_shape, *in_shape). With ``values``, ``fill(chunk_args, blocks, outs)``
        also writes the outputs ``outs[o]`` (chunk, *out_point_shape) and the result is
        ``(outputs, J)``.
        """
        if chunk_size is None:
            chunk_size = self.jacobian_chunk
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
                or chunk_size < 1:
            raise ValueError(f"{self.name}.jacobians: argument 'chunk_size' must be a positive "
                             f"integer (points per pass), got {chunk_size!r}")
        n = plan.n
        args = tuple(np.asarray(a) if pw else a for a, pw in zip(args, self.pointwise))
        blocks = [[np.empty((n, m, k)) for k in plan.in_sizes] for m in plan.out_sizes]
        outs = [np.empty((n,) + s) for s in self.out_point_shapes] if values else None
        for start in range(0, n, int(chunk_size)):
            stop = min(n, start + int(chunk_size))
            chunk = tuple(a[start:stop] if pw else a for a, pw in zip(args, self.pointwise))
            views = [[b[start:stop] for b in row] for row in blocks]
            if values:
                fill(chunk, views, [o[start:stop] for o in outs])
            else:
                fill(chunk, views)
        J = [[b.reshape((n,) + self.out_point_shapes[o] + self.in_point_shapes[a])
              for b, a in zip(row, plan.argnums)] for o, row in enumerate(blocks)]
        return (tuple(outs), J) if values else J

    # -- public use --------------------------------------------------------------------------
    def __call__(self, *args):
        """Evaluate; records one block when any argument is a recorded crk value."""
        from ..distributed.align import align_arguments
        args = align_arguments(args, self.name)     # distributed: the same points on every rank
        self.check_args(args)
        pointwise_distributed = any(
            isinstance(a, OverloadedType) and a._ad_distributed
            for a, pw in zip(args, self.pointwise) if pw)
        outs = record_call(self, args, distributed_outputs=pointwise_distributed)
        return outs[0] if self.single_output else outs

    def jacobians(self, *args, argnums=None, mode=None, chunk_size=None):
        """Per-point Jacobians ``J[o][k]`` of output o with respect to argument argnums[k].

        Shape ``(n, *out_point_shape, *in_shape)``; computed for all points at once (a chunk of
        ``chunk_size`` points per pass). ``mode``: None, "forward" or "reverse".
        """
        raise NotImplementedError

    def value_and_jacobians(self, *args, argnums=None, mode=None, chunk_size=None):
        """The outputs (a tuple, as :meth:`evaluate` gives them) and the per-point Jacobians
        (as :meth:`jacobians` gives them) at the same arguments. A backend that gets both from
        the same passes (JAX: the primal of its tangent or cotangent passes) overrides this;
        the default makes the two calls. Not recorded; not collective."""
        return (tuple(self.evaluate(tuple(args))),
                self.jacobians(*args, argnums=argnums, mode=mode, chunk_size=chunk_size))

    def compose(self, inner):
        """The point map ``self ∘ inner``: ``self`` takes exactly ``inner``'s outputs."""
        return ComposedPointMap(self, inner)

    def __repr__(self):
        return (f"<{type(self).__name__} {self.name}: "
                f"{tuple(((-1,) if p else ()) + s for p, s in zip(self.pointwise, self.in_point_shapes))}"
                f" -> {tuple(((-1,) if p else ()) + s for p, s in zip(self.out_pointwise, self.out_point_shapes))}>")


def point_map_decorator(make_map, bare):
    """The decorator each backend's ``point_map(...)`` returns.

    ``make_map(func)`` builds the backend's :class:`PointMap` from the decorated function.
    ``bare``: False returns that map (with the function's name and docstring); True a plain
    function with the same name and docstring that calls it, the map as ``f.point_map``.
    """
    def decorate(func):
        pm = make_map(func)
        if not bare:
            return functools.update_wrapper(pm, func, updated=())

        @functools.wraps(func)
        def call(*args):
            return pm(*args)
        call.point_map = pm
        return call
    return decorate


def _contract(a, b, k):
    """Per-point product of Jacobians a (n, *o, *m) and b (n, *m, *i), contracting k axes."""
    n = a.shape[0]
    o = a.shape[1:a.ndim - k]
    m = a.shape[a.ndim - k:]
    i = b.shape[1 + k:]
    size_m = int(np.prod(m))
    out = np.einsum("nom,nmi->noi", a.reshape(n, -1, size_m), b.reshape(n, size_m, -1))
    return out.reshape((n,) + o + i)


class ComposedPointMap(PointMap):
    """``outer ∘ inner``; derivatives by the chain rule on the two maps' hooks."""

    def __init__(self, outer, inner):
        expect = tuple(((-1,) if p else ()) + s
                       for p, s in zip(inner.out_pointwise, inner.out_point_shapes))
        got = tuple(((-1,) if p else ()) + s
                    for p, s in zip(outer.pointwise, outer.in_point_shapes))
        if expect != got:
            raise ValueError(f"compose: {outer.name} takes arguments of shapes {got} but "
                             f"{inner.name} returns {expect}")
        outs = tuple(((-1,) if p else ()) + s
                     for p, s in zip(outer.out_pointwise, outer.out_point_shapes))
        ins = tuple(((-1,) if p else ()) + s
                    for p, s in zip(inner.pointwise, inner.in_point_shapes))
        super().__init__(ins, outs[0] if outer.single_output else outs,
                         name=f"{outer.name}∘{inner.name}", arg_names=inner.arg_names)
        self.outer, self.inner = outer, inner

    def evaluate(self, args):
        return self.outer.evaluate(tuple(self.inner.evaluate(args)))

    def vjp(self, args, cotangents, argnums):
        mid = tuple(self.inner.evaluate(args))
        mid_cot = self.outer.vjp(mid, cotangents, tuple(range(len(mid))))
        return self.inner.vjp(args, tuple(mid_cot), argnums)

    def jvp(self, args, tangents):
        mid = tuple(self.inner.evaluate(args))
        return self.outer.jvp(mid, tuple(self.inner.jvp(args, tangents)))

    def hvp(self, args, tangents, cotangents, argnums):
        mid = tuple(self.inner.evaluate(args))
        all_mid = tuple(range(len(mid)))
        mid_cot = tuple(self.outer.vjp(mid, cotangents, all_mid))
        mid_dot = tuple(self.inner.jvp(args, tangents))
        first = self.inner.hvp(args, tangents, mid_cot, argnums)
        second_mid = self.outer.hvp(mid, mid_dot, cotangents, all_mid)
        second = self.inner.vjp(args, tuple(second_mid), argnums)
        return tuple(a if b is None else (b if a is None else a + b)
                     for a, b in zip(first, second))

    def jacobians(self, *args, argnums=None, mode=None, chunk_size=None):
        """The chain rule on the two maps' Jacobians (``mode``, ``chunk_size``: passed to both)."""
        return self.value_and_jacobians(*args, argnums=argnums, mode=mode,
                                        chunk_size=chunk_size)[1]

    def value_and_jacobians(self, *args, argnums=None, mode=None, chunk_size=None):
        """The outer map's outputs and Jacobians at the inner map's outputs, chained."""
        argnums = tuple(range(self.n_inputs)) if argnums is None else tuple(argnums)
        mid = tuple(self.inner.evaluate(tuple(args)))
        outs, j_outer = self.outer.value_and_jacobians(*mid, mode=mode, chunk_size=chunk_size)
        j_inner = self.inner.jacobians(*args, argnums=argnums, mode=mode, chunk_size=chunk_size)
        return tuple(outs), self._chain(j_outer, j_inner, len(argnums), len(mid))

    def _chain(self, j_outer, j_inner, n_args, n_mid):
        """J[o][k] = Σ_m j_outer[o][m] j_inner[m][k], per point."""
        result = []
        for o in range(self.n_outputs):
            row = []
            for k in range(n_args):
                total = None
                for m in range(n_mid):
                    part = _contract(j_outer[o][m], j_inner[m][k],
                                     len(self.inner.out_point_shapes[m]))
                    total = part if total is None else total + part
                row.append(total)
            result.append(row)
        return result
