import numpy as np
import pandas as pd
import pytest

from noharm.datasets import make_synthetic
from noharm.errors import ConfigError, GroupError
from noharm.experiments import ProtocolConfig, run_protocol, summarize
from noharm.experiments.metrics import group_metrics
from noharm.experiments.protocol import make_runs
from noharm.report import markdown_report

FAST = dict(hidden_layers=2, hidden_units=16, attr_layers=2, max_epochs=10, patience=3)


def test_runs_are_disjoint_and_stratified():
    c = make_synthetic(n_samples=400)
    g, y = c.subgroups.to_numpy(), c.y.to_numpy()
    cfg = ProtocolConfig(n_seeds=2, n_folds=4)
    test, train_part, runs = make_runs(g, y, cfg, 0)
    assert len(runs) == 8 and len(np.intersect1d(test, train_part)) == 0
    assert abs(len(test) - 80) <= 1
    for r in runs:
        assert len(np.intersect1d(r["train"], r["val"])) == 0
        assert len(np.intersect1d(r["train"], test)) == 0
        assert set(g[r["val"]]) == set(g)                # every subgroup in every fold


def test_small_protocol_results_shape_and_summary():
    c = make_synthetic(n_samples=300)
    cfg = ProtocolConfig(n_seeds=1, n_folds=3, outer_splits=2, **FAST)
    res = run_protocol(c, cfg)
    r = res.results
    assert set(r["model"]) == {"generic", "decoupled", "conditional-bias", "logreg"}
    assert set(r["metric"]) == {"accuracy", "auroc", "balanced_accuracy"}
    # one row per model x outer split x seed x fold x group x metric
    assert len(r) == 4 * 2 * 1 * 3 * 5 * 3
    s = summarize(r)
    assert len(s) == 4 * 5
    gen = s[(s.model == "generic")]
    assert gen["gain_mean"].isna().all()
    cb = s[(s.model == "conditional-bias") & (s.group == "all")].iloc[0]
    paired = (r[(r.model == "conditional-bias") & (r.group == "all") & (r.metric == "accuracy")]
              .set_index(["outer_split", "seed", "fold"])["value"]
              - r[(r.model == "generic") & (r.group == "all") & (r.metric == "accuracy")]
              .set_index(["outer_split", "seed", "fold"])["value"])
    assert cb["gain_mean"] == pytest.approx(paired.mean())
    assert not np.isnan(cb["gain_ci_low"])                # two outer splits give a CI
    text = markdown_report(s)
    assert "old_female" in text and "gain conditional bias" in text


def test_jobs_do_not_change_results():
    c = make_synthetic(n_samples=200)
    cfg = dict(models=("generic", "logreg"), n_seeds=1, n_folds=2, **FAST)
    a = run_protocol(c, ProtocolConfig(n_jobs=1, **cfg)).results
    b = run_protocol(c, ProtocolConfig(n_jobs=2, **cfg)).results
    pd.testing.assert_frame_equal(a, b)


def test_planted_effect_conditional_bias_helps_small_group():
    """old_female's label relationship is flipped; the conditional-bias model must gain."""
    c = make_synthetic(n_samples=1000, random_state=0)
    cfg = ProtocolConfig(models=("generic", "conditional-bias"), n_seeds=2, n_folds=3,
                         hidden_layers=3, hidden_units=32, attr_layers=3)
    s = summarize(run_protocol(c, cfg).results)
    row = s[(s.group == "old_female") & (s.model == "conditional-bias")].iloc[0]
    assert row["gain_mean"] > 0.05


def test_decoupled_single_class_group_is_skipped_with_a_note():
    c = make_synthetic(n_samples=300)
    c.y[c.subgroups == "old_female"] = 1
    res = run_protocol(c, ProtocolConfig(n_seeds=1, n_folds=2, **FAST))
    assert "decoupled" not in set(res.results["model"])
    assert any("old_female" in n and "one class" in n for n in res.notes)
    assert {"generic", "conditional-bias"} <= set(res.results["model"])


def test_protocol_errors():
    c = make_synthetic(n_samples=300)
    with pytest.raises(ConfigError, match="unknown model 'svm'"):
        run_protocol(c, ProtocolConfig(models=("svm",)))
    from noharm.datasets import Cohort
    keep = (c.subgroups != "old_female").to_numpy().copy()
    keep[np.flatnonzero(~keep)[:3]] = True
    small = Cohort(c.X[keep].reset_index(drop=True), c.y[keep].reset_index(drop=True),
                   c.groups[keep].reset_index(drop=True))
    with pytest.raises(GroupError, match="'old_female' has 3 rows"):
        run_protocol(small, ProtocolConfig(n_folds=5))


def test_group_metrics_match_fairlearn():
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 80)
    g = rng.choice(["a", "b", "c"], 80)
    p = np.round(rng.random((3, 80)), 1)                  # ties on purpose
    m = group_metrics(y, p, g)
    for r in range(3):
        mf = MetricFrame(metrics={"accuracy": lambda t, s: accuracy_score(t, s >= 0.5),
                                  "auroc": roc_auc_score,
                                  "balanced_accuracy":
                                      lambda t, s: balanced_accuracy_score(t, s >= 0.5)},
                         y_true=y, y_pred=p[r], sensitive_features=g)
        mine = m[m.run == r].pivot(index="group", columns="metric", values="value")
        np.testing.assert_allclose(mine.loc[["a", "b", "c"]].to_numpy(), mf.by_group.to_numpy())
        np.testing.assert_allclose(mine.loc["all"].to_numpy(), mf.overall.to_numpy())


def test_harm_guard_rows_fall_back_where_the_fold_shows_harm():
    from noharm.experiments.protocol import _guarded
    rng = np.random.default_rng(0)
    n = 400
    groups = np.array(["a", "b"] * (n // 2))
    y = rng.integers(0, 2, n)
    p_gen = np.where(y == 1, 0.8, 0.2)[None, :].repeat(2, 0)
    p_pers = p_gen.copy()
    p_pers[:, groups == "b"] = 1 - p_pers[:, groups == "b"]     # harms b everywhere
    p_pers[:, groups == "a"] = np.where(y[groups == "a"] == 1, 0.9, 0.1)
    runs = [{"val": np.arange(0, 200)}, {"val": np.arange(200, 400)}]
    out = _guarded(y, groups, runs, p_gen, p_pers, 0.05)
    np.testing.assert_array_equal(out[:, groups == "b"], p_gen[:, groups == "b"])
    np.testing.assert_array_equal(out[:, groups == "a"], p_pers[:, groups == "a"])
    with pytest.raises(ConfigError, match="--harm-guard needs"):
        run_protocol(make_synthetic(n_samples=200),
                     ProtocolConfig(models=("generic", "logreg"), harm_guard=True))


def test_split_by_keeps_ids_together():
    c = make_synthetic(n_samples=600)
    ids = np.arange(600) // 3                                    # 3 rows per "patient"
    g, y = c.subgroups.to_numpy(), c.y.to_numpy()
    test, train_part, runs = make_runs(g, y, ProtocolConfig(n_seeds=2, n_folds=3), 0, ids)
    assert not set(ids[test]) & set(ids[train_part])
    assert abs(len(test) - 120) < 30
    for r in runs:
        assert not set(ids[r["train"]]) & set(ids[r["val"]])
