"""Structured boxes in 1D/2D/3D on a PETSc DMDA: nodes, their ownership, ghosts and coordinates.

A :class:`BoxMesh` of ``cells = (n_x[, n_y[, n_z]])`` Q1 elements has ``(n_x + 1) × ...`` nodes,
split over the ranks of ``comm`` in boxes (PETSc decides the split unless ``ownership`` gives
the nodes per rank along each axis; uneven splits are fine). An element belongs to the rank that
owns its lower-left node, and is evaluated from that rank's ghosted copy of the field (stencil
BOX, width 1), so each rank evaluates exactly its own elements and no element twice.

Orderings (documented because users index fields):

* A *field* on the mesh is a distributed array of the nodal values this rank owns, shape
  ``(n_owned,)`` for one component or ``(n_owned, k)`` for k, in PETSc's DMDA (global) order:
  the rank's box of nodes with x running fastest, then y, then z. Concatenated over ranks in
  rank order it is PETSc's global vector; :meth:`BoxMesh.natural_indices` gives each owned
  node's natural (lexicographic, x fastest) index ``i + N_x (j + N_y k)``, and
  :meth:`BoxMesh.gather` the whole field in natural order.
* Arrays laid out on the grid use PETSc's memory order ``[z, y, x, component]`` (the axis order
  reversed); tuples describing the geometry (cells, spacing, ranges) are in axis order x, y, z.

DMDAs are made on demand, one per number of components (all with the same split), and live
until :meth:`BoxMesh.destroy` (collective; also on leaving ``with mesh:``).
"""
import numpy as np

from .petsc import import_petsc

FACES = {"xmin": (0, 0), "xmax": (0, 1), "ymin": (1, 0), "ymax": (1, 1), "zmin": (2, 0),
         "zmax": (2, 1), "left": (0, 0), "right": (0, 1), "bottom": (1, 0), "top": (1, 1),
         "front": (2, 0), "back": (2, 1)}


def face_of(name, dim, what="face"):
    """``(axis, side)`` of a box face: a name in :data:`FACES` or an ``(axis, side)`` pair."""
    if isinstance(name, str):
        if name not in FACES:
            raise ValueError(f"{what}: unknown face {name!r}; expected one of "
                             f"{', '.join(sorted(FACES))} or an (axis, side) pair")
        axis, side = FACES[name]
    else:
        try:
            axis, side = (int(v) for v in name)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: expected a face name or an (axis, side) pair, got "
                             f"{name!r}") from None
    if not (0 <= axis < dim and side in (0, 1)):
        raise ValueError(f"{what}: face {name!r} is (axis {axis}, side {side}), which a "
                         f"{dim}D box does not have")
    return axis, side


class BoxMesh:
    """A box ``[lower, upper]`` of ``cells`` Q1 elements on the ranks of ``comm``.

    ``cells``: elements per axis, 1 to 3 entries. ``lower``/``upper``: corners (default 0 and
    1 on every axis). ``ownership``: optional nodes per rank along each axis (one sequence per
    axis, summing to cells + 1) for a chosen, possibly uneven, split; ``processes``: optional
    ranks per axis. Collective over ``comm`` (default COMM_WORLD).
    """

    def __init__(self, cells, lower=None, upper=None, comm=None, ownership=None,
                 processes=None):
        PETSc = import_petsc()
        cells = tuple(int(c) for c in np.atleast_1d(cells))
        if not 1 <= len(cells) <= 3 or min(cells) < 1:
            raise ValueError(f"BoxMesh: argument 'cells' must give 1 to 3 positive element "
                             f"counts, got {cells}")
        self.dim = dim = len(cells)
        self.cells = cells
        self.nodes = tuple(c + 1 for c in cells)
        self.lower = _corner(lower, 0.0, dim, "lower")
        self.upper = _corner(upper, 1.0, dim, "upper")
        if any(u <= lo for lo, u in zip(self.lower, self.upper)):
            raise ValueError(f"BoxMesh: need lower < upper on every axis, got lower="
                             f"{self.lower}, upper={self.upper}")
        self.spacing = tuple((u - lo) / c for lo, u, c in zip(self.lower, self.upper, cells))
        if comm is None:
            from mpi4py import MPI
            comm = MPI.COMM_WORLD
        self.comm = comm
        kwargs = {}
        if ownership is not None:
            ownership = tuple(tuple(int(v) for v in axis) for axis in ownership)
            if len(ownership) != dim or any(sum(o) != n for o, n in zip(ownership, self.nodes)):
                raise ValueError(f"BoxMesh: argument 'ownership' must give, for each of the {dim}"
                                 f" axes, the nodes per rank summing to {self.nodes}; got "
                                 f"{ownership}")
            kwargs["ownership_ranges"] = ownership
            kwargs["proc_sizes"] = tuple(len(o) for o in ownership)
        elif processes is not None:
            kwargs["proc_sizes"] = tuple(int(p) for p in processes)
        self._PETSc = PETSc
        self._dms = {}
        self._vecs = {}
        self._destroyed = False
        self._dms[1] = PETSc.DMDA().create(
            dim=dim, dof=1, sizes=self.nodes, stencil_type=PETSc.DMDA.StencilType.BOX,
            stencil_width=1, comm=comm, **kwargs)
        da = self._dms[1]
        self.ranges = tuple(da.getRanges())              # owned nodes [start, stop) per axis
        self.ghost_ranges = tuple(da.getGhostRanges())
        self.owned_shape = tuple(e - s for s, e in self.ranges)
        self.ghost_shape = tuple(e - s for s, e in self.ghost_ranges)
        self.n_owned = int(np.prod(self.owned_shape))
        self.n_ghosted = int(np.prod(self.ghost_shape))
        # Elements owned here: those whose lower-left node is owned (element i spans nodes
        # i, i + 1), as [start, stop) per axis in global element indices.
        self.element_ranges = tuple((s, min(e, c)) for (s, e), c in zip(self.ranges, cells))
        self.element_shape = tuple(max(e - s, 0) for s, e in self.element_ranges)
        self.n_elements = int(np.prod(self.element_shape))

    # -- PETSc objects -----------------------------------------------------------------------
    def _check_alive(self):
        if self._destroyed:
            raise RuntimeError("BoxMesh: this mesh was destroyed (mesh.destroy() or the end of "
                               "`with mesh:`); make a new one")

    def dm(self, components=1):
        """The DMDA of fields with ``components`` values per node (made on first use, with the
        mesh's split). Collective the first time for each ``components``."""
        self._check_alive()
        components = int(components)
        da = self._dms.get(components)
        if da is None:
            da = self._dms[components] = self._dms[1].duplicate(dof=components)
        return da

    def _work_vecs(self, components):
        vecs = self._vecs.get(components)
        if vecs is None:
            da = self.dm(components)
            vecs = self._vecs[components] = (da.createGlobalVec(), da.createLocalVec())
        return vecs

    def destroy(self):
        """Destroy the mesh's PETSc objects. Collective; every rank must call it."""
        if self._destroyed:
            return
        for g, l in self._vecs.values():
            g.destroy()
            l.destroy()
        for da in self._dms.values():
            da.destroy()
        self._vecs.clear()
        self._dms.clear()
        self._destroyed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False

    # -- shapes and index sets ---------------------------------------------------------------
    def grid_shape(self, ghosted=False):
        """Shape of this rank's (ghosted) box of nodes in memory order (z, y, x)."""
        return tuple(reversed(self.ghost_shape if ghosted else self.owned_shape))

    def _axis_indices(self, ghosted=False):
        """Global node indices along each axis of this rank's (ghosted) box (axis order)."""
        ranges = self.ghost_ranges if ghosted else self.ranges
        return [np.arange(s, e) for s, e in ranges]

    def _grid_indices(self, ghosted=False):
        """(n, dim) global (i, j, k) node indices of the (ghosted) box, in DMDA order."""
        axes = self._axis_indices(ghosted)
        mesh = np.meshgrid(*reversed(axes), indexing="ij")      # memory order z, y, x
        return np.stack([m.reshape(-1) for m in reversed(mesh)], axis=1)

    def coordinates(self, ghosted=False):
        """Coordinates of this rank's owned nodes (or ghosted box), shape (n, dim), DMDA order.
        Not collective."""
        idx = self._grid_indices(ghosted)
        return np.asarray(self.lower) + idx * np.asarray(self.spacing)

    def natural_indices(self):
        """Natural (lexicographic, x fastest) index of each owned node, shape (n_owned,).
        Not collective."""
        idx = self._grid_indices()
        strides = np.cumprod((1,) + self.nodes[:-1])
        return idx @ strides

    def face_mask(self, face, ghosted=False):
        """Boolean mask over the owned (or ghosted) nodes lying on ``face`` (a name from
        :data:`FACES`, an (axis, side) pair, or "boundary" for every face). Not collective."""
        idx = self._grid_indices(ghosted)
        if isinstance(face, str) and face == "boundary":
            return np.any((idx == 0) | (idx == np.asarray(self.cells)), axis=1)
        axis, side = face_of(face, self.dim)
        return idx[:, axis] == (self.cells[axis] if side else 0)

    @property
    def total_nodes(self):
        return int(np.prod(self.nodes))

    # -- moving field values between owned and ghosted layouts --------------------------------
    def _components(self, values, what):
        values = np.asarray(values, dtype=np.float64)
        if values.shape[:1] != (self.n_owned,) or values.ndim > 2:
            raise ValueError(f"{what}: expected this rank's owned nodal values, shape "
                             f"({self.n_owned},) or ({self.n_owned}, k), got {values.shape}")
        return values, 1 if values.ndim == 1 else values.shape[1]

    def to_ghosted(self, values, what="field"):
        """This rank's ghosted box of a field given by its owned values (n_owned[, k]).

        Returns an array of shape grid_shape(ghosted=True) + (k,). Collective (a halo
        exchange): every rank calls it.
        """
        values, k = self._components(values, what)
        g, l = self._work_vecs(k)
        g.getArray()[:] = values.reshape(-1)
        self.dm(k).globalToLocal(g, l)
        return l.getArray(readonly=True).reshape(self.grid_shape(True) + (k,)).copy()

    def add_ghosted(self, local, components=None):
        """Owned values of the sum over ranks of ghosted contributions ``local`` (shape
        grid_shape(ghosted=True) + (k,)): each node gets what every rank added to it.
        Returns (n_owned, k). Collective."""
        k = local.shape[-1] if components is None else components
        g, l = self._work_vecs(k)
        l.getArray()[:] = np.asarray(local, dtype=np.float64).reshape(-1)
        g.zeroEntries()
        self.dm(k).localToGlobal(l, g, addv=self._PETSc.InsertMode.ADD_VALUES)
        return g.getArray(readonly=True).reshape(self.n_owned, k).copy()

    def gather(self, values):
        """The whole field in natural order on every rank: (total_nodes[, k]). Collective.
        For tests and output of small fields (every rank receives everything)."""
        from crk.parallel import allgather
        values = np.asarray(values, dtype=np.float64)
        pieces = allgather((self.natural_indices(), values), self.comm)
        out = np.empty((self.total_nodes,) + values.shape[1:])
        for idx, vals in pieces:
            out[idx] = vals
        return out

    def owned_from_natural(self, full):
        """This rank's owned values (DMDA order) of a field given in natural order on every
        rank. Not collective."""
        return np.asarray(full)[self.natural_indices()]

    def field(self, values, components=None):
        """A distributed crk array of owned nodal values: ``values`` is a callable of the
        coordinates ((n, dim) -> (n,) or (n, k)), a constant (a float, or k floats broadcast to
        every node) or an array of owned values. ``components`` checks k. Not collective
        (creating a distributed array is local)."""
        import crk
        x = self.coordinates()
        if callable(values):
            data = np.asarray(values(x), dtype=np.float64)
        else:
            data = np.asarray(values, dtype=np.float64)
            if data.ndim <= 1 and data.shape[:1] != (self.n_owned,):
                data = np.broadcast_to(data, (self.n_owned,) + data.shape).copy()
        if data.shape[:1] != (self.n_owned,):
            raise ValueError(f"BoxMesh.field: expected owned nodal values of shape "
                             f"({self.n_owned}, ...), got {data.shape}")
        if components is not None and (1 if data.ndim == 1 else data.shape[1]) != components:
            raise ValueError(f"BoxMesh.field: expected {components} component(s) per node, "
                             f"got values of shape {data.shape}")
        return crk.array(data, comm=self.comm, distributed=True)

    def __repr__(self):
        return (f"<BoxMesh {'x'.join(map(str, self.cells))} cells on "
                f"{self.comm.size} rank(s), owned nodes {self.owned_shape}>")


def _corner(value, default, dim, what):
    if value is None:
        return (default,) * dim
    value = tuple(float(v) for v in np.atleast_1d(value))
    if len(value) != dim:
        raise ValueError(f"BoxMesh: argument {what!r} needs {dim} coordinates, got {value}")
    return value
