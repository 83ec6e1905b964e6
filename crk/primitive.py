"""Primitives: a function plus derivative rules in a table, and the Block that records a call.

As in autograd, an operation is defined once by registering rules (one per argument position)::

    multiply = Primitive("multiply", np.multiply)
    defvjp(multiply, lambda g, ans, x, y: unbroadcast(g * y, x),
                     lambda g, ans, x, y: unbroadcast(g * x, y))
    defjvp(multiply, lambda dx, ans, x, y: dx * y, lambda dy, ans, x, y: x * dy)
    defhvp(multiply, lambda g, dargs, ans, dans, x, y: ...,  ...)

Rule signatures (``args`` are the call's plain positional values, ``kw`` its keyword arguments):

* vjp  ``(g, ans, *args, **kw)`` → adjoint contribution to that argument;
* jvp  ``(d, ans, *args, **kw)`` → tangent of the output due to tangent ``d`` of that argument;
* hvp  ``(g, dargs, ans, dans, *args, **kw)`` → the second-order term of that argument's adjoint,
  i.e. the derivative of its vjp in the direction of all argument tangents ``dargs`` (None for
  zero) and output tangent ``dans``. Linear primitives have none (``linear=True``).

A ``reduces`` primitive sums over ranks (its forward and jvp call crk.parallel collectives; its
inputs are distributed, its output replicated).
"""
import numpy as np

from .block import Block
from .block_variable import BlockVariable
from .overloaded_type import OverloadedType
from .parallel.comm import comms_compatible, describe_comm
from .tape import _annotating, _working_tape, get_working_tape


class Primitive:
    """A differentiable operation: ``fun`` plus rule tables indexed by argument position."""

    __slots__ = ("name", "fun", "vjps", "jvps", "hvps", "linear", "reduces", "value_needs",
                 "_needs_cache")

    def __init__(self, name, fun, linear=False, reduces=False):
        self.name = name
        self.fun = fun
        self.vjps = {}
        self.jvps = {}
        self.hvps = {}
        self.linear = linear
        self.reduces = reduces
        self.value_needs = None     # see defneeds; None: every argument value and the output
        self._needs_cache = {}

    def needs(self, dep_pos):
        """(argument positions whose values rules read, whether they read the output)."""
        cached = self._needs_cache.get(dep_pos)
        if cached is None:
            if self.value_needs is None:
                cached = (frozenset(dep_pos), True)
            else:
                positions, out = self.value_needs(dep_pos)
                cached = (frozenset(positions), bool(out))
            self._needs_cache[dep_pos] = cached
        return cached

    def __call__(self, *args, **kwargs):
        return apply(self, args, kwargs)

    def __repr__(self):
        return f"<crk primitive {self.name}>"


def _register(table, rules, argnums):
    argnums = range(len(rules)) if argnums is None else argnums
    for argnum, rule in zip(argnums, rules):
        if rule is not None:
            table[argnum] = rule


def defvjp(prim, *rules, argnums=None):
    """Register reverse-mode rules, one per argument (None: not differentiable there)."""
    _register(prim.vjps, rules, argnums)


def defjvp(prim, *rules, argnums=None):
    """Register forward-mode rules, one per argument."""
    _register(prim.jvps, rules, argnums)


def defhvp(prim, *rules, argnums=None):
    """Register second-order rules, one per argument (omit for a zero second-order term)."""
    _register(prim.hvps, rules, argnums)


def defneeds(prim, needs):
    """Declare which values the rules of ``prim`` read (all of them if never declared).

    ``needs(recorded)`` gets the positions of the recorded (differentiated) arguments and
    returns ``(positions, output)``: the argument positions whose values any vjp/jvp/hvp rule
    reads, and whether a rule reads the output. Rules may always read shapes. Values no rule
    reads are not kept by the tape once the user drops them — so be exact: a rule that reads a
    value not declared here gets a zero-byte stand-in and computes garbage (the Taylor tests of
    every primitive catch that).
    """
    prim.value_needs = needs


NEEDS_NOTHING = (frozenset(), False)


def needs_nothing(recorded):
    """For linear primitives whose rules read only shapes."""
    return NEEDS_NOTHING


def needs_other_operand(recorded):
    """For bilinear primitives: each argument's value serves the other's derivative."""
    return frozenset(1 - p for p in recorded), False


def defvjp_argnum(prim, rule):
    """Register one rule ``rule(argnum, g, ans, *args, **kw)`` for every argument (n-ary ops)."""
    prim.vjps = _AllArgnums(rule)


def defjvp_argnum(prim, rule):
    prim.jvps = _AllArgnums(rule)


class _AllArgnums:
    """A rule table answering every argument position with one position-aware rule."""

    __slots__ = ("rule",)

    def __init__(self, rule):
        self.rule = rule

    def __getitem__(self, argnum):
        rule = self.rule
        return lambda *a, **k: rule(argnum, *a, **k)

    def __contains__(self, argnum):
        return True


# -- recording ---------------------------------------------------------------------------------
_wrap_output = None   # set by crk.array: (value, distributed, comm) -> overloaded object


_NO_KWARGS = {}


def apply(prim, args, kwargs=None):
    """Evaluate ``prim`` on the plain values of ``args`` and record a block if any is overloaded.

    Returns an overloaded value (AdjFloat for replicated scalars, crk.ndarray otherwise) when any
    argument is overloaded; checks that distributed arguments share a communicator.
    This is the recording hot path: keep it lean.
    """
    if kwargs is None:
        kwargs = _NO_KWARGS
    values = list(args)
    deps = []
    dep_pos = []
    distributed = False
    comm = None
    vjps = prim.vjps
    for i, a in enumerate(args):
        if isinstance(a, OverloadedType):
            bv = a._bv
            if bv is None:
                bv = a.create_block_variable()
            # Compute with the object's own value (after a replay the checkpoint may hold another
            # point); re-attach it if a checkpoint executor freed the checkpoint.
            value = values[i] = a._ad_create_checkpoint()
            if bv.checkpoint is None:
                bv.checkpoint = value
            if i not in vjps:
                raise TypeError(f"crk {prim.name}: argument {i} is not differentiable, but a "
                                f"recorded value was passed there; pass a plain value instead")
            deps.append(bv)
            dep_pos.append(i)
            a_comm = a._ad_comm
            if a_comm is not None:
                if comm is None:
                    comm = a_comm
                elif a_comm is not comm and not comms_compatible(comm, a_comm):
                    raise ValueError(
                        f"crk {prim.name}: argument {i} lives on {describe_comm(a_comm)} but an "
                        f"earlier argument lives on {describe_comm(comm)}; values from different "
                        f"communicators cannot be combined")
            if a._ad_distributed:
                distributed = True
        elif type(a) is np.ndarray and a.flags.writeable:
            values[i] = a.copy()    # a constant the user may still modify in place
    try:
        ans = prim.fun(*values, **kwargs)
    except (ValueError, TypeError) as e:
        shapes = ", ".join(_describe_arg(a) for a in args)
        raise type(e)(f"crk {prim.name}({shapes}): {e}") from e
    if not deps:
        return ans
    local = distributed
    if prim.reduces:
        distributed = False
    out = _wrap_output(ans, distributed, comm)
    if not _annotating.get() or not isinstance(out, OverloadedType):
        return out
    for pos in dep_pos:
        values[pos] = None          # the block reads dependencies from their checkpoints
    out_bv = out._bv
    dep_pos = tuple(dep_pos)
    positions, out_bv.keep = prim.needs(dep_pos)
    for bv, pos in zip(deps, dep_pos):
        if pos in positions:
            bv.keep = True
    _record(prim, tuple(deps), tuple(values), kwargs, dep_pos, out_bv,
            type(out_bv.checkpoint) is float, comm if local else None)
    return out


def _record(prim, deps, args, kwargs, dep_pos, out_bv, scalar_out, local_comm):
    # Unary and binary calls keep their dependencies in slots, not a tuple: on a long tape every
    # extra container is one more object for the garbage collector to traverse again and again.
    block = PrimitiveBlock.__new__(PrimitiveBlock)
    n = len(deps)
    block.dep0 = deps[0]
    block.dep1 = deps[1] if n == 2 else None
    if n > 2:
        block.more = deps
    block.out = out_bv
    block.prim = prim
    block.args = args
    if kwargs:
        block.kwargs = kwargs
    block.dep_pos = dep_pos
    block.scalar_out = scalar_out
    block.local_comm = local_comm
    tape = _working_tape.get()
    if tape is None:
        tape = get_working_tape()
    tape.add_block(block)


_SCALAR_TYPES = (float, int)
_POS_01, _POS_0, _POS_1 = (0, 1), (0,), (1,)


def apply2(prim, a, b):
    """``apply`` for a two-argument primitive without keywords: the arithmetic hot path.

    Handles AdjFloats, crk arrays and Python numbers sharing one communicator; everything else
    (numpy constants, other types, mismatched communicators, errors) goes through :func:`apply`.
    """
    ta, tb = type(a), type(b)
    a_array, b_array = ta is _NDArray, tb is _NDArray
    a_rec = a_array or ta is _AdjFloat
    b_rec = b_array or tb is _AdjFloat
    if not ((a_rec or ta in _SCALAR_TYPES) and (b_rec or tb in _SCALAR_TYPES)):
        return apply(prim, (a, b))
    comm = None
    distributed = False
    if a_array:
        va = a._value
        comm = a._ad_comm
        distributed = a._ad_distributed
    else:
        va = float.__float__(a) if a_rec else a
    if b_array:
        vb = b._value
        if b._ad_comm is not comm:
            if comm is not None:
                return apply(prim, (a, b))   # compares the communicators, explains a mismatch
            comm = b._ad_comm
        distributed = distributed or b._ad_distributed
    else:
        vb = float.__float__(b) if b_rec else b
    try:
        ans = prim.fun(va, vb)
    except (ValueError, TypeError):
        return apply(prim, (a, b))           # recomputes and raises with a described call
    if a_array or b_array:
        out, out_bv = _new_array(ans, distributed, comm)
        scalar_out = False
    else:
        ans = float(ans)
        out = float.__new__(_AdjFloat, ans)
        out._bv = out_bv = BlockVariable(ans)
        scalar_out = True
    if not _annotating.get():
        return out
    if a_rec:
        bva = a._bv or a.create_block_variable()
        if bva.checkpoint is None:
            bva.checkpoint = va
        if b_rec:
            bvb = b._bv or b.create_block_variable()
            if bvb.checkpoint is None:
                bvb.checkpoint = vb
            deps, args, dep_pos = (bva, bvb), (None, None), _POS_01
        else:
            deps, args, dep_pos = (bva,), (None, vb), _POS_0
    else:
        bvb = b._bv or b.create_block_variable()
        if bvb.checkpoint is None:
            bvb.checkpoint = vb
        deps, args, dep_pos = (bvb,), (va, None), _POS_1
    if not scalar_out:
        positions, out_bv.keep = prim.needs(dep_pos)
        for bv, pos in zip(deps, dep_pos):
            if pos in positions:
                bv.keep = True
    _record(prim, deps, args, _NO_KWARGS, dep_pos, out_bv, scalar_out,
            comm if distributed else None)
    return out


def _new_array(value, distributed, comm):
    """A crk.ndarray (and its BlockVariable) around a fresh result of an arithmetic op."""
    if type(value) is not np.ndarray or value.dtype.kind != "f" or \
            (value.ndim == 0 and not distributed):
        out = _wrap_output(value, distributed, comm)
        return out, out._bv
    value.flags.writeable = False
    out = _NDArray.__new__(_NDArray)
    out._value = value
    out._ad_distributed = distributed
    out._ad_comm = comm
    out._bv = bv = BlockVariable(value, distributed, comm)
    bv.keep = False
    return out, bv


apply_scalar = apply2          # the scalar hot path is the same function


_AdjFloat = None   # set by crk.adjfloat (avoids an import cycle)
_NDArray = None    # set by crk.array


def _describe_arg(a):
    if isinstance(a, OverloadedType):
        kind = "distributed" if a._ad_distributed else "replicated"
        return f"{kind} {type(a).__name__} of shape {np.shape(a._ad_create_checkpoint())}"
    if isinstance(a, np.ndarray):
        return f"ndarray of shape {a.shape}"
    return type(a).__name__


class PrimitiveBlock(Block):
    """The record of one call of a registered Primitive (one output).

    ``dep0``/``dep1`` hold the dependencies of unary and binary calls (``more`` holds all of them
    for n-ary calls), ``out`` the output; ``args`` the call's positional values with None where a
    dependency goes (``dep_pos`` says where), ``kwargs`` its keyword arguments. ``local_comm``
    is the communicator over which this block's adjoint contributions to replicated inputs are
    rank-local (None when they are complete on every rank).
    """

    __slots__ = ("dep0", "dep1", "out", "prim", "args", "dep_pos", "scalar_out", "local_comm")
    more = None            # rare cases live in the instance dict, not in a slot
    kwargs = _NO_KWARGS

    @property
    def _dependencies(self):
        if self.more is not None:
            return self.more
        return (self.dep0,) if self.dep1 is None else (self.dep0, self.dep1)

    @property
    def _outputs(self):
        return (self.out,)

    def _values(self):
        args = list(self.args)
        pos = self.dep_pos
        if self.more is not None:
            for k, bv in enumerate(self.more):
                args[pos[k]] = bv.checkpoint
        else:
            args[pos[0]] = self.dep0.checkpoint
            if self.dep1 is not None:
                args[pos[1]] = self.dep1.checkpoint
        return args

    def recompute(self, relevant_outputs=None):
        ans = self.prim.fun(*self._values(), **self.kwargs)
        self.out.checkpoint = float(ans) if self.scalar_out else ans

    def evaluate_tlm(self, relevant_outputs=None):
        args = None
        tangent = None
        jvps = self.prim.jvps
        ans = self.out.checkpoint
        for k, dep in enumerate(self._dependencies):
            d = dep.tlm_value
            if d is None:
                continue
            if args is None:
                args = self._values()
            t = jvps[self.dep_pos[k]](d, ans, *args, **self.kwargs)
            tangent = t if tangent is None else tangent + t
        if tangent is not None:
            out = self.out
            out.tlm_value = tangent if out.tlm_value is None else out.tlm_value + tangent

    def evaluate_adj(self, relevant_dependencies=None, hessian=False):
        out = self.out
        if out.partial is not None:
            out.reduce_partials(hessian)
        g = out.adj_value
        h = out.hessian_value if hessian else None
        if g is None and h is None:
            return
        prim = self.prim
        kw = self.kwargs
        ans = out.checkpoint
        args = self._values()
        deps = self._dependencies
        dep_pos = self.dep_pos
        second_order = hessian and g is not None and not prim.linear
        if second_order:
            dargs = [None] * len(args)
            for k, pos in enumerate(dep_pos):
                dargs[pos] = deps[k].tlm_value
            dans = out.tlm_value
        for k, dep in enumerate(deps):
            if relevant_dependencies is not None and not relevant_dependencies[k]:
                continue
            pos = dep_pos[k]
            vjp = prim.vjps[pos]
            adj = None if g is None else vjp(g, ans, *args, **kw)
            hess = None
            if hessian:
                if h is not None:
                    hess = vjp(h, ans, *args, **kw)
                if second_order and pos in prim.hvps:
                    second = prim.hvps[pos](g, dargs, ans, dans, *args, **kw)
                    if second is not None:
                        hess = second if hess is None else hess + second
            if self.local_comm is not None and not dep.distributed:
                dep.add_partial(adj, hess, self.local_comm)
            else:
                if adj is not None:
                    dep.adj_value = adj if dep.adj_value is None else dep.adj_value + adj
                if hess is not None:
                    dep.hessian_value = hess if dep.hessian_value is None \
                        else dep.hessian_value + hess

    def __repr__(self):
        return f"<PrimitiveBlock {self.prim.name}>"
