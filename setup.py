"""Build the call path's modules as C extensions with mypyc (issue #16), the rest as Python.

Why: the per-call work is a few hundred lines of Python run ~10,000 times a second; compiled
by mypyc (the same type hints ``mypy --strict`` checks) it costs about a quarter less CPU per
call (``python -m bench.run --parts throughput`` measures the compiled build, ``ours``, beside
the interpreted one, ``ours-pure``). Nothing else changes: same modules, same names, and every
module still works as plain Python.

When the modules are compiled:

- a wheel or a plain ``pip install .`` (what a PBX, the Docker image and the service install
  run): compiled when a C compiler and Python's headers are there; without them the build says
  so and installs the interpreted modules (each extension is optional), which work the same;
- an editable install (``pip install -e .``, ``make serve``/``make test``'s virtualenv): not
  compiled, so an edited ``.py`` is what runs (a stale ``.so`` beside it would win the import);
- ``CALLSCREEN_COMPILE=0`` never compiles, ``=1`` always does (a failure is then an error).

``python -c "import callscreen; print(callscreen.compiled())"`` says which build is installed.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

#: The call path (issue #16's profile): the FastAGI layer, the decision, the lookup, the
#: per-call log line and counters, the treatments. Kept to modules that are hot per call.
COMPILED = [
    "callscreen/fastagi/protocol.py",
    "callscreen/fastagi/session.py",
    "callscreen/fastagi/server.py",
    "callscreen/screening.py",
    "callscreen/policy.py",
    "callscreen/numbers.py",
    "callscreen/names.py",
    "callscreen/db/lookup.py",
    "callscreen/db/callrecord.py",
    "callscreen/logfmt.py",
    "callscreen/metrics.py",
    "callscreen/treatments.py",
]


def _wanted() -> bool:
    setting = os.environ.get("CALLSCREEN_COMPILE", "auto").strip().lower()
    if setting in ("0", "no", "false"):
        return False
    if _required():
        return True
    # setuptools runs these commands for `pip install -e .` (PEP 660) and `setup.py develop`.
    return not any(cmd in sys.argv for cmd in ("editable_wheel", "develop"))


def _required() -> bool:
    return os.environ.get("CALLSCREEN_COMPILE", "auto").strip().lower() in ("1", "yes", "true")


def _extensions() -> list[object]:
    if not _wanted():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # pyproject.toml's build requirements bring it; a bare setup.py may not
        if _required():
            raise
        print("callscreen: mypyc not found: installing the interpreted modules", file=sys.stderr)
        return []
    exts = mypycify(COMPILED, opt_level="3", debug_level="0", group_name="callscreen")
    if not _required():
        for ext in exts:  # no compiler here: the interpreted modules, same behaviour
            ext.optional = True
    return list(exts)


setup(ext_modules=_extensions())
