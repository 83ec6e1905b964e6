"""The named fit problems of ``crk-fit``: name -> (module, class), imported on first use."""
import importlib

#: name -> (module, class name) of every problem ``crk-fit`` runs
PROBLEMS = {
    "p_laplacian": ("crk.fit.problems.p_laplacian", "PLaplacianFit"),
    "network_cr": ("crk.fit.problems.network_cr", "NetworkCRFit"),
    "network_cr_tf": ("crk.fit.problems.network_cr_tf", "NetworkCRTFFit"),
    "hyperelastic": ("crk.fit.problems.hyperelastic", "HyperelasticFit"),
    "transient_source": ("crk.fit.problems.transient_source", "TransientSourceFit"),
}


def get_problem(name, where="problem"):
    """The problem class called ``name``; a ValueError naming ``where`` if there is none."""
    if name not in PROBLEMS:
        raise ValueError(f"{where}: unknown problem {name!r}; crk-fit runs "
                         f"{', '.join(sorted(PROBLEMS))}")
    module, cls = PROBLEMS[name]
    return getattr(importlib.import_module(module), cls)
