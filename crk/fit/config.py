"""A fit's settings: defaults, then a TOML config file, then ``--quick``, then flags.

A config file (every key optional; flags override it)::

    problem = "p_laplacian"
    optimizer = "tao"                  # or "scipy"
    output = "fit-output"              # directory of results.json, history.csv, PNG, VTK
    checkpoint_file = "fit-output/checkpoint.npz"
    resume = true                      # continue from checkpoint_file if it exists
    quiet = false                      # true: no per-iteration log lines
    quick = false                      # true: the problem's tiny size
    petsc_options = "-plap_snes_monitor"   # or a list of strings

    [parameters]                       # the problem's own settings (crk-fit PROBLEM -h)
    n = 64

    [scipy]
    method = "L-BFGS-B"
    tol = 1e-10
    options = { maxiter = 100, gtol = 1e-9 }

    [tao]
    type = "bqnls"
    gatol = 1e-9
    max_iterations = 100
    options_prefix = "crk_"
    petsc_options = { tao_ls_type = "more-thuente" }

Every wrong key or value raises :class:`ConfigError` naming it (``fit.toml: scipy.method``,
``--optimizer``) with what was expected and what came.
"""
import dataclasses
import shlex

from .problems import get_problem

OPTIMIZERS = ("scipy", "tao")
TOP_KEYS = ("problem", "optimizer", "output", "checkpoint_file", "resume", "quiet", "quick",
            "petsc_options", "parameters", "scipy", "tao")
SCIPY_KEYS = ("method", "tol", "options")
TAO_KEYS = ("type", "gatol", "grtol", "gttol", "max_iterations", "options_prefix",
            "petsc_options")
DEFAULT_OUTPUT = "fit-output"


class ConfigError(ValueError):
    """A fit's settings are wrong; the message names the key or flag."""


@dataclasses.dataclass
class FitConfig:
    """The checked settings of one fit.

    ``problem``: the problem's name; ``parameters``: its settings, all filled in;
    ``optimizer``: "scipy" or "tao"; ``scipy`` / ``tao``: the optimiser's settings (the
    problem's defaults updated by the config); ``petsc_options``: PETSc command-line tokens;
    ``output``, ``checkpoint_file`` (None: none), ``resume``, ``quiet``.
    """

    problem: str
    parameters: dict
    optimizer: str = "scipy"
    scipy: dict = dataclasses.field(default_factory=dict)
    tao: dict = dataclasses.field(default_factory=dict)
    petsc_options: list = dataclasses.field(default_factory=list)
    output: str = DEFAULT_OUTPUT
    checkpoint_file: object = None
    resume: bool = False
    quiet: bool = False

    def as_dict(self):
        return dataclasses.asdict(self)


def parse_toml(text, source):
    """The table of a TOML config file's ``text`` (``source``: its name, for messages)."""
    try:
        import tomllib
    except ImportError:         # Python 3.10
        raise ConfigError(f"config file {source}: reading TOML needs Python 3.11 or newer "
                          f"(tomllib); give the settings as flags instead") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {source}: not valid TOML: {e}") from None


def load_config(file_data=None, source="the config file", flags=None):
    """The :class:`FitConfig` of a TOML table ``file_data`` (from the file ``source``) and the
    ``flags`` given on the command line (a dict of the keys of :data:`TOP_KEYS`, plus
    ``method``, ``tao_type`` and ``max_iterations``; ``parameters`` a dict). Flags win over
    the file. Raises :class:`ConfigError`. Not collective (deterministic: every rank given the
    same input gets the same answer or the same error)."""
    file_data = dict(file_data or {})
    flags = dict(flags or {})
    _check_keys(file_data, TOP_KEYS, source, "")
    for table, keys in (("parameters", None), ("scipy", SCIPY_KEYS), ("tao", TAO_KEYS)):
        if table in file_data:
            if not isinstance(file_data[table], dict):
                raise ConfigError(f"{source}: {table}: expected a table ([{table}]), got "
                                  f"{file_data[table]!r}")
            if keys is not None:
                _check_keys(file_data[table], keys, source, f"{table}.")

    def pick(key, flag):
        """(value, where) of a top-level setting, the flag first."""
        if flags.get(key) is not None:
            return flags[key], flag
        if key in file_data:
            return file_data[key], f"{source}: {key}"
        return None, None

    name, where = pick("problem", "PROBLEM")
    if name is None:
        raise ConfigError("no problem given: name one (crk-fit p_laplacian ...) or set "
                          "problem = \"...\" in the config file")
    try:
        problem = get_problem(_string(name, where), where)
    except ValueError as e:
        raise ConfigError(str(e)) from None

    optimizer, where = pick("optimizer", "--optimizer")
    optimizer = "scipy" if optimizer is None else _string(optimizer, where)
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"{where}: expected one of {', '.join(OPTIMIZERS)}, got "
                          f"{optimizer!r}")

    # The problem's parameters: defaults < file < --quick < flags.
    quick, where = pick("quick", "--quick")
    parameters = {}
    for key, value in file_data.get("parameters", {}).items():
        parameters[key] = (value, f"{source}: parameters.{key}")
    if quick is not None and _boolean(quick, where):
        for key, value in problem.quick.items():
            parameters[key] = (value, f"--quick ({key})")
    for key, value in (flags.get("parameters") or {}).items():
        parameters[key] = (value, f"--{key.replace('_', '-')}")
    checked = {}
    for key, (value, where) in parameters.items():
        if key not in problem.parameters:
            raise ConfigError(f"{where}: problem {problem.name!r} has no parameter {key!r}; "
                              f"its parameters are {', '.join(problem.parameters)}")
        try:
            checked[key] = problem.parameters[key].convert(value, where)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    checked = problem.settings_with_defaults(checked)

    scipy = _optimizer_settings(problem.scipy, file_data.get("scipy", {}), source, "scipy")
    tao = _optimizer_settings(problem.tao, file_data.get("tao", {}), source, "tao")
    if flags.get("method") is not None:
        scipy["method"] = _string(flags["method"], "--method")
    if flags.get("tao_type") is not None:
        tao["type"] = _string(flags["tao_type"], "--tao-type")
    max_iterations, where = pick("max_iterations", "--max-iterations")
    if max_iterations is not None:
        n = _integer(max_iterations, where)
        scipy["options"] = dict(scipy.get("options") or {}, maxiter=n)
        tao["max_iterations"] = n

    output, where = pick("output", "--output")
    output = DEFAULT_OUTPUT if output is None else _string(output, where)
    checkpoint, where = pick("checkpoint_file", "--checkpoint-file")
    checkpoint = None if checkpoint is None else _string(checkpoint, where)
    resume, where = pick("resume", "--resume")
    resume = False if resume is None else _boolean(resume, where)
    if resume and checkpoint is None:
        raise ConfigError(f"{where}: resuming needs a checkpoint file (--checkpoint-file PATH "
                          f"or checkpoint_file in the config file)")
    quiet, where = pick("quiet", "--quiet")
    quiet = False if quiet is None else _boolean(quiet, where)

    petsc = []
    if "petsc_options" in file_data:
        petsc += _petsc_tokens(file_data["petsc_options"], f"{source}: petsc_options")
    petsc += list(flags.get("petsc_options") or [])
    return FitConfig(problem=problem.name, parameters=checked, optimizer=optimizer,
                     scipy=scipy, tao=tao, petsc_options=petsc, output=output,
                     checkpoint_file=checkpoint, resume=resume, quiet=quiet)


def _check_keys(table, known, source, prefix):
    for key in table:
        if key not in known:
            raise ConfigError(f"{source}: {prefix}{key}: unknown key; expected one of "
                              f"{', '.join(known)}")


def _optimizer_settings(defaults, given, source, table):
    settings = {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    for key, value in given.items():
        where = f"{source}: {table}.{key}"
        if key in ("options", "petsc_options"):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: expected a table, got {value!r}")
            settings[key] = dict(settings.get(key) or {}, **value)
        elif key in ("method", "type", "options_prefix"):
            settings[key] = _string(value, where)
        elif key == "max_iterations":
            settings[key] = _integer(value, where)
        else:
            settings[key] = _float(value, where)
    return settings


def _petsc_tokens(value, where):
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [t for v in value for t in shlex.split(v)]
    raise ConfigError(f"{where}: expected a string of PETSc options or a list of strings, got "
                      f"{value!r}")


def _string(value, where):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _boolean(value, where):
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _integer(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _float(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)
