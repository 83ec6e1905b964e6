"""Identify the Neo-Hookean moduli (μ, λ) of a 3D block from sparse displacement sensors and
the reaction force.

The block [0, 1] × [0, ½] × [0, ½] is clamped at x = 0 and pulled at x = 1 by a prescribed
stretch (the x displacement there; y and z free), in load steps. Its stored energy is the
compressible Neo-Hookean  W(F) = μ/2 (tr C − 3) − μ ln J + λ/2 (ln J)²  (a JAX point map,
differentiated to the stress and its tangent by the solver). The observations are the three
displacement components at a few sensors on the free faces and the total reaction force on the
pulled face, at the true moduli, plus Gaussian noise (drawn from a fixed seed on every rank).

The lateral contraction under the clamp fixes the ratio λ/μ and the force fixes the scale, so
both moduli are identifiable. The misfit is

    J = Σ |u(x_s) − d_s|² / Σ |d_s|²  +  (R − R_obs)² / R_obs²,

and it is minimised by Newton methods that use Hessian actions (a tangent-linear and a
second-order adjoint solve each): scipy's trust-ncg and TAO's nls.
"""
import numpy as np

from ...adjfloat import AdjFloat
from ...control import Control
from ...numpy_api import sum as crk_sum
from ...reduced import ReducedFunctional
from ...tape import stop_annotating
from ..example import ExampleProblem, Parameter

#: the block's size
UPPER = (1.0, 0.5, 0.5)


class HyperelasticFit(ExampleProblem):
    name = "hyperelastic"
    description = ("identify Neo-Hookean (mu, lambda) of a 3D block from displacement sensors "
                   "and the reaction force")
    parameters = {
        "n": Parameter(4, "cells across the block (2n along it)"),
        "mu_true": Parameter(1.0, "the shear modulus μ of the synthetic data"),
        "lam_true": Parameter(1.5, "the Lamé modulus λ of the synthetic data"),
        "mu_start": Parameter(0.6, "the fit's starting μ"),
        "lam_start": Parameter(0.8, "the fit's starting λ"),
        "stretch": Parameter(0.1, "the x displacement of the pulled face"),
        "load_steps": Parameter(2, "load steps of each solve"),
        "noise": Parameter(0.002, "noise standard deviation, relative to the largest sensor "
                                  "value (and to the force)"),
        "seed": Parameter(5, "seed of the noise"),
    }
    quick = {"n": 2}
    scipy = {"method": "trust-ncg", "tol": None, "options": {"gtol": 1e-9, "maxiter": 40}}
    tao = {"type": "nls", "gatol": 1e-9, "grtol": 0.0, "gttol": None,
           "max_iterations": 40, "petsc_options": {}}

    def build(self):
        import solvers

        s = self.settings
        n = s["n"]
        bcs = [solvers.DirichletBC("xmin", 0.0),
               solvers.DirichletBC("xmax", s["stretch"], components=0)]
        mesh, problem = self.make_mesh_and_problem(
            (2 * n, n, n), neo_hookean_energy(), upper=UPPER, state=("grad_u",), energy=True,
            dirichlet=bcs, options_prefix="nh_")
        self.sensors = solvers.Sensors(mesh, sensor_points())

        with stop_annotating():
            u = problem.solve(s["lam_true"], s["mu_true"], load_steps=s["load_steps"])
            exact = np.asarray(solvers.point_values(mesh, u, self.sensors))
            force = float(np.asarray(solvers.boundary_flux(problem, u, "xmax", s["lam_true"],
                                                           s["mu_true"]))[0])
            self.u_true = np.asarray(u.value)
        rng = np.random.default_rng(s["seed"])
        scale = float(np.max(np.abs(exact)))
        self.observed = exact + s["noise"] * scale * rng.standard_normal(exact.shape)
        self.force_observed = force * (1.0 + s["noise"] * rng.standard_normal())

        mu, lam = AdjFloat(s["mu_start"]), AdjFloat(s["lam_start"])
        u, reaction = self.forward(lam, mu)
        d = self.observed
        J = crk_sum((u - d) ** 2) / float(np.sum(d * d)) + \
            ((reaction - self.force_observed) / self.force_observed) ** 2
        self.rf = ReducedFunctional(J, [Control(mu), Control(lam)])
        self.control_names = ["mu", "lam"]
        self.start = [s["mu_start"], s["lam_start"]]
        self.bounds = None

    def forward(self, lam, mu):
        """(sensor values (n_sensors, 3), x reaction force on the pulled face) at (λ, μ),
        recorded when they are crk values; also keeps the displacement as ``self.u``.
        Collective."""
        import solvers
        self.u = self.problem.solve(lam, mu, load_steps=self.settings["load_steps"])
        values = solvers.point_values(self.mesh, self.u, self.sensors)
        reaction = solvers.boundary_flux(self.problem, self.u, "xmax", lam, mu)[0]
        return values, reaction

    def truth(self):
        return {"mu": self.settings["mu_true"], "lam": self.settings["lam_true"]}

    def write_fields(self, directory, controls):
        """VTK of the fitted and the true displacement, a PNG of the fitted sensor values and
        force against the observed ones. Collective."""
        import os

        from solvers import output

        from ...parallel import collective_section
        r = self.recovered(controls)
        with stop_annotating():
            values, reaction = self.forward(r["lam"], r["mu"])
        vtk = output.write_vtk(os.path.join(directory, "fields.pvts"), self.mesh,
                               {"u_fit": self.u.value, "u_true": self.u_true})
        png = os.path.join(directory, "sensors.png")
        with collective_section(comm=self.comm, where="hyperelastic: writing sensors.png"):
            if self.comm.rank == 0:
                _plot_sensors(png, self.observed, np.asarray(values), self.force_observed,
                              float(reaction))
        return [vtk, png]


def sensor_points():
    """Sensors on the free faces: x ∈ {¼, ½, ¾} on the faces y = ½, z = ½ and y = 0 (at the
    middle of the other coordinate), shape (9, 3)."""
    ly, lz = UPPER[1], UPPER[2]
    points = []
    for x in (0.25, 0.5, 0.75):
        points += [(x, ly, 0.5 * lz), (x, 0.5 * ly, lz), (x, 0.0, 0.5 * lz)]
    return np.array(points)


def neo_hookean_energy():
    """W(∇u; λ, μ) = μ/2 (tr C − 3) − μ ln J + λ/2 (ln J)² per point, a JAX point map."""
    import jax.numpy as jnp

    from ...cr.jax import point_map

    @point_map(((-1, 3, 3), (), ()), (-1,))
    def energy(G, lam, mu):
        F = jnp.eye(3) + G
        C = jnp.einsum("nki,nkj->nij", F, F)
        log_j = jnp.log(jnp.linalg.det(F))
        return 0.5 * mu * (jnp.trace(C, axis1=1, axis2=2) - 3.0) - mu * log_j + \
            0.5 * lam * log_j ** 2
    return energy


def _plot_sensors(path, observed, fitted, force_observed, force_fitted):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for k, (label, marker) in enumerate(zip("xyz", "os^")):
        ax.plot(observed[:, k], fitted[:, k], marker, linestyle="none", label=f"u_{label}")
    lo, hi = float(np.min(observed)), float(np.max(observed))
    ax.plot([lo, hi], [lo, hi], "k-", linewidth=0.8)
    ax.set_xlabel("observed displacement")
    ax.set_ylabel("fitted displacement")
    ax.set_title(f"reaction force: observed {force_observed:.5g}, fitted {force_fitted:.5g}")
    ax.legend()
    fig.savefig(path, dpi=100)
