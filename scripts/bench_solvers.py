"""Benchmark of the PDE solvers against the DOLFINx reference, in one command.

Cases (each timed warm: compilation and set-up excluded, min and median of --repeat runs,
every run bracketed by barriers and taken as the maximum over ranks):

* ``plaplace``: the 2D regularised p-Laplacian (p = 3, ε = 0.1, f = 1, u = 0 on the boundary)
  on N² Q1 cells with a JAX flux; J(p) = ∫ (u(p) − u_obs)² dx with u_obs = u(2.5). Forward solve
  (from a zero guess, snes_rtol 1e-10), gradient dJ/dp, Newton iterations, final residual, the
  time shares of one forward solve (point map, the rest of assembly, linear solves and their
  preconditioner set-up), the time of one Jacobian assembly. With DOLFINx installed beside the
  venv (``/work/dolfinx-ref`` or ``--reference``) the same problem runs there on the same grid
  and rank count (``--qdeg 2``, CG + GAMG) and the ratios are printed.
* ``neohookean``: a 3D compressible Neo-Hookean block (N³ cells) stretched by 10% (two load
  steps), forward + gradient of the reaction force with respect to μ.
* ``transient``: 100 implicit Euler steps of nonlinear diffusion on N² cells under
  Revolve(100, 10); forward, gradient, and the schedule's recompute ratio; target
  gradient ≤ (2 + recompute ratio) × forward.

The driver runs each (case, grid, ranks) in a fresh ``mpirun -n <ranks>`` worker and the
reference the same way, and prints one table plus a JSON line per run. Rounds are outermost:
each round runs every rank count, so the 1 -> 2 rank speed-up is also given per round. With 1
and 2 ranks, each round also runs two independent 1-rank workers at once: against one alone,
they measure what a second core gives this machine at best (shared caches, memory bandwidth,
a second vCPU that may be a hyperthread), the ceiling the 2-rank speed-up is quoted against.

Ranks are bound to cores (``mpirun -bind-to core``, crk's and the reference's alike; the two
1-rank workers of the ceiling by ``taskset``): MPICH's mpirun binds nothing by default, and
then each process's helper threads (XLA's, JAX's dispatch) wake on whichever core is free, i.e.
on the other rank's, which waits for the interrupted rank at the next collective. On 512² the
2-rank forward solve took about a fifth longer unbound (``--bind none`` to see it).

Usage:
    python scripts/bench_solvers.py [--case plaplace neohookean transient] [--n 256 512]
        [--ranks 1 2] [--repeat 3] [--rounds 2] [--flux pow|explog]
        [--reference /work/dolfinx-ref] [--bind core|none] [--no-ceiling] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE_SCRIPT = os.path.join(os.path.dirname(ROOT), "shared", "reference", "plaplace_dolfinx.py")
if not os.path.exists(REFERENCE_SCRIPT):
    REFERENCE_SCRIPT = "/work/shared/reference/plaplace_dolfinx.py"

ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
       "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu"}


# -- worker side ---------------------------------------------------------------------------------
class Timer:
    """Wall time bracketed by barriers, maximum over ranks."""

    def __init__(self, comm):
        self.comm = comm

    def __enter__(self):
        self.comm.Barrier()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        dt = time.perf_counter() - self.t0
        self.comm.Barrier()
        from mpi4py import MPI
        self.dt = self.comm.allreduce(dt, op=MPI.MAX)


def stats(xs):
    return {"min": min(xs), "median": statistics.median(xs)}


def plaplace_flux(eps, form="pow"):
    """(ε² + |g|²)^((p−2)/2) g in JAX; ``form`` "explog" writes the power as exp((p−2)/2 log s),
    the same function, which XLA evaluates about twice as fast as a power with a traced
    exponent."""
    import jax.numpy as jnp
    from crk.cr.jax import point_map

    @point_map(((-1, 2), ()), (-1, 2))
    def flux(g, p):
        s = eps ** 2 + jnp.sum(g * g, axis=1)
        mu = s ** ((p - 2.0) / 2.0) if form == "pow" else jnp.exp((p - 2.0) / 2.0 * jnp.log(s))
        return mu[:, None] * g
    return flux


def events(PETSc, names):
    return {n: PETSc.Log.Event(n).getPerfInfo()["time"] for n in names}


def worker_plaplace(args):
    import numpy as np
    from mpi4py import MPI

    import crk
    import solvers
    from solvers.functionals import l2_misfit
    from solvers.petsc import import_petsc
    PETSc = import_petsc()
    PETSc.Log.begin()
    comm = MPI.COMM_WORLD
    T = Timer(comm)
    with T:
        mesh = solvers.BoxMesh((args.n, args.n), comm=comm)
        problem = solvers.NonlinearProblem(
            mesh, plaplace_flux(0.1, args.flux), state=("grad_u",), symmetric=True,
            dirichlet=[solvers.DirichletBC("boundary", 0.0)], options_prefix="plap_")
    t_setup = T.dt
    with crk.stop_annotating():
        with T:
            u_obs = problem.solve(2.5, f=1.0).value
        t_first = T.dt
        problem.solve(3.0, f=1.0)                                # warm-up
        t_fwd, its = [], []
        asm = problem.assembler
        for _ in range(args.repeat):
            asm.timers.clear()
            ev0 = events(PETSc, ["KSPSolve", "PCSetUp", "MatSetValuesCOO"])
            n0 = problem.stats["newton_iterations"]
            with T:
                problem.solve(3.0, f=1.0)
            t_fwd.append(T.dt)
            its.append(problem.stats["newton_iterations"] - n0)
            ev1 = events(PETSc, ["KSPSolve", "PCSetUp", "MatSetValuesCOO"])
        shares = {"point map": asm.timers["point map"], "assembly (rest)": asm.timers["kernels"],
                  "linear solves (KSPSolve)": ev1["KSPSolve"] - ev0["KSPSolve"],
                  "of which PC set-up": ev1["PCSetUp"] - ev0["PCSetUp"]}
        final_residual = problem.snes.getFunctionNorm()
        # one Jacobian assembly at the solution
        setting = problem.setting(*_plain_inputs(problem, 3.0))
        x = np.zeros(mesh.n_owned)
        problem.assemble_jacobian(setting, x, reuse=False)
        with T:
            problem.assemble_jacobian(setting, x, reuse=False)
        t_jac = T.dt
    tape = crk.Tape()
    with tape:
        p = crk.AdjFloat(3.0)
        u = problem.solve(p, f=1.0)
        J = l2_misfit(mesh, u, u_obs)
        rf = crk.ReducedFunctional(J, crk.Control(p), tape=tape)
    with T:
        g_first = float(rf.derivative())
    t_grad_first = T.dt
    t_grad = []
    for _ in range(args.repeat):
        rf(3.0 + 1e-14)                  # a new point: the gradient pays its own linearisation
        rf(3.0)
        with T:
            g = float(rf.derivative())
        t_grad.append(T.dt)
    h = 1e-4
    fd = (float(rf(3.0 + h)) - float(rf(3.0 - h))) / (2 * h)
    rf(3.0)
    fwd, grad = statistics.median(t_fwd), statistics.median(t_grad)
    out = {"case": "plaplace", "N": args.n, "ranks": comm.size, "dofs": mesh.total_nodes,
           "flux": args.flux,
           "setup_s": t_setup, "first_solve_s": t_first, "forward_s": stats(t_fwd),
           "newton_its": its[-1], "final_residual": final_residual,
           "gradient_first_s": t_grad_first, "gradient_s": stats(t_grad),
           "ratio_fwd_plus_grad_over_fwd": (fwd + grad) / fwd, "jacobian_assembly_s": t_jac,
           "J": float(J), "dJdp": g, "dJdp_first": g_first, "dJdp_fd": fd,
           "fd_rel_err": abs(fd - g) / abs(g),
           "shares_s": shares, "pc": problem.ksp.getPC().getType(),
           "ksp": problem.ksp.getType()}
    problem.destroy()
    mesh.destroy()
    return out


def _plain_inputs(problem, p):
    from solvers.solve import _check_inputs
    raw = [p, 1.0] + [bc.value for bc in problem.dirichlet] + [None, None]
    kinds, values, _ = _check_inputs(problem, raw)
    return kinds, values


def neo_hookean_energy(dim):
    import jax.numpy as jnp
    from crk.cr.jax import point_map

    @point_map(((-1, dim, dim), (), ()), (-1,))
    def energy(G, lam, mu):
        F = jnp.eye(dim) + G
        C = jnp.einsum("nki,nkj->nij", F, F)
        logJ = jnp.log(jnp.linalg.det(F))
        return 0.5 * mu * (jnp.trace(C, axis1=1, axis2=2) - dim) - mu * logJ + \
            0.5 * lam * logJ ** 2
    return energy


def worker_neohookean(args):
    from mpi4py import MPI

    import crk
    import solvers
    from solvers.reaction import boundary_flux
    comm = MPI.COMM_WORLD
    T = Timer(comm)
    n = args.n
    with T:
        mesh = solvers.BoxMesh((n, n, n), comm=comm)
        bcs = [solvers.DirichletBC("xmin", 0.0), solvers.DirichletBC("xmax", 0.1, components=0)]
        problem = solvers.NonlinearProblem(mesh, neo_hookean_energy(3), state=("grad_u",),
                                           energy=True, dirichlet=bcs, options_prefix="nh_")
    t_setup = T.dt
    with crk.stop_annotating():
        problem.solve(1.5, 1.0, load_steps=2)                  # warm-up (compilation)
    t_fwd, t_grad = [], []
    tape = crk.Tape()
    with tape:
        mu = crk.AdjFloat(1.0)
        u = problem.solve(1.5, mu, load_steps=2)
        force = boundary_flux(problem, u, "xmax", 1.5, mu)[0]
        rf = crk.ReducedFunctional(force, crk.Control(mu), tape=tape)
    rf.derivative()                                             # warm-up (compilation)
    for _ in range(args.repeat):
        n0 = problem.stats["newton_iterations"]
        with crk.stop_annotating(), T:
            problem.solve(1.5, 1.0, load_steps=2)
        t_fwd.append(T.dt)
        its = problem.stats["newton_iterations"] - n0
        rf(1.0 + 1e-14)
        rf(1.0)
        with T:
            g = float(rf.derivative())
        t_grad.append(T.dt)
    fwd, grad = statistics.median(t_fwd), statistics.median(t_grad)
    out = {"case": "neohookean", "N": n, "ranks": comm.size, "dofs": 3 * mesh.total_nodes,
           "setup_s": t_setup, "forward_s": stats(t_fwd), "gradient_s": stats(t_grad),
           "ratio_fwd_plus_grad_over_fwd": (fwd + grad) / fwd, "newton_its": its,
           "reaction": float(force), "dreaction_dmu": g, "pc": problem.ksp.getPC().getType()}
    problem.destroy()
    mesh.destroy()
    return out


def worker_transient(args):
    import numpy as np
    from mpi4py import MPI

    import crk
    import solvers
    from crk.cr.jax import point_map
    from solvers.functionals import l2_misfit
    comm = MPI.COMM_WORLD
    T = Timer(comm)
    steps, snapshots = 100, 10

    @point_map(((-1,), (-1, 2), ()), (-1, 2))
    def flux(u, g, kappa):
        return (kappa * (1.0 + u * u))[:, None] * g

    mesh = solvers.BoxMesh((args.n, args.n), comm=comm)
    problem = solvers.TransientProblem(mesh, flux, dt=1e-3, symmetric=False,
                                       dirichlet=[solvers.DirichletBC("boundary", 0.0)],
                                       options_prefix="heat_")
    u0 = mesh.field(lambda x: np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]))
    with crk.Tape(), crk.stop_annotating():                    # warm-up (compilation)
        problem.step(u0, 1.0, f=1.0)
    with crk.Tape() as warm:
        kappa = crk.AdjFloat(1.0)
        u = problem.step(u0, kappa, f=1.0)
        crk.ReducedFunctional(l2_misfit(mesh, u, 0.0), crk.Control(kappa),
                              tape=warm).derivative()
    tape = crk.Tape(checkpointing=crk.checkpointing.Revolve(n_steps=steps, snapshots=snapshots))
    with tape:
        kappa = crk.AdjFloat(1.0)
        with T:
            u = solvers.transient.run(problem, u0, steps, kappa, f=1.0, tape=tape)
            J = l2_misfit(mesh, u, 0.0)
        t_fwd = T.dt
        rf = crk.ReducedFunctional(J, crk.Control(kappa), tape=tape)
    solves_before = problem.stats["linear_solves"]
    steps_before = problem.stats["solves"]
    with T:
        g = float(rf.derivative())
    t_grad = T.dt
    # the schedule's recomputation: forward steps (Newton solves) run again in the gradient
    ratio = (problem.stats["solves"] - steps_before) / steps
    out = {"case": "transient", "N": args.n, "ranks": comm.size, "steps": steps,
           "snapshots": snapshots, "forward_s": t_fwd, "gradient_s": t_grad,
           "gradient_over_forward": t_grad / t_fwd, "recompute_ratio": ratio,
           "target": 2.0 + ratio, "adjoint_solves": problem.stats["linear_solves"] -
           solves_before, "dJdkappa": g}
    problem.destroy()
    mesh.destroy()
    return out


def worker(args):
    from mpi4py import MPI
    out = {"plaplace": worker_plaplace, "neohookean": worker_neohookean,
           "transient": worker_transient}[args.worker](args)
    if MPI.COMM_WORLD.rank == 0:
        print("RESULT " + json.dumps(out), flush=True)


# -- driver side ---------------------------------------------------------------------------------
def start(cmd, env=None):
    full_env = dict(os.environ, **ENV, **(env or {}))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env)


def finish(proc, cmd):
    try:
        out, err = proc.communicate(timeout=3600)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ") or ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(out[-3000:] + err[-3000:])
        raise RuntimeError(f"benchmark worker failed: {' '.join(cmd)}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def run(cmd, env=None):
    return finish(start(cmd, env), cmd)


def _median(x):
    return x["median"] if isinstance(x, dict) else x


def _binding(bind):
    """mpirun's process binding: ``core`` puts each rank on its own core, so XLA (whose thread
    pool spans the cores a process may run on) and PETSc get one core per rank."""
    return [] if bind == "none" else ["-bind-to", bind]


def _crk_cmd(case, n, ranks, repeat, flux, bind="core"):
    py = sys.executable
    mpirun = os.path.join(os.path.dirname(py), "mpirun")
    return [mpirun, *_binding(bind), "-n", str(ranks), py, os.path.abspath(__file__),
            "--worker", case, "--n", str(n), "--repeat", str(repeat), "--flux", flux]


CRK_ENV = {"PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def crk_run(case, n, ranks, repeat, flux, bind="core"):
    return run(_crk_cmd(case, n, ranks, repeat, flux, bind), env=CRK_ENV)


def crk_pair_at_once(case, n, repeat, flux, bind="core"):
    """Two independent 1-rank workers started together (each on its own core with
    ``bind="core"``): their forward times against one worker alone give what two ranks could
    gain on this machine at best, with crk's own mix of arithmetic and memory traffic."""
    # taskset, not mpirun's binding: hydra would bind each lone rank to core 0.
    cmds = [(["taskset", "-c", str(core)] if bind == "core" else []) +
            _crk_cmd(case, n, 1, repeat, flux, bind="none") for core in (0, 1)]
    procs = [start(cmd, env=CRK_ENV) for cmd in cmds]
    return [finish(proc, cmd) for proc, cmd in zip(procs, cmds)]


def reference_run(prefix, n, ranks, repeat, bind="core"):
    py = os.path.join(prefix, "bin", "python")
    mpirun = os.path.join(prefix, "bin", "mpirun")
    cmd = [mpirun, *_binding(bind), "-n", str(ranks), py, REFERENCE_SCRIPT, "--n", str(n),
           "--qdeg", "2", "--solver", "gamg", "--repeat", str(repeat), "--no-taylor"]
    return run(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", nargs="+", default=["plaplace", "neohookean", "transient"])
    ap.add_argument("--n", nargs="+", type=int, default=None,
                    help="cells per side (default: 256 512 for plaplace, 32 neohookean, "
                         "128 transient)")
    ap.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per worker")
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of every rank count, crk then the reference (best kept; "
                         "the speed-up also per round)")
    ap.add_argument("--flux", choices=["pow", "explog"], default="pow",
                    help="how the p-Laplacian's power is written in JAX (same function)")
    ap.add_argument("--reference", default="/work/dolfinx-ref")
    ap.add_argument("--bind", choices=["core", "none"], default="core",
                    help="mpirun process binding of crk's and the reference's ranks (default "
                         "core: one core per rank; none: MPICH's default)")
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                    help="skip the two 1-rank workers at once (the machine's ceiling for the "
                         "2-rank speed-up)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.n = args.n[0]
        return worker(args)
    defaults = {"plaplace": [256, 512], "neohookean": [32], "transient": [128]}
    have_reference = os.path.exists(os.path.join(args.reference, "bin", "python"))
    rows = []
    paired = {}                 # (case, n) -> per round, {ranks: crk's median forward time}
    for case in args.case:
        for n in args.n or defaults[case]:
            # Rounds outermost: in each round every rank count runs once, crk then the
            # reference, so a round's 1-rank and 2-rank runs are close in time (a pair for the
            # speed-up), and each (ranks, code) keeps its best round (on a shared machine the
            # load changes between runs).
            best, best_ref = {}, {}
            rounds = paired.setdefault((case, n), [])
            for _ in range(args.rounds):
                rounds.append({})
                for ranks in args.ranks:
                    r = crk_run(case, n, ranks, args.repeat, args.flux, args.bind)
                    rounds[-1][ranks] = _median(r["forward_s"])
                    if ranks == 1 and 2 in args.ranks and args.ceiling:
                        both = crk_pair_at_once(case, n, args.repeat, args.flux, args.bind)
                        rounds[-1]["at once"] = max(_median(b["forward_s"]) for b in both)
                    if ranks not in best or \
                            _median(r["forward_s"]) < _median(best[ranks]["forward_s"]):
                        best[ranks] = r
                    if case == "plaplace" and have_reference:
                        f = reference_run(args.reference, n, ranks, args.repeat, args.bind)
                        if ranks not in best_ref or \
                                f["forward_s"]["median"] < best_ref[ranks]["forward_s"]["median"]:
                            best_ref[ranks] = f
            for ranks in args.ranks:
                res, ref = best[ranks], best_ref.get(ranks)
                if ref is not None:
                    res["reference"] = {k: ref[k] for k in ("forward_s", "gradient_s",
                                                            "newton_its", "J", "dJdp")}
                    res["forward_ratio"] = _median(res["forward_s"]) / \
                        ref["forward_s"]["median"]
                    res["gradient_ratio"] = _median(res["gradient_s"]) / \
                        ref["gradient_s"]["median"]
                print(json.dumps(res), flush=True)
                rows.append(res)
    print()
    print(f"{'case':<11}{'N':>5}{'ranks':>6}{'forward s':>11}{'gradient s':>12}"
          f"{'its':>5}{'ref fwd':>9}{'ref grad':>9}{'fwd/ref':>8}{'grad/ref':>9}")
    for r in rows:
        fwd = r["forward_s"]["median"] if isinstance(r["forward_s"], dict) else r["forward_s"]
        grad = r["gradient_s"]["median"] if isinstance(r["gradient_s"], dict) \
            else r["gradient_s"]
        ref = r.get("reference")
        line = (f"{r['case']:<11}{r['N']:>5}{r['ranks']:>6}{fwd:>11.3f}{grad:>12.3f}"
                f"{r.get('newton_its', ''):>5}")
        if ref:
            line += (f"{ref['forward_s']['median']:>9.3f}{ref['gradient_s']['median']:>9.3f}"
                     f"{r['forward_ratio']:>8.2f}{r['gradient_ratio']:>9.2f}")
        print(line)
    by = {(r["case"], r["N"], r["ranks"]): r for r in rows}
    for (case, n, ranks), r in sorted(by.items()):
        if ranks == 2 and (case, n, 1) in by:
            one, two = (x if isinstance(x, dict) else {"min": x, "median": x}
                        for x in (by[case, n, 1]["forward_s"], r["forward_s"]))
            rounds = [rd for rd in paired[case, n] if 1 in rd and 2 in rd]
            speedups = [rd[1] / rd[2] for rd in rounds]
            print(f"speed-up 1 -> 2 ranks, {case} {n}: {one['median'] / two['median']:.2f} "
                  f"(best medians), {one['min'] / two['min']:.2f} (minima); per round "
                  f"{' '.join(f'{x:.2f}' for x in speedups)}, median "
                  f"{statistics.median(speedups):.2f}")
            # Two independent 1-rank runs at once, t_both, against one alone, t_1: two ranks
            # with no communication and no serial part would be 2 t_1 / t_both faster than one.
            ceilings = [2 * rd[1] / rd["at once"] for rd in rounds if "at once" in rd]
            if ceilings:
                shares = [x / c for x, c in zip(speedups, ceilings)]
                print(f"  the machine's ceiling (two 1-rank runs at once, the slower of the "
                      f"two): {' '.join(f'{c:.2f}' for c in ceilings)}, median "
                      f"{statistics.median(ceilings):.2f}; speed-up / ceiling "
                      f"{' '.join(f'{x:.2f}' for x in shares)}, median "
                      f"{statistics.median(shares):.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
