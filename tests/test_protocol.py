import numpy as np
import pandas as pd
import pytest

from noharm.datasets import make_synthetic
from noharm.errors import ConfigError, GroupError
from noharm.experiments import PersonalizationStudy, RunOptions, run_study
from noharm.experiments.metrics import group_metrics
from noharm.experiments import SUMMARY_COLUMNS

FAST = dict(hidden_layers=2, hidden_units=16, attr_layers=2, max_epochs=10, patience=3)


def run_protocol(cohort, study, **kw):
    return run_study(study, cohort, RunOptions(**kw))


def test_small_protocol_results_shape_and_summary():
    c = make_synthetic(n_samples=300)
    res = run_protocol(c, PersonalizationStudy(n_seeds=1, n_folds=3, outer_splits=2, **FAST))
    r = res.results[res.results["role"] == "test"]
    assert set(r["model"]) == {"generic", "decoupled", "conditional-bias", "logreg", "hgb",
                               "reference", "guarded"}
    assert set(r["metric"]) == {"accuracy", "auroc", "balanced_accuracy", "brier", "ece"}
    # one row per model x outer split x seed x fold x group x metric
    assert len(r) == 7 * 2 * 1 * 3 * 5 * 5
    assert set(r.columns) == {"study", "model", "outer_split", "seed", "fold", "role",
                              "subgroup", "metric", "value", "n"}
    s = res.summary
    assert list(s.columns) == SUMMARY_COLUMNS
    assert len(s) == 7 * 5 * 5 + 7 * 2 * 2    # subgroup x model x metric, then per model
    #                                           the 2 gaps across each of the 2 attributes
    ref = s[s.model == "reference"]
    assert ref["gain"].isna().all() and (ref["verdict"] == "reference").all()
    cb = s[(s.model == "conditional-bias") & (s.subgroup == "all")
           & (s.metric == "accuracy")].iloc[0]
    keys = ["outer_split", "seed", "fold"]
    acc = r[(r.subgroup == "all") & (r.metric == "accuracy")]
    paired = (acc[acc.model == "conditional-bias"].set_index(keys)["value"]
              - acc[acc.model == "reference"].set_index(keys)["value"])
    assert cb["gain"] == pytest.approx(paired.mean())
    assert cb["gain_ci_low"] <= cb["gain"] <= cb["gain_ci_high"]  # two outer splits: a CI
    assert 0 <= cb["p_value"] <= cb["p_holm"] <= 1
    assert set(s["verdict"]) <= {"helps", "harms", "cannot tell", "reference"}
    text = res.text
    assert "old_female" in text and "Guard certificate" in text and "deployed" in text
    guard = res.results[res.results["role"] == "guard"]
    for o in (0, 1):                                   # one deployed model per subgroup
        dep = guard[(guard.outer_split == o) & (guard.metric == "deployed")]
        assert sorted(dep["subgroup"]) == sorted(set(c.subgroups))


def test_jobs_do_not_change_results():
    c = make_synthetic(n_samples=200)
    study = PersonalizationStudy(models=("generic", "logreg", "decoupled"), n_seeds=1,
                                 n_folds=3, **FAST)
    a = run_protocol(c, study, n_jobs=1).results
    b = run_protocol(c, study, n_jobs=2).results
    pd.testing.assert_frame_equal(a, b)


def test_planted_effect_conditional_bias_helps_small_group():
    """old_female's label relationship is flipped; the conditional-bias model must gain."""
    c = make_synthetic(n_samples=1000, random_state=0)
    s = run_protocol(c, PersonalizationStudy(models=("generic", "conditional-bias"),
                                             n_seeds=2, n_folds=3, hidden_layers=3,
                                             hidden_units=32, attr_layers=3,
                                             guard=False)).summary
    row = s[(s.subgroup == "old_female") & (s.model == "conditional-bias")
            & (s.metric == "accuracy")].iloc[0]
    assert row["gain"] > 0.05


def test_decoupled_single_class_group_is_skipped_with_a_note():
    c = make_synthetic(n_samples=300)
    c.y[c.subgroups == "old_female"] = 1
    res = run_protocol(c, PersonalizationStudy(n_seeds=1, n_folds=3, **FAST))
    assert "decoupled" not in set(res.results["model"])
    assert any("old_female" in n and "one class" in n for n in res.notes)
    assert {"generic", "conditional-bias"} <= set(res.results["model"])


def test_protocol_errors():
    c = make_synthetic(n_samples=300)
    with pytest.raises(ConfigError, match="unknown model 'svm'"):
        PersonalizationStudy(models=("svm",))
    from noharm.datasets import Cohort
    keep = (c.subgroups != "old_female").to_numpy().copy()
    keep[np.flatnonzero(~keep)[:3]] = True
    small = Cohort(c.X[keep].reset_index(drop=True), c.y[keep].reset_index(drop=True),
                   c.groups[keep].reset_index(drop=True))
    with pytest.raises(GroupError, match="'old_female' has 3 rows"):
        run_protocol(small, PersonalizationStudy(n_folds=5))


def test_group_metrics_match_fairlearn():
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, brier_score_loss,
                                 roc_auc_score)
    from noharm.fairness.groupwise import expected_calibration_error
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 80)
    g = rng.choice(["a", "b", "c"], 80)
    p = np.round(rng.random((3, 80)), 1)                  # ties on purpose
    m = group_metrics(y, p, g)
    for r in range(3):
        mf = MetricFrame(metrics={"accuracy": lambda t, s: accuracy_score(t, s >= 0.5),
                                  "auroc": roc_auc_score,
                                  "balanced_accuracy":
                                      lambda t, s: balanced_accuracy_score(t, s >= 0.5),
                                  "brier": brier_score_loss,
                                  "ece": expected_calibration_error},
                         y_true=y, y_pred=p[r], sensitive_features=g)
        mine = m[m.run == r].pivot(index="group", columns="metric", values="value")
        np.testing.assert_allclose(mine.loc[["a", "b", "c"]].to_numpy(), mf.by_group.to_numpy())
        np.testing.assert_allclose(mine.loc["all"].to_numpy(), mf.overall.to_numpy())


def test_no_guard_is_the_papers_cross_validation():
    """--no-guard: runs train on 4 of 5 folds (no guard fold), reference = generic MLP."""
    c = make_synthetic(n_samples=300)
    res = run_protocol(c, PersonalizationStudy(models=("generic", "logreg"), n_seeds=1,
                                               n_folds=5, guard=False, **FAST))
    assert not len(res.plan.rows(0, "guard"))
    r = res.results
    assert "guarded" not in set(r.model) and not (r.role == "guard").any()
    ref = r[r.model == "reference"].set_index(["subgroup", "metric", "seed", "fold"])["value"]
    gen = r[r.model == "generic"].set_index(["subgroup", "metric", "seed", "fold"])["value"]
    pd.testing.assert_series_equal(ref, gen)
    with pytest.raises(ConfigError, match="guard_size"):
        PersonalizationStudy(guard_size=0.9)
    with pytest.raises(ConfigError, match="generic reference"):
        PersonalizationStudy(models=("decoupled",))


def test_harm_guard_decides_on_rows_no_model_saw():
    """With the guard, the guard rows are disjoint from every run's train and early-stop
    rows, and the guarded row differs from both models only where the guard chose."""
    c = make_synthetic(n_samples=400)
    res = run_protocol(c, PersonalizationStudy(models=("generic", "decoupled"), n_seeds=1,
                                               n_folds=3, **FAST))
    guard = set(res.plan.rows(0, "guard"))
    assert len(guard) > 0
    for run in res.plan.runs(0):
        assert not guard & (set(run["train"]) | set(run["early_stop"]))
    assert "guarded" in set(res.results["model"])


