"""Loaders that turn the public benchmark formats and the service's own export into `AttemptLog`s.

Every loader returns rows in chronological order per learner with learners contiguous, learner ids unique across
the files of one dataset, and one problem attempt per original response, a multi-skill problem being several rows
that share `attempt`. See each dataset's PROVENANCE.txt for the formats.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from learners.tracing.base import AttemptLog

EXPORT_HEADER = ("learner", "item", "skills", "correct", "timestamp")


@dataclass(frozen=True)
class Dataset:
    """A loaded benchmark: either a fixed train/test split or folds of learners (never both)."""

    name: str
    train: AttemptLog | None = None
    test: AttemptLog | None = None
    folds: tuple[AttemptLog, ...] = ()
    skill_names: dict[int, str] | None = None

    @property
    def split(self) -> str:
        return "train/test" if self.train is not None else f"{len(self.folds)}-fold"

    def all(self) -> AttemptLog:
        parts = [p for p in (self.train, self.test) if p is not None] + list(self.folds)
        return concat(parts)


def concat(logs: Sequence[AttemptLog]) -> AttemptLog:
    """Concatenate logs whose learner ids are disjoint; attempt ids stay increasing."""
    if not logs:
        return AttemptLog.from_rows([], [], [], [])
    shift = 0
    attempts = []
    for log in logs:
        attempts.append(log.attempt + shift)
        shift += int(log.attempt.max()) + 1 if len(log) else 0
    return AttemptLog(
        learner=np.concatenate([x.learner for x in logs]),
        item=np.concatenate([x.item for x in logs]),
        skill=np.concatenate([x.skill for x in logs]),
        correct=np.concatenate([x.correct for x in logs]),
        attempt=np.concatenate(attempts),
        timestamp=np.concatenate([x.timestamp for x in logs]),
    )


def _ints(line: str) -> list[int]:
    return [int(x) for x in line.strip().strip(",").split(",") if x.strip()]


def _blocks(path: Path, size: int) -> Iterator[list[str]]:
    """Non-empty lines grouped `size` at a time (the DKT-style formats)."""
    with path.open() as f:
        lines = [ln for ln in (raw.strip() for raw in f) if ln]
    if len(lines) % size:
        raise ValueError(f"{path}: {len(lines)} non-empty lines is not a multiple of {size}")
    for i in range(0, len(lines), size):
        yield lines[i : i + size]


def _build(learner: list[np.ndarray], item: list[np.ndarray], skill: list[np.ndarray],
           correct: list[np.ndarray], attempt: list[np.ndarray]) -> AttemptLog:  # fmt: skip
    if not learner:
        return AttemptLog.from_rows([], [], [], [])
    return AttemptLog.from_rows(
        np.concatenate(learner),
        np.concatenate(item),
        np.concatenate(skill),
        np.concatenate(correct),
        np.concatenate(attempt),
    )


def read_three_line(path: str | Path, *, first_learner: int = 0) -> AttemptLog:
    """DKT 3-line format (count; skill or question ids; 0/1), one attempt per response, no items."""
    path = Path(path)
    learner, item, skill, correct, attempt = [], [], [], [], []
    n_attempts = 0
    for u, (count, ids, answers) in enumerate(_blocks(path, 3)):
        s, c = _ints(ids), _ints(answers)
        if not (int(count) == len(s) == len(c)):
            raise ValueError(
                f"{path}: learner block {u} has count {count} but {len(s)} ids and {len(c)} answers"
            )
        n = len(s)
        learner.append(np.full(n, first_learner + u))
        item.append(np.full(n, -1))
        skill.append(np.asarray(s))
        correct.append(np.asarray(c))
        attempt.append(np.arange(n_attempts, n_attempts + n))
        n_attempts += n
    return _build(learner, item, skill, correct, attempt)


def load_builder(folder: str | Path) -> Dataset:
    """assist2009_builder: builder_train.csv / builder_test.csv, 3-line format, skills only."""
    folder = Path(folder)
    train = read_three_line(folder / "builder_train.csv")
    test = read_three_line(folder / "builder_test.csv", first_learner=int(train.learner.max()) + 1)
    return Dataset(name=folder.name, train=train, test=test)


def read_pid_four_line(path: str | Path) -> AttemptLog:
    """AKT pid 4-line format (user index, original id; problem ids; skill ids; 0/1).

    A multi-skill problem is stored as consecutive rows with the same problem id; they become one attempt. The
    user index (line 1) is the learner id, so folds of one dataset stay disjoint.
    """
    path = Path(path)
    learner, item, skill, correct, attempt = [], [], [], [], []
    n_attempts = 0
    for head, pids, sids, answers in _blocks(path, 4):
        user = _ints(head)[0]
        p, s, c = np.asarray(_ints(pids)), np.asarray(_ints(sids)), np.asarray(_ints(answers))
        if not (len(p) == len(s) == len(c)):
            raise ValueError(
                f"{path}: learner {user} has {len(p)} problems, {len(s)} skills, {len(c)} answers"
            )
        new = np.ones(len(p), dtype=bool)
        new[1:] = p[1:] != p[:-1]
        a = np.cumsum(new) - 1 + n_attempts
        n_attempts = int(a[-1]) + 1 if len(a) else n_attempts
        learner.append(np.full(len(p), user))
        item.append(p)
        skill.append(s)
        correct.append(c)
        attempt.append(a)
    return _build(learner, item, skill, correct, attempt)


def load_pid_akt(folder: str | Path) -> Dataset:
    """assist2009_pid_akt (or any folder in its format): the `*_fold<k>.csv` files are the folds."""
    folder = Path(folder)
    files = sorted(
        folder.glob("*fold*.csv"),
        key=lambda p: int("".join(ch for ch in p.stem.split("fold")[-1] if ch.isdigit()) or 0),
    )
    if not files:
        raise FileNotFoundError(f"{folder}: no *fold*.csv files")
    folds = tuple(read_pid_four_line(f) for f in files)
    names = None
    skill_file = folder / "skill.json"
    if skill_file.exists():
        names = {int(v): str(k) for k, v in json.loads(skill_file.read_text()).items()}
    return Dataset(name=folder.name, folds=folds, skill_names=names)


def read_question_skill_map(path: str | Path) -> dict[int, int]:
    """STATICS_qid_sid_sname: tab-separated qid, skill id, skill name, with a header."""
    out: dict[int, int] = {}
    with Path(path).open() as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows, None)
        for row in rows:
            if len(row) >= 2 and row[0].strip():
                out[int(row[0])] = int(row[1])
    return out


def read_statics(path: str | Path, qmap: dict[int, int], *, first_learner: int = 0) -> AttemptLog:
    """3-line format whose ids are questions; each question maps to one skill."""
    log = read_three_line(path, first_learner=first_learner)
    items = log.skill  # the ids of this format are questions
    lookup = np.full(int(items.max()) + 1 if len(items) else 1, -1, dtype=np.int64)
    for q, s in qmap.items():
        if q < len(lookup):
            lookup[q] = s
    skills = lookup[items]
    if (skills < 0).any():
        missing = sorted(set(items[skills < 0].tolist()))[:5]
        raise ValueError(f"{path}: questions without a skill in the map, e.g. {missing}")
    return AttemptLog(
        learner=log.learner, item=items.copy(), skill=skills, correct=log.correct, attempt=log.attempt,
        timestamp=log.timestamp,
    )  # fmt: skip


def load_statics(folder: str | Path) -> Dataset:
    """statics2011_dkvmn: STATICS_train.csv / STATICS_test.csv with the question->skill map."""
    folder = Path(folder)
    qmap = read_question_skill_map(folder / "STATICS_qid_sid_sname")
    train = read_statics(folder / "STATICS_train.csv", qmap)
    test = read_statics(folder / "STATICS_test.csv", qmap, first_learner=int(train.learner.max()) + 1)
    names: dict[int, str] = {}
    sid_file = folder / "STATICS_sid_sname"
    if sid_file.exists():
        with sid_file.open() as f:
            for row in csv.reader(f, delimiter="\t"):
                if len(row) >= 1 and row[0].strip().isdigit():
                    names[int(row[0])] = row[1] if len(row) > 1 else ""
    return Dataset(name=folder.name, train=train, test=test, skill_names=names or None)


def read_export(path: str | Path) -> AttemptLog:
    """The service's attempt-log export: CSV with header `learner,item,skills,correct,timestamp`.

    `skills` is `;`-separated (one row per attempt here, expanded into one row per skill); `timestamp` is seconds
    since the epoch or empty. Rows are sorted by (learner, timestamp) with ties kept in file order.
    """
    learner, item, skills, correct, stamp = [], [], [], [], []
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or tuple(reader.fieldnames[:5]) != EXPORT_HEADER:
            raise ValueError(f"{path}: header must be {','.join(EXPORT_HEADER)}, got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            ks = [int(k) for k in row["skills"].split(";") if k.strip()]
            if not ks:
                raise ValueError(f"{path}:{line}: no skills")
            if row["correct"].strip() not in ("0", "1"):
                raise ValueError(f"{path}:{line}: correct must be 0 or 1, got {row['correct']!r}")
            learner.append(int(row["learner"]))
            item.append(int(row["item"]) if row["item"].strip() else -1)
            skills.append(tuple(dict.fromkeys(ks)))
            correct.append(int(row["correct"]))
            ts = row["timestamp"].strip()
            stamp.append(float(ts) if ts else np.nan)
    n = len(learner)
    lrn = np.asarray(learner, dtype=np.int64)
    ts_arr = np.asarray(stamp, dtype=np.float64)
    order = (
        np.lexsort((np.arange(n), np.where(np.isnan(ts_arr), -np.inf, ts_arr), lrn))
        if n
        else np.zeros(0, int)
    )
    counts = np.array([len(skills[i]) for i in order], dtype=np.int64)
    rows = np.repeat(order, counts)
    return AttemptLog.from_rows(
        learner=lrn[rows],
        item=np.asarray(item, dtype=np.int64)[rows] if n else [],
        skill=np.array([k for i in order for k in skills[i]], dtype=np.int64),
        correct=np.asarray(correct, dtype=np.int64)[rows] if n else [],
        attempt=np.repeat(np.arange(n, dtype=np.int64), counts),
        timestamp=ts_arr[rows] if n else [],
    )


def write_export(path: str | Path, log: AttemptLog) -> None:
    """Write a log in the export format (one line per problem attempt); the inverse of `read_export`."""
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EXPORT_HEADER)
        for learner, a in log.attempts():
            ts = "" if a.timestamp is None else repr(a.timestamp)
            w.writerow([learner, a.item, ";".join(str(k) for k in a.skills), int(a.correct), ts])


def load(folder: str | Path) -> Dataset:
    """Recognise a dataset folder by its files."""
    folder = Path(folder)
    if (folder / "builder_train.csv").exists():
        return load_builder(folder)
    if (folder / "STATICS_qid_sid_sname").exists():
        return load_statics(folder)
    if any(folder.glob("*fold*.csv")):
        return load_pid_akt(folder)
    if folder.is_file() and folder.suffix == ".csv":
        return Dataset(name=folder.stem, folds=(read_export(folder),))
    raise ValueError(f"{folder}: not a known dataset layout (builder, pid_akt folds, statics, export CSV)")
