"""The checkpoint state of a tape: which loop values are held now, in working memory and in
snapshots, and the schedule cycle being carried out.

One :class:`CheckpointState` per tape (its reduced functions share the tape's values), owned by
the tape's :class:`~crk.checkpointing.manager.CheckpointManager`. The manager (during the
first forward run, while the loop records) and the executors (during replays) change it only
through its methods.
"""
from .storage import SnapshotStorage


class Cycle:
    """One forward/reverse cycle of a schedule: its action iterator and how far it got.

    ``owner``: the executor whose forward this is (None: the recording run, usable by any);
    ``tangents``: the forward carried tangents (second order).
    """

    def __init__(self, schedule, owner, tangents):
        self.actions = iter(schedule)
        self.schedule = schedule
        self.owner = owner
        self.tangents = tangents
        self.forward_done = False
        self.reversed = False

    def next_action(self):
        return next(self.actions)


class CheckpointState:
    """Loop values held by the tape right now, and the cycle under way. Not collective.

    ``live``: loop-produced variables whose checkpoints hold values; ``retained``: those kept for
    the adjoint of the current cycle (adjoint dependencies in working memory); ``storage``: the
    snapshots (:class:`~crk.checkpointing.storage.SnapshotStorage`); ``cycle``: the
    :class:`Cycle` under way (None: none); ``forward_steps``: loop steps run forward so far
    (recording and recomputation).
    """

    def __init__(self, directory, rank):
        self.storage = SnapshotStorage(directory, rank)
        self.live = set()
        self.retained = set()
        self.cycle = None
        self.forward_steps = 0

    def begin_cycle(self, schedule, owner, tangents):
        self.cycle = Cycle(schedule, owner, tangents)
        return self.cycle

    def drop_cycle(self):
        """No cycle under way (an empty loop has nothing to checkpoint)."""
        self.cycle = None

    def releasable(self, variables):
        """Those of ``variables`` not retained for the adjoint."""
        return [bv for bv in variables if bv not in self.retained]

    def mark_live(self, variables):
        self.live.update(variables)

    def step_run(self):
        """Count one loop step run forward."""
        self.forward_steps += 1

    def retain(self, variables):
        self.retained.update(variables)

    def unretain(self, variables):
        self.retained.difference_update(variables)

    def release(self, variables):
        """Drop the tape's values (and tangents) of loop-produced ``variables``."""
        variables = list(variables)
        for bv in variables:
            bv.checkpoint = None
            bv.tlm_value = None
        self.live.difference_update(variables)

    def unretained_live(self, protected=()):
        """Live variables not retained for the adjoint (and not in ``protected``)."""
        return [bv for bv in self.live if bv not in self.retained and bv not in protected]

    def end_cycle(self, protected):
        """Forget the cycle: drop every snapshot and every live value not in ``protected``."""
        self.storage.clear()
        self.release([bv for bv in self.live if bv not in protected])
        self.retained.clear()
        self.cycle = None

    def close(self):
        """Forget everything and remove snapshot files."""
        self.storage.close()
        self.live.clear()
        self.retained.clear()
        self.cycle = None
