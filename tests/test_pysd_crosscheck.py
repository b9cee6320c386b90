"""aicircle's compiled Euler against PySD's own run, on every peer model PySD reads.

Two independent implementations of the same semantics (PySD's Python backend and
aicircle's generated numpy code) must give the same numbers at the same step. PySD
writes a ``.py`` beside the model it translates, so each model is copied to
``tmp_path`` first. A model aicircle refuses with an ``UnsupportedFeature`` naming a
construct of ``conftest.NOT_YET_SUPPORTED`` (subscripts, spreadsheet lookups) is checked
for that refusal instead; any other failure of aicircle fails the test. Of the 23 files PySD
does not reproduce (``conftest.BEYOND_PYSD``), those both PySD and aicircle run are compared
too; the others are skipped, saying why: test_conformance holds each of them to the
canonical output, or to its refusal by name.
"""

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import aicircle as ac
from conftest import BEYOND_PYSD, run_or_refusal

with warnings.catch_warnings():
    # chardet, imported by PySD's backend, warns about its own deprecated module path
    warnings.simplefilter("ignore", DeprecationWarning)
    import pysd

PEER = Path(__file__).resolve().parents[2] / "shared" / "peer-models"
if not PEER.is_dir():
    pytest.skip("../shared/peer-models is absent (a user's clone has none)", allow_module_level=True)

pytestmark = [
    pytest.mark.peer,
    # PySD 3.14's run() calls DataFrame.set_index(inplace=True), deprecated by pandas 3
    pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning"),
    # PySD's own run of subscripted_round casts inf to int inside xarray (its warning, not ours)
    pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning"),
    # PySD 3.14 reads spreadsheets with pandas' default engines, which pandas 3 will change
    pytest.mark.filterwarnings("ignore:The default engine for reading:pandas.errors.Pandas4Warning"),
    pytest.mark.filterwarnings("ignore:The xlrd engine is deprecated:pandas.errors.Pandas4Warning"),
]

MODELS = sorted(p for folder in ("tests", "samples") for p in (PEER / folder).glob("*/*")
                if p.suffix in (".mdl", ".xmile"))

# Both sides evaluate the same floating-point operations, only sometimes in another
# order: differences are rounding (~1e-15 relative); 1e-9 leaves room for that to
# accumulate over a few thousand steps yet is far below any difference of meaning.
RELATIVE_TOLERANCE = 1e-9

# PySD reads these but aicircle refuses them on purpose, with this error.
AICIRCLE_REFUSES = {
    # not well-formed XML: two stocks nest inside an unclosed flow and PySD drops them
    "tests/non_negative_flows/test_non_negative_flows.xmile": (
        ac.ModelReadError, "2 of 8 variables cannot be read"),
    "tests/non_negative_flows/test_non_negative_flows_behavior.xmile": (
        ac.ModelReadError, "2 of 8 variables cannot be read"),
}

# Columns where PySD departs from Vensim and aicircle follows Vensim's canonical output
# (checked in test_conformance): PySD lowers a DELAY's order while order x TIME STEP
# exceeds the delay time (pysd.py_backend.statefuls.Delay.initialize); Vensim keeps it.
PYSD_DEVIATES = {
    ("tests/arguments/test_arguments.mdl", "Outer Multiple Middle Multiple Inner Multiple"),
}


def peer_id(path: Path) -> str:
    return path.relative_to(PEER).as_posix()


def clean_name(name) -> str:
    """Vensim's identity of a name: lower case, runs of spaces and underscores as one ``_``."""
    return re.sub(r"[\s_]+", "_", str(name).strip().lower())


def pysd_run(path: Path, tmp_path: Path):
    """PySD's Euler run of a copy of ``path`` (PySD writes its .py beside the copy).

    The model's folder is copied whole: the spreadsheets GET XLS/DIRECT reads are beside it.
    """
    folder = tmp_path / "model"
    shutil.copytree(path.parent, folder)
    copy = folder / path.name
    reader = pysd.read_vensim if path.suffix == ".mdl" else pysd.read_xmile
    return reader(str(copy)).run()


COMPARED = [p for p in MODELS if peer_id(p) not in AICIRCLE_REFUSES]


def test_every_listed_model_exists():
    ids = {peer_id(p) for p in MODELS}
    assert set(AICIRCLE_REFUSES) | {m for m, _ in PYSD_DEVIATES} <= ids


def why_not_compared(path: Path) -> str | None:
    """Why PySD's run of a model of BEYOND_PYSD cannot be compared with aicircle's, or None if it can."""
    beyond = BEYOND_PYSD.get(peer_id(path))
    if beyond is None or (beyond.outcome == "matches" and beyond.pysd_runs):
        return None
    if beyond.outcome == "random":
        return ("random functions: aicircle's stream (seeded numpy) is not PySD's (numpy's unseeded "
                "global one); test_conformance checks that aicircle's run is reproducible by seed")
    if beyond.outcome == "refused" and beyond.pysd_runs:
        return (f"aicircle refuses it by name ({beyond.detail}: {beyond.why}), so there is no run to "
                f"compare with PySD's; test_conformance checks the refusal")
    instead = (f"compares it with the canonical output ({beyond.detail})" if beyond.outcome == "matches"
               else f"checks its refusal by name ({beyond.detail})")
    return (f"PySD 3.14 does not reproduce this model (peer-models/README lists it: {beyond.why}); "
            f"test_conformance {instead} instead")


@pytest.mark.slow  # a PySD run of every peer model: about 10 s together
@pytest.mark.parametrize("path", COMPARED, ids=peer_id)
def test_compiled_euler_equals_pysd_run(path, tmp_path):
    reason = why_not_compared(path)
    if reason is not None:
        pytest.skip(reason)
    ours, construct = run_or_refusal(path, lambda: ac.load(path).simulate())
    if construct is not None:
        return  # refused naming a construct not supported yet (checked by run_or_refusal)
    theirs = pysd_run(path, tmp_path)
    np.testing.assert_allclose(ours.index.to_numpy(), theirs.index.to_numpy().astype(float),
                               rtol=0, atol=1e-12)  # the same additions of TIME STEP
    by_clean = {clean_name(c): c for c in ours.columns}
    shared = [c for c in theirs.columns if clean_name(c) in by_clean
              and (peer_id(path), c) not in PYSD_DEVIATES]
    assert shared, f"{path.name}: no column in common with PySD's {list(theirs.columns)}"
    failures = []
    for name in shared:
        expected = theirs[name].to_numpy(dtype=float)
        got = ours[by_clean[clean_name(name)]].to_numpy()
        if not np.array_equal(np.isnan(expected), np.isnan(got)):
            failures.append(f"{name}: NaN at different times")
            continue
        known = ~np.isnan(expected)
        if not known.any():
            continue
        scale = np.max(np.abs(expected[known]))
        scale = scale if scale > 0 else 1.0  # an all-zero column: compare absolutely
        with np.errstate(invalid="ignore"):  # inf - inf where both are infinite
            diff = np.where(got[known] == expected[known], 0.0, np.abs(got[known] - expected[known]))
        error = np.max(diff) / scale
        if not error <= RELATIVE_TOLERANCE:
            failures.append(f"{name}: relative error {error:.3g}")
    assert not failures, f"{peer_id(path)}: " + "; ".join(failures)


@pytest.mark.parametrize("path", [p for p in MODELS if peer_id(p) in AICIRCLE_REFUSES], ids=peer_id)
def test_model_pysd_runs_but_aicircle_refuses_raises(path):
    error, message = AICIRCLE_REFUSES[peer_id(path)]
    with pytest.raises(error, match=re.escape(message)):
        ac.load(path)
