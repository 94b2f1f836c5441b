"""The shipped build behaves like the interpreted one (issue #16): the call path's tests, run
against the modules compiled by mypyc (setup.py's COMPILED), pass.

A copy of this checkout (the package, the tests, the build files) is compiled in place in a
temporary directory (``CALLSCREEN_COMPILE=1 python setup.py build_ext --inplace``, about 40 s
here), then pytest runs there, as a child process, on the call path's test files. mypyc's
compiled code checks types at run time (function boundaries, attribute assignments), so an
annotation narrower than what a library really returns, which mypy accepts, fails only there.

The child imports the copy, never this checkout's editable install: its working directory (and
``PYTHONPATH``, for the ``callscreen serve`` processes the tests start) is the copy, which comes
before the editable finder (appended to ``sys.meta_path``); a test written into the copy checks
it from inside the run, and checks that every module of COMPILED is an extension.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: What the copy needs: the package, the tests (tests/pg.py, the fake Asterisk), the build.
COPIED = ["callscreen", "tests", "pyproject.toml", "setup.py"]

#: The call path's tests (the FastAGI protocol and server, screening, policy, numbers, names,
#: treatments, challenge, block-last, accounts, hostile caller IDs, storage and disk faults,
#: PostgreSQL faults, per-call log lines, the call-log writer, metrics), run against the
#: compiled build.
CALL_PATH_TESTS = [
    "tests/unit/test_protocol.py",
    "tests/unit/test_policy.py",
    "tests/unit/test_numbers.py",
    "tests/unit/test_names.py",
    "tests/unit/test_call_lines.py",
    "tests/unit/test_inert.py",
    "tests/unit/test_properties.py",
    "tests/integration/test_calls.py",
    "tests/integration/test_challenge.py",
    "tests/integration/test_accounts.py",
    "tests/integration/test_name_rules.py",
    "tests/integration/test_bad_input.py",
    "tests/integration/test_call_log_lines.py",
    "tests/integration/test_recorder_batches.py",
    "tests/integration/test_ops_server.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_storage_faults.py",
    "tests/integration/test_disk_faults.py",  # as root only (it skips otherwise)
    "tests/integration/test_pg_faults.py",  # PostgreSQL (tests/pg.py: skips without initdb)
    "tests/integration/test_process.py",
]

#: Left out, one reason each. None of them is left out for failing compiled.
DESELECTED = {
    # Time only: these two take ~60 s of the file's ~90 s here; its other tests run compiled.
    "tests/integration/test_process.py::test_concurrent_admin_writes_during_calls": "time: ~43 s",
    "tests/integration/test_process.py::"
    "test_sigterm_while_the_call_log_cannot_be_written_ends_with_the_count": "time: ~20 s",
}

#: Written into the copy and run first: the run imports the copy's compiled modules.
CHECK = """
import subprocess, sys
from pathlib import Path

import callscreen

COPY = Path(__file__).resolve().parents[1]


def test_the_run_imports_the_compiled_copy():
    assert Path(callscreen.__file__).resolve().is_relative_to(COPY), callscreen.__file__
    assert callscreen.compiled()
    for module in {modules!r}:
        mod = __import__(module, fromlist=["_"])
        assert Path(mod.__file__).resolve().is_relative_to(COPY), mod.__file__
        assert not mod.__file__.endswith(".py"), mod.__file__


def test_a_child_started_elsewhere_imports_it_too(tmp_path):
    code = "import callscreen; print(callscreen.__file__, callscreen.compiled())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert Path(out[0]).resolve().is_relative_to(COPY) and out[1] == "True", out
"""


def _compiled_modules() -> list[str]:
    """setup.py's COMPILED, as module names (read, not run: running it would call setup())."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "COMPILED":
            paths = ast.literal_eval(node.value)
            return [p.removesuffix(".py").replace("/", ".") for p in paths]
    raise AssertionError("no COMPILED in setup.py")


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's package and tests, the call path compiled in place."""
    root = tmp_path_factory.mktemp("compiled")
    skip = shutil.ignore_patterns("__pycache__", "*.so", ".hypothesis", "*.egg-info")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=skip)
        else:
            shutil.copy2(src, root / name)
    start = time.monotonic()
    build = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=root,
        env={**os.environ, "CALLSCREEN_COMPILE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-5000:] + build.stderr[-10000:]
    print(f"compiled in {time.monotonic() - start:.0f} s")
    return root


def test_the_copy_imports_compiled(copy: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import callscreen; print(callscreen.__file__, callscreen.compiled())",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=copy,
    ).stdout.split()
    assert Path(out[0]).resolve().is_relative_to(copy.resolve()), out
    assert out[1] == "True", out


@pytest.mark.timeout(900)
def test_the_call_path_tests_pass_compiled(copy: Path) -> None:
    check = copy / "tests/test_compiled_build.py"
    check.write_text(CHECK.format(modules=_compiled_modules()))
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rfEs",
        "--durations=10",
    ]
    argv += [str(check.relative_to(copy)), *CALL_PATH_TESTS]
    for test in DESELECTED:
        argv += ["--deselect", test]
    start = time.monotonic()
    run = subprocess.run(
        argv,
        cwd=copy,
        env={**os.environ, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=840,
    )
    print(f"call-path tests, compiled: {time.monotonic() - start:.0f} s")
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-30000:] + run.stderr[-5000:]
