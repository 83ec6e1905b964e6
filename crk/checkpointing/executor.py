"""The checkpoint executor: runs a reduced function's sweeps under a schedule.

The schedule (a pure sequence of actions) says when to store a step state, when to restore one
and when to run the adjoint of a step; this executor carries the actions out and owns storage,
freeing and tangents, dispatching on the action type. Its guarantees:

* every value a block reads is either kept since the loop's start (values made before or after
  the loop, constants), restored from a snapshot, or recomputed in this forward run;
* a forward run drops each loop value right after its last use, so the values held are the
  snapshots plus the current step's working set;
* gradients, tangents and Hessian actions equal store-all ones: replays recompute every block
  upstream of the outputs (also those that do not depend on the controls, since their values
  were dropped too);
* a cycle is one forward and one reverse; anything else (new control values, a second
  derivative(), a tangent sweep) starts a new cycle with a fresh schedule.
"""
import functools
import warnings

from ..sweeps import Executor
from .timeline import Cycle, storage_kind

with warnings.catch_warnings():
    # checkpoint_schedules warns at import that numba (used only by a schedule crk does not
    # use) is missing.
    warnings.simplefilter("ignore")
    from checkpoint_schedules import Copy, Forward, Move, Reverse


class CheckpointExecutor(Executor):
    """Executor for a :class:`~crk.sweeps.Plan` on a tape whose time loop is checkpointed."""

    def __init__(self, timeline, plan):
        super().__init__(plan)
        self.timeline = timeline
        self._analyse(timeline, plan)

    # -- static analysis of the plan over the loop's steps ------------------------------------
    def _analyse(self, timeline, plan):
        tape_blocks = timeline.tape.get_blocks()
        n = timeline.n_steps
        lo, hi = timeline.loop_start, timeline.loop_end
        starts = timeline.step_starts + [hi]
        self.n_steps = n
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
        step_of_index = timeline.step_index
        for k, (i, b) in enumerate(zip(plan.indices, plan.blocks)):
            if lo <= i < hi:
                adjoint[step_of_index(i)].append((b, plan.dep_masks.get(k)))
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
        for _, b in self.post:
            keep.update(b._dependencies)
        for i in range(hi, len(tape_blocks)):
            keep.update(tape_blocks[i]._dependencies)
        self.produced = produced
        self.frees_after = [[] for _ in range(n)]
        self.boundary = [[] for _ in range(n)]
        for bv, p in produced.items():
            last = last_step_use[bv]
            if bv not in keep:
                self.frees_after[last].append(bv)
            for k in range(p + 1, last + 1):
                self.boundary[k].append(bv)
        self.adj_deps = [set() for _ in range(n)]
        for k, blocks in enumerate(forward):
            for b in blocks:
                self.adj_deps[k].update(d for d in b._dependencies if d in produced)
                self.adj_deps[k].update(b._outputs)

    # -- Executor interface ---------------------------------------------------------------------
    def needs_evaluation(self):
        cycle = self.timeline.cycle
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
        self.timeline.release([bv for bv in variables if bv not in self.protected])

    def _release_blocks(self, steps):
        """Let the blocks of ``steps`` drop what they cache between forward and adjoint."""
        for k in steps:
            for block in self.forward[k]:
                block.release()

    def _drop_cycle(self):
        tl = self.timeline
        tl.storage.clear()
        self._release(list(tl.live))
        tl.retained.clear()
        tl.cycle = None
        self._release_blocks(range(self.n_steps))

    def _forward(self, tangents, store):
        tl = self.timeline
        self._drop_cycle()
        cycle = Cycle(tl.schedule.create(), owner=self, tangents=tangents)
        tl.cycle = cycle if store else None
        recomputed = [b for _, b in self.pre] + [b for bs in self.forward for b in bs] + \
            [b for _, b in self.post]
        # Values dropped before or after the loop: producers before the loop run first, those
        # after it once the loop has run (they may read loop values).
        extra = self.plan.missing_inputs(recomputed)
        loop_end = tl.loop_end
        for i, block in extra:
            if i < loop_end:
                block.recompute()
        for _, block in self.pre:
            self._run_block(block, tangents)
        if store:
            for action in cycle.actions:
                if type(action).__name__ == "EndForward":
                    break
                self._act(action, cycle)
                if cycle.schedule.max_n is None and action.n1 >= self.n_steps:
                    cycle.schedule.finalize(self.n_steps)    # online: the loop ends here
        else:
            for k in range(self.n_steps):
                self._run_step(k, tangents, keep_adj_deps=False)
        for i, block in extra:
            if i >= loop_end:
                block.recompute()
        for _, block in self.post:
            self._run_block(block, tangents)
        if store:
            cycle.forward_done = True

    def _run_block(self, block, tangents):
        block.recompute()
        if tangents:
            block.evaluate_tlm()

    def _run_step(self, k, tangents, keep_adj_deps):
        tl = self.timeline
        for block in self.forward[k]:
            block.recompute()
            if tangents:
                block.evaluate_tlm()
            tl.live.update(block._outputs)
        if keep_adj_deps:
            tl.retained.update(self.adj_deps[k])
        else:
            self._release_blocks((k,))
        self._release([bv for bv in self.frees_after[k] if bv not in tl.retained])
        tl.forward_steps += 1

    # -- reverse --------------------------------------------------------------------------------
    def _reverse(self, hessian):
        tl = self.timeline
        cycle = tl.cycle
        if cycle is None or not cycle.forward_done or cycle.reversed:
            raise RuntimeError("crk checkpointing: internal error: no forward run to reverse")
        if hessian and not cycle.tangents:
            raise RuntimeError("crk checkpointing: internal error: second-order reverse needs "
                               "a forward run with tangents")
        for k, block in reversed(self.post):
            self._reverse_block(block, self.plan.dep_masks.get(k), hessian)
        self._hessian = hessian
        for action in cycle.actions:
            if type(action).__name__ == "EndReverse":
                break
            self._act(action, cycle)
        for k, block in reversed(self.pre):
            self._reverse_block(block, self.plan.dep_masks.get(k), hessian)
        cycle.reversed = True
        self._drop_cycle()

    # -- actions (dispatched on type) -----------------------------------------------------------
    @functools.singledispatchmethod
    def _act(self, action, cycle):
        raise TypeError(f"crk checkpointing: unexpected schedule action {action!r}")

    @_act.register(Forward)
    def _forward_action(self, action, cycle):
        tl = self.timeline
        if action.write_ics:
            where = storage_kind(action.storage)
            tl.storage.write(action.n0, where, self._snapshot(action.n0, cycle.tangents))
        if action.write_adj_deps and storage_kind(action.storage) is not None:
            raise NotImplementedError("crk checkpointing: schedules that store adjoint "
                                      "dependencies outside working memory are not supported")
        for k in range(action.n0, min(action.n1, self.n_steps)):
            self._run_step(k, cycle.tangents, keep_adj_deps=action.write_adj_deps)

    def _snapshot(self, n0, tangents):
        entries = {}
        for bv in self.boundary[n0]:
            if bv.checkpoint is None:
                raise RuntimeError(f"crk checkpointing: internal error: the value of {bv!r} "
                                   f"needed at step {n0} is not available")
            entries[bv] = (bv.checkpoint, bv.tlm_value if tangents else None)
        return entries

    @_act.register(Reverse)
    def _reverse_action(self, action, cycle):
        tl = self.timeline
        hessian = self._hessian
        for k in range(min(action.n1, self.n_steps) - 1, action.n0 - 1, -1):
            for block, mask in reversed(self.adjoint_blocks[k]):
                self._reverse_block(block, mask, hessian)
            if action.clear_adj_deps:
                deps = self.adj_deps[k]
                tl.retained.difference_update(deps)
                self._release([bv for bv in deps if bv in self.produced])
                self._release_blocks((k,))

    @_act.register(Copy)
    @_act.register(Move)
    def _restore_action(self, action, cycle):
        tl = self.timeline
        source, target = storage_kind(action.from_storage), storage_kind(action.to_storage)
        move = type(action).__name__ == "Move"
        if target is not None:          # between memory and disk
            entries = tl.storage.read(action.n, source)
            tl.storage.write(action.n, target, entries)
            if move:
                tl.storage.delete(action.n, source)
            return
        if getattr(action.to_storage, "name", None) == "NONE":
            tl.storage.delete(action.n, source)
            return
        # To working memory: drop stale values, then set the snapshot's.
        self._release([bv for bv in tl.live if bv not in tl.retained])
        entries = tl.storage.read(action.n, source) if tl.storage.has(action.n, source) else {}
        for bv, (value, tangent) in entries.items():
            bv.checkpoint = value
            if cycle.tangents:
                bv.tlm_value = tangent
            tl.live.add(bv)
        if move:
            tl.storage.delete(action.n, source)

