"""Run a Databricks source-format notebook cell by cell on the local Spark session.

A source notebook is a Python file that starts with `# Databricks notebook source` and separates its
cells with `# COMMAND ----------`; a cell whose lines all start with `# MAGIC` is a magic cell:

* `%md` (markdown) is kept as text and not run; `%pip` is not run (the test environment has the packages);
* `%sql` runs through `spark.sql`, and like Databricks the result is `_sqldf` in the namespace;
* `%python` runs as Python; `%run ./other` runs that notebook (a path relative to this one) in the
  same namespace; any other magic (`%sh`, `%scala`, `%r`) is an error.

`dbutils` is absent, as it is outside Databricks, so notebooks fall back to their local defaults; the
runner's `parameters` are those defaults' overrides, passed as `NOTEBOOK_<NAME>` environment variables
for the duration of the run (what the notebooks read when `dbutils` is missing, and what a user sets to
run one with `python notebooks/<name>.py`).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = "# Databricks notebook source"
SEPARATOR = re.compile(r"^# COMMAND -{10,}\s*$", re.MULTILINE)
MAGIC = "# MAGIC"


class NotebookError(Exception):
    """A cell failed or the file is not a notebook; names the notebook and the cell."""


@dataclass
class Cell:
    """One cell: its index (1-based), kind (`python`, `md`, `pip`, `sql`, `run`), source and what it printed."""

    index: int
    kind: str
    source: str
    output: str = ""
    seconds: float = 0.0
    result: Any = None


@dataclass
class NotebookRun:
    """What a notebook did: its cells in order, and the namespace its Python cells left."""

    path: Path
    cells: list[Cell] = field(default_factory=list)
    namespace: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """Everything the cells printed, in order."""
        return "".join(cell.output for cell in self.cells)

    def __getitem__(self, name: str) -> Any:
        return self.namespace[name]


def parse_cells(source: str, *, name: str = "notebook") -> list[Cell]:
    """Split a source notebook into cells, telling magic cells from Python ones."""
    if not source.startswith(HEADER):
        raise NotebookError(f"{name}: not a Databricks source notebook (the first line is not {HEADER!r})")
    cells = []
    for index, chunk in enumerate(SEPARATOR.split(source[len(HEADER) :]), start=1):
        text = chunk.strip("\n")
        lines = [line for line in text.splitlines() if line.strip()]
        if lines and all(line.startswith(MAGIC) for line in lines):
            body = "\n".join(line[len(MAGIC) :].removeprefix(" ") for line in text.splitlines())
            command, _, rest = body.strip().partition("\n")
            kind = command.split()[0].lstrip("%") if command.startswith("%") else "md"
            cells.append(Cell(index, kind, body.strip() if kind == "run" else rest if kind != "md" else body))
        else:
            cells.append(Cell(index, "python", text))
    return cells


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_notebook(
    path: str | Path,
    *,
    spark: Any,
    parameters: Mapping[str, Any] | None = None,
    namespace: dict[str, Any] | None = None,
) -> NotebookRun:
    """Execute the notebook at `path` and return its cells and namespace.

    Args:
        path: a `.py` source notebook.
        spark: the session the notebook finds as `spark` (as on Databricks).
        parameters: widget name -> value, the notebook's `NOTEBOOK_<NAME>` local defaults.
        namespace: run in this namespace (used by `%run`); a new one by default.

    Raises:
        NotebookError: a cell raised; the message names the notebook, the cell and its first line.
    """
    path = Path(path)
    run = NotebookRun(path, namespace=namespace if namespace is not None else {})
    run.namespace.setdefault("__name__", "__main__")
    run.namespace.setdefault("spark", spark)
    env = {f"NOTEBOOK_{name.upper()}": str(value) for name, value in (parameters or {}).items()}
    with _environment(env):
        for cell in parse_cells(path.read_text(encoding="utf-8"), name=path.name):
            started = time.monotonic()
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stdout(buffer):
                    _run_cell(cell, run, spark=spark, parameters=parameters)
            except Exception as exc:
                first = next((line for line in cell.source.splitlines() if line.strip()), "")
                raise NotebookError(
                    f"{path.name}, cell {cell.index} ({cell.kind}: {first[:80]!r}) failed: {type(exc).__name__}: "
                    f"{exc}\n--- printed before the failure ---\n{buffer.getvalue()[-2000:]}"
                ) from exc
            finally:
                cell.output = buffer.getvalue()
                cell.seconds = time.monotonic() - started
                run.cells.append(cell)
    return run


def _run_cell(cell: Cell, run: NotebookRun, *, spark: Any, parameters: Mapping[str, Any] | None) -> None:
    if cell.kind in ("md", "pip"):
        return
    if cell.kind == "python":
        exec(compile(cell.source, f"{run.path.name} cell {cell.index}", "exec"), run.namespace)
    elif cell.kind == "sql":
        cell.result = spark.sql(cell.source)
        run.namespace["_sqldf"] = cell.result
        cell.result.show(20, truncate=False)
    elif cell.kind == "run":
        target = cell.source.split(maxsplit=1)[1].strip().strip("\"'")
        other = (run.path.parent / target).with_suffix(".py")
        inner = run_notebook(other, spark=spark, parameters=parameters, namespace=run.namespace)
        print(inner.output, end="")
    else:
        raise NotebookError(f"magic %{cell.kind} does not run locally")
