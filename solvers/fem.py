"""Q1 elements on structured boxes: Gauss rules, the reference element, vectorised kernels.

All elements of a box mesh have the same shape (a rectangle / brick with the mesh spacing), so
shape functions, their gradients and the quadrature weights are computed once
(:class:`Q1Element`) and applied to all of a rank's elements at once by matrix products.

Layouts. Corner ``a`` of an element is the node at offset ``bits(a)`` (bit ``i`` along axis i,
x lowest); quadrature point ``q`` of a tensor rule is ``(k_0, k_1, ...)`` with k_0 fastest.
Values at quadrature points have shape ``(nq, E, ...)`` (point-major), i.e. point ``q * E + e``
of a flattened array belongs to quadrature point q of element e. An :class:`ElementBox` is a box
of elements inside a rank's ghosted node grid; it gathers element corner values from, and adds
element contributions to, ghosted arrays with one strided slice per corner (no index arrays,
no Python loop over elements).
"""
import itertools

import numpy as np


def gauss_rule(n):
    """Gauss-Legendre points and weights on [0, 1] (weights sum to 1)."""
    x, w = np.polynomial.legendre.leggauss(int(n))
    return 0.5 * (x + 1.0), 0.5 * w


def corner_bits(dim):
    """(2^dim, dim) offsets of the element corners, corner a = sum bits[a, i] 2^i."""
    return np.array([[(a >> i) & 1 for i in range(dim)] for a in range(2 ** dim)])


class Q1Element:
    """The Q1 reference element scaled to the mesh ``spacing``, with a tensor Gauss rule of
    ``points`` points per axis (2 integrates the Q1 mass and stiffness matrices exactly).

    ``N``: (nq, nb) shape functions at the points; ``dN``: (nq, dim, nb) their physical
    gradients; ``w``: (nq,) weights times the element volume; ``xi``: (nq, dim) reference
    coordinates in [0, 1]^dim.
    """

    def __init__(self, spacing, points=2):
        self.spacing = tuple(float(h) for h in spacing)
        self.dim = dim = len(self.spacing)
        self.points = int(points)
        if self.points < 1:
            raise ValueError(f"Q1Element: quadrature needs at least 1 point per axis, got "
                             f"{points}")
        self.nb = 2 ** dim
        self.bits = corner_bits(dim)
        x1, w1 = gauss_rule(self.points)
        grid = list(itertools.product(range(self.points), repeat=dim))
        k = np.array([tuple(reversed(g)) for g in grid])          # k_0 fastest
        self.xi = x1[k]
        self.nq = len(self.xi)
        self.w = np.prod(w1[k], axis=1) * float(np.prod(self.spacing))
        self.N, self.dN = shape_functions(self.xi, self.spacing)
        # products used by the kernels
        self.wN = self.w[:, None] * self.N                                   # (nq, nb)
        self.wdN = self.w[:, None, None] * self.dN                           # (nq, dim, nb)
        self.mass = np.einsum("qa,qb->ab", self.wN, self.N)                  # (nb, nb)
        self._factors = {}                  # element_matrices' factors, made on first use

    def face_rule(self, axis, side):
        """Quadrature on the element face ``axis = side``: (N (nqf, nb), weights (nqf,))."""
        other = [i for i in range(self.dim) if i != axis]
        x1, w1 = gauss_rule(self.points)
        grid = list(itertools.product(range(self.points), repeat=len(other)))
        nqf = len(grid)
        xi = np.empty((nqf, self.dim))
        w = np.ones(nqf)
        for q, g in enumerate(grid):
            for i, kk in zip(other, reversed(g)):
                xi[q, i] = x1[kk]
                w[q] *= w1[kk]
            xi[q, axis] = float(side)
        w = w * float(np.prod([self.spacing[i] for i in other]))
        N, _ = shape_functions(xi, self.spacing)
        return N, w, xi

    # -- kernels on corner stacks C of shape (nb, E, k) -------------------------------------
    def values(self, C):
        """Values at the points: (nq, E, k)."""
        return interpolate(self.N, C)

    def gradients(self, C):
        """Gradients at the points: (nq, E, k, dim)."""
        nb, E, k = C.shape
        G = (self.dN.reshape(-1, nb) @ C.reshape(nb, E * k)).reshape(self.nq, self.dim, E, k)
        return G.transpose(0, 2, 3, 1)

    def values_T(self, V):
        """Transpose of :meth:`values`: sum_q N_a(q) V[q, e], (nb, E, k)."""
        return interpolate_T(self.N, V)

    def gradients_T(self, Q):
        """Transpose of :meth:`gradients`: sum_q dN_a(q) . Q[q, e], (nb, E, k)."""
        return _gradients_T(self.dN, Q)

    def integrate_values(self, V):
        """sum_q w_q N_a(q) V[q, e]: (nb, E, k) for V of shape (nq, E, k)."""
        return interpolate_T(self.wN, V)

    def integrate_gradients(self, Q):
        """sum_q w_q dN_a(q) . Q[q, e]: (nb, E, k) for Q of shape (nq, E, k, dim)."""
        return _gradients_T(self.wdN, Q)

    def element_matrices(self, Dgg=None, Dgu=None, Dug=None, Duu=None):
        """Element matrices K[c1, c2, a, b, e] from per-point Jacobians of shape
        (nq, E, k, dim, k, dim) (flux w.r.t. gradient), (nq, E, k, dim, k) (flux w.r.t. value),
        (nq, E, k, k, dim) (reaction w.r.t. gradient), (nq, E, k, k) (reaction w.r.t. value).
        Returns (k, k, nb, nb, E): elements last, so that summing one entry (a, b) of all
        elements into a node grid reads contiguous memory.

        Per component pair (c1, c2), K[c1, c2] = Tᵀ D[c1, c2] with T (nq·x, nb·nb) the
        products of (weighted) shape functions and gradients at the points and D[c1, c2]
        (nq·x, E) the Jacobians laid out points-by-elements: one matrix product per pair, with
        the elements as the long dimension. The layout is made one quadrature point at a time
        (a transposing copy of E × k² x values), which is cheaper than one transpose of the
        whole array and than transposing K afterwards."""
        nb, nq, d = self.nb, self.nq, self.dim
        K = None
        for D, spec in ((Dgg, "gg"), (Dgu, "gu"), (Dug, "ug"), (Duu, "uu")):
            if D is None:
                continue
            E, k = D.shape[1], D.shape[2]
            T, axes = self._element_factors(spec)
            Dt = np.empty((k, k, nq) + (d,) * spec.count("g") + (E,))
            for q in range(nq):
                Dt[:, :, q] = D[q].transpose(axes)
            part = np.matmul(T, Dt.reshape(k * k, -1, E)).reshape(k, k, nb, nb, E)
            K = part if K is None else K + part
        return K

    def _element_factors(self, spec):
        """(Tᵀ (nb·nb, nq·x), axes): the shape-function products of one kind of Jacobian and
        the transpose taking its per-point block (E, c1, [i], c2, [j]) to (c1, c2, [i], [j],
        E)."""
        cache = self._factors
        if spec not in cache:
            nb = self.nb
            if spec == "gg":
                T = np.einsum("qia,qjb->qijab", self.wdN, self.dN)
                axes = (1, 3, 2, 4, 0)
            elif spec == "gu":
                T = np.einsum("qia,qb->qiab", self.wdN, self.N)
                axes = (1, 3, 2, 0)
            elif spec == "ug":
                T = np.einsum("qa,qjb->qjab", self.wN, self.dN)
                axes = (1, 2, 3, 0)
            else:
                T = np.einsum("qa,qb->qab", self.wN, self.N)
                axes = (1, 2, 0)
            cache[spec] = (np.ascontiguousarray(T.reshape(-1, nb * nb).T), axes)
        return cache[spec]


def interpolate(N, C):
    """Values at points (nq, E, k) of corner values C (nb, E, k) with shape functions N."""
    nb, E, k = C.shape
    return (N @ C.reshape(nb, E * k)).reshape(N.shape[0], E, k)


def interpolate_T(N, V):
    """The transpose of :func:`interpolate`: (nb, E, k) from point values V (nq, E, k)."""
    nq, E, k = V.shape
    return (N.T @ V.reshape(nq, E * k)).reshape(N.shape[1], E, k)


def _gradients_T(dN, Q):
    nq, E, k, d = Q.shape
    nb = dN.shape[2]
    Qt = np.ascontiguousarray(Q.transpose(0, 3, 1, 2)).reshape(nq * d, E * k)
    return (dN.transpose(2, 0, 1).reshape(nb, nq * d) @ Qt).reshape(nb, E, k)


def shape_functions(xi, spacing):
    """Q1 shape functions (n, nb) and physical gradients (n, dim, nb) at reference points
    ``xi`` (n, dim) of an element with the given ``spacing``."""
    xi = np.asarray(xi, dtype=float)
    n, dim = xi.shape
    bits = corner_bits(dim)
    phi = np.where(bits[None, :, :] == 1, xi[:, None, :], 1.0 - xi[:, None, :])   # (n, nb, d)
    dphi = np.where(bits == 1, 1.0, -1.0)[None, :, :] / np.asarray(spacing)        # (1, nb, d)
    N = np.prod(phi, axis=2)
    dN = np.empty((n, dim, len(bits)))
    for i in range(dim):
        dN[:, i, :] = dphi[:, :, i] * np.prod(np.delete(phi, i, axis=2), axis=2)
    return N, dN


class ElementBox:
    """A box of elements inside a rank's ghosted node grid.

    ``start``: the ghosted-grid index (axis order x, y, z) of the first element's lower-left
    node; ``shape``: elements per axis; ``origin``: the global index of the ghosted grid's first
    node. Elements are numbered in memory order (x fastest), ``E = prod(shape)``. Methods work
    on ghosted arrays of shape (gz, gy, gx, k).
    """

    def __init__(self, start, shape, origin):
        self.start = tuple(int(s) for s in start)
        self.shape = tuple(max(int(n), 0) for n in shape)
        self.origin = tuple(int(o) for o in origin)
        self.dim = len(self.shape)
        self.size = int(np.prod(self.shape))
        self.bits = corner_bits(self.dim)

    def _slices(self, a, rows=None):
        """The memory-order slices of corner ``a`` (optionally only outer-axis rows
        [r0, r1))."""
        out = []
        for axis in reversed(range(self.dim)):
            s = self.start[axis] + int(self.bits[a, axis])
            n = self.shape[axis]
            if axis == self.dim - 1 and rows is not None:
                out.append(slice(s + rows[0], s + rows[1]))
            else:
                out.append(slice(s, s + n))
        return tuple(out)

    def chunks(self, points_per_element, budget):
        """Split the box along its outermost axis into row ranges of at most about
        ``budget`` points (at least one row each): a list of (r0, r1)."""
        outer = self.shape[-1]
        if self.size == 0:
            return []
        per_row = max(self.size // max(outer, 1), 1) * points_per_element
        step = max(1, int(budget // per_row))
        return [(r, min(r + step, outer)) for r in range(0, outer, step)]

    def chunk_size(self, rows):
        return (rows[1] - rows[0]) * (self.size // self.shape[-1])

    def corners(self, grid, rows=None):
        """Corner values of the elements: (nb, E, k) from a ghosted ``grid`` (.., k)."""
        k = grid.shape[-1]
        E = self.size if rows is None else self.chunk_size(rows)
        out = np.empty((len(self.bits), E, k))
        for a in range(len(self.bits)):
            out[a] = grid[self._slices(a, rows)].reshape(E, k)
        return out

    def add(self, grid, contributions, rows=None):
        """Add element contributions (nb, E, k) to the ghosted ``grid`` in place."""
        for a in range(len(self.bits)):
            view = grid[self._slices(a, rows)]
            view += contributions[a].reshape(view.shape)

    def lower_left(self, ghost_shape, rows=None):
        """Flat ghosted-grid index of each element's lower-left node, (E,)."""
        axes = []
        for axis in reversed(range(self.dim)):
            s, n = self.start[axis], self.shape[axis]
            if axis == self.dim - 1 and rows is not None:
                axes.append(np.arange(s + rows[0], s + rows[1]))
            else:
                axes.append(np.arange(s, s + n))
        grid = np.meshgrid(*axes, indexing="ij")
        mem_shape = tuple(reversed(ghost_shape))
        return np.ravel_multi_index(tuple(g.reshape(-1) for g in grid), mem_shape)

    def points(self, xi, lower, spacing, rows=None):
        """Coordinates (nq, E, dim) of reference points ``xi`` (nq, dim) in every element."""
        axes = []
        for axis in reversed(range(self.dim)):
            s = self.start[axis] + self.origin[axis]
            if axis == self.dim - 1 and rows is not None:
                axes.append(np.arange(s + rows[0], s + rows[1]))
            else:
                axes.append(np.arange(s, s + self.shape[axis]))
        grid = np.meshgrid(*axes, indexing="ij")
        index = np.stack([g.reshape(-1) for g in reversed(grid)], axis=1)      # (E, dim)
        return np.asarray(lower) + (index[None, :, :] + xi[:, None, :]) * np.asarray(spacing)

    def corner_offsets(self, ghost_shape):
        """Flat ghosted-grid offset of each corner from the lower-left node, (nb,)."""
        strides = np.cumprod((1,) + tuple(ghost_shape[:-1]))
        return self.bits @ strides
