"""Snapshot storage for the checkpoint executor: step data in memory or in per-rank files.

A snapshot maps BlockVariables to their values (and tangents, during second-order sweeps) and
has a kind: :data:`FORWARD_STATE` (what a forward run from step n needs, "ics" in
checkpoint_schedules) or :data:`ADJ_DEPS` (what the adjoint of step n reads). Memory snapshots
hold references (recorded values are immutable, so nothing is copied). Disk snapshots are one
``.npy`` file per value under a private per-rank directory, removed when the storage is closed
(tape cleared), garbage-collected, or at interpreter exit — also after an exception. Shape stubs
(:mod:`crk.lifetime`) are stored as their shape and dtype.
"""
import os
import pickle
import shutil
import tempfile
import weakref

import numpy as np

from ..lifetime import is_stub, stub_like

RAM, DISK = "ram", "disk"
FORWARD_STATE, ADJ_DEPS = "forward state", "adjoint dependencies"


def storage_kind(storage_type):
    """checkpoint_schedules StorageType -> RAM / DISK / None (working memory or none)."""
    name = getattr(storage_type, "name", None)
    return {"RAM": RAM, "DISK": DISK}.get(name)


def check_directory(directory):
    """Create ``directory`` if needed and check snapshots can be written there."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise OSError(e.errno, f"crk checkpointing: cannot write snapshots to directory "
                               f"{directory!r}: {e.strerror or e}") from e


class SnapshotStorage:
    """Snapshots keyed by step number, in memory or on disk. Not collective: every rank keeps
    its own (distributed values are this rank's pieces)."""

    def __init__(self, directory=None, rank=0):
        self.directory = directory
        self.rank = rank
        self._ram = {}
        self._disk = {}           # step -> directory
        self._kinds = {}          # (step, where) -> FORWARD_STATE or ADJ_DEPS
        self._root = None
        self._ids = {}            # BlockVariable -> file id
        self._by_id = {}
        self._finalizer = None
        self.max_held = 0         # most snapshots held at once (tests check it against the plan)

    # -- common -------------------------------------------------------------------------------
    def write(self, n, where, entries, kind=FORWARD_STATE):
        """Store ``entries`` ({bv: (value, tangent)}) as the snapshot of step n."""
        self.delete(n, where)
        for bv, (value, tangent) in entries.items():
            self.add(n, where, bv, value, tangent)
        self._kinds[(n, where)] = kind
        if where == RAM:
            self._ram.setdefault(n, {})
        elif n not in self._disk:
            self._disk[n] = self._step_dir(n)
            os.makedirs(self._disk[n], exist_ok=True)
        self._count()

    def _count(self):
        self.max_held = max(self.max_held, len(self._ram) + len(self._disk))

    def add(self, n, where, bv, value, tangent=None):
        """Add one value to the snapshot of step n (created as a forward state if absent)."""
        self._kinds.setdefault((n, where), FORWARD_STATE)
        if where == RAM:
            self._ram.setdefault(n, {}).setdefault(bv, (value, tangent))
            self._count()
            return
        path = self._step_dir(n)
        if n not in self._disk:
            os.makedirs(path, exist_ok=True)
            self._disk[n] = path
            self._count()
        ident = self._id(bv)
        if not any(f.startswith(f"{ident}.v") for f in os.listdir(path)):
            _save(os.path.join(path, f"{ident}.v"), value)
            if tangent is not None:
                _save(os.path.join(path, f"{ident}.t"), tangent)

    def has(self, n, where):
        return n in (self._ram if where == RAM else self._disk)

    def kind(self, n, where):
        """FORWARD_STATE or ADJ_DEPS: what the snapshot of step n holds."""
        return self._kinds[(n, where)]

    def read(self, n, where):
        """The snapshot of step n as {bv: (value, tangent)}."""
        if where == RAM:
            return dict(self._ram[n])
        path = self._disk[n]
        out = {}
        for name in os.listdir(path):
            ident, kind = name.split(".")[:2]
            bv = self._by_id[int(ident)]
            value, tangent = out.get(bv, (None, None))
            loaded = _load(os.path.join(path, name))
            out[bv] = (loaded, tangent) if kind == "v" else (value, loaded)
        return out

    def delete(self, n, where):
        self._kinds.pop((n, where), None)
        if where == RAM:
            self._ram.pop(n, None)
        elif n in self._disk:
            shutil.rmtree(self._disk.pop(n), ignore_errors=True)

    def clear(self):
        """Drop every snapshot (memory and files); the directory stays for reuse."""
        self._ram.clear()
        for n in list(self._disk):
            self.delete(n, DISK)

    def close(self):
        """Drop everything and remove this storage's directory."""
        self.clear()
        self._ids.clear()
        self._by_id.clear()
        if self._finalizer is not None:
            self._finalizer()

    # -- disk helpers ---------------------------------------------------------------------------
    def _step_dir(self, n):
        if self._root is None:
            parent = self.directory or tempfile.gettempdir()
            check_directory(parent)
            self._root = tempfile.mkdtemp(prefix=f"crk-snapshots-rank{self.rank}-", dir=parent)
            # Removed at close(), when this storage is collected, or at interpreter exit.
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._root, True)
        return os.path.join(self._root, f"step{n}")

    def _id(self, bv):
        ident = self._ids.get(bv)
        if ident is None:
            ident = self._ids[bv] = len(self._ids)
            self._by_id[ident] = bv
        return ident


def _save(stem, value):
    if is_stub(value):
        with open(stem + ".s.pkl", "wb") as f:
            pickle.dump((value.shape, value.dtype.str), f)
    elif isinstance(value, float):
        np.save(stem + ".f.npy", np.array(value))
    elif isinstance(value, np.ndarray) and value.dtype != object:
        np.save(stem + ".a.npy", value, allow_pickle=False)
    else:
        with open(stem + ".p.pkl", "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)


def _load(path):
    if path.endswith(".f.npy"):
        return float(np.load(path))
    if path.endswith(".a.npy"):
        value = np.load(path, allow_pickle=False)
        value.flags.writeable = False
        return value
    with open(path, "rb") as f:
        value = pickle.load(f)
    if path.endswith(".s.pkl"):
        shape, dtype = value
        return stub_like(np.broadcast_to(np.zeros((), dtype), shape))
    return value
