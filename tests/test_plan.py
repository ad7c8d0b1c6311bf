"""The split plan: roles are disjoint, stratified, grouped by id, serialisable."""
import json

import numpy as np
import pytest

from noharm.datasets import make_synthetic
from noharm.errors import ConfigError, GroupError
from noharm.experiments import Plan, PlanSpec, make_plan


def _gy(n=400, seed=0):
    c = make_synthetic(n_samples=n, random_state=seed)
    return c.subgroups.to_numpy(), c.y.to_numpy()


def test_cv_runs_are_disjoint_and_stratified():
    g, y = _gy()
    plan = make_plan(PlanSpec(n_seeds=2, n_folds=4), groups=g, y=y)
    test, part = plan.rows(0, "test"), plan.rows(0, "train_part")
    runs = plan.runs(0)
    assert len(runs) == 8 and not set(test) & set(part)
    assert abs(len(test) - 80) <= 1 and len(test) + len(part) == 400
    for r in runs:
        assert not set(r["train"]) & set(r["early_stop"])
        assert set(r["train"]) | set(r["early_stop"]) == set(part)
        assert "guard" not in r and not len(plan.rows(0, "guard"))
        assert set(g[r["early_stop"]]) == set(g)        # every subgroup in every fold
    # each seed's early-stopping folds partition the training part
    for seed in (1, 2):
        es = np.concatenate([r["early_stop"] for r in runs if r["seed"] == seed])
        assert sorted(es) == sorted(part)
    assert len({r["model_seed"] for r in runs}) == 8


def test_guard_rows_are_held_out_of_every_run():
    """The guard part is set aside once per outer split: no run trains or early-stops on
    it, and the runs together cover the rest of the training part."""
    g, y = _gy()
    plan = make_plan(PlanSpec(n_seeds=2, n_folds=5, guard=0.24), groups=g, y=y)
    guard, part = set(plan.rows(0, "guard")), set(plan.rows(0, "train_part"))
    assert not guard & part and abs(len(guard) - 96) <= 2
    for r in plan.runs(0):
        assert not (set(r["train"]) | set(r["early_stop"])) & guard
        assert set(r["train"]) | set(r["early_stop"]) == part


def test_holdout_guard_and_single_early_stop_run():
    g, y = _gy(500)
    plan = make_plan(PlanSpec(outer_splits=2, guard=0.2, n_seeds=1, n_folds=1), groups=g, y=y)
    for o in range(2):
        test, guard, part = (set(plan.rows(o, r)) for r in ("test", "guard", "train_part"))
        assert not test & guard and not test & part and not guard & part
        assert len(test | guard | part) == 500
        assert abs(len(guard) - 100) <= 2
        (run,) = plan.runs(o)
        assert abs(len(run["early_stop"]) - 0.2 * len(part)) <= 2
    assert plan.rows(0, "test").tolist() != plan.rows(1, "test").tolist()


def test_ids_stay_in_one_role():
    g, y = _gy(600)
    ids = np.arange(600) // 3                                    # 3 rows per "patient"
    plan = make_plan(PlanSpec(n_seeds=2, n_folds=3, guard=0.2), groups=g, y=y, ids=ids)
    test, guard, part = (plan.rows(0, r) for r in ("test", "guard", "train_part"))
    assert not set(ids[test]) & set(ids[part]) and not set(ids[guard]) & set(ids[part])
    assert not set(ids[test]) & set(ids[guard])
    assert abs(len(test) - 120) < 30
    for r in plan.runs(0):
        assert not set(ids[r["train"]]) & set(ids[r["early_stop"]])


def test_unseen_clusters_are_held_out_whole():
    g, y = _gy(1000)
    clusters = np.repeat(np.arange(10), 100).astype(str)
    plan = make_plan(PlanSpec(n_seeds=1, n_folds=1, guard=0.2, unseen_share=0.1),
                     groups=g, y=y, clusters=clusters)
    unseen = plan.rows(0, "unseen")
    held = set(plan.splits[0]["unseen_clusters"])
    assert set(clusters[unseen]) == held and len(held) >= 1
    seen = np.concatenate([plan.rows(0, r) for r in ("test", "guard", "train_part")])
    assert not set(clusters[seen]) & held
    with pytest.raises(ConfigError, match="cluster labels"):
        make_plan(PlanSpec(unseen_share=0.1), groups=g, y=y)


def test_plan_round_trip_and_fingerprint(tmp_path):
    g, y = _gy()
    plan = make_plan(PlanSpec(n_seeds=1, n_folds=3), groups=g, y=y, data_sha256="abc")
    plan.save(tmp_path / "splits.json")
    back = Plan.load(tmp_path / "splits.json")
    assert back.sha256 == plan.sha256 and back.data_sha256 == "abc"
    for a, b in zip(plan.runs(0), back.runs(0)):
        np.testing.assert_array_equal(a["train"], b["train"])
    other = make_plan(PlanSpec(n_seeds=1, n_folds=3, random_state=1), groups=g, y=y,
                      data_sha256="abc")
    assert other.sha256 != plan.sha256
    d = json.loads((tmp_path / "splits.json").read_text())
    d["splits"][0]["test"][0] = 10 ** 6
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="test rows outside"):
        Plan.load(tmp_path / "bad.json")
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(ConfigError, match="not a valid noharm split plan"):
        Plan.load(tmp_path / "junk.json")


def test_plan_errors():
    g, y = _gy()
    with pytest.raises(ConfigError, match="at most 100,000"):
        make_plan(PlanSpec(n_seeds=99999999999999999999), groups=g, y=y)
    with pytest.raises(ConfigError, match="guard must be 'none' or a fraction"):
        make_plan(PlanSpec(n_folds=3, guard="cross-fit"), groups=g, y=y)
    with pytest.raises(ConfigError, match="guard must be"):
        make_plan(PlanSpec(guard="always"), groups=g, y=y)
    g2 = g.copy()
    g2[g2 == "old_female"] = "old_male"
    g2[0] = "lonely"
    with pytest.raises(GroupError, match="absent from the training data"):
        make_plan(PlanSpec(test_size=0.5), groups=g2, y=y)


def test_grouped_folds_keep_patients_together_and_balance_strata_like_sklearn():
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    from noharm.splits import grouped_folds
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1500, 4000)                  # patients with 1..several rows
    strata = np.where(rng.random(4000) < 0.15, "pos", "neg")
    strata = np.char.add(strata, rng.choice(np.array(["_a", "_b", "_c"]), 4000))
    folds = grouped_folds(strata, ids, 5, seed=3)
    assert np.array_equal(folds, grouped_folds(strata, ids, 5, seed=3))   # reproducible
    assert not np.array_equal(folds, grouped_folds(strata, ids, 5, seed=4))
    for p in np.unique(ids):                           # a patient never spans two folds
        assert len(set(folds[ids == p])) == 1

    def spread(f):      # mean over strata of the sd across folds of the stratum's share
        return np.mean([np.std([np.mean(f[strata == s] == k) for k in range(5)])
                        for s in np.unique(strata)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = np.empty(4000, int)
        for k, (_, te) in enumerate(StratifiedGroupKFold(5, shuffle=True, random_state=3)
                                    .split(ids, strata, ids)):
            ref[te] = k
    assert spread(folds) <= 1.5 * spread(ref) + 1e-3, (spread(folds), spread(ref))
    assert np.bincount(folds).min() > 0.8 * 4000 / 5
