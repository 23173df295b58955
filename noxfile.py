"""nox sessions: tests, lint, typecheck and the benchmarks.

Sessions reuse the interpreter's installed packages (torch is several GB) and install the
project on top, so `nox -s tests` on a machine that ran the README's install is quick.
"""

from __future__ import annotations

import sys

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
# For `syntax`: the modules src/ imports that are standard in the Python running nox (its
# names are the arguments) and missing from this one's standard library.
_MISSING_STDLIB = """
import ast, pathlib, sys
reference = set(sys.argv[1:])
seen = set()
for path in pathlib.Path("src").rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            seen |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            seen.add(node.module.split(".")[0])
here = set(sys.stdlib_module_names)
missing = sorted(name for name in seen if name in reference and name not in here)
sys.exit(f"not in this Python's standard library: {missing}" if missing else 0)
"""
nox.options.reuse_existing_virtualenvs = True
VENV = {"venv_params": ["--system-site-packages"]}


@nox.session(**VENV)
def tests(session: nox.Session) -> None:
    """The test suite (pass e.g. `-- -m slow` for the slow tests)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(**VENV)
def lint(session: nox.Session) -> None:
    """ruff: lint, import order and formatting, with the dev extra's ruff."""
    session.install("ruff>=0.17,<0.18")
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "noxfile.py")


# Too large to download for a check (several GB with their CUDA libraries): these stay at the
# interpreter's own versions in `lowest`, which says so.
_KEEP_INSTALLED = {"torch", "torchvision"}


def _lower_bounds() -> list[str]:
    """pyproject.toml's dependencies pinned to their lower bounds (``x>=1.2,<2`` -> ``x==1.2``),
    those in ``_KEEP_INSTALLED`` left out."""
    import re

    import tomllib

    with open("pyproject.toml", "rb") as f:
        requirements = tomllib.load(f)["project"]["dependencies"]
    pins = []
    for requirement in requirements:
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*>=\s*([^,;\s]+)", requirement)
        if match is None:
            raise ValueError(f"pyproject.toml: {requirement!r} has no lower bound to test")
        if match[1] not in _KEEP_INSTALLED:
            pins.append(f"{match[1]}=={match[2]}")
    return pins


@nox.session(**VENV)
def lowest(session: nox.Session) -> None:
    """The tests on the lowest versions pyproject.toml admits (torch and torchvision excepted:
    the interpreter's own): a bound set below what the code uses fails here. Pass tests to run
    as arguments (default: the fast suite)."""
    pins = _lower_bounds()
    # One resolution, so that what the pins' dependents need is chosen to fit them.
    session.install("-e", ".[test]", *pins)
    session.log("pinned: " + " ".join(pins))
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=["3.10", "3.12"])
def syntax(session: nox.Session) -> None:
    """The sources compile on the other Pythons that requires-python admits (the tests run on
    3.11, where torch is installed): a newer syntax or a missing standard module fails here."""
    session.run("python", "-m", "compileall", "-q", "src", "tests", "noxfile.py")
    session.run("python", "-c", _MISSING_STDLIB, *sorted(sys.stdlib_module_names))


@nox.session(**VENV)
def typecheck(session: nox.Session) -> None:
    """mypy over the package."""
    session.install("mypy", "-e", ".")
    session.run("mypy")


@nox.session(name="bench-model", **VENV)
def bench_model(session: nox.Session) -> None:
    """Training-step time of AlexNet against torchvision's alexnet (add e.g.
    `-- --output benchmarks/model-cpu-NAME.md` to keep the figures of a new kind of CPU)."""
    session.install("-e", ".")
    session.run("python", "-m", "lit_alexnet.bench", "model", *session.posargs)


@nox.session(name="bench-data", **VENV)
def bench_data(session: nox.Session) -> None:
    """Images per second of DALI against torchvision's DataLoader on photo-like JPEGs."""
    session.install("-e", ".")
    session.run(
        "python",
        "-m",
        "lit_alexnet.bench",
        "data",
        "--kind",
        "photo",
        "--device",
        "cpu",
        "--output",
        "benchmarks/data-cpu.md",
        *session.posargs,
    )


@nox.session(**VENV)
def gpu(session: nox.Session) -> None:
    """Every GPU path in one go (under 10 minutes on one H100): the gpu-marked tests, then
    `python -m lit_alexnet.bench gpu` (model steps against torchvision's, DALI mixed decoding,
    an end-to-end fit, model.compile and the two-device strategy), which writes
    benchmarks/gpu.md; without a GPU each part says it skipped. A failing test fails the
    session, after the measurements."""
    session.install("-e", ".[test]")
    try:
        # -m gpu replaces pyproject's -m 'not slow': every gpu test runs, slow or not (exit 5:
        # none collected).
        session.run("pytest", "-m", "gpu", "-p", "no:cacheprovider", success_codes=[0, 5])
        tests_failed = False
    except nox.command.CommandFailed:
        tests_failed = True
    bench = ["python", "-m", "lit_alexnet.bench", "gpu", "--output", "benchmarks/gpu.md"]
    session.run(*bench, *session.posargs)
    if tests_failed:
        session.error("the gpu-marked tests failed (above)")
