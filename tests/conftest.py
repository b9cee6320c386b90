"""What the peer-model tests (test_conformance, test_pysd_crosscheck, test_xmile) share.

Since 2026-12-04 ``../shared/peer-models`` also holds 50 folders of subscripted models and
data / GET XLS / GET DIRECT models. aicircle's compiler (and its XMILE exporter) does not
support those constructs yet, and must refuse such a model with an ``UnsupportedFeature``
naming the construct and the variable, never return numbers. :func:`run_or_refusal` is
the one check of such a refusal: each peer test either gets the result of its call (and
compares it as before) or a refusal naming a construct of :data:`NOT_YET_SUPPORTED` in a
model of :data:`PEER_FOLDERS_ADDED_2026_12_04` (or ``_12_07``). Anything else fails the test.

Since 2026-12-07 it also holds the 23 model files PySD itself does not reproduce:
:data:`BEYOND_PYSD` says, in one place, what aicircle does with each (matches which
canonical output, or refuses it for which construct in which variable).

It also holds the one way the tests write a small model: :func:`mdl_text` / :func:`write_mdl`
(Vensim) and :func:`write_xmile` (XMILE).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

from aicircle.compiler import clean_name
from aicircle.errors import ModelReadError, UnsupportedFeature

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

# The 23 model files PySD 3.14 does not reproduce (peer-models/README, issue 27 item 4),
# each with what aicircle does with it; test_conformance holds aicircle to this table:
#   matches: aicircle's Euler run matches ``detail``, a canonical file of the model's folder,
#            at the 1e-3 of every peer model;
#   refused: loading the model raises ``error``, whose one-line message starts with the file
#            and holds ``detail``, "<construct> in '<variable>'";
#   random:  RANDOM UNIFORM; no random stream reproduces Vensim's, so the run is checked
#            for reproducibility by seed instead.
# ``pysd_runs``: PySD 3.14 runs it (test_pysd_crosscheck compares aicircle's run with
# PySD's where aicircle runs it too; elsewhere it skips, saying why).
class BeyondPySD(NamedTuple):
    outcome: str
    detail: str
    why: str
    pysd_runs: bool
    error: type | None = None


_LOST_MACRO = "a function the file does not define (a macro it lost)"
_UNEXPRESSED = "Vensim's XMILE export wrote '???' where XMILE cannot express the equation"

BEYOND_PYSD = {
    "samples/Query_file/Query_file.mdl": BeyondPySD(
        "random", "", "RANDOM UNIFORM: no random stream reproduces Vensim's numbers", True),
    "samples/Roessler_Chaos/roessler_chaos.mdl": BeyondPySD(
        "matches", "output.tab", "a chaotic attractor, sensitive to every rounding; PySD's run "
        "agrees with aicircle's", True),
    "samples/bpowers-hares_and_lynxes_modules/model.xmile": BeyondPySD(
        "matches", "output.csv", "XMILE modules (a <model> of the file run inside another): PySD "
        "ignores them and cannot parse their placeholder equations; aicircle's reader flattens "
        "them", False),
    "tests/active_initial/test_active_initial.xmile": BeyondPySD(
        "matches", "output_stella.csv", "Stella's version of the model (no ACTIVE INITIAL): its "
        "reference is Stella's output, not Vensim's output.tab", True),
    "tests/allocate_available/test_allocate_available.mdl": BeyondPySD(
        "refused", "ALLOCATE AVAILABLE in 'allocation mixed'", "Vensim's ALLOCATE AVAILABLE is "
        "not compiled yet (PySD 3.14 runs it)", True, UnsupportedFeature),
    "tests/arguments/test_arguments.mdl": BeyondPySD(
        "matches", "output.tab", "PySD lowers a DELAY's order while order x TIME STEP exceeds "
        "the delay time; Vensim and aicircle keep it", True),
    "tests/data_from_other_model/model_to_generate_data.mdl": BeyondPySD(
        "matches", "data.tab", "its output is data.tab (the data the folder's other model reads); "
        "PySD 3.14 stops with a ValueError (cannot broadcast (3,2,1) into (3,2))", False),
    "tests/data_from_other_model/test_data_from_other_model.mdl": BeyondPySD(
        "refused", "data variables in 'var 0dim'", "data no equation defines, taken from another "
        "run's output (data.vdf) given at run time; PySD stops on it too", False, UnsupportedFeature),
    "tests/get_time_value/test_get_time_value.mdl": BeyondPySD(
        "refused", "GET TIME VALUE relative to the initial time in 'get time 1 dim 0'",
        "PySD raises NotImplementedError on it and the canonical output lacks its columns", False,
        UnsupportedFeature),
    "tests/macro_expression/test_macro_expression.xmile": BeyondPySD(
        "refused", f"call of 'EXPRESSION MACRO', {_LOST_MACRO}, in 'macro output'",
        "Vensim's XMILE export left the macro out", False, ModelReadError),
    "tests/macro_multi_expression/test_macro_multi_expression.xmile": BeyondPySD(
        "refused", f"call of 'EXPRESSION MACRO', {_LOST_MACRO}, in 'macro output'",
        "Vensim's XMILE export left the macro out", False, ModelReadError),
    "tests/macro_multi_macros/test_macro_multi_macros.xmile": BeyondPySD(
        "refused", f"call of 'SECOND MACRO', {_LOST_MACRO}, in 'second macro output'",
        "Vensim's XMILE export left the macros out", False, ModelReadError),
    "tests/macro_stock/test_macro_stock.xmile": BeyondPySD(
        "refused", f"call of 'EXPRESSION MACRO', {_LOST_MACRO}, in 'macro output'",
        "Vensim's XMILE export left the macro out", False, ModelReadError),
    "tests/smooth_and_stock/test_smooth_and_stock.xmile": BeyondPySD(
        "matches", "output.tab", "a scalar stock beside a SMOOTH's state; PySD's run agrees with "
        "aicircle's", True),
    "tests/unicode_characters/unicode_test_model.mdl": BeyondPySD(
        "matches", "output.tab", "Vensim wrote output.tab in Latin-1, not UTF-8; PySD's run agrees "
        "with aicircle's", True),
    **{model: BeyondPySD("refused", f"equation left as '???' in '{name}'", _UNEXPRESSED, False,
                         ModelReadError)
       for model, name in (
           ("tests/subscript_1d_arrays/test_subscript_1d_arrays.xmile", "Rate A"),
           ("tests/subscript_constant_call/test_subscript_constant_call.xmile", "Subscripted Constant"),
           ("tests/subscript_mixed_assembly/test_subscript_mixed_assembly.xmile", "subset"),
           ("tests/subscript_multiples/test_multiple_subscripts.xmile", "Rate A"),
           ("tests/subscript_subranges/test_subscript_subrange.xmile", "Rate A"),
           ("tests/subscript_subranges_equal/test_subscript_subrange_equal.xmile", "Rate A"),
           ("tests/subscript_updimensioning/test_subscript_updimensioning.xmile", "One Dim"),
           ("tests/subscripted_flows/test_subscripted_flows.xmile", "Rate B"))},
}

# The folders added on 2026-12-07 (peer-models/README): those of the 23 files of
# BEYOND_PYSD that were not in the collection yet. Their other models (the .mdl files PySD
# reproduces) are held to what PEER_FOLDERS_ADDED_2026_12_04's are: matched, or refused
# for a construct of NOT_YET_SUPPORTED (the XMILE exporter's "subscripts").
PEER_FOLDERS_ADDED_2026_12_07 = frozenset((
    "samples/bpowers-hares_and_lynxes_modules", "tests/active_initial", "tests/allocate_available",
    "tests/data_from_other_model", "tests/macro_multi_macros", "tests/subscript_1d_arrays",
    "tests/subscript_constant_call", "tests/subscript_subranges_equal", "tests/subscript_updimensioning",
    "tests/unicode_characters",
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
    model defines, and ``path`` must be in a folder of :data:`PEER_FOLDERS_ADDED_2026_12_04`
    or :data:`PEER_FOLDERS_ADDED_2026_12_07`.
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
    assert folder in PEER_FOLDERS_ADDED_2026_12_04 | PEER_FOLDERS_ADDED_2026_12_07, (
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
