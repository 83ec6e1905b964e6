"""The checkpoint executor: runs a reduced function's sweeps under a schedule.

The schedule (a pure sequence of actions) says when to store a step's forward state or its
adjoint dependencies, when to restore one and when to run the adjoint of a step; this executor
carries the actions out, one handler per action type (``functools.singledispatchmethod``), and
changes the tape's :class:`~crk.checkpointing.state.CheckpointState` through its methods. Its
guarantees:

* every value a block reads is either kept since the loop's start (values made before or after
  the loop, constants), restored from a snapshot, or recomputed in this forward run;
* a forward run drops each loop value right after its last use, so the values held are the
  snapshots plus the current step's working set (plus adjoint dependencies the schedule keeps
  in working memory);
* gradients, tangents and Hessian actions equal store-all ones: replays recompute every block
  upstream of the outputs (also those that do not depend on the controls, since their values
  were dropped too);
* a cycle is one forward and one reverse; anything else (new control values, a second
  derivative(), a tangent sweep) starts a new cycle with a fresh schedule.
"""
import functools

from checkpoint_schedules import Copy, EndForward, EndReverse, Forward, Move, Reverse

from ..lifetime import stored_form
from ..sweeps import Executor
from .storage import ADJ_DEPS, storage_kind


class CheckpointExecutor(Executor):
    """Executor for a :class:`~crk.sweeps.Plan` on a tape whose time loop is checkpointed.

    ``manager``: the tape's :class:`~crk.checkpointing.manager.CheckpointManager`.
    """

    def __init__(self, manager, plan):
        super().__init__(plan)
        self.schedule = manager.schedule
        self.state = manager.state
        self._analyse(manager.tape.get_blocks(), manager.timeline, plan)

    # -- static analysis of the plan over the loop's steps ------------------------------------
    def _analyse(self, tape_blocks, timeline, plan):
        n = timeline.n_steps
        lo, hi = timeline.loop_start, timeline.loop_end
        starts = timeline.step_starts + [hi]
        self.n_steps = n
        self.loop_end = hi
        self.pre = [(k, b) for k, (i, b) in enumerate(zip(plan.indices, plan.blocks)) if i < lo]
        self.post = [(k, b) for k, (i, b) in enumerate(zip(plan.indices, plan.blocks))
                     if i >= hi]
        # Blocks to rerun in each step: everything upstream of the outputs, because the loop's
        # values were dropped whether or not they depend on the controls.
        # Controls are inputs: the blocks that made them are never rerun, their values never
        # dropped.
        self.protected = controls = set(plan.control_bvs)
        needed = set(plan.output_bvs)
        for i in range(len(tape_blocks) - 1, hi - 1, -1):
            b = tape_blocks[i]
            if not needed.isdisjoint(b._outputs) and controls.isdisjoint(b._outputs):
                needed.update(b._dependencies)
        forward = [[] for _ in range(n)]
        for k in range(n - 1, -1, -1):
            for i in range(starts[k + 1] - 1, starts[k] - 1, -1):
                b = tape_blocks[i]
                if not needed.isdisjoint(b._outputs) and controls.isdisjoint(b._outputs):
                    needed.update(b._dependencies)
                    forward[k].append(b)
            forward[k].reverse()
        self.forward = forward
        # Blocks whose adjoint runs in each step, with their dependency masks.
        adjoint = [[] for _ in range(n)]
        for k, (i, b) in enumerate(zip(plan.indices, plan.blocks)):
            if lo <= i < hi:
                adjoint[timeline.step_index(i)].append((b, plan.dep_masks.get(k)))
        self.adjoint_blocks = adjoint
        # Liveness of loop-produced values under this plan.
        produced = {}
        last_step_use = {}
        for k, blocks in enumerate(forward):
            for b in blocks:
                for d in b._dependencies:
                    if d in produced:
                        last_step_use[d] = k
                for o in b._outputs:
                    produced[o] = k
                    last_step_use.setdefault(o, k)
        keep = set(plan.output_bvs)
        for i in range(hi, len(tape_blocks)):
            keep.update(tape_blocks[i]._dependencies)
        self.produced = produced
        self.frees_after = [[] for _ in range(n)]
        self.boundary = [[] for _ in range(n)]      # values a forward run from step k reads
        for bv, p in produced.items():
            last = last_step_use[bv]
            if bv not in keep:
                self.frees_after[last].append(bv)
            for k in range(p + 1, last + 1):
                self.boundary[k].append(bv)
        self.adj_deps = [set() for _ in range(n)]   # values the adjoint of step k reads
        for k, blocks in enumerate(forward):
            for b in blocks:
                self.adj_deps[k].update(d for d in b._dependencies if d in produced)
                self.adj_deps[k].update(b._outputs)

    # -- Executor interface ---------------------------------------------------------------------
    def needs_evaluation(self):
        cycle = self.state.cycle
        return (cycle is None or not cycle.forward_done or cycle.reversed or cycle.tangents
                or (cycle.owner is not None and cycle.owner is not self))

    def evaluate(self):
        self._guarded(lambda: self._forward(tangents=False, store=True),
                      "ReducedFunction evaluation")

    def tangent(self):
        # A tangent sweep is one forward run carrying tangents; it stores nothing.
        self._guarded(lambda: self._forward(tangents=True, store=False), "tangent-linear sweep")

    def adjoint(self, hessian=False):
        self._guarded(lambda: self._reverse(hessian), "adjoint sweep")

    def second_order(self):
        def run():
            self._forward(tangents=True, store=True)
            self._reverse(hessian=True)
        self._guarded(run, "second-order sweep")

    def reset(self):
        super().reset()
        self._drop_cycle()

    # -- forward --------------------------------------------------------------------------------
    def _release(self, variables):
        self.state.release(bv for bv in variables if bv not in self.protected)

    def _release_blocks(self, steps):
        """Let the blocks of ``steps`` drop what they cache between forward and adjoint."""
        for k in steps:
            for block in self.forward[k]:
                block.release()

    def _drop_cycle(self):
        self.state.end_cycle(self.protected)
        self._release_blocks(range(self.n_steps))

    def _forward(self, tangents, store):
        self._drop_cycle()
        cycle = None
        if store:
            cycle = self.state.begin_cycle(self.schedule.create(), owner=self, tangents=tangents)
        recomputed = [b for _, b in self.pre] + [b for bs in self.forward for b in bs] + \
            [b for _, b in self.post]
        # Values dropped before or after the loop: producers before the loop run first, those
        # after it once the loop has run (they may read loop values).
        extra = self.plan.missing_inputs(recomputed)
        for i, block in extra:
            if i < self.loop_end:
                block.recompute()
        for _, block in self.pre:
            self._run_block(block, tangents)
        if store:
            while not cycle.forward_done:
                self._act(cycle.next_action(), cycle)
        else:
            for k in range(self.n_steps):
                self._run_step(k, tangents)
        for i, block in extra:
            if i >= self.loop_end:
                block.recompute()
        for _, block in self.post:
            self._run_block(block, tangents)

    def _run_block(self, block, tangents):
        block.recompute()
        if tangents:
            block.evaluate_tlm()

    def _run_step(self, k, tangents, adj_deps_to=None, keep_adj_deps=False):
        """Run step ``k`` forward. Its adjoint dependencies stay in working memory with
        ``keep_adj_deps``, or are written to the snapshot of step k in storage ``adj_deps_to``
        (RAM or DISK); otherwise the step's values are dropped after their last use."""
        state = self.state
        for block in self.forward[k]:
            block.recompute()
            if tangents:
                block.evaluate_tlm()
            state.mark_live(block._outputs)
        if adj_deps_to is not None:
            state.storage.write(
                k, adj_deps_to,
                {bv: (stored_form(bv.checkpoint, bv.keep), bv.tlm_value if tangents else None)
                 for bv in self.adj_deps[k]}, kind=ADJ_DEPS)
        if keep_adj_deps:
            state.retain(self.adj_deps[k])
        else:
            self._release_blocks((k,))
        self._release(state.releasable(self.frees_after[k]))
        state.step_run()

    # -- reverse --------------------------------------------------------------------------------
    def _reverse(self, hessian):
        cycle = self.state.cycle
        if cycle is None or not cycle.forward_done or cycle.reversed:
            raise RuntimeError("crk checkpointing: internal error: no forward run to reverse")
        if hessian and not cycle.tangents:
            raise RuntimeError("crk checkpointing: internal error: second-order reverse needs "
                               "a forward run with tangents")
        for k, block in reversed(self.post):
            self._reverse_block(block, self.plan.dep_masks.get(k), hessian)
        self._hessian = hessian
        while not cycle.reversed:
            self._act(cycle.next_action(), cycle)
        for k, block in reversed(self.pre):
            self._reverse_block(block, self.plan.dep_masks.get(k), hessian)
        self._drop_cycle()

    # -- actions: one handler per action type ---------------------------------------------------
    @functools.singledispatchmethod
    def _act(self, action, cycle):
        raise TypeError(f"crk checkpointing: unexpected schedule action {action!r}")

    @_act.register
    def _(self, action: Forward, cycle):
        if action.write_ics:
            where = storage_kind(action.storage)
            self.state.storage.write(action.n0, where, self._snapshot(action.n0, cycle.tangents))
        where = storage_kind(action.storage) if action.write_adj_deps else None
        for k in range(action.n0, min(action.n1, self.n_steps)):
            self._run_step(k, cycle.tangents, adj_deps_to=where,
                           keep_adj_deps=action.write_adj_deps and where is None)
        if cycle.schedule.max_n is None and action.n1 >= self.n_steps:
            cycle.schedule.finalize(self.n_steps)    # online: the loop ends here

    @_act.register
    def _(self, action: EndForward, cycle):
        cycle.forward_done = True

    @_act.register
    def _(self, action: Reverse, cycle):
        hessian = self._hessian
        state = self.state
        for k in range(min(action.n1, self.n_steps) - 1, action.n0 - 1, -1):
            for block, mask in reversed(self.adjoint_blocks[k]):
                self._reverse_block(block, mask, hessian)
            if action.clear_adj_deps:
                deps = self.adj_deps[k]
                state.unretain(deps)
                self._release([bv for bv in deps if bv in self.produced])
                self._release_blocks((k,))

    @_act.register
    def _(self, action: EndReverse, cycle):
        cycle.reversed = True

    @_act.register
    def _(self, action: Copy, cycle):
        self._restore(action.n, action.from_storage, action.to_storage, cycle, delete=False)

    @_act.register
    def _(self, action: Move, cycle):
        self._restore(action.n, action.from_storage, action.to_storage, cycle, delete=True)

    def _snapshot(self, n0, tangents):
        entries = {}
        for bv in self.boundary[n0]:
            if bv.checkpoint is None:
                raise RuntimeError(f"crk checkpointing: internal error: the value of {bv!r} "
                                   f"needed at step {n0} is not available")
            entries[bv] = (bv.checkpoint, bv.tlm_value if tangents else None)
        return entries

    def _restore(self, n, from_storage, to_storage, cycle, delete):
        """Copy (or move) the snapshot of step ``n`` between storages or into working memory."""
        state = self.state
        storage = state.storage
        source, target = storage_kind(from_storage), storage_kind(to_storage)
        if target is not None:          # between memory and disk
            storage.write(n, target, storage.read(n, source), kind=storage.kind(n, source))
            if delete:
                storage.delete(n, source)
            return
        if getattr(to_storage, "name", None) == "NONE":
            storage.delete(n, source)
            return
        # To working memory: drop stale values, then set the snapshot's.
        self._release(state.unretained_live())
        if storage.has(n, source):
            entries, kind = storage.read(n, source), storage.kind(n, source)
        else:
            entries, kind = {}, None
        for bv, (value, tangent) in entries.items():
            bv.checkpoint = value
            if cycle.tangents:
                bv.tlm_value = tangent
        state.mark_live(entries)
        if kind == ADJ_DEPS:            # read by the adjoint of step n, next
            state.retain(entries)
        if delete:
            storage.delete(n, source)
