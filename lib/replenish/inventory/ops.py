"""One set of formulas, two engines: numpy arrays and Spark SQL expressions.

The inventory formulas are written once against the small `Ops` namespace below. With `NUMPY` they
run on arrays (unit tests, hand-computed cases, no JVM). With `SPARK` the very same code builds Spark
SQL expression *text* (`Sql`), which a job turns into columns with `F.expr` or `selectExpr`: the
inventory job needs no Python UDF, and building a large expression costs no JVM round trips (with
Column objects every operator is a py4j call, thousands per plan).

Arithmetic and comparison operators (`+ - * / ** < <= > >= & | ~`) mean the same thing on numpy
arrays and on `Sql`; NaN in numpy plays the role of SQL NULL.

Example:
    ```python
    from replenish.inventory.ops import NUMPY, SPARK, col
    formulas.demand_std(2.0, 3.0, 10.0, 0.5, NUMPY)           # 6.557...
    str(formulas.demand_std(col("lead_time"), col("sigma"), col("rate"), 0.5, SPARK))
    # 'sqrt((((`lead_time` * power(`sigma`, 2)) + ...'
    ```
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np


class Ops(Protocol):
    """The functions the formulas need, with numpy semantics (NULL / NaN propagates)."""

    def exp(self, x: Any) -> Any: ...
    def log(self, x: Any) -> Any: ...
    def sqrt(self, x: Any) -> Any: ...
    def abs(self, x: Any) -> Any: ...
    def ceil(self, x: Any) -> Any: ...
    def floor(self, x: Any) -> Any: ...
    def maximum(self, x: Any, y: Any) -> Any: ...
    def minimum(self, x: Any, y: Any) -> Any: ...
    def clip(self, x: Any, lower: float, upper: float) -> Any: ...
    def where(self, condition: Any, x: Any, y: Any) -> Any: ...
    def isnull(self, x: Any) -> Any: ...
    def fill_null(self, x: Any, value: Any) -> Any: ...
    def missing(self) -> Any: ...


class NumpyOps:
    """`Ops` on numpy arrays and scalars."""

    def exp(self, x: Any) -> Any:
        return np.exp(x)

    def log(self, x: Any) -> Any:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    def sqrt(self, x: Any) -> Any:
        with np.errstate(invalid="ignore"):
            return np.sqrt(x)

    def abs(self, x: Any) -> Any:
        return np.abs(x)

    def ceil(self, x: Any) -> Any:
        return np.ceil(x)

    def floor(self, x: Any) -> Any:
        return np.floor(x)

    def maximum(self, x: Any, y: Any) -> Any:
        return np.maximum(x, y)

    def minimum(self, x: Any, y: Any) -> Any:
        return np.minimum(x, y)

    def clip(self, x: Any, lower: float, upper: float) -> Any:
        return np.clip(x, lower, upper)

    def where(self, condition: Any, x: Any, y: Any) -> Any:
        return np.where(condition, x, y)

    def isnull(self, x: Any) -> Any:
        return np.isnan(np.asarray(x, dtype=float))

    def fill_null(self, x: Any, value: Any) -> Any:
        x = np.asarray(x, dtype=float)
        return np.where(np.isnan(x), value, x)

    def missing(self) -> Any:
        return np.nan


def literal(value: Any) -> str:
    """SQL text of a Python value: floats as DOUBLE literals (a bare `1.5` would be a DECIMAL)."""
    if isinstance(value, Sql):
        return value.text
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "CAST('NaN' AS DOUBLE)"
        if math.isinf(value):
            return f"CAST('{'-' if value < 0 else ''}Infinity' AS DOUBLE)"
        return f"{value!r}D"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


class Sql:
    """A Spark SQL expression as text, with Python operators building larger expressions.

    `==` is not overloaded (a `Sql` stays hashable and comparable as an object); use `.eq()`.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Sql({self.text!r})"

    def _binary(self, operator: str, other: Any, *, reverse: bool = False) -> Sql:
        left, right = (literal(other), self.text) if reverse else (self.text, literal(other))
        return Sql(f"({left} {operator} {right})")

    def __add__(self, other: Any) -> Sql:
        return self._binary("+", other)

    def __radd__(self, other: Any) -> Sql:
        return self._binary("+", other, reverse=True)

    def __sub__(self, other: Any) -> Sql:
        return self._binary("-", other)

    def __rsub__(self, other: Any) -> Sql:
        return self._binary("-", other, reverse=True)

    def __mul__(self, other: Any) -> Sql:
        return self._binary("*", other)

    def __rmul__(self, other: Any) -> Sql:
        return self._binary("*", other, reverse=True)

    def __truediv__(self, other: Any) -> Sql:
        return self._binary("/", other)

    def __rtruediv__(self, other: Any) -> Sql:
        return self._binary("/", other, reverse=True)

    def __pow__(self, other: Any) -> Sql:
        return Sql(f"power({self.text}, {literal(other)})")

    def __neg__(self) -> Sql:
        return Sql(f"(- {self.text})")

    def __lt__(self, other: Any) -> Sql:
        return self._binary("<", other)

    def __le__(self, other: Any) -> Sql:
        return self._binary("<=", other)

    def __gt__(self, other: Any) -> Sql:
        return self._binary(">", other)

    def __ge__(self, other: Any) -> Sql:
        return self._binary(">=", other)

    def __and__(self, other: Any) -> Sql:
        return self._binary("AND", other)

    def __or__(self, other: Any) -> Sql:
        return self._binary("OR", other)

    def __invert__(self) -> Sql:
        return Sql(f"(NOT {self.text})")

    def eq(self, other: Any) -> Sql:
        """SQL `=`."""
        return self._binary("=", other)

    def alias(self, name: str) -> str:
        """`<expression> AS <name>`, for `selectExpr`."""
        return f"{self.text} AS `{name}`"


def col(name: str) -> Sql:
    """A column reference."""
    return Sql(f"`{name}`")


def sql(text: str) -> Sql:
    """Any SQL expression text, e.g. a function call the formulas do not wrap."""
    return Sql(f"({text})")


class SqlOps:
    """`Ops` building Spark SQL text."""

    @staticmethod
    def _call(function: str, *args: Any) -> Sql:
        return Sql(f"{function}({', '.join(literal(a) for a in args)})")

    def exp(self, x: Any) -> Any:
        return self._call("exp", x)

    def log(self, x: Any) -> Any:
        # ln is NULL for x <= 0 where numpy gives -inf / NaN; the formulas keep x positive.
        return self._call("ln", x)

    def sqrt(self, x: Any) -> Any:
        return self._call("sqrt", x)

    def abs(self, x: Any) -> Any:
        return self._call("abs", x)

    def ceil(self, x: Any) -> Any:
        return Sql(f"CAST(ceil({literal(x)}) AS DOUBLE)")

    def floor(self, x: Any) -> Any:
        return Sql(f"CAST(floor({literal(x)}) AS DOUBLE)")

    def maximum(self, x: Any, y: Any) -> Any:
        # greatest() skips NULLs; numpy's maximum propagates them, and so must the formulas.
        a, b = literal(x), literal(y)
        return Sql(f"(CASE WHEN {a} IS NULL OR {b} IS NULL THEN NULL ELSE greatest({a}, {b}) END)")

    def minimum(self, x: Any, y: Any) -> Any:
        a, b = literal(x), literal(y)
        return Sql(f"(CASE WHEN {a} IS NULL OR {b} IS NULL THEN NULL ELSE least({a}, {b}) END)")

    def clip(self, x: Any, lower: float, upper: float) -> Any:
        """`x` limited to [lower, upper]. Unlike numpy, a NULL `x` yields a bound: guard NULLs yourself.

        It exists because it names `x` once, where `minimum(maximum(x, lower), upper)` copies it four times.
        """
        return self._call("least", self._call("greatest", x, lower), upper)

    def where(self, condition: Any, x: Any, y: Any) -> Any:
        return Sql(f"(CASE WHEN {literal(condition)} THEN {literal(x)} ELSE {literal(y)} END)")

    def isnull(self, x: Any) -> Any:
        a = literal(x)
        return Sql(f"({a} IS NULL OR isnan({a}))")

    def fill_null(self, x: Any, value: Any) -> Any:
        return self._call("coalesce", x, value)

    def missing(self) -> Any:
        return Sql("CAST(NULL AS DOUBLE)")


NUMPY: Ops = NumpyOps()
SPARK: Ops = SqlOps()
