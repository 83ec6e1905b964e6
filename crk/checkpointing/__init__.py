"""Time loops on the tape, differentiated with a bounded number of stored step states.

Parts (the dependency points one way: the tape makes a manager and hands itself over; nothing
here imports the tape's module):

* ``schedules.py`` — what to store and when: :class:`Revolve` (binomial, memory),
  :class:`Multistage` (binomial, memory + disk), :class:`Mixed` (forward states or adjoint
  dependencies, whichever is cheaper), :class:`Online` (loops of unknown length),
  :class:`StoreAll`. A schedule is a sequence of actions and touches no data.
* ``manager.py`` — the tape's :class:`~crk.checkpointing.manager.CheckpointManager`: records the
  loop's steps, checkpoints while the loop is first recorded (the future uses of values are
  unknown then), and makes executors.
* ``timeline.py`` — the recorded step structure; ``state.py`` — the values held now and the
  schedule cycle under way (one owner each).
* ``executor.py`` — carries out a schedule's actions for a reduced function's sweeps: runs
  steps forward, stores and restores snapshots, runs the adjoint of steps.
* ``storage.py`` — snapshots in memory or in per-rank files.

Use::

    tape = crk.Tape(checkpointing=crk.checkpointing.Revolve(n_steps=100, snapshots=10))
    with tape:
        u = u0
        for step in tape.timesteps(100):
            u = advance(u, theta)
        J = crk.sum(u * u)
    rf = crk.ReducedFunctional(J, crk.Control(theta))
    rf.derivative()            # recomputes forward steps as the schedule says
"""
from .schedules import Mixed, Multistage, Online, Revolve, Schedule, StoreAll

__all__ = ["Mixed", "Multistage", "Online", "Revolve", "Schedule", "StoreAll"]
