"""SQL text of the inventory policy's per-row quantities (`policy` adds them to the per-series frame).

Each builder returns `ops.Sql` text over columns of that frame, so a stage of `policy` is one
`selectExpr` and planning needs few JVM calls whatever the size of the formulas. Nothing here may
take an operator out of whole-stage code generation unless the docstring says so: the builders of
the empirical path (error windows, their quantiles) use lambdas, the others do not.
"""

from __future__ import annotations

from replenish.inventory import formulas
from replenish.inventory.distributions import cycle_service_factor, rounding_allowance_coefficients
from replenish.inventory.ops import SPARK, Sql, literal, sql
from replenish.inventory.settings import InventoryConfig

# Halvings of the bisection in `smoothed_quantile`.
SMOOTHED_QUANTILE_STEPS = 24
# Independent draws per disjoint window that a fold's overlapping error windows count for
# (`independent_windows`).
OVERLAPPING_WINDOW_DRAWS = 1.5


def service_class_maps(settings: InventoryConfig) -> dict[str, Sql]:
    """Per-row service target, z = Φ⁻¹(target) and z of the default, looked up by `abc_xyz`.

    The factors come from scipy on the driver (a handful of configured targets) as literal maps:
    no join, and no approximation of Φ⁻¹ in SQL.
    """
    classes = sorted(settings.service_targets)
    targets = {c: float(settings.service_targets[c]) for c in classes}
    target_map = ", ".join(f"{literal(c)}, {literal(v)}" for c, v in targets.items())
    factor_map = ", ".join(f"{literal(c)}, {literal(cycle_service_factor(v))}" for c, v in targets.items())
    lookup = "element_at(map({entries}), `abc_xyz`)"
    if not classes:
        return {
            "service_target": Sql(literal(settings.service_level)),
            "cycle_factor": Sql(literal(cycle_service_factor(settings.service_level))),
            "has_class_target": Sql("FALSE"),
        }
    return {
        "service_target": sql(f"coalesce({lookup.format(entries=target_map)}, {literal(settings.service_level)})"),
        "cycle_factor": sql(
            f"coalesce({lookup.format(entries=factor_map)}, {literal(cycle_service_factor(settings.service_level))})"
        ),
        "has_class_target": sql(f"{lookup.format(entries=target_map)} IS NOT NULL"),
    }


def valid_number(column: str, *, positive: bool = False) -> Sql:
    """`column` when it holds a usable non-negative (or positive) number, else NULL."""
    bound = "> 0" if positive else ">= 0"
    return sql(f"CASE WHEN NOT isnan(`{column}`) AND `{column}` {bound} THEN `{column}` END")


def windowed_demand_rate(path: str, periods: str, steps: int) -> Sql:
    """Mean forecast per period over the first `periods` steps (fractional: the last step counts in part).

    The path holds at most `steps` entries, so the sums are spelled out over its positions: an
    `aggregate` with a lambda would take the whole stage out of code generation.
    """
    weights, demands = [], []
    for position in range(steps):
        entry = f"get(`{path}`, {position})"
        weight = f"least(greatest({periods} - ({entry}.step - 1), 0D), 1D)"
        weights.append(f"coalesce({weight}, 0D)")
        demands.append(f"coalesce({weight} * {entry}.yhat, 0D)")
    if not weights:
        return sql("0D")
    return sql(f"greatest(({' + '.join(demands)}) / nullif({' + '.join(weights)}, 0D), 0D)")


def error_windows(path: str, length: str) -> Sql:
    """Sorted sums of the backtest errors over every run of `length` consecutive steps within one fold."""
    first, last = f"element_at(`{path}`, j)", f"element_at(`{path}`, j + {length} - 1)"
    window = (
        f"CASE WHEN j + {length} - 1 <= size(`{path}`) AND {first}.fold = {last}.fold "
        f"AND {last}.step - {first}.step = {length} - 1 "
        f"THEN aggregate(slice(`{path}`, j, {length}), 0D, (total, x) -> total + x.error) END"
    )
    starts = f"sequence(1, greatest(size(`{path}`) - {length} + 1, 1))"
    return sql(f"array_sort(filter(transform({starts}, j -> {window}), w -> w IS NOT NULL))")


def independent_windows(path: str, length: str) -> Sql:
    """How many independent draws the error windows of `length` periods are (Σ over folds).

    The windows of one fold slide by one period, so a fold of H_f scored periods holds H_f − length + 1
    windows, of which only H_f / length share no period. The overlapping ones still carry more than
    the disjoint ones: overlapping batch means (Meketon & Schmeiser, 1984) estimate a variance with
    2/3 the variance of the disjoint batches' estimate, i.e. as if from `OVERLAPPING_WINDOW_DRAWS` =
    1.5 times as many. A fold counts min(1.5·H_f / length, H_f − length + 1) draws (folds shorter than
    a window: none).
    """
    periods = f"size(filter(`{path}`, x -> x.fold = f))"
    draws = f"least({OVERLAPPING_WINDOW_DRAWS}D * {periods} / {length}, {periods} - {length} + 1D)"
    return sql(
        f"aggregate(array_distinct(transform(`{path}`, x -> x.fold)), 0D, "
        f"(total, f) -> total + CASE WHEN {periods} >= {length} THEN {draws} ELSE 0D END)"
    )


def conformal_rank(samples: str, level: str, independent: str | None = None) -> Sql:
    """`formulas.conformal_rank` of the sorted array `samples`: ⌈n·level·(m + 1)/m⌉, m independent draws."""
    return formulas.conformal_rank(
        sql(f"size(`{samples}`)"), sql(level), SPARK, None if independent is None else sql(independent)
    )


def empirical_quantile(samples: str, level: str, independent: str | None = None) -> Sql:
    """The sorted sample of conformal rank ⌈n·level·(m + 1)/m⌉, m independent draws (`conformal_rank`)."""
    return sql(f"element_at(`{samples}`, CAST({conformal_rank(samples, level, independent)} AS INT))")


def smoothed_quantile(samples: str, width: str, coverage: str) -> Sql:
    """`distributions.smoothed_empirical_quantile` of each row's sorted `samples`, in SQL.

    H(x), the mean of Fₙ over [x, x + w), rises from 0 at e₁ − w to 1 at eₙ; x is found by
    bisection over that range (`SMOOTHED_QUANTILE_STEPS` halvings, each one pass over the samples:
    exact to the range / 2²⁴, and linear in n where evaluating H at all 2n breaks is quadratic).
    NULL where w ≤ 0 (the plain quantile applies).
    """

    def smoothed(x: str) -> str:
        clipped = f"least(greatest({x} + `{width}` - e, 0D), `{width}`)"
        return f"aggregate(`{samples}`, 0D, (total, e) -> total + {clipped}) / (size(`{samples}`) * `{width}`)"

    middle = "(bounds.low + bounds.high) / 2D"
    step = (
        f"CASE WHEN {smoothed(middle)} >= {coverage} THEN named_struct('low', bounds.low, 'high', {middle}) "
        f"ELSE named_struct('low', {middle}, 'high', bounds.high) END"
    )
    start = f"named_struct('low', element_at(`{samples}`, 1) - `{width}`, 'high', element_at(`{samples}`, -1))"
    return sql(
        f"CASE WHEN `{width}` > 0D THEN aggregate(sequence(1, {SMOOTHED_QUANTILE_STEPS}), {start}, "
        f"(bounds, i) -> {step}, bounds -> bounds.high) END"
    )


def empirical_fill_rate_quantity(samples: str, allowed_shortage: str) -> Sql:
    """The smallest sorted sample x whose expected shortfall mean((e − x)⁺) is at most `allowed_shortage`."""
    shortfall = f"aggregate(`{samples}`, 0D, (total, e) -> total + greatest(e - x, 0D)) / size(`{samples}`)"
    return sql(
        f"coalesce(element_at(filter(`{samples}`, x -> {shortfall} <= {allowed_shortage}), 1), "
        f"element_at(`{samples}`, -1))"
    )


def rounding_share(levels: list[float]) -> Sql:
    """`distributions.rounding_allowance_share` of each row's `service_target`, in one small expression.

    Coefficient j of every configured target sits in one literal map, read at the row's target, and
    Horner's rule runs over the coefficients, so `rounding_variable` appears once per degree: a branch
    per target with the polynomial spelled out repeats it per term and target, which the optimizer
    then inlines. (An `aggregate` over an array of coefficients would take the stage out of code
    generation.) A target without coefficients gets 0.
    """
    coefficients = {level: rounding_allowance_coefficients(level) for level in levels}
    degree = max(len(c) for c in coefficients.values()) - 1

    def coefficient(power: int) -> str:
        entries = ", ".join(
            f"{literal(level)}, {literal(c[power] if power < len(c) else 0.0)}" for level, c in coefficients.items()
        )
        return f"element_at(map({entries}), `service_target`)"

    horner = coefficient(degree)
    for power in range(degree - 1, -1, -1):
        horner = f"({horner}) * `rounding_variable` + {coefficient(power)}"
    floor = "(1D - `service_target`)"
    return sql(
        f"CASE WHEN `rounding_variable` >= 1D THEN {floor} "
        f"ELSE least(greatest(coalesce({horner}, 0D), {floor}), 0.5D) END"
    )


def in_demand_classes(classes: tuple[str, ...]) -> Sql:
    """TRUE where the row's `demand_class` is one of `classes` (FALSE for a missing class)."""
    if not classes:
        return sql("FALSE")
    return sql(f"coalesce(`demand_class` IN ({', '.join(literal(c) for c in classes)}), FALSE)")


def joined_notes(*items: tuple[str, str]) -> Sql:
    """`'; '`-joined messages whose conditions hold, NULL when none does."""
    parts = ", ".join(f"CASE WHEN {condition} THEN {literal(message)} END" for condition, message in items)
    return sql(f"nullif(concat_ws('; ', {parts}), '')")
