"""The grades file: rows per object and grader, atomic rewrites, reading back."""

import csv
import os

import pytest

from lensfind.inspect.grades import GRADES_NAME, GradesError, GradesFile


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_grades_round_trip_and_replace(tmp_path):
    g = GradesFile(tmp_path)
    g.set(5, "a")
    g.set(7, "X")
    g.set(5, "C")  # grading again replaces the row
    rows = _rows(tmp_path / GRADES_NAME)
    assert [(r["object_id"], r["grade"]) for r in rows] == [("5", "C"), ("7", "X")]
    assert list(rows[0]) == ["object_id", "grade", "graded_utc"]  # no grader column unnamed
    assert rows[0]["graded_utc"].endswith("Z") and rows[0]["graded_utc"][:2] == "20"
    assert GradesFile(tmp_path).current() == {5: "C", 7: "X"}  # a new reader (a reload)


def test_graders_keep_their_own_rows(tmp_path):
    GradesFile(tmp_path).set(1, "B")
    ann, bob = GradesFile(tmp_path, "ann"), GradesFile(tmp_path, "bob")
    ann.set(1, "A")
    bob.set(1, "X")
    ann.set(2, "C")
    rows = _rows(tmp_path / GRADES_NAME)
    assert list(rows[0]) == ["object_id", "grade", "graded_utc", "grader"]
    assert [(r["object_id"], r["grade"], r["grader"]) for r in rows] == [
        ("1", "B", ""), ("1", "A", "ann"), ("1", "X", "bob"), ("2", "C", "ann")
    ]  # fmt: skip
    assert ann.current() == {1: "A", 2: "C"}
    assert bob.current() == {1: "X"}


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    g = GradesFile(tmp_path)
    g.set(1, "A")
    before = (tmp_path / GRADES_NAME).read_bytes()

    def killed(*args):  # the process dies between writing the new file and the rename
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(OSError, match="killed"):
        g.set(2, "B")
    assert (tmp_path / GRADES_NAME).read_bytes() == before
    assert GradesFile(tmp_path).current() == {1: "A"}


def test_bad_grades_are_refused(tmp_path):
    g = GradesFile(tmp_path)
    with pytest.raises(GradesError, match="not one of A, B, C, X"):
        g.set(1, "D")
    assert not (tmp_path / GRADES_NAME).exists()
    (tmp_path / GRADES_NAME).write_text("object_id,grade,graded_utc\n3,Q,2026-01-01T00:00:00Z\n")
    with pytest.raises(GradesError, match="line 2"):
        g.read()
    (tmp_path / GRADES_NAME).write_text("id,score\n3,0.5\n")
    with pytest.raises(GradesError, match="needs columns"):
        g.read()
    with pytest.raises(GradesError, match="commas"):
        GradesFile(tmp_path, "a,b")
