"""``python -m crk.fit``: the ``crk-fit`` driver (see :mod:`crk.fit.cli`)."""
from .cli import main

main()
