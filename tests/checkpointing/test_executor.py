"""Checkpointed time loops: every schedule gives the store-all derivatives (gradient, tangent,
Hessian action), also after re-evaluation and repeated calls, runs exactly the forward steps its
schedule prescribes (the optimal number for binomial schedules) and holds no more snapshots than
allowed; distributed states under MPI."""
from math import comb

import numpy as np
import pytest

import crk
from crk.checkpointing import Mixed, Multistage, Online, Revolve, StoreAll


def optimal_forward_steps(n, s):
    """Griewank–Walther: first run + recomputation + the re-run before each reverse step."""
    r = 0
    while comb(s + r, s) < n:
        r += 1
    return r * n - comb(s + r, s + 1) + n if n > 1 else 1


def record(schedule, n, comm=None, split=None, size=6, pattern="plain", tape=None):
    """A nonlinear loop with a replicated parameter and an initial state as controls.

    Patterns: "plain"; "nasty" adds a state that skips steps, steps where a value passes
    unchanged, a per-step forcing that depends on no control, a constant created inside the
    loop and a functional accumulated inside the loop.
    """
    tape = crk.Tape(checkpointing=schedule) if tape is None else tape
    with tape:
        x = np.linspace(0.1, 1.0, size)
        if comm is not None:
            x = x[split(size)]
        u0 = crk.array(x, comm=comm, distributed=comm is not None)
        theta = crk.AdjFloat(0.7)
        u, J, kept = u0, crk.AdjFloat(0.0), None
        for k in tape.timesteps(n):
            if pattern == "nasty" and k % 3 == 1:
                pass                                     # u unchanged through this step
            else:
                forcing = np.cos(crk.array(x * 0 + 0.1 * k, comm=comm,
                                           distributed=comm is not None))  # no control
                u = u + 0.1 * (theta * np.sin(u) - u * u) + 0.01 * forcing
            if pattern == "nasty":
                if k == 1:
                    kept = u * 2.0                       # used again only at the last step
                if k == n - 1 and kept is not None:
                    u = u + 0.05 * kept
                const = crk.array(np.full(u.shape, 0.5 + k), comm=comm,
                                  distributed=comm is not None)  # a leaf made inside the loop
                J = J + 0.01 * crk.sum(u * const)
        J = J + crk.sum(u * u) * theta
        rf = crk.ReducedFunctional(J, [crk.Control(theta), crk.Control(u0)])
    return tape, rf, (theta, u0)


def plain(values):
    return [np.asarray(v._ad_create_checkpoint()) for v in values]


SCHEDULES = {
    "revolve": lambda n: Revolve(n, 3),
    "revolve-1": lambda n: Revolve(n, 1),
    "multistage-disk": lambda n: Multistage(n, 1, 2),
    "mixed-ram": lambda n: Mixed(n, 3),
    "mixed-disk": lambda n: Mixed(n, 2, storage="disk"),
    "online-ram": lambda n: Online(period=4, snapshots=2),
    "online-disk": lambda n: Online(period=3, snapshots=1, storage="disk"),
    "store-all": lambda n: StoreAll(),
}


@pytest.mark.mpi
@pytest.mark.parametrize("pattern", ["plain", "nasty"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_store_all(name, pattern, comm, split, assert_replicated):
    n = 11
    _, ref, _ = record(None, n, comm, split, pattern=pattern)
    tape, rf, _ = record(SCHEDULES[name](n), n, comm, split, pattern=pattern)
    h = [0.3, np.linspace(-1, 1, 6)[split(6)]]
    m_new = [0.4, np.linspace(0.2, 0.9, 6)[split(6)]]

    def check(a, b):
        for x, y in zip(plain(a), plain(b)):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)

    check(rf.derivative(), ref.derivative())            # straight after recording
    check(rf.derivative(), ref.derivative())            # twice in a row
    assert rf.tlm(h) == pytest.approx(ref.tlm(h), rel=1e-12)
    check(rf.hessian(h), ref.hessian(h))
    assert float(rf(m_new)) == pytest.approx(float(ref(m_new)), rel=1e-12)
    check(rf.hessian(h), ref.hessian(h))                # Hessian before derivative
    check(rf.derivative(), ref.derivative())            # after re-evaluation
    grads = rf.derivative()
    assert_replicated(float(grads[0]))
    rates = crk.taylor_to_dict(rf, m_new, h)
    assert min(rates["R1"]["Rate"]) > 1.9 and min(rates["R2"]["Rate"]) > 2.9


@pytest.mark.parametrize("n,s", [(10, 3), (20, 3), (50, 5), (100, 10)])
def test_revolve_forward_steps_are_optimal(n, s):
    tape, rf, _ = record(Revolve(n, s), n, size=2)
    rf.derivative()
    assert tape.checkpoint_manager.forward_steps == optimal_forward_steps(n, s)
    before = tape.checkpoint_manager.forward_steps
    rf([0.5, np.ones(2)])
    rf.derivative()                                     # a new cycle costs the same
    assert tape.checkpoint_manager.forward_steps - before == optimal_forward_steps(n, s)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
@pytest.mark.parametrize("s", [1, 2, 3, 5])
def test_schedule_grid(n, s):
    """Over a grid of (steps, snapshots): store-all derivatives, optimal forward count, and
    never more snapshots held than allowed."""
    _, ref, _ = record(None, n, size=3, pattern="nasty")
    tape, rf, _ = record(Revolve(n, s), n, size=3, pattern="nasty")
    for x, y in zip(plain(rf.derivative()), plain(ref.derivative())):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)
    assert tape.checkpoint_manager.forward_steps == optimal_forward_steps(n, min(s, max(n - 1, 1)))
    assert tape.checkpoint_manager.storage.max_held <= s


def schedule_counts(schedule):
    """Simulate a schedule's actions without any data: (forward steps, most snapshots held)."""
    from checkpoint_schedules import Copy, EndReverse, Forward, Move
    steps, held, most = 0, set(), 0
    for action in schedule.create():
        if isinstance(action, Forward):
            steps += action.n1 - action.n0
            stored = action.write_ics or action.write_adj_deps
            if stored and action.storage.name in ("RAM", "DISK"):
                held.add(action.n0)
        elif isinstance(action, Move) and action.from_storage.name in ("RAM", "DISK"):
            held.discard(action.n)
        elif isinstance(action, Copy):
            pass
        elif isinstance(action, EndReverse):
            break
        most = max(most, len(held))
    return steps, most


@pytest.mark.parametrize("n,s", [(1, 1), (2, 1), (3, 2), (5, 1), (5, 2), (8, 3), (13, 2),
                                 (13, 5), (21, 4)])
@pytest.mark.parametrize("make", [lambda n, s: Mixed(n, s), lambda n, s: Revolve(n, s),
                                  lambda n, s: Mixed(n, s, storage="disk")],
                         ids=["mixed-ram", "revolve", "mixed-disk"])
def test_executor_runs_what_the_schedule_says(make, n, s):
    """Simulator-style grid: over (steps, snapshots) the executor runs exactly the forward
    steps the schedule's actions prescribe, holds at most ``snapshots`` snapshots, and gives the
    store-all gradient, for the first cycle and a cycle after re-evaluation."""
    schedule = make(n, s)
    steps, most = schedule_counts(schedule)
    assert most <= s
    _, ref, _ = record(None, n, size=3, pattern="nasty")
    tape, rf, _ = record(schedule, n, size=3, pattern="nasty")
    manager = tape.checkpoint_manager
    for x, y in zip(plain(rf.derivative()), plain(ref.derivative())):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)
    assert manager.forward_steps == steps
    m = [0.5, np.linspace(0.2, 0.4, 3)]
    for x, y in zip(plain((rf(m), rf.derivative())[1]), plain((ref(m), ref.derivative())[1])):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)
    assert manager.forward_steps == 2 * steps
    assert manager.storage.max_held <= s


@pytest.mark.parametrize("make,expected", [(lambda: Revolve(100, 10), 322),
                                           (lambda: Mixed(100, 10), 237)],
                         ids=["revolve", "mixed"])
def test_forward_steps_for_100_steps_and_10_snapshots(make, expected):
    """The executor's count for (100 steps, 10 snapshots), as measured for checkpoint_schedules
    1.0.4 (Mixed stores adjoint dependencies where that saves recomputation)."""
    tape, rf, _ = record(make(), 100, size=2)
    rf.derivative()
    assert tape.checkpoint_manager.forward_steps == expected


def test_mixed_schedule_checks_its_arguments():
    with pytest.raises(ValueError, match="Mixed: argument 'snapshots' must be an integer >= 1"):
        Mixed(10, 0)
    with pytest.raises(ValueError, match="Mixed: argument 'storage' must be 'ram' or 'disk', "
                                         "got 'tape'"):
        Mixed(10, 2, storage="tape")
    with pytest.raises(ValueError, match=r"Mixed\(10, snapshots=2, storage='ram'\) is made for 10 "
                                         r"steps but the loop has 12"):
        crk.Tape(checkpointing=Mixed(10, 2)).timesteps(12)


def test_online_loop_of_unknown_length():
    def run(schedule):
        tape = crk.Tape(checkpointing=schedule)
        with tape:
            theta = crk.AdjFloat(0.9)
            u = crk.array([1.0, 2.0])
            for k in tape.timesteps():
                u = u * (1.0 - 0.05 * theta) + 0.01
                if float(crk.sum(u)) < 1.5:             # stop when the state has decayed
                    break
            rf = crk.ReducedFunctional(crk.sum(u * u), crk.Control(theta))
        return tape, rf
    tape, rf = run(Online(period=5, snapshots=2))
    _, ref = run(None)
    assert tape.checkpoint_manager.n_steps == ref.tape.checkpoint_manager.n_steps > 10
    assert float(rf.derivative()) == pytest.approx(float(ref.derivative()), rel=1e-12)
    assert float(rf.hessian(1.0)) == pytest.approx(float(ref.hessian(1.0)), rel=1e-12)


def _fused_step():
    """One block per step: u ↦ u + dt (θ sin u − u³), registered as a crk Primitive."""
    dt = 0.01
    step = crk.Primitive("step", lambda u, th: u + dt * (th * np.sin(u) - u ** 3))
    crk.defvjp(step, lambda g, ans, u, th: g * (1.0 + dt * (th * np.cos(u) - 3.0 * u ** 2)),
               lambda g, ans, u, th: dt * float(np.vdot(g, np.sin(u))))
    crk.defjvp(step, lambda d, ans, u, th: d * (1.0 + dt * (th * np.cos(u) - 3.0 * u ** 2)),
               lambda d, ans, u, th: dt * d * np.sin(u))
    crk.defhvp(step, lambda g, da, ans, dans, u, th: g * dt * (
        (-th * np.sin(u) - 6.0 * u) * (0.0 if da[0] is None else da[0])
        + np.cos(u) * (0.0 if da[1] is None else da[1])),
        lambda g, da, ans, dans, u, th: dt * float(np.vdot(g, np.cos(u) * da[0]))
        if da[0] is not None else None)
    return step


@pytest.mark.parametrize("kind", ["revolve", "mixed"])
def test_peak_state_memory_is_bounded(kind):
    """n = 100 steps of a 2·10^5-element state with s = 5 snapshots: Revolve holds at most s + 2
    forward states, Mixed at most 2 s + 2 (a unit of adjoint dependencies holds a step's input
    and output), store-all n. Measured with tracemalloc from before the loop; the user's input
    array (the control u0) is counted apart, and the sweeps may add only their own working
    memory: one step's temporaries, and during the adjoint the two adjoint states."""
    import tracemalloc
    n, s, size = 100, 5, 2 * 10 ** 5
    state = size * 8
    step = _fused_step()

    def measure(schedule):
        tape = crk.Tape(checkpointing=schedule)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        with tape:
            theta = crk.AdjFloat(0.5)
            u0 = crk.array(np.linspace(0.0, 1.0, size))     # the user's input: 1 state
            u = u0
            for _ in tape.timesteps(n):
                u = step(u, theta)
            rf = crk.ReducedFunctional(crk.sum(u), [crk.Control(theta), crk.Control(u0)])
        del u
        held = (tracemalloc.get_traced_memory()[0] - base) / state - 1
        tracemalloc.reset_peak()
        rf([0.5, np.linspace(0.0, 1.0, size)])
        forward_peak = (tracemalloc.get_traced_memory()[1] - base) / state - 2  # u0 + new m
        tracemalloc.reset_peak()
        grad = float(rf.derivative()[0])
        adjoint_peak = (tracemalloc.get_traced_memory()[1] - base) / state - 2
        tracemalloc.stop()
        print(f"{schedule}: held {held:.2f}, forward peak {forward_peak:.2f}, "
              f"adjoint peak {adjoint_peak:.2f} states")
        return grad, held, forward_peak, adjoint_peak

    g_ref, held_all, _, _ = measure(None)
    schedule, limit = (Revolve(n, s), s + 2) if kind == "revolve" else (Mixed(n, s), 2 * s + 2)
    g, held, forward_peak, adjoint_peak = measure(schedule)
    assert g == pytest.approx(g_ref, rel=1e-12)
    assert held_all > n - 0.5                 # store-all keeps every state
    slack = 0.25                              # the tape's own bookkeeping for 100 steps
    assert held <= limit + slack
    assert forward_peak <= limit + slack + 1                  # + one step's temporaries
    assert adjoint_peak <= limit + slack + 1 + 2              # + λ_k and λ_k+1


def test_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match=r"made for 10 steps but the loop has 12"):
        crk.Tape(checkpointing=Revolve(10, 3)).timesteps(12)
    with pytest.raises(ValueError, match=r"pass the number of steps.*Online"):
        crk.Tape(checkpointing=Revolve(10, 3)).timesteps()
    with pytest.raises(ValueError, match="argument 'snapshots' must be an integer >= 1"):
        Revolve(10, 0)
    tape = crk.Tape()
    with tape:
        u = crk.array([1.0])
        for _ in tape.timesteps(2):
            u = u * 2.0
            with pytest.raises(RuntimeError, match="already started recording"):
                tape.enable_checkpointing(Revolve(2, 1))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot write snapshots to directory"):
        crk.Tape(checkpointing=Multistage(4, 1, 1), directory=str(blocker / "sub"))
    tape = crk.Tape(checkpointing=Revolve(10, 3))
    with tape:
        theta = crk.AdjFloat(1.0)
        u = theta * 1.0
        for k in tape.timesteps(10):
            u = u * theta
            if k == 6:
                break
        with pytest.raises(RuntimeError, match="ended after 7 of the 10 steps"):
            crk.ReducedFunctional(u, crk.Control(theta))
    with pytest.raises(TypeError, match="expected a crk.checkpointing schedule"):
        crk.Tape(checkpointing="revolve")


def test_disk_snapshots_are_removed(tmp_path):
    import os
    import subprocess
    import sys
    tape, rf, _ = record(None, 6, tape=crk.Tape(checkpointing=Multistage(6, 0, 3),
                                                directory=str(tmp_path)))
    rf.derivative()
    rf([0.5, np.ones(6)])
    assert len(os.listdir(tmp_path)) == 1
    tape.clear_tape()
    assert os.listdir(tmp_path) == []
    code = (f"import numpy as np, crk\n"
            f"from crk.checkpointing import Multistage\n"
            f"tape = crk.Tape(checkpointing=Multistage(5, 0, 2), directory={str(tmp_path)!r})\n"
            f"with tape:\n"
            f"    u = crk.array([1.0])\n"
            f"    for k in tape.timesteps(5):\n"
            f"        u = u * 2.0\n"
            f"raise SystemExit('boom' if __import__('os').listdir({str(tmp_path)!r}) else 'no')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "boom" in run.stderr                        # snapshots existed during the run
    assert os.listdir(tmp_path) == []                  # and are gone after the process


def test_loop_must_record_on_its_tape():
    tape = crk.Tape(checkpointing=Revolve(3, 1))
    with pytest.raises(RuntimeError, match="not the working tape"):
        for _ in tape.timesteps(3):
            pass


def test_store_all_tapes_may_mark_several_loops():
    with crk.Tape() as tape:
        a = crk.AdjFloat(1.0)
        u = a * 1.0
        for _ in tape.timesteps(3):
            u = u * a
        for _ in tape.timesteps(2):
            u = u + a
        rf = crk.ReducedFunctional(u, crk.Control(a))
    assert float(rf.derivative()) == pytest.approx(4.0 + 2.0)


@pytest.mark.parametrize("schedule", [Revolve(5, 1), Multistage(5, 1, 1), None])
def test_controls_made_inside_the_loop_and_outputs_from_its_middle(schedule):
    """A control produced inside a checkpointed loop is an input (never recomputed nor
    dropped); an output taken from the middle of the loop keeps its shape for every call."""
    def build(sch):
        tape = crk.Tape(checkpointing=sch)
        with tape:
            x = crk.array([0.3, 0.5, 0.7])
            u, mid, f = x * 1.0, None, None
            for k in tape.timesteps(5):
                if k == 1:
                    f = crk.array([0.1, 0.2, 0.3]) * 2.0     # a forcing made in the loop
                if f is not None:
                    u = u + 0.1 * f * u
                u = np.sin(u * x) + 0.2 * u
                if k == 2:
                    mid = u
            rf = crk.ReducedFunction([mid, crk.sum(u * u)], [crk.Control(x), crk.Control(f)])
        return rf

    ref, rf = build(None), build(schedule)
    w, h = [np.array([1.0, -2.0, 0.5]), 0.7], [np.array([0.2, 0.1, -0.3]), np.ones(3)]
    for method, args in (("adj_jac_action", (w,)), ("jac_action", (h,)),
                         ("hess_action", (h, w)), ("__call__", ([x * 0.9 for x in
                                                                  (np.array([0.3, 0.5, 0.7]),
                                                                   np.array([0.2, 0.4, 0.6]))],)),
                         ("adj_jac_action", (w,))):
        a = getattr(rf, method)(*args)
        b = getattr(ref, method)(*args)
        for p, q in zip(a, b):
            np.testing.assert_allclose(np.asarray(p._ad_create_checkpoint()),
                                       np.asarray(q._ad_create_checkpoint()), rtol=1e-13)
    assert crk.check_duality(rf, h) < 1e-12


def test_a_value_dropped_after_the_loop_is_recomputed_after_the_loop():
    tape = crk.Tape(checkpointing=Revolve(4, 1))
    with tape:
        x = crk.array([0.2, 0.4])
        u = x
        for _ in tape.timesteps(4):
            u = np.sin(u) + x
        v = u + 1.0                       # no rule reads v: dropped once its object is gone
        J = crk.sum(np.exp(v * 0.5))
        del v
        rf = crk.ReducedFunctional(J, crk.Control(x))
    first = rf.derivative().value
    np.testing.assert_array_equal(rf.derivative().value, first)


def test_empty_online_loop_and_clear_keeps_the_schedule():
    tape = crk.Tape(checkpointing=Online(period=2, snapshots=1))
    with tape:
        x = crk.AdjFloat(2.0)
        u = x * 1.0
        for _ in tape.timesteps(0):
            u = u * x
        rf = crk.ReducedFunctional(u * u, crk.Control(x))
    assert float(rf.derivative()) == pytest.approx(4.0)
    tape = crk.Tape(checkpointing=Revolve(5, 1))
    tape.clear_tape()
    assert tape.checkpoint_manager.checkpointing and tape.checkpoint_manager.schedule.n_steps == 5


def test_checkpointed_blocks_release_their_linearisations(sine_function):
    from crk.function_block import record_call
    holding = []

    class Cached(sine_function):
        name = "cached"

        def __init__(self):
            self.cache = None

        def evaluate(self, args):
            self.cache = np.cos(args[0])          # a linearisation kept for the adjoint
            holding.append(self)
            return super().evaluate(args)

        def release(self):
            self.cache = None

    tape = crk.Tape(checkpointing=Revolve(20, 2))
    with tape:
        x = crk.array([0.1, 0.2])
        u = x
        for _ in tape.timesteps(20):
            (u,) = record_call(Cached(), (u,))
        rf = crk.ReducedFunctional(crk.sum(u), crk.Control(x))
    assert sum(f.cache is not None for f in set(holding)) <= 1     # only the retained step
    rf.derivative()
    assert sum(f.cache is not None for f in set(holding)) == 0
