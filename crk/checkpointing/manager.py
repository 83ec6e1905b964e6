"""The checkpoint manager of a tape: records the time loop's steps, checkpoints while the loop is
first recorded, and makes the executors that replay it.

A :class:`CheckpointManager` is handed its tape (``tape.timesteps`` / ``enable_checkpointing``
make one) and imports nothing from the tape's module: it registers as a tape observer while a
checkpointed loop records, and otherwise only calls the tape's public methods. It owns the loop's
:class:`~crk.checkpointing.timeline.Timeline` (the recorded structure) and the tape's
:class:`~crk.checkpointing.state.CheckpointState` (the values held and the cycle under way).

While recording, the future is unknown: a snapshot of step n0 is *open* and receives every value
produced before step n0 that a block of step n0 or later turns out to use (the user's objects
still hold those values when they are used, and the tape re-attaches them). At the end of each
step the tape drops its references to the step's values, except those the schedule keeps for the
adjoint (in working memory, or written to a snapshot). After the loop, replays know every use
and write exact snapshots (:mod:`crk.checkpointing.executor`).

Values produced before the loop, after it, and values that no block produced (constants
created inside the loop) are never dropped.
"""
import sys

from checkpoint_schedules import EndForward, Forward

from ..lifetime import stored_form
from ..sweeps import KeepAllExecutor
from .schedules import StoreAll, as_schedule
from .state import CheckpointState
from .storage import ADJ_DEPS, check_directory, storage_kind
from .timeline import Timeline


class CheckpointManager:
    """Time loop and checkpointing of ``tape``. Not collective.

    ``schedule``: a crk.checkpointing schedule (None/StoreAll: keep everything; the loop's steps
    are only marked). ``directory``: where disk snapshots go (default: the system temporary
    directory).
    """

    def __init__(self, tape, schedule, directory=None):
        self.tape = tape
        self.schedule = as_schedule(schedule)
        self.directory = directory
        self.checkpointing = not isinstance(self.schedule, StoreAll)
        if directory is not None:
            check_directory(directory)
        rank = tape.comm.rank if "mpi4py.MPI" in sys.modules else 0
        self.timeline = Timeline()
        self.state = CheckpointState(directory, rank)
        self._action = None           # the Forward action of the step being recorded
        self._open = []               # (step, storage kind) of snapshots open while recording
        self._step_adj_deps = set()   # adjoint dependencies of the step being recorded

    # -- figures for tests and benchmarks ------------------------------------------------------
    @property
    def forward_steps(self):
        """Loop steps run forward so far (the recording run and every recomputation)."""
        return self.state.forward_steps

    @property
    def storage(self):
        return self.state.storage

    @property
    def n_steps(self):
        return self.timeline.n_steps

    # -- recording ------------------------------------------------------------------------------
    def check_not_started(self):
        if self.timeline.started:
            raise RuntimeError(
                "Tape.enable_checkpointing(): the time loop has already started recording; "
                "choose the schedule before the first `for step in tape.timesteps(...)`.")

    def steps(self, n=None):
        """The iterator behind ``tape.timesteps(n)``."""
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ValueError(f"tape.timesteps(): argument 'n' must be a non-negative integer "
                             f"or None, got {n!r}")
        if self.timeline.started:
            if self.checkpointing:
                raise RuntimeError("crk: a checkpointed tape records one time loop "
                                   "(tape.timesteps was already used on this tape); record "
                                   "another loop on a new tape")
            return self._plain_steps(n)   # store-all: loops only mark steps, any number of them
        if self.checkpointing:
            self.schedule.check_steps(n)
        self.timeline.start(len(self.tape), n)
        if self.checkpointing:
            self.state.begin_cycle(self.schedule.create(), owner=None, tangents=False)
            self.tape.add_observer(self)
        return self._generate(n)

    def _plain_steps(self, n):
        k = 0
        while n is None or k < n:
            self._check_working_tape()
            yield k
            k += 1

    def _check_working_tape(self):
        if not self.tape.is_working_tape():
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
        self.timeline.start_step(k, len(self.tape))
        if not self.checkpointing:
            return
        action = self._action
        while action is None or k >= action.n1:
            action = self.state.cycle.next_action()
            if not isinstance(action, Forward):
                raise RuntimeError(f"crk checkpointing: unexpected {action!r} during the first "
                                   f"forward run")
        self._action = action
        if k == action.n0 and action.write_ics:
            self._open.append((k, storage_kind(action.storage)))

    def block_added(self, block, index):
        """Tape observer: bookkeeping of a block recorded during or after a checkpointed loop."""
        timeline = self.timeline
        k = timeline.current
        if k is None:
            return
        step_of = timeline.step_of
        state = self.state
        keep_adj_deps = not timeline.finished and self._action.write_adj_deps
        for dep in block._dependencies:
            c = step_of.get(dep)
            if c is None:
                continue
            state.mark_live((dep,))
            if timeline.finished:
                continue
            for n0, where in self._open:
                if c < n0 <= k:
                    state.storage.add(n0, where, dep, dep.checkpoint)
            if keep_adj_deps:
                self._step_adj_deps.add(dep)
        if timeline.finished:
            return
        timeline.produced(block, k)
        state.mark_live(block._outputs)
        if keep_adj_deps:
            self._step_adj_deps.update(block._outputs)

    def _end_step(self, k):
        state = self.state
        state.step_run()
        if not self.checkpointing:
            return
        adj_deps, self._step_adj_deps = self._step_adj_deps, set()
        where = storage_kind(self._action.storage)
        if adj_deps and where is not None:      # adjoint dependencies go to a snapshot
            state.storage.write(k, where, {bv: (stored_form(bv.checkpoint, bv.keep), None)
                                           for bv in adj_deps}, kind=ADJ_DEPS)
        elif adj_deps:                          # ... or stay in working memory
            state.retain(adj_deps)
        state.release(state.unretained_live())
        if not adj_deps or where is not None:   # no adjoint of this step before a replay
            for block in self.tape.get_blocks()[self.timeline.step_starts[k]:]:
                block.release()

    def _end_loop(self, k):
        self.timeline.end(k, len(self.tape))
        self._open = []
        if not self.checkpointing:
            return
        cycle = self.state.cycle
        if k == 0:                    # an empty loop: nothing to checkpoint
            self.checkpointing = False
            self.state.drop_cycle()
            self.tape.remove_observer(self)
            return
        if self.schedule.n_steps is None:
            cycle.schedule.finalize(k)
        if k == self.timeline.expected_steps or self.schedule.n_steps is None:
            while not isinstance(cycle.next_action(), EndForward):
                pass
            cycle.forward_done = True

    # -- use ------------------------------------------------------------------------------------
    def check_complete(self):
        timeline = self.timeline
        if timeline.started and not timeline.finished:
            raise RuntimeError("crk: the time loop is still being recorded; build reduced "
                               "functions after the loop")
        if self.checkpointing and timeline.expected_steps is not None and \
                timeline.n_steps != timeline.expected_steps:
            raise RuntimeError(f"crk: the time loop ended after {timeline.n_steps} of the "
                               f"{timeline.expected_steps} steps its schedule {self.schedule!r} "
                               f"expects; the tape cannot be replayed under that schedule")

    def executor(self, plan):
        """The executor of a reduced function's sweeps over ``plan`` on this tape."""
        if not self.checkpointing or not self.timeline.started:
            return KeepAllExecutor(plan)
        self.check_complete()
        from .executor import CheckpointExecutor
        return CheckpointExecutor(self, plan)

    def close(self):
        """Forget the loop's checkpoint state, remove snapshot files, stop observing."""
        self.tape.remove_observer(self)
        self.state.close()

    def renewed(self):
        """A manager for a fresh loop record on the same tape, with the same schedule and
        directory (None for store-all: a cleared tape has no loop)."""
        if isinstance(self.schedule, StoreAll):
            return None
        return CheckpointManager(self.tape, self.schedule, self.directory)

