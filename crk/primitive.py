"""Primitives: a function plus derivative rules in a table, and the Block that records a call.

As in autograd, an operation is defined once by registering rules (one per argument position)::

    multiply = Primitive("multiply", np.multiply)
    defvjp(multiply, lambda g, ans, x, y: unbroadcast(g * y, x),
                     lambda g, ans, x, y: unbroadcast(g * x, y))
    defjvp(multiply, lambda dx, ans, x, y: dx * y, lambda dy, ans, x, y: x * dy)
    defhvp(multiply, lambda g, dargs, ans, dans, x, y: ...,  ...)

The recording of calls is in :mod:`crk.recording`, the recorded block in
:mod:`crk.primitive_block`.

Rule signatures (``args`` are the call's plain positional values, ``kw`` its keyword arguments):

* vjp  ``(g, ans, *args, **kw)`` → adjoint contribution to that argument;
* jvp  ``(d, ans, *args, **kw)`` → tangent of the output due to tangent ``d`` of that argument;
* hvp  ``(g, dargs, ans, dans, *args, **kw)`` → the second-order term of that argument's adjoint,
  i.e. the derivative of its vjp in the direction of all argument tangents ``dargs`` (None for
  zero) and output tangent ``dans``. A primitive whose second-order term is zero (linear and
  piecewise-linear ones) registers no hvp rule.

A ``reduces`` primitive sums over ranks (its forward and jvp call crk.parallel collectives; its
inputs are distributed, its output replicated).
"""


class Primitive:
    """A differentiable operation: ``fun`` plus rule tables indexed by argument position."""

    __slots__ = ("name", "fun", "vjps", "jvps", "hvps", "reduces", "value_needs",
                 "_needs_cache")

    def __init__(self, name, fun, reduces=False):
        self.name = name
        self.fun = fun
        self.vjps = {}
        self.jvps = {}
        self.hvps = {}
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
        from .recording import apply
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


def defhvp_argnum(prim, rule):
    """One second-order rule ``rule(argnum, g, dargs, ans, dans, *args, **kw)`` for every
    argument (n-ary multilinear ops)."""
    prim.hvps = _AllArgnums(rule)


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
