"""PrimitiveBlock: the record of one call of a registered :class:`~crk.primitive.Primitive`.

Its four derivative kinds look up the primitive's rule tables; it stores the call's constants
and its dependencies in slots (no per-call containers, for the garbage collector's sake). It is
the one block type that overrides the drivers of :class:`~crk.block.Block` instead of its
hooks (a tape holds one per recorded operation, so the per-component hook calls would dominate);
it keeps the drivers' contract stated there.
"""
from .block import Block
from .block_variable import zeros_like

NO_KWARGS = {}     # the shared keyword arguments of calls without any (never modified)


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
    kwargs = NO_KWARGS

    @property
    def _dependencies(self):
        if self.more is not None:
            return self.more
        return (self.dep0,) if self.dep1 is None else (self.dep0, self.dep1)

    @property
    def _outputs(self):
        return (self.out,)

    def adjoint_locality(self):
        return self.local_comm

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
        collective = self.prim.reduces
        for k, dep in enumerate(self._dependencies):
            d = dep.tlm_value
            if d is None:
                if not collective:
                    continue
                # A collective tangent runs on every rank whatever this rank received.
                d = zeros_like(dep.checkpoint)
            if args is None:
                args = self._values()
            t = jvps[self.dep_pos[k]](d, ans, *args, **self.kwargs)
            tangent = t if tangent is None else tangent + t
        if tangent is not None:
            out = self.out
            out.tlm_value = tangent if out.tlm_value is None else out.tlm_value + tangent

    def evaluate_adj(self, relevant_dependencies=None, hessian=False):
        out = self.out
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
        second_order = hessian and g is not None and bool(prim.hvps)
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
            dep.accumulate(adj, hess, self.local_comm)

    def __repr__(self):
        return f"<PrimitiveBlock {self.prim.name}>"
