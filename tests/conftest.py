"""What the peer-model tests (test_conformance, test_pysd_crosscheck, test_xmile) share.

Since 2026-12-04 ``../shared/peer-models`` also holds 50 folders of subscripted models and
data / GET XLS / GET DIRECT models. aicircle's compiler (and its XMILE exporter) does not
support those constructs yet, and must refuse such a model with an ``UnsupportedFeature``
naming the construct and the variable, never return numbers. :func:`run_or_refusal` is
the one check of such a refusal: each peer test either gets the result of its call (and
compares it as before) or a refusal naming a construct of :data:`NOT_YET_SUPPORTED` in a
model of :data:`PEER_FOLDERS_ADDED_2026_12_04`. Anything else fails the test.

It also holds the one way the tests write a small model: :func:`mdl_text` / :func:`write_mdl`
(Vensim) and :func:`write_xmile` (XMILE).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from aicircle.compiler import clean_name
from aicircle.errors import UnsupportedFeature

@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """The report's signing key (``aicircle._io.manifest_key``) in a folder of the test session's,
    never the user's ``~/.cache``; command lines the tests start inherit it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


PEER = Path(__file__).resolve().parents[2] / "shared" / "peer-models"

# Constructs aicircle does not support *yet* (another issue adds them): a peer model
# using one may be refused, naming it, instead of being compared. Each entry is the
# construct exactly as the compiler's (or exporter's) UnsupportedFeature message names it.
NOT_YET_SUPPORTED = (
    # the XMILE exporter does not write subscripted models yet: it says "subscripts"
    "subscripts",
    # data read from files beside the model: GET XLS/DIRECT DATA, CONSTANTS, LOOKUPS
    "data variables",
    "GET CONSTANTS",
    "lookup defined by GetLookupsStructure",
    "function GET TIME VALUE",
)

# The folders added to the collection on 2026-12-04, all using constructs of
# NOT_YET_SUPPORTED. Only their models may be refused for such a construct: every other
# peer model ran and matched before, and a refusal of one of them is a regression.
PEER_FOLDERS_ADDED_2026_12_04 = frozenset(f"tests/{name}" for name in (
    "arithmetics_exp", "array_with_line_break", "conditional_subscripts", "elm_count", "except",
    "except_multiple", "except_subranges", "forecast", "get_constants_subranges",
    "get_data_args_3d_xls", "get_lookups_subscripted_args", "get_lookups_subset", "get_time_value",
    "get_values_order", "get_with_missing_values_xlsx", "partial_range_definitions", "power",
    "reality_checks", "sample_if_true", "subrange_merge", "subscript_3d_arrays",
    "subscript_3d_arrays_lengthwise", "subscript_3d_arrays_widthwise", "subscript_aggregation",
    "subscript_definition", "subscript_docs", "subscript_element_name",
    "subscript_individually_defined_1_of_2d_arrays_from_floats",
    "subscript_individually_defined_stocks", "subscript_logicals", "subscript_mapping_vensim",
    "subscript_mixed_assembly", "subscript_multiples", "subscript_numeric_range",
    "subscript_selection", "subscript_subranges", "subscript_switching", "subscripted_flows",
    "subscripted_if_then_else", "subscripted_logicals", "subscripted_lookups",
    "subscripted_ramp_step", "subscripted_round", "subscripted_smooth", "subscripted_trend",
    "subscripted_trig", "subset_duplicated_coord", "tabbed_arrays", "vector_order", "vector_select",
))

# "<file>: <construct> in '<name>' is not supported by aicircle's compiler" (aicircle.compiler)
# "<file>: <construct> in '<name>' cannot be exported to XMILE" (aicircle.xmile)
_REFUSAL = re.compile(r"(?P<source>.+?): (?P<construct>.+?) in '(?P<name>[^']+)' "
                      r"(?:is not supported by aicircle's compiler|cannot be exported to XMILE)")


def _names_in(path: Path) -> str:
    """The model's text with names in Vensim's identity (lower case, one ``_`` per run of spaces)."""
    return re.sub(r"[\s_]+", "_", path.read_text(encoding="utf-8", errors="replace").lower())


def not_yet_supported_construct(path: Path, error: UnsupportedFeature) -> str:
    """The construct of NOT_YET_SUPPORTED that ``error`` names; AssertionError if it names none.

    The message must name ``path``, one construct of :data:`NOT_YET_SUPPORTED` and a name the
    model defines, and ``path`` must be in a folder of :data:`PEER_FOLDERS_ADDED_2026_12_04`.
    """
    message = str(error)
    found = _REFUSAL.fullmatch(message)
    assert found, f"{path.name}: refused, but the message names no construct and variable: {message}"
    assert Path(found["source"]).name == path.name, f"{path.name}: the refusal names another file: {message}"
    assert found["construct"] in NOT_YET_SUPPORTED, (
        f"{path.name}: refused for {found['construct']!r}, not a construct of NOT_YET_SUPPORTED "
        f"{NOT_YET_SUPPORTED}: {message}")
    assert clean_name(found["name"]) in _names_in(path), (
        f"{path.name}: the refusal names {found['name']!r}, which the model does not define: {message}")
    folder = path.relative_to(PEER).parent.as_posix()
    assert folder in PEER_FOLDERS_ADDED_2026_12_04, (
        f"{path.relative_to(PEER).as_posix()} ran before 2026-12-04 and is now refused: {message}")
    return found["construct"]


def run_or_refusal(path: Path, call):
    """``(call(), None)``, or ``(None, construct)`` if ``call`` refuses ``path`` for a not-yet-supported construct.

    Any other outcome (another error, or a refusal that fails
    :func:`not_yet_supported_construct`) fails the calling test.
    """
    try:
        return call(), None
    except UnsupportedFeature as error:
        return None, not_yet_supported_construct(path, error)


# --------------------------------------------------------------------------- small models

def mdl_text(*equations: str, initial_time=0, final_time=10, time_step=1, saveper="TIME STEP",
             time_units="Year") -> str:
    """A Vensim model's text: ``equations``, then the time settings as Vensim writes them.

    Each equation is dedented. One that holds a ``~`` (units, range, comment; or a block of
    several such equations, or a macro) is written as given; a bare ``lhs = rhs`` gets empty
    units and comment. The time settings may be numbers or expressions; ``time_units`` is
    their unit (TIME STEP and SAVEPER with the range ``[0,?]``, as in Vensim's own block).
    The text ends with the sketch marker, so a reader stops there.
    """
    blocks = ["{UTF-8}"]
    for equation in equations:
        equation = textwrap.dedent(equation).strip("\n")
        blocks.append(equation if "~" in equation else f"{equation}\n\t~\t\n\t~\t\t|")
    for name, value, units, comment in (
            ("INITIAL TIME", initial_time, time_units, "The initial time for the simulation."),
            ("FINAL TIME", final_time, time_units, "The final time for the simulation."),
            ("TIME STEP", time_step, f"{time_units} [0,?]", "The time step for the simulation."),
            ("SAVEPER", saveper, f"{time_units} [0,?]", "The frequency with which output is stored.")):
        blocks.append(f"{name} = {value}\n\t~\t{units}\n\t~\t{comment}\n\t|")
    blocks.append("\\\\\\---/// Sketch information - do not modify anything except names\n")
    return "\n".join(blocks)


def write_mdl(folder: Path, *equations: str, name="model.mdl", **time_settings) -> Path:
    """Write :func:`mdl_text` of ``equations`` to ``folder / name`` and return the path.

    ``time_settings``: ``initial_time``, ``final_time``, ``time_step``, ``saveper``, ``time_units``.
    """
    path = Path(folder) / name
    path.write_text(mdl_text(*equations, **time_settings), encoding="utf-8")
    return path


XMILE_TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<xmile xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0" version="1.0">
  <header><vendor>aicircle tests</vendor><product lang="en">aicircle</product></header>
  <sim_specs method="Euler" time_units="{time_units}">
    <start>{start}</start><stop>{stop}</stop><dt>{dt}</dt>
  </sim_specs>
  <model><variables>
{variables}
  </variables></model>
</xmile>
"""


def write_xmile(folder: Path, variables: str, *, start=0, stop=10, dt=0.5, time_units="Months",
                name="model.xmile") -> Path:
    """Write an XMILE model of the ``variables`` elements (XML text) to ``folder / name``."""
    path = Path(folder) / name
    path.write_text(XMILE_TEMPLATE.format(start=start, stop=stop, dt=dt, time_units=time_units,
                                          variables=variables), encoding="utf-8")
    return path
