"""Loaders for the benchmark formats and the service's attempt-log export (tiny synthetic files only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from learners.tracing.base import AttemptLog
from learners.tracing.data import (
    concat,
    load,
    read_export,
    read_pid_four_line,
    read_three_line,
    write_export,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_three_line_format_with_trailing_commas_and_blank_lines(tmp_path: Path) -> None:
    f = write(tmp_path / "x.csv", "3\n7,7,9,\n1,0,1,\n\n2\n9,9\n0,0\n")
    log = read_three_line(f, first_learner=10)
    np.testing.assert_array_equal(log.learner, [10, 10, 10, 11, 11])
    np.testing.assert_array_equal(log.skill, [7, 7, 9, 9, 9])
    np.testing.assert_array_equal(log.correct, [1, 0, 1, 0, 0])
    np.testing.assert_array_equal(log.attempt, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(log.item, [-1] * 5)
    assert np.isnan(log.timestamp).all()


def test_three_line_format_rejects_a_wrong_count(tmp_path: Path) -> None:
    f = write(tmp_path / "x.csv", "3\n7,7\n1,0\n")
    with pytest.raises(ValueError, match="count 3"):
        read_three_line(f)


def test_pid_format_collapses_multi_skill_rows_into_one_attempt(tmp_path: Path) -> None:
    # problem 50 carries skills 1 and 2 (two consecutive rows); problem 50 answered again later is a new attempt
    f = write(tmp_path / "a_fold1.csv", "4,9001\n50,50,51,50\n1,2,1,1\n1,1,0,0\n7,9002\n52\n3\n1\n")
    log = read_pid_four_line(f)
    np.testing.assert_array_equal(log.learner, [4, 4, 4, 4, 7])
    np.testing.assert_array_equal(log.item, [50, 50, 51, 50, 52])
    np.testing.assert_array_equal(log.skill, [1, 2, 1, 1, 3])
    np.testing.assert_array_equal(log.attempt, [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(log.attempt_starts(), [0, 2, 3, 4])
    attempts = list(log.attempts())
    assert attempts[0] == (4, attempts[0][1]) and attempts[0][1].skills == (1, 2)


def test_pid_folder_is_loaded_as_folds(tmp_path: Path) -> None:
    write(tmp_path / "x_fold2.csv", "2,1\n5\n1\n0\n")
    write(tmp_path / "x_fold1.csv", "1,1\n6,6\n1,2\n1,1\n")
    write(tmp_path / "skill.json", '{"Addition": 1, "Subtraction": 2}')
    ds = load(tmp_path)
    assert ds.split == "2-fold"
    assert [int(f.learner[0]) for f in ds.folds] == [1, 2]  # fold1 first
    assert ds.skill_names == {1: "Addition", 2: "Subtraction"}
    both = ds.all()
    np.testing.assert_array_equal(both.attempt, [0, 0, 1])


def test_statics_maps_questions_to_skills(tmp_path: Path) -> None:
    write(tmp_path / "STATICS_qid_sid_sname", "qid\tskillid\tskillname\n1\t4\ta\n2\t4\ta\n3\t9\tb\n")
    write(tmp_path / "STATICS_sid_sname", "skillid\tskillname\n4\ta\n9\tb\n")
    write(tmp_path / "STATICS_train.csv", "3\n1,3,2,\n1,0,1,\n")
    write(tmp_path / "STATICS_test.csv", "1\n3\n1\n")
    ds = load(tmp_path)
    assert ds.split == "train/test"
    assert ds.train is not None and ds.test is not None
    np.testing.assert_array_equal(ds.train.item, [1, 3, 2])
    np.testing.assert_array_equal(ds.train.skill, [4, 9, 4])
    np.testing.assert_array_equal(ds.test.learner, [1])  # learner ids continue after the training file
    assert ds.skill_names == {4: "a", 9: "b"}


def test_statics_refuses_unmapped_questions(tmp_path: Path) -> None:
    write(tmp_path / "STATICS_qid_sid_sname", "qid\tskillid\tskillname\n1\t4\ta\n")
    write(tmp_path / "STATICS_train.csv", "1\n2\n1\n")
    write(tmp_path / "STATICS_test.csv", "1\n1\n1\n")
    with pytest.raises(ValueError, match="without a skill"):
        load(tmp_path)


def test_builder_folder(tmp_path: Path) -> None:
    write(tmp_path / "builder_train.csv", "2\n1,1\n0,1\n")
    write(tmp_path / "builder_test.csv", "1\n2\n1\n")
    ds = load(tmp_path)
    assert ds.name == tmp_path.name
    assert ds.test is not None
    np.testing.assert_array_equal(ds.test.learner, [1])


def test_export_round_trip_and_ordering(tmp_path: Path) -> None:
    f = write(
        tmp_path / "export.csv",
        "learner,item,skills,correct,timestamp\n2,11,3;4,1,200.5\n1,10,3,0,100\n2,12,4;4,0,100\n1,13,5,1,\n",
    )
    log = read_export(f)
    # sorted by learner then time (a missing time sorts first), skills expanded and de-duplicated
    np.testing.assert_array_equal(log.learner, [1, 1, 2, 2, 2])
    np.testing.assert_array_equal(log.item, [13, 10, 12, 11, 11])
    np.testing.assert_array_equal(log.skill, [5, 3, 4, 3, 4])
    np.testing.assert_array_equal(log.correct, [1, 0, 0, 1, 1])
    np.testing.assert_array_equal(log.attempt, [0, 1, 2, 3, 3])
    assert np.isnan(log.timestamp[0]) and log.timestamp[3] == 200.5
    out = tmp_path / "again.csv"
    write_export(out, log)
    again = read_export(out)
    for name in ("learner", "item", "skill", "correct", "attempt"):
        np.testing.assert_array_equal(getattr(again, name), getattr(log, name))
    np.testing.assert_array_equal(np.isnan(again.timestamp), np.isnan(log.timestamp))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("learner,item,skill,correct,timestamp\n1,2,3,1,\n", "header"),
        ("learner,item,skills,correct,timestamp\n1,2,,1,\n", "no skills"),
        ("learner,item,skills,correct,timestamp\n1,2,3,yes,\n", "correct must be 0 or 1"),
    ],
)
def test_export_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_export(write(tmp_path / "bad.csv", text))


def test_concat_keeps_attempts_distinct() -> None:
    a = AttemptLog.from_rows([0, 0], [1, 1], [1, 2], [1, 1], attempt=[0, 0])
    b = AttemptLog.from_rows([1], [2], [1], [0], attempt=[0])
    both = concat([a, b])
    np.testing.assert_array_equal(both.attempt, [0, 0, 1])
    np.testing.assert_array_equal(both.attempt_starts(), [0, 2])


def test_unknown_layout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a known dataset layout"):
        load(tmp_path)
