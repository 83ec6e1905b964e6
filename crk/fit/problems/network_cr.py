"""Learn a neural-network flux  q = μ(|∇u|²; w) ∇u  from observations of u under several loadings.

The network (a small JAX MLP, 1 → width → width → 1, tanh, a softplus output so μ > 0) sees only
the invariant s = |∇u|², so the learned law is frame-indifferent by construction. Its weights w
are one replicated control. The synthetic truth is  μ(s) = μ₀ + μ₁ exp(−s/s₀)  (a shear-thinning
law, monotone flux). The state u solves −div q = f on the unit square with u = 0 on the boundary
for each constant loading f; the misfit sums ∫ (u − d)² dx / ∫ d² dx over the loadings. The
network starts at μ ≡ 1 (the output layer's weights zero, its bias softplus⁻¹(1)).

Compared with the truth: μ at a few invariants inside the range the data explore, and the
relative L2 error of μ over that range.
"""
import numpy as np

from ...array import array
from ...control import Control
from ...parallel import max_over_ranks
from ...reduced import ReducedFunctional
from ...tape import stop_annotating
from ..example import ExampleProblem, Parameter

MU0, MU1, S0 = 0.4, 0.6, 2.0


def true_mu(s):
    return MU0 + MU1 * np.exp(-np.asarray(s) / S0)


class NetworkCRFit(ExampleProblem):
    name = "network_cr"
    description = "learn a JAX MLP flux q = mu(|grad u|^2; w) grad u from several loadings"
    parameters = {
        "n": Parameter(16, "cells per axis of the unit-square mesh"),
        "width": Parameter(8, "neurons per hidden layer"),
        "loads": Parameter([1.0, 3.0, 6.0], "the constant sources f, one solve per loading"),
        "noise": Parameter(0.002, "noise standard deviation, relative to max |u| per loading"),
        "seed": Parameter(3, "seed of the noise and of the initial weights"),
    }
    quick = {"n": 8, "width": 4, "loads": [1.0, 6.0]}
    scipy = {"method": "L-BFGS-B", "tol": None,
             "options": {"maxiter": 200, "ftol": 1e-12, "gtol": 1e-7}}
    tao = {"type": "bqnls", "gatol": 1e-8, "grtol": 1e-9, "gttol": None,
           "max_iterations": 200, "petsc_options": {}}

    def build(self):
        import solvers

        s = self.settings
        self.network = self.make_network(s["width"])
        self.flux = self.make_flux(self.network)
        self.true_flux = _true_flux()
        bcs = [solvers.DirichletBC("boundary", 0.0)]
        mesh, _ = self.make_mesh_and_problem((s["n"], s["n"]), self.flux, symmetric=False,
                                             dirichlet=bcs, options_prefix="net_")
        truth_problem = solvers.NonlinearProblem(mesh, self.true_flux, symmetric=False,
                                                 dirichlet=bcs, options_prefix="net_true_")
        self.loads = list(s["loads"])
        rng = np.random.default_rng(s["seed"])
        self.data, s_max = [], 0.0
        with stop_annotating():
            for f in self.loads:
                u = np.asarray(truth_problem.solve(f=f).value)
                self.data.append(self.with_noise(u, rng))
                g = np.asarray(solvers.gradient_at_points(u, mesh))
                s_max = max(s_max, float(np.max(np.sum(g * g, axis=1), initial=0.0)))
        truth_problem.destroy()
        self.s_max = max_over_ranks(s_max, self.comm)

        w0 = self.network.initial(rng)
        w = array(w0)
        J = self.loadings_misfit((w,), self.loads, self.data)
        self.rf = ReducedFunctional(J, [Control(w)])
        self.control_names = ["w"]
        self.start = [w0]
        self.bounds = None

    def make_network(self, width):
        """The network μ(s; w) (a JAX MLP here; the TensorFlow variant overrides it)."""
        return _network(width)

    def make_flux(self, network):
        """The flux point map q(∇u; w) = μ(|∇u|²; w) ∇u of ``network``."""
        return _flux(network)

    def truth(self):
        return {}

    def invariants(self, count=200):
        """Invariants s over the range the data explore."""
        return np.linspace(0.0, self.s_max, count)

    def compare(self, controls):
        w = np.asarray(self.recovered(controls)["w"])
        s = self.invariants()
        learned, true = self.network.mu(s, w), true_mu(s)
        out = {}
        for frac in (0.0, 0.25, 1.0):
            x = frac * self.s_max
            v = float(self.network.mu(np.array([x]), w)[0])
            t = float(true_mu(x))
            out[f"mu({x:.3g})"] = {"value": v, "true": t, "relative_error": abs(v - t) / t}
        out["mu"] = {"relative_error": float(np.linalg.norm(learned - true)
                                             / np.linalg.norm(true))}
        return out

    def write_fields(self, directory, controls):
        """VTK of u fitted and observed per loading, a PNG of the learned and the true μ over
        the explored invariants. Collective."""
        import os

        from solvers import output
        w = array(np.asarray(self.recovered(controls)["w"]))
        fields = {}
        for j, (f, d) in enumerate(zip(self.loads, self.data)):
            with stop_annotating():
                fields[f"u_fit_{j}"] = self.problem.solve(w, f=f, initial_guess=d)
            fields[f"u_observed_{j}"] = d
        vtk = output.write_vtk(os.path.join(directory, "fields.pvts"), self.mesh, fields)
        png = os.path.join(directory, "mu.png")
        from ...parallel import collective_section
        with collective_section(comm=self.comm, where="network_cr: writing mu.png"):
            if self.comm.rank == 0:
                _plot_mu(png, self.invariants(), self.network.mu(self.invariants(), w.value),
                         true_mu(self.invariants()))
        return [vtk, png]


class _network:
    """μ(s; w): an MLP 1 → width → width → 1 of the invariant, softplus output. ``w`` is one flat
    vector; :meth:`apply` is written in jax.numpy, :meth:`mu` evaluates it on numpy values."""

    def __init__(self, width):
        self.shapes = [(1, width), (width,), (width, width), (width,), (width, 1), (1,)]
        self.size = int(sum(np.prod(sh) for sh in self.shapes))

    def unflatten(self, w, reshape):
        """The layers' weights (kernel, bias per layer, shapes :attr:`shapes`) of the flat
        vector ``w``, each made by ``reshape(piece, shape)`` (the backend's reshape)."""
        parts, k = [], 0
        for sh in self.shapes:
            n = int(np.prod(sh))
            parts.append(reshape(w[k:k + n], sh))
            k += n
        return parts

    def apply(self, s, w):
        import jax.numpy as jnp
        import jax
        W1, b1, W2, b2, W3, b3 = self.unflatten(w, jnp.reshape)
        z = jnp.tanh(s[:, None] @ W1 + b1)
        z = jnp.tanh(z @ W2 + b2)
        return jax.nn.softplus(z @ W3 + b3)[:, 0] + 1e-3

    def mu(self, s, w):
        import jax
        with jax.enable_x64(True):
            return np.asarray(self.apply(jax.numpy.asarray(s, dtype=float),
                                         jax.numpy.asarray(w, dtype=float)))

    def initial(self, rng):
        """Weights of μ ≡ 1: random hidden layers, zero output weights, bias softplus⁻¹(1)."""
        parts = []
        for j, sh in enumerate(self.shapes):
            if j < 4:
                fan_in = sh[0] if len(sh) == 2 else 1
                v = rng.standard_normal(sh) / np.sqrt(fan_in) if len(sh) == 2 else np.zeros(sh)
            elif j == 4:
                v = np.zeros(sh)
            else:
                v = np.full(sh, np.log(np.expm1(1.0 - 1e-3)))
            parts.append(np.ravel(v))
        return np.concatenate(parts)


def _flux(network):
    """q(∇u; w) = μ(|∇u|²; w) ∇u as a JAX point map."""
    import jax.numpy as jnp

    from ...cr.jax import point_map

    @point_map(((-1, 2), (network.size,)), (-1, 2))
    def flux(g, w):
        return network.apply(jnp.sum(g * g, axis=1), w)[:, None] * g
    return flux


def _true_flux():
    import jax.numpy as jnp

    from ...cr.jax import point_map

    @point_map(((-1, 2),), (-1, 2))
    def flux(g):
        return (MU0 + MU1 * jnp.exp(-jnp.sum(g * g, axis=1) / S0))[:, None] * g
    return flux


def _plot_mu(path, s, learned, true):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(s, true, "k-", label="true μ")
    ax.plot(s, learned, "r--", label="learned μ")
    ax.set_xlabel("|∇u|²")
    ax.set_ylabel("μ")
    ax.legend()
    fig.savefig(path, dpi=100)
