"""Assembly of the residual form on a rank's elements: residual, sparse Jacobian, derivatives.

An :class:`Assembler` evaluates, on plain values, every piece the solver needs of

    R(u) = s_A A(u; coefficients) + s_M M u − b(f, g),     A(u)[v] = ∫ q : ∇v + c · v,

for all of this rank's elements at once, a slab of elements at a time (bounded temporaries):
the law's action, its tangent (jvp), adjoint (vjp) and second-order (hvp) actions, its Jacobian
(element matrices summed into a node stencil whose entries form a COO pattern made once,
:class:`JacobianPattern`), the Q1 mass matrix and the load vector b of sources and Neumann
data, with their adjoints.

Fields are passed as *ghosted grids* (this rank's ghosted box of nodes, memory order, last axis
the components, see :meth:`solvers.mesh.BoxMesh.to_ghosted`); contributions are added to
ghosted grids, which the caller sums over ranks (``BoxMesh.add_ghosted`` or a DMDA
local-to-global with ADD_VALUES). Nothing here is collective.
"""
import collections
import time

import numpy as np

from .fem import ElementBox, Q1Element, interpolate, interpolate_T

#: Quadrature points per slab of elements: large enough that per-slab overheads (a point-map
#: call, numpy dispatch) vanish, small enough that per-point Jacobians of a 3D vector law
#: (81 values per point) stay at tens of MB.
POINTS_PER_SLAB = 1 << 16


class GhostedField:
    """A nodal coefficient on the ghosted grid (``grid``: (..., k)) and the per-point shape
    ``shape`` its interpolated values take."""

    __slots__ = ("grid", "shape")

    def __init__(self, grid, shape):
        self.grid = grid
        self.shape = tuple(shape)


class Source:
    """A right-hand-side term (source f or Neumann g) for one evaluation: ``kind`` is
    "constant" (``value``: (k,)), "field" (``value``: ghosted grid (..., k)) or "function"
    (``value``: a callable of coordinates)."""

    __slots__ = ("kind", "value")

    def __init__(self, kind, value):
        self.kind = kind
        self.value = value


class _FaceSet:
    """The owned elements touching one box face, with the face quadrature rule."""

    def __init__(self, box, N, w, xi):
        self.box, self.N, self.w, self.xi = box, N, w, xi
        self.wN = w[:, None] * N


class Assembler:
    """Residual-form kernels for ``law`` on ``mesh`` with ``points`` Gauss points per axis."""

    def __init__(self, mesh, law, points=2, slab_points=POINTS_PER_SLAB):
        self.mesh = mesh
        self.law = law
        self.m = law.m
        self.dim = mesh.dim
        self.element = el = Q1Element(mesh.spacing, points)
        origin = tuple(s for s, _ in mesh.ghost_ranges)
        start = tuple(s - o for (s, _), o in zip(mesh.element_ranges, origin))
        self.box = ElementBox(start, mesh.element_shape, origin)
        self.slabs = self.box.chunks(el.nq, slab_points)
        self.faces = {}
        for axis in range(self.dim):
            for side in (0, 1):
                index = mesh.cells[axis] - 1 if side else 0
                s, e = mesh.element_ranges[axis]
                shape = list(mesh.element_shape)
                fstart = list(start)
                if s <= index < e:
                    shape[axis] = 1
                    fstart[axis] = index - origin[axis]
                else:
                    shape[axis] = 0
                N, w, xi = el.face_rule(axis, side)
                self.faces[axis, side] = _FaceSet(ElementBox(fstart, shape, origin), N, w, xi)
        #: seconds spent in the point map ("point map") and in the rest of residual and
        #: Jacobian assembly ("kernels"), accumulated; clear() to restart
        self.timers = collections.defaultdict(float)

    def _timed_law(self, method, *args):
        t0 = time.perf_counter()
        out = method(*args)
        self.timers["point map"] += time.perf_counter() - t0
        return out

    # -- inputs at the points of a slab ------------------------------------------------------
    def _state(self, u_grid, rows):
        el, m = self.element, self.m
        C = self.box.corners(u_grid, rows)
        uq = el.values(C).reshape(-1, m) if self.law.uses_u else None
        gq = el.gradients(C).reshape(-1, m, self.dim)
        return uq, gq, C.shape[1]

    def _at_points(self, value, rows):
        """A coefficient (or its tangent) at the slab's points: fields interpolated."""
        if isinstance(value, GhostedField):
            C = self.box.corners(value.grid, rows)
            return self.element.values(C).reshape((-1,) + value.shape)
        return value

    def _coefficients(self, coefs, rows):
        return [self._at_points(c, rows) for c in coefs]

    def points(self, rows=None):
        """Coordinates of the quadrature points of the slab ``rows``: (nq, E, dim)."""
        return self.box.points(self.element.xi, self.mesh.lower, self.mesh.spacing, rows)

    def _check_finite(self, what, rows, *arrays):
        for a in arrays:
            # One summing pass: a sum is finite unless an entry is not (or the sum overflows,
            # then the entries are looked at one by one).
            if a is None or np.isfinite(np.sum(a)):
                continue
            if not np.isfinite(a).all():
                bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
                x = self.points(rows).reshape(-1, self.dim)[np.flatnonzero(bad)[0]]
                raise FloatingPointError(
                    f"{self.law.name}: {what} is NaN or infinite at {int(bad.sum())} quadrature "
                    f"point(s) of rank {self.mesh.comm.rank} (the first at x = "
                    f"{np.array2string(x, precision=4)})")

    # -- the law's action and its derivatives -------------------------------------------------
    def add_action(self, u_grid, coefs, out, scale=1.0):
        """out += scale · A(u) (element contributions on the ghosted grid ``out``)."""
        self._assemble(u_grid, coefs, out, None, scale)

    def matrix_values(self, u_grid, coefs, stencil, scale=1.0):
        """Add scale · A'(u) to ``stencil`` (the node-stencil layout of
        :class:`JacobianPattern`: the 3^dim neighbour offset, row and column component, then
        the ghosted grid): element matrices are computed for a slab of elements at a time and
        summed into the stencil with one add of grid rows per pair of corners."""
        self._assemble(u_grid, coefs, None, stencil, scale)

    def add_action_and_matrix(self, u_grid, coefs, out, stencil, scale=1.0):
        """Both at once: out += scale · A(u) and stencil += scale · A'(u), with the law's
        values and Jacobians from one evaluation per slab (:meth:`Law.value_and_jacobians`,
        a single compiled pass for JAX maps)."""
        self._assemble(u_grid, coefs, out, stencil, scale)

    def _assemble(self, u_grid, coefs, out, stencil, scale):
        el, law, nq, m, d = self.element, self.law, self.element.nq, self.m, self.dim
        start, inside = time.perf_counter(), self.timers["point map"]
        pairs = None if stencil is None else stencil_pairs(d)
        shapes = {"gg": (nq, -1, m, d, m, d), "gu": (nq, -1, m, d, m),
                  "ug": (nq, -1, m, m, d), "uu": (nq, -1, m, m)}
        for rows in self.slabs:
            uq, gq, E = self._state(u_grid, rows)
            cq = self._coefficients(coefs, rows)
            if stencil is None:
                q, c = self._timed_law(law.evaluate, uq, gq, cq)
            elif out is None:
                J = self._timed_law(law.jacobians, uq, gq, cq)
            else:
                q, c, J = self._timed_law(law.value_and_jacobians, uq, gq, cq)
            if out is not None:
                self._check_finite("the flux/reaction", rows, q, c)
                r = el.integrate_gradients(q.reshape(nq, E, m, d))
                if c is not None:
                    r += el.integrate_values(c.reshape(nq, E, m))
                self.box.add(out, r if scale == 1.0 else scale * r, rows)
            if stencil is not None:
                self._check_finite("the law's Jacobian", rows, *J.values())
                K = el.element_matrices(**{"D" + k: J[k].reshape(shapes[k]) for k in J})
                if scale != 1.0:
                    K *= scale
                self._add_to_stencil(stencil, K, pairs, rows)
        self.timers["kernels"] += time.perf_counter() - start - (self.timers["point map"] -
                                                                  inside)

    def _add_to_stencil(self, stencil, K, pairs, rows):
        """stencil[offset(a, b), :, :, node of corner a] += K[:, :, a, b, e] for all a, b.

        K (m, m, nb, nb, E) has the elements last (:meth:`Q1Element.element_matrices`), so
        every add runs over contiguous rows of elements and of grid nodes."""
        box = self.box
        shape = tuple(reversed(box.shape)) if rows is None else \
            (rows[1] - rows[0],) + tuple(reversed(box.shape[:-1]))
        m = K.shape[0]
        for a, b, offset in pairs:
            view = stencil[(offset, slice(None), slice(None)) + box._slices(a, rows)]
            view += K[:, :, a, b].reshape((m, m) + shape)

    def add_tangent(self, u_grid, coefs, du_grid, dcoefs, out, scale=1.0):
        """out += scale · dA(u)[δu, δcoefficients]; ``du_grid`` None for a zero δu, entries of
        ``dcoefs`` None for zero."""
        el, law, nq, m, d = self.element, self.law, self.element.nq, self.m, self.dim
        for rows in self.slabs:
            uq, gq, E = self._state(u_grid, rows)
            du = dg = None
            if du_grid is not None:
                C = self.box.corners(du_grid, rows)
                du = el.values(C).reshape(-1, m) if law.uses_u else None
                dg = el.gradients(C).reshape(-1, m, d)
            dq, dc = law.jvp(uq, gq, self._coefficients(coefs, rows), du, dg,
                             self._coefficients(dcoefs, rows))
            if dq is None and dc is None:
                continue
            self._check_finite("the law's tangent", rows, dq, dc)
            r = np.zeros((el.nb, E, m))
            if dq is not None:
                r += el.integrate_gradients(dq.reshape(nq, E, m, d))
            if dc is not None:
                r += el.integrate_values(dc.reshape(nq, E, m))
            self.box.add(out, r if scale == 1.0 else scale * r, rows)

    def adjoint(self, u_grid, coefs, lam_grid, coef_mask, u_bar=None, dcoefs=None,
                du_grid=None, scale=1.0):
        """Adjoint action of A at u for the multiplier λ (``lam_grid``), or with tangents
        (``du_grid``, ``dcoefs``) its second-order term d/dt [A'(u + tδu; coefs + tδc)^T λ].

        Adds the state part to the ghosted grid ``u_bar`` (if given) and returns the
        coefficients' parts: for parameters their sum over this rank's points, for fields a
        ghosted grid of nodal contributions; None where ``coef_mask`` is False or zero.
        """
        el, law, nq, m, d = self.element, self.law, self.element.nq, self.m, self.dim
        second = du_grid is not None or (dcoefs is not None and
                                         any(t is not None for t in dcoefs))
        bars = [None] * law.n_coefficients
        for rows in self.slabs:
            uq, gq, E = self._state(u_grid, rows)
            cq = self._coefficients(coefs, rows)
            L = self.box.corners(lam_grid, rows)
            wq = el.w[:, None, None]
            qbar = (el.gradients(L) * (scale * el.w)[:, None, None, None]).reshape(-1, m, d)
            cbar = (scale * wq * el.values(L)).reshape(-1, m) if law.has_reaction else None
            if second:
                du = dg = None
                if du_grid is not None:
                    C = self.box.corners(du_grid, rows)
                    du = el.values(C).reshape(-1, m) if law.uses_u else None
                    dg = el.gradients(C).reshape(-1, m, d)
                ub, gb, cb = law.hvp(uq, gq, cq, du, dg, self._coefficients(dcoefs, rows),
                                     qbar, cbar, coef_mask, state=u_bar is not None)
            else:
                ub, gb, cb = law.vjp(uq, gq, cq, qbar, cbar, coef_mask,
                                     state=u_bar is not None)
            what = "the law's second derivative" if second else "the law's adjoint"
            self._check_finite(what, rows, ub, gb, *(c for c, field in zip(cb, coefs)
                                                     if c is not None and
                                                     isinstance(field, GhostedField)))
            for i, (c, field) in enumerate(zip(cb, coefs)):
                if c is not None and not isinstance(field, GhostedField) and \
                        not np.isfinite(c).all():
                    raise FloatingPointError(
                        f"{law.name}: {what} with respect to coefficient {i} is NaN or "
                        f"infinite on rank {self.mesh.comm.rank}")
            if u_bar is not None and (ub is not None or gb is not None):
                r = np.zeros((el.nb, E, m))
                if ub is not None:
                    r += el.values_T(ub.reshape(nq, E, m))
                if gb is not None:
                    r += el.gradients_T(gb.reshape(nq, E, m, d))
                self.box.add(u_bar, r, rows)
            for i, cbi in enumerate(cb):
                if cbi is None or not coef_mask[i]:
                    continue
                coef = coefs[i]
                if isinstance(coef, GhostedField):
                    if bars[i] is None:
                        bars[i] = np.zeros(coef.grid.shape)
                    k = coef.grid.shape[-1]
                    self.box.add(bars[i], el.values_T(np.asarray(cbi).reshape(nq, E, k)), rows)
                else:
                    bars[i] = cbi if bars[i] is None else bars[i] + cbi
        return bars

    # -- mass matrix -------------------------------------------------------------------------
    def add_mass(self, u_grid, out, scale=1.0):
        """out += scale · M u (Q1 mass matrix, exact with 2 points per axis)."""
        M = scale * self.element.mass
        for rows in self.slabs:
            C = self.box.corners(u_grid, rows)
            nb, E, k = C.shape
            self.box.add(out, (M @ C.reshape(nb, E * k)).reshape(nb, E, k), rows)

    def add_mass_values(self, stencil, scale):
        """Add scale · (Q1 mass matrix) to ``stencil`` (see :meth:`matrix_values`)."""
        m, nb = self.m, self.element.nb
        K = np.zeros((m, m, nb, nb, self.box.size))
        for c in range(m):
            K[c, c] = scale * self.element.mass[:, :, None]
        pairs = stencil_pairs(self.dim)
        self._add_to_stencil(stencil, K, pairs, None)

    # -- right-hand side: sources and Neumann data ---------------------------------------------
    def add_source(self, source, out, scale=1.0):
        """out += scale ∫ f · v for a :class:`Source` f (k = m components)."""
        self._add_rhs(self.box, self.element.N, self.element.w, self.element.xi, source, out,
                      scale, self.slabs)

    def add_neumann(self, face, source, out, scale=1.0):
        """out += scale ∫_face g · v for a :class:`Source` g on the face (axis, side)."""
        fs = self.faces[face]
        self._add_rhs(fs.box, fs.N, fs.w, fs.xi, source, out, scale, [None])

    def _add_rhs(self, box, N, w, xi, source, out, scale, slabs):
        if box.size == 0 or source is None:
            return
        m = self.m
        for rows in slabs:
            E = box.size if rows is None else box.chunk_size(rows)
            if source.kind == "constant":
                vals = np.broadcast_to(np.asarray(source.value, dtype=float).reshape(1, 1, m),
                                       (len(w), E, m))
            elif source.kind == "field":
                vals = interpolate(N, box.corners(source.value, rows))
            else:
                x = box.points(xi, self.mesh.lower, self.mesh.spacing, rows)
                from .boundary import function_values
                vals = function_values(source.value, x.reshape(-1, self.dim), m,
                                       "source").reshape(len(w), E, m)
            box.add(out, interpolate_T(scale * w[:, None] * N, np.ascontiguousarray(vals)),
                    rows)

    def source_adjoint(self, kind, lam_grid, face=None):
        """The derivative of <λ, ∫ f · v> with respect to f given as ``kind``: "constant" →
        (m,) (this rank's part), "field" → a ghosted grid of nodal contributions."""
        if face is None:
            box, N, w, slabs = self.box, self.element.N, self.element.w, self.slabs
        else:
            fs = self.faces[face]
            box, N, w, slabs = fs.box, fs.N, fs.w, [None]
        m = self.m
        if kind == "constant":
            total = np.zeros(m)
            for rows in slabs:
                if box.size == 0:
                    break
                lam = interpolate(N, box.corners(lam_grid, rows))
                total += np.einsum("q,qek->k", w, lam)
            return total
        out = np.zeros(lam_grid.shape)
        for rows in slabs:
            if box.size == 0:
                break
            lam = interpolate(N, box.corners(lam_grid, rows))
            box.add(out, interpolate_T(N, w[:, None, None] * lam), rows)
        return out


def stencil_pairs(dim):
    """(a, b, s) for every pair of element corners: corner b is the neighbour at offset
    s = sum_i (bits[b] - bits[a] + 1) 3^i of corner a's node."""
    from .fem import corner_bits
    bits = corner_bits(dim)
    out = []
    for a in range(len(bits)):
        for b in range(len(bits)):
            delta = bits[b] - bits[a] + 1
            out.append((a, b, int(sum(int(v) * 3 ** i for i, v in enumerate(delta)))))
    return out


class JacobianPattern:
    """The Jacobian's sparsity as a COO pattern, made once per problem, and its buffers.

    Q1 couples each node with its 3^dim grid neighbours, so the Jacobian is gathered in a
    node-stencil array ``stencil`` of shape (3^dim, m, m) + ghosted grid (neighbour offset, row
    component, column component, node): element matrices are summed into it by adds of grid
    rows,
    and the pattern's entries are the stencil entries some owned element touches, each once
    (rows of ghost nodes included: PETSc sends them to their owners). Then one diagonal entry
    per owned constrained (Dirichlet) dof. Constrained rows and columns are zero with 1 on the
    diagonal (by construction), so a symmetric law gives a symmetric matrix and CG applies.

    ``constrained_ghosted``: (n_ghosted, m) booleans; ``constrained_owned``: (n_owned, m);
    ``node_numbers``: global node number of each ghosted node (the DMDA's local-to-global
    block indices); ``first_dof``: the global index of this rank's first owned dof.
    """

    def __init__(self, assembler, constrained_ghosted, constrained_owned, node_numbers,
                 first_dof, index_dtype):
        box, m, d = assembler.box, assembler.m, assembler.dim
        grid = assembler.mesh.grid_shape(True)
        S = 3 ** d
        touched = np.zeros(grid + (S,), dtype=np.int32)
        for a, b, offset in stencil_pairs(d):
            touched[box._slices(a)][..., offset] += 1
        node, offset = np.nonzero(touched.reshape(-1, S))
        strides = np.cumprod((1,) + tuple(assembler.mesh.ghost_shape[:-1]))
        deltas = np.array([[(s // 3 ** i) % 3 - 1 for i in range(d)] for s in range(S)])
        neighbour = node + deltas[offset] @ strides
        numbers = np.asarray(node_numbers).astype(np.int64)
        comp = np.arange(m)
        # entry order = the stencil's memory order: (offset, c1, c2, node)
        n_nodes = int(np.prod(grid))
        shape = (len(node), m, m)
        rows = np.broadcast_to(numbers[node][:, None, None] * m + comp[None, :, None], shape)
        cols = np.broadcast_to(numbers[neighbour][:, None, None] * m + comp[None, None, :],
                               shape)
        flat = ((offset[:, None, None] * m + comp[None, :, None]) * m + comp[None, None, :]) \
            * n_nodes + node[:, None, None]
        order = np.argsort(flat.reshape(-1), kind="stable")
        self.take = flat.reshape(-1)[order]
        rows = rows.reshape(-1)[order]
        cols = cols.reshape(-1)[order]
        cg = np.asarray(constrained_ghosted)
        row_fixed = np.broadcast_to(cg[node][:, :, None], shape).reshape(-1)[order]
        col_fixed = np.broadcast_to(cg[neighbour][:, None, :], shape).reshape(-1)[order]
        self.zero = np.flatnonzero(row_fixed | col_fixed)
        diag = first_dof + np.flatnonzero(np.asarray(constrained_owned).reshape(-1))
        self.rows = np.concatenate([rows, diag]).astype(index_dtype)
        self.cols = np.concatenate([cols, diag]).astype(index_dtype)
        self.stencil = np.zeros((S, m, m) + grid)
        self.n_entries = len(self.take)
        self.values = np.zeros(self.n_entries + len(diag))
        self.values[self.n_entries:] = 1.0

    def gather(self):
        """The COO values from the stencil, constrained rows and columns zeroed."""
        np.take(self.stencil.reshape(-1), self.take, out=self.values[:self.n_entries])
        self.values[self.zero] = 0.0
        return self.values

    def release_indices(self):
        """Drop the index arrays once PETSc has them."""
        self.rows = self.cols = None
