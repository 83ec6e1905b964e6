"""Distributed arrays with global meaning: the same results on every rank count.

A distributed crk.ndarray is split along axis 0, each rank holding a piece. The modules here give
its operations the meaning they have on the whole global array:

* ``layout.py`` — the global layout (rows per rank), resolved lazily with one allgather and
  shared by arrays with the same rows;
* ``rowmap.py`` — linear maps moving rows between ranks (exchange, gather, their transposes)
  and the block that records one; every operation below is built from them;
* ``align.py`` — operands of one operation on one layout (``u[1:] - u[:-1]``, point maps on
  shifted slices), and numpy's broadcasting rules on global shapes;
* ``indexing.py`` — ``x[i]``, slices, integer arrays, masks, ``A[2, 1]``, ``x.at[...]``;
* ``redistribute.py`` — :func:`gather`, :func:`scatter`, :func:`redistribute`;
* ``halo.py`` — ``np.roll`` and ``np.diff`` along axis 0 (neighbour exchanges);
* ``shapes.py`` — reshape, squeeze, expand_dims and concatenate along axis 0;
* ``replication_check.py`` — the debug switch checking replicated values after every operation.
"""
from . import align          # registers the operand alignment crk.recording asks for
from .redistribute import gather, redistribute, scatter

__all__ = ["gather", "redistribute", "scatter"]
