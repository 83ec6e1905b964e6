"""Recover the exponent p and the scale k of a p-Laplacian flux from noisy observations.

The state u solves  −div q(∇u) = f  on the unit square with u = 0 on the boundary, for a few
constant loadings f, with the flux  q = k (ε² + |∇u|²)^((p−2)/2) ∇u  (a JAX point map). The
observations are the nodal values of u at the true (p, k) plus Gaussian noise (relative to each
loading's largest |u|, drawn in the mesh's natural order from a fixed seed, so every rank count
sees the same data). The misfit sums  ∫ (u − d)² dx / ∫ d² dx  over the loadings.

Each loading is one Newton solve forward and one transposed solve backward; several loadings make
p and k separately identifiable (u scales with f^(1/(p−1)) / k^(1/(p−1))).
"""
import numpy as np

from ...adjfloat import AdjFloat
from ...control import Control
from ...reduced import ReducedFunctional
from ...tape import stop_annotating
from ..example import ExampleProblem, Parameter


class PLaplacianFit(ExampleProblem):
    name = "p_laplacian"
    description = "recover p and the flux scale k of a p-Laplacian from noisy observations of u"
    parameters = {
        "n": Parameter(32, "cells per axis of the unit-square mesh"),
        "p_true": Parameter(3.0, "the exponent p of the synthetic data"),
        "k_true": Parameter(0.5, "the flux scale k of the synthetic data"),
        "p_start": Parameter(2.0, "the fit's starting p"),
        "k_start": Parameter(1.0, "the fit's starting k"),
        "loads": Parameter([2.0, 20.0], "the constant sources f, one solve per loading"),
        "noise": Parameter(0.01, "noise standard deviation, relative to max |u| per loading"),
        "epsilon": Parameter(0.1, "regularisation ε of the flux"),
        "seed": Parameter(1, "seed of the noise"),
    }
    quick = {"n": 8}
    scipy = {"method": "L-BFGS-B", "tol": None, "options": {"ftol": 1e-13, "gtol": 1e-9}}
    tao = {"type": "bqnls", "gatol": 1e-9, "grtol": 1e-10, "gttol": None,
           "max_iterations": 200, "petsc_options": {}}

    def build(self):
        import solvers

        s = self.settings
        mesh, problem = self.make_mesh_and_problem(
            (s["n"], s["n"]), _flux(s["epsilon"]), symmetric=True,
            dirichlet=[solvers.DirichletBC("boundary", 0.0)], options_prefix="plap_")
        self.loads = list(s["loads"])

        with stop_annotating():
            exact = [np.asarray(problem.solve(AdjFloat(s["p_true"]),
                                              AdjFloat(s["k_true"]), f=f).value)
                     for f in self.loads]
        rng = np.random.default_rng(s["seed"])
        self.exact = exact
        self.data = [self.with_noise(u, rng) for u in exact]

        p, k = AdjFloat(s["p_start"]), AdjFloat(s["k_start"])
        J = self.loadings_misfit((p, k), self.loads, self.data)
        self.rf = ReducedFunctional(J, [Control(p), Control(k)])
        self.control_names = ["p", "k"]
        self.start = [s["p_start"], s["k_start"]]
        self.bounds = [(1.2, 6.0), (1e-3, 1e3)]

    def truth(self):
        return {"p": self.settings["p_true"], "k": self.settings["k_true"]}

    def write_fields(self, directory, controls):
        """VTK (u fitted, observed and true per loading) and a PNG of the fitted u of the
        strongest loading at ``controls`` (the fit's). Collective."""
        import os

        from solvers import output
        p, k = (AdjFloat(v) for v in self.recovered(controls).values())
        fields = {}
        for j, (f, d, e) in enumerate(zip(self.loads, self.data, self.exact)):
            with stop_annotating():
                fields[f"u_fit_{j}"] = self.problem.solve(p, k, f=f)
            fields[f"u_observed_{j}"] = d
            fields[f"u_true_{j}"] = e
        vtk = output.write_vtk(os.path.join(directory, "fields.pvts"), self.mesh, fields)
        last = len(self.loads) - 1
        png = output.plot(os.path.join(directory, "u_fit.png"), self.mesh,
                          fields[f"u_fit_{last}"],
                          title=f"fitted u, f = {self.loads[last]:g}")
        return [vtk, png]


def _flux(epsilon):
    """q(∇u; p, k) = k (ε² + |∇u|²)^((p−2)/2) ∇u as a JAX point map."""
    import jax.numpy as jnp

    from ...cr.jax import point_map

    @point_map(((-1, 2), (), ()), (-1, 2))
    def flux(g, p, k):
        mu = k * (epsilon ** 2 + jnp.sum(g * g, axis=1)) ** ((p - 2.0) / 2.0)
        return mu[:, None] * g
    return flux
