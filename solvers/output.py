"""Output: nodal fields to VTK structured-grid files that ParaView opens, and PNG plots.

* :func:`write_vtk` writes one time level: every rank writes its piece (``<base>_<rank>.vts``,
  the nodes of the elements it owns, so pieces share their boundary nodes) and rank 0 the
  parallel index ``<base>.pvts`` naming them. Collective.
* :class:`VTKSeries` writes a time series: one ``.pvts`` per step and a ``.pvd`` collection
  (rewritten after every step, so it is valid while the run goes on).
* :func:`plot` writes a PNG of a 2D scalar field (or a component) with matplotlib's Agg canvas
  (no global matplotlib setting is touched; matplotlib is imported on first use).

Fields are owned nodal values (see :mod:`solvers.mesh`), plain or crk arrays, 1 or k components
(2D vectors are written with a zero third component, as ParaView expects vectors in 3D).
"""
import base64
import os
from xml.sax.saxutils import quoteattr

import numpy as np

from crk.parallel import agree


def _plain(u):
    return np.asarray(getattr(u, "value", u), dtype=np.float64)


def _piece_arrays(mesh, fields):
    """Extent and arrays of this rank's piece: nodes of its own elements (all nodes along an
    axis with no element, which happens only for one-node axes), points (n, 3)."""
    lo, hi = [], []
    for (es, ee), (s, e), c in zip(mesh.element_ranges, mesh.ranges, mesh.cells):
        lo.append(es)
        hi.append(ee)               # node ee closes element ee - 1 (a ghost node or owned)
    grids = {}
    for name, u in fields.items():
        u = _plain(u)
        k = 1 if u.ndim == 1 else u.shape[1]
        grid = mesh.to_ghosted(u.reshape(mesh.n_owned, k))
        index = tuple(slice(l - g, h - g + 1) for (l, h, (g, _))
                      in reversed(list(zip(lo, hi, mesh.ghost_ranges))))
        values = grid[index].reshape(-1, k)
        if k == 2:                  # ParaView takes vectors with three components
            values = np.concatenate([values, np.zeros((len(values), 1))], axis=1)
        grids[name] = values
    axes = [mesh.lower[a] + np.arange(lo[a], hi[a] + 1) * mesh.spacing[a]
            for a in range(mesh.dim)]
    mg = np.meshgrid(*reversed(axes), indexing="ij")
    pts = np.zeros((mg[0].size, 3))
    for a, g in enumerate(reversed(mg)):
        pts[:, a] = g.reshape(-1)
    extent = []
    for a in range(3):
        extent += [lo[a], hi[a]] if a < mesh.dim else [0, 0]
    empty = any(h <= l for l, h in zip(lo, hi))
    return extent, pts, grids, empty


def _data_array(name, values, encoding, components=None):
    values = np.ascontiguousarray(values, dtype=np.float64)
    comps = components or (1 if values.ndim == 1 else values.shape[1])
    head = (f'<DataArray type="Float64" Name={quoteattr(name)} '
            f'NumberOfComponents="{comps}" format="{encoding}">')
    if encoding == "ascii":
        body = " ".join(repr(float(v)) for v in values.reshape(-1))
    else:
        raw = values.tobytes()
        body = base64.b64encode(np.array([len(raw)], dtype=np.uint32).tobytes() + raw).decode()
    return f"{head}\n{body}\n</DataArray>"


def _extent_text(extent):
    return " ".join(str(int(e)) for e in extent)


def write_vtk(path, mesh, fields, encoding="binary"):
    """Write ``fields`` ({name: owned nodal values}) on ``mesh`` to ``path`` (``.pvts``; the
    pieces go beside it). ``encoding``: "binary" (base64, compact) or "ascii". Returns the
    path of the .pvts. Collective: every rank writes its piece."""
    if encoding not in ("binary", "ascii"):
        raise ValueError(f"write_vtk: argument 'encoding' must be 'binary' or 'ascii', got "
                         f"{encoding!r}")
    base = path[:-5] if path.endswith(".pvts") else path
    folder, stem = os.path.split(base)
    comm = mesh.comm
    extent, pts, arrays, empty = _piece_arrays(mesh, fields)
    whole = []
    for a in range(3):
        whole += [0, mesh.cells[a]] if a < mesh.dim else [0, 0]
    error = None
    piece_name = f"{stem}_{comm.rank}.vts"
    try:
        if not empty:
            parts = [_data_array(n, v, encoding) for n, v in arrays.items()]
            with open(os.path.join(folder, piece_name), "w") as out:
                out.write('<?xml version="1.0"?>\n<VTKFile type="StructuredGrid" version="1.0" '
                          'byte_order="LittleEndian" header_type="UInt32">\n'
                          f'<StructuredGrid WholeExtent="{_extent_text(whole)}">\n'
                          f'<Piece Extent="{_extent_text(extent)}">\n<PointData>\n'
                          + "\n".join(parts) + "\n</PointData>\n<Points>\n"
                          + _data_array("Points", pts, encoding, 3)
                          + "\n</Points>\n</Piece>\n</StructuredGrid>\n</VTKFile>\n")
    except OSError as e:
        error = e
    agree(comm, error, where="write_vtk (pieces)")
    from crk.parallel import allgather
    pieces = allgather(None if empty else (extent, piece_name), comm)
    error = None
    if comm.rank == 0:
        try:
            entries = "\n".join(f'<Piece Extent="{_extent_text(e)}" Source={quoteattr(n)}/>'
                                for e, n in filter(None, pieces))
            specs = "\n".join(
                f'<PDataArray type="Float64" Name={quoteattr(name)} '
                f'NumberOfComponents="{1 if v.ndim == 1 else v.shape[1]}"/>'
                for name, v in arrays.items())
            with open(base + ".pvts", "w") as out:
                out.write('<?xml version="1.0"?>\n<VTKFile type="PStructuredGrid" version="1.0" '
                          'byte_order="LittleEndian" header_type="UInt32">\n'
                          f'<PStructuredGrid WholeExtent="{_extent_text(whole)}" '
                          f'GhostLevel="0">\n<PPointData>\n{specs}\n</PPointData>\n'
                          '<PPoints>\n<PDataArray type="Float64" NumberOfComponents="3"/>\n'
                          f'</PPoints>\n{entries}\n</PStructuredGrid>\n</VTKFile>\n')
        except OSError as e:
            error = e
    agree(comm, error, where="write_vtk (index)")
    return base + ".pvts"


class VTKSeries:
    """A time series of fields: ``series.write(fields, time)`` writes ``<base>_<k>.pvts`` and
    rewrites ``<base>.pvd``. Collective."""

    def __init__(self, path, mesh, encoding="binary"):
        self.base = path[:-4] if path.endswith(".pvd") else path
        self.mesh = mesh
        self.encoding = encoding
        self.entries = []

    def write(self, fields, time):
        k = len(self.entries)
        written = write_vtk(f"{self.base}_{k:05d}", self.mesh, fields, self.encoding)
        self.entries.append((float(time), os.path.basename(written)))
        error = None
        if self.mesh.comm.rank == 0:
            try:
                items = "\n".join(f'<DataSet timestep="{t!r}" part="0" file={quoteattr(f)}/>'
                                  for t, f in self.entries)
                with open(self.base + ".pvd", "w") as out:
                    out.write('<?xml version="1.0"?>\n<VTKFile type="Collection" version="1.0">\n'
                              f'<Collection>\n{items}\n</Collection>\n</VTKFile>\n')
            except OSError as e:
                error = e
        agree(self.mesh.comm, error, where="VTKSeries.write")
        return self.base + ".pvd"


def plot(path, mesh, u, component=None, title=None, cmap="viridis"):
    """Write a PNG of a 2D field (``component`` of a vector field) at ``path``: rank 0 draws
    the gathered field. Collective."""
    if mesh.dim != 2:
        raise ValueError(f"plot: draws 2D fields, the mesh is {mesh.dim}D")
    values = mesh.gather(_plain(u))
    if values.ndim == 2:
        if component is None:
            values = np.linalg.norm(values, axis=1)
        else:
            values = values[:, component]
    error = None
    if mesh.comm.rank == 0:
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
            fig = Figure(figsize=(5, 4.2))
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            grid = values.reshape(mesh.nodes[1], mesh.nodes[0])
            image = ax.imshow(grid, origin="lower", cmap=cmap, aspect="equal",
                              extent=(mesh.lower[0], mesh.upper[0], mesh.lower[1],
                                      mesh.upper[1]))
            fig.colorbar(image, ax=ax)
            if title:
                ax.set_title(title)
            fig.savefig(path, dpi=100)
        except Exception as e:
            error = e
    agree(mesh.comm, error, where="solvers.output.plot")
    return path
