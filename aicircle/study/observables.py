"""The capital-circle study's observable vocabulary (docs/design.md §3).

The 17 observables the shipped targets (``calibration/targets.csv``) are
written in; the toolkit's :mod:`aicircle.observables` functions take this
vocabulary wherever they read observable ids.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..observables import Observable, vocabulary

__all__ = ["OBSERVABLES"]

#: The observables of docs/design.md §3, id -> :class:`aicircle.observables.Observable` (read-only).
OBSERVABLES: Mapping[str, Observable] = vocabulary(
    ("lab_revenue", "flow", "$B/Year", "OpenAI revenue"),
    ("lab_rd_spend", "flow", "$B/Year", "OpenAI R&D spend"),
    ("lab_operating_loss", "flow", "$B/Year", "OpenAI operating loss"),
    ("lab_cash_burn", "flow", "$B/Year", "OpenAI net cash outflow"),
    ("lab_equity_raised", "flow", "$B/Year", "capital raised by OpenAI"),
    ("lab_valuation", "level", "$B", "OpenAI valuation"),
    ("lab_cash", "level", "$B", "OpenAI cash"),
    ("lab_users", "level", "million", "ChatGPT weekly active users"),
    ("lab_compute_gw", "level", "GW", "OpenAI compute capacity"),
    ("lab_compute_commitments", "level", "$B", "contracted compute purchases not yet paid"),
    ("hyperscaler_capex", "flow", "$B/Year",
     "big-four cash purchases of property and equipment (finance leases excluded)"),
    ("cloud_revenue", "flow", "$B/Year", "Azure + Google Cloud + AWS revenue"),
    ("chipmaker_datacenter_revenue", "flow", "$B/Year", "Nvidia data-centre revenue"),
    ("chipmaker_investment_in_labs", "flow", "$B/Year", "Nvidia's investment in OpenAI"),
    ("ai_capacity_gw", "level", "GW", "installed AI data-centre capacity"),
    ("vc_ai_share", "level", "fraction", "AI share of US venture funding"),
    ("investor_confidence", "level", "fraction", "investor confidence (no data)"),
)
