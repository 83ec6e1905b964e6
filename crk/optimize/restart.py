"""Checkpoint files of a fit: written atomically after every iteration, read to resume.

A checkpoint file (numpy ``.npz``, no pickles) holds

* ``x``: the free controls as the global vector (:mod:`crk.optimize.vector`), so a fit may resume
  on a different number of ranks;
* ``history``: one row per iteration (:attr:`IterationRecord.FIELDS`);
* ``meta``: JSON text with the format version, the optimiser, the free control indices and their
  global sizes, the iteration count, evaluation counts, wall seconds, whether the fit finished
  (and why), and the optimiser's own restartable state (``optimizer_state``, a JSON dict).

What is restored: the iterate, the iteration and evaluation counters (iteration limits count all
runs together), the history, and the trust-region radius of trust-region methods (scipy's
trust-constr, TAO's ntr/bntr/bqnktr/...; given as the initial radius unless the caller sets one).
Quasi-Newton memories (L-BFGS-B's, TAO's LMVM) and line-search state are not restorable through
scipy's or TAO's interfaces: they are rebuilt from the restored iterate, so a resumed fit reaches
the same answer to the optimiser's tolerance, not bit for bit the iterates an uninterrupted run
would take.

Rank 0 writes; a file is first written next to its destination, flushed to disk, then renamed
over it, so a fit killed at any moment leaves either the previous checkpoint or the new one.
Every rank reads the same file.
"""
import dataclasses
import json
import os
import secrets

import numpy as np

from ..parallel.collective import allgather, collective_section
from .result import Evaluations, IterationRecord

FORMAT = "crk.optimize checkpoint"
VERSION = 1


@dataclasses.dataclass
class FitState:
    """What a checkpoint file holds (see the module docstring)."""

    x: np.ndarray
    history: list
    optimizer: str
    free: list
    sizes: list
    iterations: int
    evaluations: Evaluations
    seconds: float
    finished: bool = False
    reason: str = ""
    optimizer_state: dict = dataclasses.field(default_factory=dict)


def write_atomically(path, state):
    """Write ``state`` (a :class:`FitState`) to ``path``: temp file in the same directory,
    fsync, rename over ``path``, fsync the directory. Not collective (rank 0 calls it)."""
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    meta = {
        "format": FORMAT, "version": VERSION, "optimizer": state.optimizer,
        "free": list(state.free), "sizes": [int(n) for n in state.sizes],
        "iterations": int(state.iterations),
        "evaluations": dataclasses.asdict(state.evaluations), "seconds": float(state.seconds),
        "finished": bool(state.finished), "reason": state.reason,
        "optimizer_state": state.optimizer_state,
    }
    history = np.array([[float(getattr(r, f)) for f in IterationRecord.FIELDS]
                        for r in state.history], dtype=np.float64).reshape(-1, 8)
    # a new file beside the destination (same file system, so the rename is atomic), created
    # with the usual permissions
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}."
                                  f"{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            np.savez(f, x=np.asarray(state.x, dtype=np.float64), history=history,
                     meta=np.array(json.dumps(meta)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:        # directories that cannot be opened (some platforms): rename is done
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read(path):
    """The :class:`FitState` in checkpoint file ``path`` (not collective). Raises ValueError
    naming the file when it is not a crk.optimize checkpoint."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            x = np.array(data["x"], dtype=np.float64)
            rows = np.array(data["history"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"checkpoint_file {path!r} is not a readable crk.optimize checkpoint "
                         f"({type(e).__name__}: {e}); delete it or pass resume=False") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"checkpoint_file {path!r}: expected a {FORMAT} (version {VERSION}), "
                         f"found format {meta.get('format')!r} version {meta.get('version')!r}")
    history = [IterationRecord(*(int(v) if f in ("iteration", "forward", "adjoint", "hessian")
                                 else float(v) for f, v in zip(IterationRecord.FIELDS, row)))
               for row in rows]
    return FitState(x=x, history=history, optimizer=meta["optimizer"], free=meta["free"],
                    sizes=meta["sizes"], iterations=meta["iterations"],
                    evaluations=Evaluations(**meta["evaluations"]), seconds=meta["seconds"],
                    finished=meta["finished"], reason=meta["reason"],
                    optimizer_state=meta.get("optimizer_state", {}))


def load_for_resume(path, layout, comm):
    """The :class:`FitState` to resume from ``path``, or None when rank 0 sees no such file.

    Every rank reads the file; the state must describe the same free controls (indices and
    global sizes) as ``layout``, else ValueError. Collective over ``comm``; a failure on any rank
    raises on all."""
    exists = allgather(os.path.exists(path) if comm.rank == 0 else None, comm)[0]
    if not exists:
        return None
    with collective_section(comm=comm, where="reading the checkpoint file"):
        state = read(path)
        sizes = [n for _, _, _, n, _ in layout.entries]
        if list(state.free) != list(layout.free) or list(state.sizes) != sizes:
            raise ValueError(
                f"checkpoint_file {os.fspath(path)!r} was written for free controls "
                f"{state.free} of global sizes {state.sizes}, but this fit optimises controls "
                f"{layout.free} of sizes {sizes}; delete the file or pass resume=False")
    return state
