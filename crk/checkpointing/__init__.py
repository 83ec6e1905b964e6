"""Time loops on the tape, differentiated with a bounded number of stored step states.

Parts:

* ``schedules.py`` — what to store and when: :class:`Revolve` (binomial, memory),
  :class:`Multistage` (binomial, memory + disk), :class:`Online` (loops of unknown length),
  :class:`StoreAll`. A schedule is a sequence of actions and touches no data.
* ``timeline.py`` — the steps of the loop on the tape, and checkpointing while the loop is
  first recorded (the future uses of values are unknown then).
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
from .schedules import Multistage, Online, Revolve, Schedule, StoreAll

__all__ = ["Multistage", "Online", "Revolve", "Schedule", "StoreAll"]
