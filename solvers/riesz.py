"""Riesz maps of nodal fields: the L2 (mass) and H1 (mass + stiffness) inner products.

``rf.derivative()`` returns the l2 derivative of a functional with respect to a field control,
a dual object: its entries are ∂J/∂m_i, which depend on the mesh. The gradient in the function
space with inner product (a, b)_V = aᵀ V b is g = V⁻¹ dJ/dm. A :class:`RieszMap` holds V
(assembled once from the Q1 element matrices) and a CG solver for it::

    riesz = solvers.RieszMap(mesh, "L2")
    gradient = rf.derivative(riesz_map=riesz)       # the L2 gradient, a nodal field

``riesz(d)`` solves V g = d; ``riesz.dual(g)`` applies V; ``riesz.inner(a, b)`` is aᵀ V b
(replicated). ``kind``: "L2" (V = M), "H1" (V = M + K) or a pair of weights (a, b) for
a M + b K. Collective; ``destroy()`` (or ``with``) frees its PETSc objects.
"""
import numpy as np

from crk.parallel import agree, sum_over_ranks

from .fem import ElementBox, Q1Element
from .petsc import import_petsc


class RieszMap:
    """The map from l2 derivatives of nodal fields to gradients in L2 or H1 (see module)."""

    def __init__(self, mesh, kind="L2", components=1, rtol=1e-12):
        PETSc = import_petsc()
        if isinstance(kind, str):
            weights = {"L2": (1.0, 0.0), "H1": (1.0, 1.0)}.get(kind)
            if weights is None:
                raise ValueError(f"RieszMap: argument 'kind' must be 'L2', 'H1' or a pair of "
                                 f"weights (mass, stiffness), got {kind!r}")
        else:
            weights = tuple(float(w) for w in kind)
            if len(weights) != 2 or weights[0] <= 0.0 or weights[1] < 0.0:
                raise ValueError(f"RieszMap: weights (mass, stiffness) must be positive and "
                                 f"non-negative, got {kind!r}")
        self.mesh, self.kind, self.m = mesh, kind, int(components)
        m = self.m
        el = Q1Element(mesh.spacing, 2)
        element = weights[0] * el.mass + weights[1] * np.einsum("qia,qib->ab", el.wdN, el.dN)
        origin = tuple(s for s, _ in mesh.ghost_ranges)
        start = tuple(s - o for (s, _), o in zip(mesh.element_ranges, origin))
        box = ElementBox(start, mesh.element_shape, origin)
        self.da = da = mesh.dm(1).duplicate(dof=m)
        numbers = np.asarray(da.getLGMap().getBlockIndices())
        node = box.lower_left(mesh.ghost_shape)[:, None] + \
            box.corner_offsets(mesh.ghost_shape)[None, :]
        gnode = numbers[node].astype(np.int64)                      # (E, nb)
        nb = el.nb
        comp = np.arange(m)
        rows = np.broadcast_to(gnode[:, None, :, None] * m + comp[None, :, None, None],
                               (box.size, m, nb, nb))
        cols = np.broadcast_to(gnode[:, None, None, :] * m + comp[None, :, None, None],
                               (box.size, m, nb, nb))
        values = np.broadcast_to(element, (box.size, m, nb, nb))
        self.matrix = A = da.createMat()
        A.setPreallocationCOO(rows.reshape(-1).astype(PETSc.IntType),
                              cols.reshape(-1).astype(PETSc.IntType))
        A.setValuesCOO(np.ascontiguousarray(values).reshape(-1))
        A.assemble()
        self.x, self.b = A.createVecs()
        self.ksp = ksp = PETSc.KSP().create(mesh.comm)
        ksp.setOperators(A)
        ksp.setType("cg")
        ksp.getPC().setType("jacobi" if weights[1] == 0.0 else "gamg")
        ksp.setTolerances(rtol=rtol, atol=1e-300, max_it=5000)
        from .problem import reason_names
        self._reasons = reason_names(PETSc.KSP.ConvergedReason)
        self._destroyed = False

    def _values(self, d, what):
        v = np.asarray(getattr(d, "value", d), dtype=np.float64)
        expected = (self.mesh.n_owned,) if self.m == 1 else (self.mesh.n_owned, self.m)
        if v.shape != expected:
            raise ValueError(f"RieszMap.{what}: expected owned nodal values of shape "
                             f"{expected}, got {v.shape}")
        return v

    def _wrap(self, like, values):
        import crk
        if isinstance(like, crk.ndarray):
            return crk.array(values, comm=self.mesh.comm, distributed=True)
        return values

    def __call__(self, d):
        """The gradient g with V g = d (d: an l2 derivative, owned nodal values). Collective."""
        from .errors import ConvergenceError
        v = self._values(d, "__call__")
        self.b.getArray()[:] = v.reshape(-1)
        self.ksp.solve(self.b, self.x)
        reason = self.ksp.getConvergedReason()
        error = None if reason > 0 else ConvergenceError(
            f"Riesz map ({self.kind})", self._reasons.get(reason, reason))
        agree(self.mesh.comm, error, where="RieszMap")
        return self._wrap(d, self.x.getArray(readonly=True).reshape(v.shape).copy())

    def dual(self, g):
        """V g: the l2 (dual) representative of a primal field g. Collective."""
        v = self._values(g, "dual")
        self.x.getArray()[:] = v.reshape(-1)
        self.matrix.mult(self.x, self.b)
        return self._wrap(g, self.b.getArray(readonly=True).reshape(v.shape).copy())

    def inner(self, a, b):
        """aᵀ V b, replicated on every rank. Collective."""
        Vb = self.dual(self._values(b, "inner"))
        local = float(np.vdot(self._values(a, "inner"), Vb))
        return sum_over_ranks(local, self.mesh.comm)

    def destroy(self):
        """Free the PETSc objects. Collective."""
        if self._destroyed:
            return
        self._destroyed = True
        for obj in (self.ksp, self.matrix, self.x, self.b, self.da):
            obj.destroy()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False
