"""Box meshes: ownership (also uneven, chosen splits), orderings, ghost exchange, faces."""
import numpy as np
import pytest

import solvers


def _uneven(n, size):
    """n nodes over `size` ranks, unevenly (later ranks get more), at least 2 each."""
    weights = np.arange(1, size + 1, dtype=float)
    counts = np.maximum(2, np.floor(weights / weights.sum() * n)).astype(int)
    counts[-1] = n - counts[:-1].sum()
    return tuple(int(c) for c in counts)


@pytest.mark.mpi
@pytest.mark.parametrize("cells", [(9,), (7, 5), (4, 3, 5)])
def test_ownership_and_orderings(PETSc, comm, cells):
    with solvers.BoxMesh(cells, lower=[-1.0] * len(cells), upper=[2.0] * len(cells)) as mesh:
        total = comm.allreduce(mesh.n_owned)
        assert total == mesh.total_nodes == int(np.prod([c + 1 for c in cells]))
        assert comm.allreduce(mesh.n_elements) == int(np.prod(cells))
        nat = mesh.natural_indices()
        everyone = np.sort(np.concatenate(comm.allgather(nat)))
        assert np.array_equal(everyone, np.arange(mesh.total_nodes))
        x = mesh.coordinates()
        full = mesh.gather(x)
        i = np.arange(mesh.total_nodes)
        for axis, n in enumerate(mesh.nodes):
            idx = (i // int(np.prod(mesh.nodes[:axis]))) % n
            assert np.allclose(full[:, axis], -1.0 + 3.0 * idx / cells[axis])
        assert np.array_equal(mesh.owned_from_natural(full), x)


@pytest.mark.mpi
def test_uneven_split_and_ghost_sums(PETSc, comm):
    nodes = 14
    own = _uneven(nodes, comm.size)
    with solvers.BoxMesh((nodes - 1, 4), ownership=(own, (5,))) as mesh:
        assert mesh.owned_shape[0] == own[comm.rank]
        field = mesh.field(lambda x: x[:, 0] + 10 * x[:, 1])
        grid = mesh.to_ghosted(field.value)
        ghost_x = mesh.coordinates(ghosted=True)
        assert np.allclose(grid.reshape(-1), ghost_x[:, 0] + 10 * ghost_x[:, 1])
        # every rank adds 1 to each node of its ghosted box: nodes get their sharing count
        counts = mesh.add_ghosted(np.ones(grid.shape))
        assert mesh.gather(counts).sum() == comm.allreduce(mesh.n_ghosted)
        assert counts.min() >= 1


@pytest.mark.mpi
def test_faces(PETSc):
    with solvers.BoxMesh((4, 6)) as mesh:
        x = mesh.coordinates()
        assert np.array_equal(mesh.face_mask("xmax"), np.isclose(x[:, 0], 1.0))
        assert np.array_equal(mesh.face_mask((1, 0)), np.isclose(x[:, 1], 0.0))
        on = np.isclose(x, 0.0) | np.isclose(x, 1.0)
        assert np.array_equal(mesh.face_mask("boundary"), on.any(axis=1))
        with pytest.raises(ValueError, match="unknown face 'north'"):
            mesh.face_mask("north")
        with pytest.raises(ValueError, match="a 2D box does not have"):
            mesh.face_mask("zmin")


def test_bad_arguments(PETSc):
    with pytest.raises(ValueError, match="'cells' must give 1 to 3 positive"):
        solvers.BoxMesh((2, 2, 2, 2))
    with pytest.raises(ValueError, match="'ownership' must give"):
        solvers.BoxMesh((4,), ownership=((2, 2),))
    with pytest.raises(ValueError, match="need lower < upper"):
        solvers.BoxMesh((4,), lower=[1.0], upper=[0.0])
    mesh = solvers.BoxMesh((3,), comm=__import__("mpi4py").MPI.COMM_SELF)
    mesh.destroy()
    with pytest.raises(RuntimeError, match="this mesh was destroyed"):
        mesh.dm(2)
