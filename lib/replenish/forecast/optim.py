"""BFGS for statsforecast's ARIMA with the same finite-difference gradient, taken without scipy's bookkeeping.

statsforecast's `arima` (a port of R's `stats::arima`) minimises its likelihoods with
`scipy.optimize.minimize(method="BFGS")` and no gradient, so scipy approximates one by forward
differences through `approx_derivative`. The likelihood itself is compiled and takes about 10 µs on
a demo series; scipy's per-gradient bookkeeping (step checks, array-API dispatch, wrappers around
every evaluation) costs several times that, and it is most of an ARIMA order search's CPU
(docs/forecasting.md, "Where an ARIMA fit's time goes").

`lean_gradients()` hands `minimize` the value and the gradient in one call (`jac=True`), the gradient
taken by the forward differences scipy's BFGS would take (its absolute step `eps`, sqrt of the machine
epsilon, or a relative step where that one vanishes against x; divided by the step as represented),
so the optimizer walks the same path and the fits are the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy.optimize import minimize as scipy_minimize

_RELATIVE_STEP = float(np.finfo(np.float64).eps ** 0.5)


def value_and_forward_gradient(
    fun: Callable[..., float], *, step: float = _RELATIVE_STEP
) -> Callable[..., tuple[float, np.ndarray]]:
    """`fun` returning (value, gradient), the gradient by BFGS's 2-point forward differences of `step`."""

    def both(x: np.ndarray, *args: Any) -> tuple[float, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        value = float(fun(x, *args))
        relative = _RELATIVE_STEP * np.where(x >= 0, 1.0, -1.0) * np.maximum(1.0, np.abs(x))
        steps = np.where((x + step) - x == 0, relative, step)
        gradient = np.empty(x.size)
        for i in range(x.size):
            moved = x.copy()
            moved[i] = x[i] + steps[i]
            gradient[i] = (float(fun(moved, *args)) - value) / (moved[i] - x[i])
        return value, gradient

    return both


def minimize(fun: Callable[..., float], x0: Any, args: tuple = (), method: str | None = None, **options: Any) -> Any:
    """`scipy.optimize.minimize`, with the lean gradient where BFGS would difference `fun` itself."""
    if method == "BFGS" and options.get("jac") is None:
        options.pop("jac", None)
        step = float((options.get("options") or {}).get("eps", _RELATIVE_STEP))
        both = value_and_forward_gradient(fun, step=step)
        return scipy_minimize(both, x0, args=args, method=method, jac=True, **options)
    return scipy_minimize(fun, x0, args=args, method=method, **options)


@contextlib.contextmanager
def lean_gradients() -> Iterator[None]:
    """Within the block, statsforecast's ARIMA estimation uses `minimize` above (restored on exit)."""
    from statsforecast import arima

    original = arima.minimize
    arima.minimize = minimize
    try:
        yield
    finally:
        arima.minimize = original
