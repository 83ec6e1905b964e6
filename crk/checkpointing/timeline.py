"""The time loop on a tape: which blocks belong to which step, and the checkpointing done while
the loop is first recorded.

While recording, the future is unknown: a snapshot of step n0 is *open* and receives every value
produced before step n0 that a block of step n0 or later turns out to use (the user's objects
still hold those values when they are used, and the tape re-attaches them). At the end of each
step the tape drops its references to the step's values, except those the schedule keeps for the
adjoint. After the loop, replays know every use and write exact snapshots
(:mod:`crk.checkpointing.executor`).

Values produced before the loop, after it, and values that no block produced (constants
created inside the loop) are never dropped.
"""
import sys

from .schedules import StoreAll, as_schedule
from .storage import RAM, DISK, SnapshotStorage, check_directory


def storage_kind(storage_type):
    """checkpoint_schedules StorageType -> "ram" / "disk" / None (working memory)."""
    name = getattr(storage_type, "name", None)
    return {"RAM": RAM, "DISK": DISK}.get(name)


class Cycle:
    """One forward/reverse cycle of a schedule: the action iterator and what has been done."""

    def __init__(self, schedule, owner, tangents):
        self.actions = iter(schedule)
        self.schedule = schedule
        self.owner = owner            # the executor whose forward this is (None: recording)
        self.tangents = tangents      # forward carried tangents (second order)
        self.forward_done = False
        self.reversed = False
        self.pending = None           # an action read but not yet carried out


class Timeline:
    """Step structure of a tape's time loop and its checkpoint state.

    ``schedule``: a crk.checkpointing schedule (None/StoreAll: keep everything).
    ``directory``: where disk snapshots go (default: the system temporary directory).
    """

    def __init__(self, tape, schedule, directory=None):
        self.tape = tape
        self.schedule = as_schedule(schedule)
        self.checkpointing = not isinstance(self.schedule, StoreAll)
        if directory is not None:
            check_directory(directory)
        rank = tape.comm.rank if "mpi4py.MPI" in sys.modules else 0
        self.storage = SnapshotStorage(directory, rank)
        self.step_starts = []         # tape index of each step's first block
        self.loop_start = None
        self.loop_end = None          # tape index after the last step
        self.n_steps = None
        self.expected_steps = None
        self.started = False
        self.finished = False
        self.current = None           # step being recorded
        self.forward_steps = 0        # steps run forward so far (recording + recomputation)
        self.step_of = {}             # loop-produced BlockVariable -> its step
        self.live = set()             # loop-produced variables currently holding values
        self.retained = set()         # kept for the adjoint of the current cycle
        self.cycle = None
        self._action = None
        self._open = []               # (step, storage kind) of snapshots open while recording

    # -- recording ------------------------------------------------------------------------------
    def steps(self, n=None):
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ValueError(f"tape.timesteps(): argument 'n' must be a non-negative integer "
                             f"or None, got {n!r}")
        if self.started:
            if self.checkpointing:
                raise RuntimeError("crk: a checkpointed tape records one time loop "
                                   "(tape.timesteps was already used on this tape); record "
                                   "another loop on a new tape")
            return self._plain_steps(n)   # store-all: loops only mark steps, any number of them
        if self.checkpointing:
            self.schedule.check_steps(n)
        self.started = True
        self.expected_steps = n
        self.loop_start = len(self.tape)
        if self.checkpointing:
            self.cycle = Cycle(self.schedule.create(), owner=None, tangents=False)
        return self._generate(n)

    def _plain_steps(self, n):
        k = 0
        while n is None or k < n:
            self._check_working_tape()
            yield k
            k += 1

    def _check_working_tape(self):
        from ..tape import get_working_tape
        if get_working_tape() is not self.tape:
            raise RuntimeError("tape.timesteps(): this tape is not the working tape, so the "
                               "loop's operations would be recorded elsewhere; run the loop "
                               "inside `with tape:`")

    def _generate(self, n):
        k = 0
        in_step = False
        try:
            while n is None or k < n:
                self._start_step(k)
                in_step = True
                yield k
                in_step = False
                self._end_step(k)
                k += 1
        finally:
            # Also reached when the loop body breaks out (the generator is closed).
            if in_step:
                self._end_step(k)
                k += 1
            self._end_loop(k)

    def _start_step(self, k):
        self._check_working_tape()
        self.step_starts.append(len(self.tape))
        self.current = k
        if not self.checkpointing:
            return
        action = self._action
        while action is None or k >= action.n1:
            action = next(self.cycle.actions)
            if type(action).__name__ != "Forward":
                raise RuntimeError(f"crk checkpointing: unexpected {action!r} during the first "
                                   f"forward run")
        self._action = action
        if k == action.n0 and action.write_ics:
            self._open.append((k, storage_kind(action.storage)))

    def block_added(self, block, index):
        """Called by the tape for every recorded block (bookkeeping for checkpointing)."""
        if not self.checkpointing or self.current is None:
            return
        k = self.current
        step_of = self.step_of
        for dep in block._dependencies:
            c = step_of.get(dep)
            if c is None:
                continue
            self.live.add(dep)
            if self.finished:
                continue
            for n0, where in self._open:
                if c < n0 <= k:
                    self.storage.add(n0, where, dep, dep.checkpoint)
            if self._action.write_adj_deps:
                self.retained.add(dep)
        if self.finished:
            return
        for out in block._outputs:
            step_of[out] = k
            self.live.add(out)
        if self._action.write_adj_deps:
            self.retained.update(block._outputs)

    def _end_step(self, k):
        self.forward_steps += 1
        if self.checkpointing:
            self.release(self.live - self.retained)
            if not self._action.write_adj_deps:
                for block in self.tape.get_blocks()[self.step_starts[k]:]:
                    block.release()

    def _end_loop(self, k):
        self.loop_end = len(self.tape)
        self.n_steps = k
        self.finished = True
        self._open = []
        if not self.checkpointing:
            return
        if k == 0:                    # an empty loop: nothing to checkpoint
            self.checkpointing = False
            self.cycle = None
            return
        cycle = self.cycle
        if self.schedule.n_steps is None:
            cycle.schedule.finalize(k)
        if k == self.expected_steps or self.schedule.n_steps is None:
            for action in cycle.actions:
                if type(action).__name__ == "EndForward":
                    break
            cycle.forward_done = True

    def release(self, variables):
        """Drop the tape's values (and tangents) of loop-produced ``variables``."""
        for bv in variables:
            bv.checkpoint = None
            bv.tlm_value = None
        self.live.difference_update(variables)

    # -- use ------------------------------------------------------------------------------------
    def check_complete(self):
        if self.started and not self.finished:
            raise RuntimeError("crk: the time loop is still being recorded; build reduced "
                               "functions after the loop")
        if self.checkpointing and self.expected_steps is not None and \
                self.n_steps != self.expected_steps:
            raise RuntimeError(f"crk: the time loop ended after {self.n_steps} of the "
                               f"{self.expected_steps} steps its schedule {self.schedule!r} "
                               f"expects; the tape cannot be replayed under that schedule")

    def executor(self, plan):
        from ..sweeps import StoreAll
        if not self.checkpointing or not self.started:
            return StoreAll(plan)
        self.check_complete()
        from .executor import CheckpointExecutor
        return CheckpointExecutor(self, plan)

    def step_index(self, tape_index):
        """The step of the block at ``tape_index`` (-1 before the loop, n_steps after)."""
        import bisect
        if self.loop_start is None or tape_index < self.loop_start:
            return -1
        if self.loop_end is not None and tape_index >= self.loop_end:
            return self.n_steps
        return bisect.bisect_right(self.step_starts, tape_index) - 1

    def close(self):
        """Forget the loop's checkpoint state and remove snapshot files."""
        self.storage.close()
        self.live.clear()
        self.retained.clear()
        self.cycle = None
