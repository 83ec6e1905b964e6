"""Time-dependent problems: u_t − div q(u, ∇u) + c(u, ∇u) = f by the θ-scheme.

Each step solves, for u = u^{n+1} given u^n,

    M (u − u^n) / dt + θ A(u) + (1 − θ) A(u^n) = b,      A(u)[v] = ∫ q : ∇v + c · v,

(θ = 1: implicit Euler, θ = 1/2: Crank–Nicolson) as one solve block whose inputs include u^n,
so the derivative with respect to the initial state flows back through every step. Run the loop
under ``tape.timesteps(n)``, and every checkpoint schedule of :mod:`crk.checkpointing` applies::

    tape = crk.Tape(checkpointing=crk.checkpointing.Revolve(n_steps=100, snapshots=10))
    with tape, solvers.TransientProblem(mesh, flux, dt=0.01, dirichlet=bcs) as problem:
        u = u0
        for step in tape.timesteps(100):
            u = problem.step(u, kappa, f=1.0)
        J = solvers.functionals.l2_misfit(mesh, u, data)

The PETSc objects of the problem are made once and reused by every step, replay and adjoint.
"""
from .problem import NonlinearProblem
from .solve import record_solve


class TransientProblem(NonlinearProblem):
    """A :class:`~solvers.problem.NonlinearProblem` advanced in time by the θ-scheme.

    ``dt``: the time step (fixed per problem: the Jacobian is θ A'(u) + M/dt); ``theta``: in
    (0, 1], 1 for implicit Euler. Other arguments as for NonlinearProblem. Collective.
    """

    def __init__(self, mesh, flux, dt, theta=1.0, **kwargs):
        dt, theta = float(dt), float(theta)
        if not dt > 0.0:
            raise ValueError(f"TransientProblem: argument 'dt' must be positive, got {dt}")
        if not 0.0 < theta <= 1.0:
            raise ValueError(f"TransientProblem: argument 'theta' must be in (0, 1], got {theta}")
        self.dt = dt
        self.theta = theta
        self.mass_scale = 1.0 / dt
        super().__init__(mesh, flux, **kwargs)

    def step(self, previous, *coefficients, f=None, initial_guess=None):
        """u^{n+1} from ``previous`` = u^n (owned nodal values; a crk value to differentiate
        with respect to it). ``coefficients``, ``f``: as for :meth:`solve`, at this step.
        ``initial_guess``: default u^n. Recorded as one block. Collective."""
        guess = previous if initial_guess is None else initial_guess
        return record_solve(self, coefficients, f, previous, guess)

    def solve(self, *args, **kwargs):
        raise TypeError("TransientProblem: advance with problem.step(previous, ...); a steady "
                        "solve needs a NonlinearProblem")


def run(problem, initial, steps, *coefficients, f=None, tape=None, callback=None):
    """Advance ``initial`` by ``steps`` time steps of ``problem`` under ``tape.timesteps``
    (the working tape by default); ``callback(step, u)`` after each step (e.g. writing output).
    Returns the final state. Collective."""
    from crk.tape import get_working_tape
    tape = get_working_tape() if tape is None else tape
    u = initial
    for n in tape.timesteps(steps):
        u = problem.step(u, *coefficients, f=f)
        if callback is not None:
            callback(n, u)
    return u
