"""Named scenarios of the capital-circle model.

A scenario is a named set of the model's scenario inputs (all off by
default in ``models/aicircle.mdl``) with a one-line description. The inputs
are model variables, so a scenario is nothing but ``params`` for a run:
``model.simulate(params=scenario_params(model, "confidence-shock"))``. The
inputs are the study's *switches*: :func:`switches` is what the toolkit's
``switches=`` arguments (calibration screening, sensitivity bounds, the
generic report) take, so that they are never calibrated or varied.
"""

from __future__ import annotations

import dataclasses

from ..errors import UnknownName

__all__ = ["SCENARIOS", "Scenario", "available", "scenario_params", "switches"]


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    params: dict  # model variable name -> value


SCENARIOS = {
    sc.name: sc
    for sc in (
        Scenario("deepseek-price-shock",
                 "cheap open models (DeepSeek) cut the competitive revenue per user by 40% from 2026",
                 {"Open Model Price Shock Size": 0.4, "Open Model Price Shock Start": 2026}),
        Scenario("chipmaker-stops-reinvesting",
                 "the chipmaker stops investing in labs from 2026: loop R1 is cut",
                 {"Chipmaker Reinvestment Stop Size": 1, "Chipmaker Reinvestment Stop Start": 2026}),
        Scenario("stargate-shortfall",
                 "half of the announced outside funding (Stargate) does not arrive from 2026",
                 {"Stargate Shortfall Size": 0.5, "Stargate Shortfall Start": 2026}),
        Scenario("viral-app-boost",
                 "a viral app (Sora 2) brings 200 million extra users over half a year from late 2025",
                 {"Viral App Boost Size": 200, "Viral App Boost Start": 2025.75}),
        Scenario("credit-tightening",
                 "credit spreads widen by 3 points from 2026 (loop B5)",
                 {"Credit Tightening Size": 0.03, "Credit Tightening Start": 2026}),
        Scenario("confidence-shock",
                 "investors lose 90% of their confidence over a quarter in 2026",
                 {"Confidence Shock Size": 0.9, "Confidence Shock Start": 2026}),
    )
}


def available(model) -> dict:
    """The scenarios whose inputs ``model`` defines, by name."""
    out = {}
    for name, sc in SCENARIOS.items():
        try:
            for var in sc.params:
                model.resolve(var)
        except UnknownName:
            continue
        out[name] = sc
    return out


def switches(model) -> set:
    """The scenario inputs ``model`` defines, as the model spells them: switches, never calibrated."""
    return {model.resolve(var) for sc in available(model).values() for var in sc.params}


def scenario_params(model, name: str) -> dict:
    """``params`` for a run of ``model`` under scenario ``name``."""
    lib = available(model)
    if name not in lib:
        known = ", ".join(lib) or "none for this model"
        raise UnknownName(f"unknown scenario '{name}'; known: {known}")
    return dict(lib[name].params)
