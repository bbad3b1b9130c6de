"""Dependencies point one way: jobs/ (the package `replenish_jobs`) uses lib/, never the reverse, and a job
does not import another job's helpers (what two jobs share lives in the harness or a steps module)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Modules of jobs/ that are not jobs: what jobs share. `forecast_arima` is `forecast --model arima` under
# its own spark-submit file, so it is the one job that imports another whole.
SHARED_JOB_MODULES = {"harness", "lstm_steps", "cli"}
ALIASES = {"forecast_arima": {"forecast"}}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (imports inside functions count)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_library_never_imports_the_jobs() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in _imports(path) if name.split(".")[0] == "replenish_jobs")
        for path in (ROOT / "lib" / "replenish").rglob("*.py")
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert not offenders, f"lib/ imports the job harness or jobs (move the helper into lib/): {offenders}"


def test_a_job_imports_only_the_shared_job_modules() -> None:
    jobs = {path.stem for path in (ROOT / "jobs").glob("*.py")} - {"__init__"}
    offenders = {}
    for path in (ROOT / "jobs").glob("*.py"):
        used = {name.split(".")[1] for name in _imports(path) if name.startswith("replenish_jobs.")}
        other_jobs = used & jobs - SHARED_JOB_MODULES - ALIASES.get(path.stem, set()) - {path.stem}
        if other_jobs:
            offenders[path.name] = sorted(other_jobs)
    assert not offenders, f"jobs import other jobs' helpers (move them to lib/ or a shared job module): {offenders}"


def test_the_harness_and_cli_live_beside_the_jobs() -> None:
    for moved in ("cli", "runtime", "session"):
        assert not (ROOT / "lib" / "replenish" / f"{moved}.py").exists(), f"lib/replenish/{moved}.py is back"
    assert (ROOT / "jobs" / "harness.py").exists() and (ROOT / "jobs" / "cli.py").exists()
