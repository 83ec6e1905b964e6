"""Output: VTK structured-grid pieces and their parallel index parse as XML and give back the
field's values; a .pvd time series; a PNG plot."""
import base64
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import solvers
from solvers.output import VTKSeries, plot, write_vtk


@pytest.fixture
def folder(comm, tmp_path):
    """A directory shared by all ranks (rank 0's temporary path)."""
    return comm.bcast(str(tmp_path), root=0)


def _read_array(element):
    comps = int(element.get("NumberOfComponents"))
    if element.get("format") == "ascii":
        data = np.array(element.text.split(), dtype=float)
    else:
        raw = base64.b64decode(element.text.strip())
        n = int(np.frombuffer(raw[:4], dtype=np.uint32)[0])
        data = np.frombuffer(raw[4:4 + n], dtype=np.float64)
    return data.reshape(-1, comps)


def _read_pvts(path):
    """{name: values} and points of every piece named by a .pvts, checked for consistency."""
    root = ET.parse(path).getroot()
    assert root.get("type") == "PStructuredGrid"
    grid = root.find("PStructuredGrid")
    names = [a.get("Name") for a in grid.find("PPointData")]
    pieces = []
    for piece in grid.findall("Piece"):
        sub = ET.parse(os.path.join(os.path.dirname(path), piece.get("Source"))).getroot()
        p = sub.find("StructuredGrid").find("Piece")
        assert p.get("Extent") == piece.get("Extent")
        ext = [int(v) for v in p.get("Extent").split()]
        count = np.prod([ext[2 * a + 1] - ext[2 * a] + 1 for a in range(3)])
        points = _read_array(p.find("Points").find("DataArray"))
        arrays = {a.get("Name"): _read_array(a) for a in p.find("PointData")}
        assert set(arrays) == set(names)
        assert len(points) == count and all(len(v) == count for v in arrays.values())
        pieces.append((points, arrays))
    return pieces


@pytest.mark.mpi
@pytest.mark.parametrize("encoding", ["binary", "ascii"])
@pytest.mark.parametrize("cells", [(6, 5), (3, 4, 2)])
def test_vtk_pieces_read_back(PETSc, comm, folder, encoding, cells):
    with solvers.BoxMesh(cells, upper=[2.0] * len(cells)) as mesh:
        def temperature(x):
            return x[:, 0] + 10 * x[:, 1]

        def displacement(x):
            return np.stack([np.sin(x[:, a]) for a in range(mesh.dim)], axis=1)
        u = mesh.field(temperature)
        v = mesh.field(displacement)
        path = write_vtk(os.path.join(folder, f"field_{encoding}_{mesh.dim}"), mesh,
                         {"T": u, "u": v}, encoding=encoding)
        comm.Barrier()
        seen = 0
        for points, arrays in _read_pvts(path):
            x = points[:, :mesh.dim]
            assert np.allclose(arrays["T"][:, 0], temperature(x))
            vec = arrays["u"]
            assert vec.shape[1] == 3
            assert np.allclose(vec[:, :mesh.dim], displacement(x))
            seen += len(points)
        assert seen >= mesh.total_nodes                 # pieces share their boundary nodes


@pytest.mark.mpi
def test_time_series_and_png(PETSc, comm, folder):
    with solvers.BoxMesh((8, 8)) as mesh:
        series = VTKSeries(os.path.join(folder, "heat.pvd"), mesh)
        for k in range(3):
            u = mesh.field(lambda x: (k + 1) * x[:, 0] * x[:, 1])
            pvd = series.write({"u": u}, time=0.1 * k)
        comm.Barrier()
        root = ET.parse(pvd).getroot()
        entries = root.find("Collection").findall("DataSet")
        assert [float(e.get("timestep")) for e in entries] == pytest.approx([0.0, 0.1, 0.2])
        last = _read_pvts(os.path.join(folder, entries[-1].get("file")))
        for points, arrays in last:
            assert np.allclose(arrays["u"][:, 0], 3 * points[:, 0] * points[:, 1])
        png = plot(os.path.join(folder, "u.png"), mesh, u, title="u")
        comm.Barrier()
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        with pytest.raises(ValueError, match="draws 2D fields"):
            with solvers.BoxMesh((2, 2, 2)) as cube:
                plot(os.path.join(folder, "c.png"), cube, cube.field(0.0))
