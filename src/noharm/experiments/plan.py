"""The split plan (DESIGN §8): the only module that makes row indices.

For each outer split the plan gives the rows of every role:

``test``
    never seen until evaluation (``test_size`` of the rows);
``guard``
    rows that no model trains or early-stops on, for selection (decision thresholds,
    debiasing) and the harm guard's test.  ``guard=0.2`` holds out a fixed 20 % of the
    rows (taken from the training part after the test rows are set aside).  The guard
    rows are scored once by the fitted models that are deployed, so what the guard
    tests is what is deployed (cross-fitting, which tests members the deployed ensemble
    averages, was dropped: its rows share fitted models and its tests exceeded their
    level);
``unseen``
    with ``unseen_share`` and cluster labels: whole clusters held out (mixed effects);
``train`` / ``early_stop``
    per run, seeds x folds inside the training part (stratified K-fold; with
    ``n_folds=1`` one stratified hold-out of ``early_stop_size`` per seed).

Every split is stratified by subgroup x label (by subgroup alone for a continuous
target, coarser when a stratum is too small) and grouped by patient id when the
cohort has one (rows of one patient never fall in two roles).  The plan is saved as
``splits.json`` together with the sha256 of the data it was made for.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_fraction, check_positive_int
from ..errors import ConfigError, GroupError
from ..splits import fold_ids, holdout

PLAN_FORMAT = 1
MAX_RUNS = 100_000


@dataclass(frozen=True)
class PlanSpec:
    """What defines a split plan (all of it goes into the results' identity)."""

    outer_splits: int = 1
    test_size: float = 0.2
    guard: str | float = "none"
    n_seeds: int = 5
    n_folds: int = 5
    early_stop_size: float = 0.2
    random_state: int = 0
    unseen_share: float = 0.0

    def validate(self) -> "PlanSpec":
        check_positive_int(self.outer_splits, name="outer_splits")
        check_fraction(self.test_size, name="test_size", high=0.9)
        check_positive_int(self.n_seeds, name="n_seeds")
        check_positive_int(self.n_folds, name="n_folds")
        check_fraction(self.early_stop_size, name="early_stop_size", high=0.9)
        check_positive_int(self.random_state, name="random_state", minimum=0)
        check_fraction(self.unseen_share, name="unseen_share", inclusive_low=True, high=0.5)
        runs = self.outer_splits * self.n_seeds * self.n_folds
        if runs > MAX_RUNS:
            raise ConfigError(f"outer_splits x seeds x folds = {runs:.3g} runs; at most "
                              f"{MAX_RUNS:,} fit in one study (choose fewer seeds, folds or "
                              "outer splits).")
        if isinstance(self.guard, str):
            if self.guard != "none":
                raise ConfigError(f"guard must be 'none' or a fraction of the rows (e.g. "
                                  f"0.24), got {self.guard!r}.")
        else:
            check_fraction(self.guard, name="guard", high=0.5)
            if self.test_size + self.guard >= 0.9:
                raise ConfigError(f"test_size + guard = {self.test_size + self.guard:.2f} "
                                  "leaves too few training rows; keep it below 0.9.")
        return self


@dataclass
class Plan:
    """Row indices of every role, per outer split (build with :func:`make_plan`)."""

    spec: PlanSpec
    n_rows: int
    data_sha256: str
    splits: list[dict] = field(default_factory=list)

    def runs(self, outer: int) -> list[dict]:
        """The seeds x folds runs of an outer split: ``seed``, ``fold``, ``model_seed``,
        ``train`` and ``early_stop`` (inside the training part, never a guard row)."""
        sp = self.splits[outer]
        part = np.asarray(sp["train_part"], dtype=np.int64)
        out = []
        for s, folds in enumerate(sp["folds"]):
            folds = np.asarray(folds)
            seed = s + 1
            k_max = int(folds.max()) + 1
            n_runs = 1 if self.spec.n_folds == 1 else k_max
            for k in range(n_runs):
                es = folds == 1 if self.spec.n_folds == 1 else folds == k
                out.append({"seed": seed, "fold": k, "model_seed": seed * 10 + k,
                            "train": part[~es], "early_stop": part[es]})
        return out

    def rows(self, outer: int, role: str) -> np.ndarray:
        """Rows of ``role`` (test, guard, unseen, train_part) of an outer split."""
        return np.asarray(self.splits[outer].get(role, []), dtype=np.int64)

    def to_dict(self) -> dict:
        return {"format": "noharm-plan", "format_version": PLAN_FORMAT,
                "spec": asdict(self.spec), "n_rows": self.n_rows,
                "data_sha256": self.data_sha256, "splits": self.splits}

    @property
    def sha256(self) -> str:
        """Fingerprint of the plan (spec, data and every index)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")))

    @classmethod
    def load(cls, path: str | Path) -> "Plan":
        """Read ``splits.json``; a file that is not a noharm plan is a ConfigError."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            if d.get("format") != "noharm-plan" or d.get("format_version") != PLAN_FORMAT:
                raise ValueError("not a noharm split plan")
            plan = cls(PlanSpec(**d["spec"]), int(d["n_rows"]), str(d["data_sha256"]),
                       list(d["splits"]))
            for sp in plan.splits:
                for role in ("test", "guard", "unseen", "train_part"):
                    idx = np.asarray(sp.get(role, []), dtype=np.int64)
                    if len(idx) and (idx.min() < 0 or idx.max() >= plan.n_rows):
                        raise ValueError(f"{role} rows outside 0..{plan.n_rows - 1}")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path} is not a valid noharm split plan ({exc}); rerun the "
                              "study to write it again.") from None
        return plan


def _unseen_clusters(clusters: np.ndarray, share: float, rng: np.random.Generator,
                     minimum: int = 50) -> list[str]:
    """Clusters of at least ``minimum`` rows (never the largest), drawn until they hold
    ``share`` of the rows."""
    values, counts = np.unique(clusters, return_counts=True)
    largest = values[counts.argmax()]
    n, held, chosen = len(clusters), 0, []
    for i in rng.permutation(len(values)):
        if values[i] == largest or counts[i] < minimum or held + counts[i] > 3 * share * n:
            continue
        chosen.append(str(values[i]))
        held += counts[i]
        if held >= share * n:
            break
    if not chosen:
        raise GroupError(_no_unseen_cluster(counts, share, minimum))
    return chosen


def _no_unseen_cluster(counts: np.ndarray, share: float, minimum: int) -> str:
    """Why no cluster can be held out: every cluster other than the largest has fewer
    than ``minimum`` rows, or more than the ``3 x share`` of the rows a held-out cluster
    may have; and the fix."""
    n, most = int(counts.sum()), 3 * share * int(counts.sum())
    others = np.sort(np.delete(counts, counts.argmax()))[::-1]
    top = ", ".join(str(int(c)) for c in np.sort(counts)[::-1][:6])
    sizes = f"{len(counts)} cluster(s) of {top}{', ...' if len(counts) > 6 else ''} rows"
    big = others[others >= minimum]
    if len(counts) == n:
        why = "every cluster has a single row (is the cluster column an id of each row?)"
        fix = "give a cluster column that groups rows (a site, a ward, an admission source)"
    elif not len(big):
        why = (f"a held-out cluster needs at least {minimum} rows and must not be the "
               f"largest; the data has {sizes}")
        fix = ("give a cluster column with larger clusters, or unseen_share 0 to test on "
               "seen clusters only")
    else:
        need = float(np.ceil(big.min() / (3 * n) * 100) / 100)
        why = (f"with unseen_share {share:g} a held-out cluster may have at most "
               f"{int(most)} rows (3 x {share:g} of {n}), and the smallest cluster of at "
               f"least {minimum} rows other than the largest has {int(big.min())} (the "
               f"data has {sizes})")
        fix = (f"raise unseen_share to {need:g}" if need <= 0.5 else
               "give a cluster column with more, smaller clusters")
        fix += ", or use unseen_share 0 to test on seen clusters only"
    return f"no cluster can be held out as unseen: {why}; {fix}."


def make_plan(spec: PlanSpec, *, groups: Any, y: Any = None, ids: Any = None,
              clusters: Any = None, data_sha256: str = "") -> Plan:
    """Build the split plan.

    Parameters
    ----------
    spec : the plan's parameters.
    groups : subgroup label per row (stratification and the check that every subgroup
        has training rows).
    y : labels to stratify by (None for a continuous target).
    ids : patient (or other) id per row; rows sharing an id stay in one role.
    clusters : cluster label per row, needed when ``spec.unseen_share > 0``.
    data_sha256 : fingerprint of the data the plan is made for.
    """
    spec = spec.validate()
    groups = np.asarray(groups).astype(str)
    y = None if y is None else np.asarray(y)
    ids = None if ids is None else np.asarray(ids)
    n = len(groups)
    splits = []
    for outer in range(spec.outer_splits):
        base = spec.random_state + outer
        idx = np.arange(n)
        sp: dict[str, Any] = {"outer_split": outer}
        if spec.unseen_share > 0:
            if clusters is None:
                raise ConfigError("unseen_share > 0 needs cluster labels.")
            cl = np.asarray(clusters).astype(str)
            chosen = _unseen_clusters(cl, spec.unseen_share, np.random.default_rng([base, 6]))
            is_unseen = np.isin(cl, chosen)
            idx = np.flatnonzero(~is_unseen)
            unseen = np.flatnonzero(is_unseen)
            if ids is not None:
                unseen = unseen[~np.isin(ids[unseen], ids[idx])]
            sp["unseen"] = unseen.tolist()
            sp["unseen_clusters"] = sorted(chosen)
        rest, test = holdout(idx, spec.test_size, groups, y, ids, base)
        sp["test"] = test.tolist()
        if not isinstance(spec.guard, str):
            rest, guard = holdout(rest, spec.guard / (1 - spec.test_size), groups, y, ids,
                                   base + 7919)
            sp["guard"] = guard.tolist()
        missing = sorted(set(groups[idx]) - set(groups[rest]))
        if missing:
            raise GroupError(f"subgroup {str(missing[0])!r} is absent from the training data; "
                             "merge it with another group or use coarser bins.")
        sp["train_part"] = rest.tolist()
        folds = []
        for seed in range(1, spec.n_seeds + 1):
            rs = seed + 1000 * base
            if spec.n_folds == 1:
                _, es = holdout(rest, spec.early_stop_size, groups, y, ids, rs)
                folds.append(np.isin(rest, es).astype(int).tolist())
            else:
                folds.append(fold_ids(rest, spec.n_folds, groups, y, ids, rs).tolist())
        sp["folds"] = folds
        splits.append(sp)
    return Plan(spec, n, data_sha256, splits)


__all__ = ["Plan", "PlanSpec", "make_plan"]
