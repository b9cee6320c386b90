"""Writing the user's files safely (aicircle._io): which outputs are refused, and atomic writes.

The commands' use of these checks is tested in test_cli and test_security; here each rule
is tested on its own.
"""

import json
import os
import stat

import pytest

from aicircle import _io
from aicircle.errors import InvalidInput


def _fails_half_way(path):
    path.write_text("half of a new file")
    raise KeyboardInterrupt


@pytest.mark.parametrize("path", [None, "-"])
def test_standard_output_and_no_output_are_always_accepted(path):
    _io.check_output(path, "--out")


def test_an_output_that_is_an_input_is_refused_even_through_a_symlink(tmp_path):
    model = tmp_path / "m.mdl"
    model.write_text("the model")
    (tmp_path / "link.csv").symlink_to(model)
    with pytest.raises(InvalidInput, match=r"--out .*link.csv is the input MODEL .*m.mdl"):
        _io.check_output(tmp_path / "link.csv", "--out", [("MODEL", model)], force=True)


def test_a_file_aicircle_did_not_write_is_refused_without_force(tmp_path):
    mine = tmp_path / "notes.csv"
    mine.write_text("my,notes\n")
    with pytest.raises(InvalidInput, match="notes.csv exists and was not written by aicircle; use --force"):
        _io.check_output(mine, "--out", owned=_io.owned_run_csv)


def test_force_or_ownership_allows_replacing_a_file(tmp_path):
    mine, run = tmp_path / "notes.csv", tmp_path / "run.csv"
    mine.write_text("my,notes\n")
    run.write_text("time,x\n0,1\n")
    _io.check_output(mine, "--out", force=True, owned=_io.owned_run_csv)
    _io.check_output(run, "--out", owned=_io.owned_run_csv)


@pytest.mark.parametrize("path, message", [("", "--out is empty"), (".", "is a folder, not a file")])
def test_an_empty_path_or_a_folder_is_refused(tmp_path, monkeypatch, path, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match=message):
        _io.check_output(path, "--out")


@pytest.mark.parametrize("data, owned", [
    ([{"id": "a", "predicted": 1.0}], True),  # validate --json
    ({"param": "k", "range": [0, 1], "folds": []}, True),  # tipping --json
    ({"method": "oat", "indices": {}}, True),  # sensitivity --json
    ({"my": "settings"}, False),
    ([1, 2, 3], False),
])
def test_json_outputs_are_recognised_by_their_keys(tmp_path, data, owned):
    path = tmp_path / "out.json"
    path.write_text(json.dumps(data))
    assert _io.owns(_io.owned_json, path) is owned


def test_unreadable_json_is_not_aicircles(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("{not json")
    assert _io.owns(_io.owned_json, path) is False


def test_an_interrupted_write_leaves_the_previous_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "run.csv"
    target.write_text("the previous run")
    with pytest.raises(KeyboardInterrupt):
        _io.write_atomic(target, _fails_half_way)
    assert target.read_text() == "the previous run"
    assert [p.name for p in tmp_path.iterdir()] == ["run.csv"]


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "run.csv"
    target.write_text("old")
    os.chmod(target, 0o640)
    _io.write_atomic(target, lambda p: p.write_text("new"))
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_writing_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("old")
    link.symlink_to(target)
    _io.write_atomic(link, lambda p: p.write_text("new"))
    assert link.is_symlink() and target.read_text() == "new"


def test_writing_into_a_missing_folder_is_refused_naming_it(tmp_path):
    with pytest.raises(InvalidInput, match="folder .*missing does not exist"):
        _io.write_atomic(tmp_path / "missing" / "run.csv", lambda p: p.write_text("x"))
