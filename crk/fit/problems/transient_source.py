"""Recover a distributed source field of a nonlinear heat equation from observations at a few
times.

The state solves  u_t − div((1 + u²) ∇u) = f(x)  on the unit square, u = 0 on the boundary and
at t = 0, by implicit Euler steps (one Newton solve each). The control is the source f, a nodal
field (one unknown per node: 101² = 10201 at the default size), distributed over the ranks.
The observations are u on the whole grid at a few times (the listed steps), at the true source
(two Gaussian bumps) plus Gaussian noise drawn in the mesh's natural order from a fixed seed,
so every rank count sees the same data. The functional is

    J = Σ_t ∫ (u(t) − d_t)² dx / Σ_t ∫ d_t² dx  +  α ∫ |∇f|² dx  +  β ∫ f² dx,

an H1 (Tikhonov) regularisation. The time loop is recorded under ``tape.timesteps`` with
Revolve checkpointing (a few snapshots: the adjoint recomputes forward steps from them instead
of storing every step). TAO bqnls fits it with f ≥ 0, the gradient norm and the initial
Hessian of its quasi-Newton matrix given by the Riesz map of the regularisation's inner
product (β M + α K, assembled as a PETSc matrix).
"""
import numpy as np

from ...checkpointing import Revolve
from ...control import Control
from ...overloaded_type import plain_value
from ...reduced import ReducedFunctional
from ...tape import Tape, stop_annotating
from ..example import ExampleProblem, Parameter


def true_source(x):
    """Two Gaussian bumps, (n, 2) coordinates -> (n,)."""
    def bump(height, cx, cy, width):
        return height * np.exp(-((x[:, 0] - cx) ** 2 + (x[:, 1] - cy) ** 2) / width ** 2)
    return bump(40.0, 0.3, 0.62, 0.14) + bump(25.0, 0.7, 0.3, 0.18)


class TransientSourceFit(ExampleProblem):
    name = "transient_source"
    description = ("recover the source field f of u_t - div((1 + u^2) grad u) = f from "
                   "observations at a few times (Revolve checkpointing, H1 regularisation)")
    parameters = {
        "n": Parameter(100, "cells per axis of the unit-square mesh"),
        "steps": Parameter(6, "implicit Euler time steps"),
        "dt": Parameter(0.03, "the time step"),
        "observed_steps": Parameter([2.0, 4.0, 6.0], "the steps after which u is observed"),
        "snapshots": Parameter(2, "Revolve's snapshots of the time loop"),
        "alpha": Parameter(1e-7, "weight of the H1-seminorm regularisation ∫ |∇f|²"),
        "beta": Parameter(1e-9, "weight of the L2 regularisation ∫ f²"),
        "noise": Parameter(0.01, "noise standard deviation, relative to max |u| per time"),
        "seed": Parameter(7, "seed of the noise"),
    }
    quick = {"n": 24, "steps": 4, "observed_steps": [2.0, 4.0], "snapshots": 2}
    scipy = {"method": "L-BFGS-B", "tol": None,
             "options": {"maxiter": 100, "ftol": 1e-12, "gtol": 1e-8}}
    tao = {"type": "bqnls", "gatol": None, "grtol": 1e-9, "gttol": 1e-3,
           "max_iterations": 60, "petsc_options": {}}

    def build(self):
        import solvers

        s = self.settings
        steps = s["steps"]
        observed = sorted({int(k) for k in s["observed_steps"]})
        if not observed or observed[0] < 1 or observed[-1] > steps:
            raise ValueError(f"transient_source: parameter 'observed_steps' must list steps in "
                             f"1 .. {steps}, got {s['observed_steps']}")
        self.observed_steps = observed
        mesh, problem = self.make_mesh_and_problem(
            (s["n"], s["n"]), nonlinear_flux(), problem_class=solvers.TransientProblem,
            dt=s["dt"], state=("u", "grad_u"), symmetric=False,
            dirichlet=[solvers.DirichletBC("boundary", 0.0)], options_prefix="heat_")
        self.f_true = true_source(mesh.coordinates())
        with stop_annotating():
            exact = self.run(self.f_true)
        rng = np.random.default_rng(s["seed"])
        self.exact = exact
        self.data = {k: self.with_noise(exact[k], rng) for k in observed}
        scale = float(sum(solvers.l2_norm_squared(mesh, d) for d in self.data.values()))

        self.tape = Tape(checkpointing=Revolve(n_steps=steps, snapshots=s["snapshots"]))
        with self.tape:
            f = mesh.field(0.0)
            u = np.zeros(mesh.n_owned)
            J = 0.0
            for k in self.tape.timesteps(steps):
                u = problem.step(u, f=f)
                if k + 1 in self.data:
                    J = J + solvers.l2_misfit(mesh, u, self.data[k + 1]) / scale
            J = J + s["alpha"] * solvers.h1_seminorm_squared(mesh, f) + \
                s["beta"] * solvers.l2_norm_squared(mesh, f)
        self.rf = ReducedFunctional(J, [Control(f)], tape=self.tape)
        riesz = solvers.RieszMap(mesh, (2.0 * s["beta"] + self.misfit_curvature(),
                                        2.0 * s["alpha"]))
        self.on_destroy(riesz.destroy)
        self.riesz_map = riesz.matrix
        self.control_names = ["f"]
        self.field_controls = (0,)
        self.start = [np.zeros(mesh.n_owned)]
        self.bounds = [(0.0, None)]

    def misfit_curvature(self):
        """hᵀ H h / ∫ h² of the misfit's Hessian H on the smoothest mode h = sin πx sin πy:
        with the regularisation's Hessian 2 (β M + α K) it makes the initial Hessian of the
        quasi-Newton fit (c + 2β) M + 2α K, the right size on smooth sources. Collective."""
        import solvers
        x = self.mesh.coordinates()
        h = np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1])
        self.rf([np.zeros(self.mesh.n_owned)])
        Hh = np.asarray(plain_value(self.rf.hessian([h])[0]))
        from ...parallel import sum_over_ranks
        hHh = float(sum_over_ranks(float(np.vdot(h, Hh)), self.comm))
        regularisation = (2.0 * self.settings["alpha"] * float(
            solvers.h1_seminorm_squared(self.mesh, h)) + 2.0 * self.settings["beta"] * float(
            solvers.l2_norm_squared(self.mesh, h)))
        return max(hHh - regularisation, 0.0) / float(solvers.l2_norm_squared(self.mesh, h))

    def run(self, f):
        """{step: u after it} for the observed steps and the last, with source ``f`` (owned
        nodal values). Not recorded: call under stop_annotating. Collective."""
        u = np.zeros(self.mesh.n_owned)
        out = {}
        for k in range(1, self.settings["steps"] + 1):
            u = np.asarray(plain_value(self.problem.step(u, f=f)))
            if k in self.observed_steps or k == self.settings["steps"]:
                out[k] = u
        return out

    def truth(self):
        return {"f": self.f_true}

    def write_fields(self, directory, controls):
        """VTK of the recovered and true source and of u (fitted, observed) at the observed
        steps; PNGs of the recovered and the true source. Collective."""
        import os

        from solvers import output
        f = np.asarray(self.recovered(controls)["f"])
        with stop_annotating():
            fitted = self.run(f)
        fields = {"f_fit": f, "f_true": self.f_true}
        for k in self.observed_steps:
            fields[f"u_fit_step{k}"] = fitted[k]
            fields[f"u_observed_step{k}"] = self.data[k]
        vtk = output.write_vtk(os.path.join(directory, "fields.pvts"), self.mesh, fields)
        pngs = [output.plot(os.path.join(directory, "f_fit.png"), self.mesh, f,
                            title="recovered source f"),
                output.plot(os.path.join(directory, "f_true.png"), self.mesh, self.f_true,
                            title="true source f")]
        return [vtk] + pngs


def nonlinear_flux():
    """q(u, ∇u) = (1 + u²) ∇u as a JAX point map."""
    from ...cr.jax import point_map

    @point_map(((-1,), (-1, 2)), (-1, 2))
    def flux(u, g):
        return (1.0 + u * u)[:, None] * g
    return flux
