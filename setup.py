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
    "callscreen/inert.py",
    "callscreen/db/recorder.py",
]


#: setuptools commands that build extensions. Only these run mypyc: pip runs setup.py for the
#: metadata first (``egg_info``, ``dist_info``), and for an editable install (PEP 660)
#: ``editable_wheel``; neither needs the compiled modules.
_BUILDS = ("build", "build_ext", "bdist_wheel", "bdist", "install")

#: mypy options for the build, the same wherever it runs: pip builds in an isolated environment
#: without callscreen's dependencies, so the checkout's strict settings (pyproject.toml, which
#: ``make lint`` enforces with the dependencies installed) would fail on imports it cannot see.
#: Not reading site-packages makes every build alike (third-party values are typed Any, as
#: they would be there), so a wheel built anywhere compiles the same code the same way.
_MYPY_OPTIONS = [
    "--config-file",
    os.devnull,
    "--python-version",
    f"{sys.version_info.major}.{sys.version_info.minor}",
    "--no-site-packages",
    "--ignore-missing-imports",
]


def _setting() -> str:
    return os.environ.get("CALLSCREEN_COMPILE", "auto").strip().lower()


def _required() -> bool:
    return _setting() in ("1", "yes", "true")


def _wanted() -> bool:
    if _setting() in ("0", "no", "false"):
        return False
    if any(cmd in sys.argv for cmd in ("editable_wheel", "develop")):
        return _required()
    return any(cmd in sys.argv for cmd in _BUILDS)


def _extensions() -> list[object]:
    if not _wanted():
        return []
    try:
        from mypyc.build import mypycify

        exts = mypycify(
            [*_MYPY_OPTIONS, *COMPILED], opt_level="3", debug_level="0", group_name="callscreen"
        )
    except (ImportError, SystemExit, Exception) as exc:  # mypyc exits on a type error
        if _required():
            raise
        print(
            f"callscreen: not compiling the call path ({type(exc).__name__}: {exc}): "
            "installing the interpreted modules, which work the same",
            file=sys.stderr,
        )
        return []
    if not _required():
        for ext in exts:  # no C compiler here: the interpreted modules, same behaviour
            ext.optional = True
    return list(exts)


setup(ext_modules=_extensions())
