"""What a fit problem provides to the driver and to the example scripts.

A problem is a class with a ``name``, a one-line ``description``, its settings
(:attr:`ExampleProblem.parameters`, name -> :class:`Parameter`) and ``quick`` (settings for a
tiny run, used by ``--quick``). Made with a dict of settings on a communicator, it builds the
simulation and the reduced functional; the driver then fits it and asks it for its report and
its output files.
"""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One setting of a problem: its default (whose type is the setting's type: bool, int,
    float, str, or a list of floats) and a help text."""

    default: object
    help: str

    @property
    def kind(self):
        if isinstance(self.default, bool):
            return bool
        if isinstance(self.default, (list, tuple)):
            return list
        return type(self.default)

    def convert(self, value, where):
        """``value`` as this setting's type, or a ValueError naming ``where``."""
        kind = self.kind
        if kind is list:
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split() if v]
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"{where}: expected a non-empty list of numbers, got "
                                 f"{value!r}")
            return [_number(v, float, where) for v in value]
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no",
                                                            "0"):
                return value.lower() in ("true", "yes", "1")
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        if kind in (int, float):
            return _number(value, kind, where)
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r} "
                             f"({type(value).__name__})")
        return value


def _number(value, kind, where):
    """``value`` (a number, or its text from a flag) as an int or a finite float."""
    number = None
    if isinstance(value, str):
        try:
            number = kind(value)
        except ValueError:
            pass
    elif kind is int and isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    if number is None or (kind is float and not np.isfinite(number)):
        name = "an integer" if kind is int else "a finite number"
        raise ValueError(f"{where}: expected {name}, got {value!r} ({type(value).__name__})")
    return number


class ExampleProblem:
    """Base class of the fit problems. Subclasses set the class attributes and implement
    :meth:`build`, :meth:`truth` and :meth:`write_fields`.

    Made collectively over ``comm``; ``settings``: the problem's parameters (defaults filled in
    by :meth:`settings_with_defaults`). After construction it has ``rf`` (the reduced
    functional), ``control_names`` (one per control), ``start`` (the controls' starting values)
    and ``bounds`` (one (lower, upper) pair per control). Use it as a context manager, or call
    :meth:`destroy` (collective), to free its PETSc objects.
    """

    name = ""
    description = ""
    parameters = {}
    quick = {}
    #: defaults of the scipy fit: method, tol, options
    scipy = {"method": "L-BFGS-B", "tol": None, "options": {}}
    #: defaults of the TAO fit: type, gatol, grtol, gttol, max_iterations, petsc_options
    tao = {"type": "bqnls", "gatol": None, "grtol": None, "gttol": None,
           "max_iterations": 1000, "petsc_options": {}}

    def __init__(self, settings=None, comm=None):
        from ..parallel.comm import resolve_comm
        self.comm = resolve_comm(comm)
        self.settings = self.settings_with_defaults(settings or {})
        self.rf = None
        self.control_names = []
        self.start = []
        self.bounds = None
        self.riesz_map = None
        self._destroy = []
        self.build()

    @classmethod
    def settings_with_defaults(cls, settings, where="parameters"):
        """The problem's parameters: ``settings`` checked and converted, defaults for the rest.
        Raises ValueError naming ``where.<key>`` for an unknown key or a wrong value."""
        unknown = sorted(set(settings) - set(cls.parameters))
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: problem {cls.name!r} has no parameter "
                             f"{unknown[0]!r}; its parameters are {', '.join(cls.parameters)}")
        out = {}
        for key, parameter in cls.parameters.items():
            value = settings.get(key, parameter.default)
            out[key] = parameter.convert(value, f"{where}.{key}")
        return out

    # -- what a problem implements -------------------------------------------------------------
    def build(self):
        """Record the simulation and set ``rf``, ``control_names``, ``start``, ``bounds``."""
        raise NotImplementedError

    def truth(self):
        """{control name: true value} for the controls a synthetic problem knows."""
        raise NotImplementedError

    def write_fields(self, directory, controls):
        """Write the problem's fields (VTK) and plots (PNG) at ``controls`` (a fit's result)
        into ``directory``; return the paths written. Collective."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------
    def reset(self):
        """Put the tape back at the starting controls. Collective."""
        self.rf(list(self.start))

    def recovered(self, controls):
        """{control name: plain value} of a fit's controls (scalars as floats)."""
        from ..overloaded_type import plain_value
        values = controls if isinstance(controls, (list, tuple)) else [controls]
        out = {}
        for name, value in zip(self.control_names, values):
            v = plain_value(value)
            out[name] = float(v) if np.ndim(v) == 0 else np.asarray(v)
        return out

    def compare(self, controls):
        """{name: {"value", "true", "relative_error"}} for the controls with a known true value
        (:meth:`truth`); a field control gets only its relative l2 error. Subclasses may
        compare other quantities (e.g. a learned law at a few points). Collective."""
        truth = self.truth()
        out = {}
        for name, value in self.recovered(controls).items():
            if name not in truth:
                continue
            true = truth[name]
            if np.ndim(value) == 0:
                error = abs(value - true) / abs(true) if true else abs(value)
                out[name] = {"value": value, "true": float(true),
                             "relative_error": float(error)}
            else:
                out[name] = {"relative_error": self.field_error(name, value, true)}
        return out

    def field_error(self, name, value, true):
        """Relative l2 error of a distributed field control's ``value`` (this rank's piece)
        against ``true`` (this rank's piece), over all ranks. Collective."""
        from ..parallel import sum_over_ranks
        diff = np.asarray(value, dtype=float) - np.asarray(true, dtype=float)
        num, den = sum_over_ranks(np.array([np.vdot(diff, diff),
                                            np.vdot(true, true)], dtype=float), self.comm)
        return float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(num))

    def make_mesh_and_problem(self, cells, law, problem_class=None, upper=None, **options):
        """Make ``self.mesh``, a ``solvers.BoxMesh`` of ``cells`` over [0, ``upper``] (default
        the unit box) on the problem's communicator, and ``self.problem``,
        ``problem_class(mesh, law, **options)`` (default ``solvers.NonlinearProblem``); both are
        freed by :meth:`destroy`. Returns (mesh, problem). Collective."""
        import solvers
        problem_class = problem_class or solvers.NonlinearProblem
        self.mesh = solvers.BoxMesh(cells, upper=upper, comm=self.comm)
        self.on_destroy(self.mesh.destroy)
        self.problem = problem_class(self.mesh, law, **options)
        self.on_destroy(self.problem.destroy)
        return self.mesh, self.problem

    def with_noise(self, u, rng):
        """``u`` (this rank's owned nodal values) plus Gaussian noise of standard deviation
        ``settings["noise"]`` × max |u| (over all ranks), drawn for every node of the mesh in
        its natural order from ``rng``, so every rank count sees the same data. Collective."""
        from ..parallel import max_over_ranks
        scale = max_over_ranks(float(np.max(np.abs(u), initial=0.0)), self.comm)
        noise = self.settings["noise"] * scale * rng.standard_normal(self.mesh.total_nodes)
        return u + self.mesh.owned_from_natural(noise)

    def loadings_misfit(self, coefficients, loads, data):
        """Σ over the loadings of ∫ (u − d)² dx / ∫ d² dx, where u solves ``self.problem``
        with ``coefficients`` and source f (Newton from d) for each f, d of ``loads``,
        ``data``: recorded when a coefficient is a crk value. Collective."""
        import solvers
        J = 0.0
        for f, d in zip(loads, data):
            u = self.problem.solve(*coefficients, f=f, initial_guess=d)
            J = J + solvers.l2_misfit(self.mesh, u, d) / float(
                solvers.l2_norm_squared(self.mesh, d))
        return J

    def on_destroy(self, destroy):
        """Register ``destroy`` (a PETSc-owning object's method) to run, last first, in
        :meth:`destroy`."""
        self._destroy.append(destroy)

    def destroy(self):
        """Free the problem's PETSc objects. Collective."""
        while self._destroy:
            self._destroy.pop()()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
