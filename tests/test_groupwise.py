"""Fairness for any number of groups (issue 15, parts 1-3): fairlearn as the oracle on
diabetes130's 6-valued race and race x gender, hand-made expectations, -1/1 labels,
per-group tables with bootstrap intervals, calibration."""
import numpy as np
import pandas as pd
import pytest

from noharm.errors import ConfigError, GroupError
from noharm.fairness import groupwise as gw

fairlearn = pytest.importorskip("fairlearn.metrics")

NAMES = ["demographic_parity_difference", "demographic_parity_ratio",
         "equalized_odds_difference", "equalized_odds_ratio",
         "equal_opportunity_difference", "equal_opportunity_ratio"]


@pytest.fixture(scope="module")
def diabetes(data_dir):
    """6,000 real diabetes130 rows (race: 6 values) with a simple rule's predictions."""
    df = pd.read_csv(data_dir / "diabetes130" / "diabetic_data.csv",
                     usecols=["race", "gender", "readmitted", "num_medications",
                              "number_inpatient", "time_in_hospital"])
    df = df[df.gender != "Unknown/Invalid"]
    df = df.sample(6000, random_state=0).reset_index(drop=True)    # fairlearn is slow
    y = (df.readmitted == "<30").astype(int).to_numpy()
    pred = ((df.number_inpatient > 0) | (df.num_medications > 25)).astype(int).to_numpy()
    w = 1.0 + (df.time_in_hospital.to_numpy() % 3)
    return df, y, pred, w


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("weighted", [False, True])
def test_agrees_with_fairlearn_on_race_and_race_x_gender(diabetes, name, method, weighted):
    df, y, pred, w = diabetes
    kw = {"sample_weight": w} if weighted else {}
    for sf in (df["race"], df[["race", "gender"]]):
        ours = getattr(gw, name)(y, pred, sensitive_features=sf, method=method, **kw)
        theirs = getattr(fairlearn, name)(y, pred, sensitive_features=sf, method=method, **kw)
        assert ours == pytest.approx(theirs, abs=1e-12), (name, method, weighted)
    assert df["race"].nunique() == 6


# hand-made cases: (y_true, y_pred, groups, metric, expected)
CASES = [
    # selection rates a 2/4, b 1/4 -> difference 0.25, ratio 0.5
    ([0, 1, 0, 1, 0, 1, 0, 1], [1, 1, 0, 0, 1, 0, 0, 0], list("aaaabbbb"),
     "demographic_parity_difference", 0.25),
    ([0, 1, 0, 1, 0, 1, 0, 1], [1, 1, 0, 0, 1, 0, 0, 0], list("aaaabbbb"),
     "demographic_parity_ratio", 0.5),
    # three groups: rates 1, 0.5, 0 -> difference 1, ratio 0
    ([1, 0, 1, 0, 1, 0], [1, 1, 1, 0, 0, 0], list("aabbcc"),
     "demographic_parity_difference", 1.0),
    ([1, 0, 1, 0, 1, 0], [1, 1, 1, 0, 0, 0], list("aabbcc"),
     "demographic_parity_ratio", 0.0),
    # TPR a 1, b 0; FPR a 1, b 0 -> equalized odds difference 1
    ([1, 0, 1, 0], [1, 1, 0, 0], list("aabb"), "equalized_odds_difference", 1.0),
    # identical groups -> no gap, ratio 1
    ([1, 0, 1, 0], [1, 0, 1, 0], list("aabb"), "equalized_odds_difference", 0.0),
    ([1, 0, 1, 0], [1, 0, 1, 0], list("aabb"), "equal_opportunity_ratio", 1.0),
    # TPR a 1/2, b 1 -> equal opportunity difference 0.5, ratio 0.5
    ([1, 1, 0, 1, 1, 0], [1, 0, 0, 1, 1, 0], list("aaabbb"),
     "equal_opportunity_difference", 0.5),
    ([1, 1, 0, 1, 1, 0], [1, 0, 0, 1, 1, 0], list("aaabbb"), "equal_opportunity_ratio", 0.5),
    # to_overall: rates a 1, b 0, overall 0.5 -> difference 0.5
    ([0, 0, 0, 0], [1, 1, 0, 0], list("aabb"), "demographic_parity_difference", 0.5),
    # numeric group labels work like strings
    ([0, 1, 0, 1], [1, 1, 0, 1], [3, 3, 7, 7], "demographic_parity_difference", 0.5),
]


@pytest.mark.parametrize("y, p, g, name, expected", CASES)
def test_hand_made_expectations(y, p, g, name, expected):
    method = "to_overall" if (name == "demographic_parity_difference" and y == [0] * 4) \
        else "between_groups"
    got = getattr(gw, name)(np.array(y), np.array(p), sensitive_features=g, method=method)
    assert got == pytest.approx(expected, abs=1e-12)
    assert got == pytest.approx(getattr(fairlearn, name)(
        np.array(y), np.array(p), sensitive_features=g, method=method), abs=1e-12)


def test_groups_without_positives_drop_or_count_as_zero_like_fairlearn(data_dir):
    """diabetes130 has 3 rows of gender Unknown/Invalid: in race x gender some of those
    groups have no positive label.  noharm leaves them out of the TPR gap by default;
    undefined="zero" gives fairlearn's value (the rate counted as 0)."""
    df = pd.read_csv(data_dir / "diabetes130" / "diabetic_data.csv",
                     usecols=["race", "gender", "readmitted", "number_inpatient"])
    y = (df.readmitted == "<30").astype(int).to_numpy()
    pred = (df.number_inpatient > 0).astype(int).to_numpy()
    sf = df[["race", "gender"]]
    ours = gw.equal_opportunity_difference(y, pred, sensitive_features=sf)
    zero = gw.equal_opportunity_difference(y, pred, sensitive_features=sf, undefined="zero")
    theirs = fairlearn.equal_opportunity_difference(y, pred, sensitive_features=sf)
    assert zero == pytest.approx(theirs, abs=1e-12)
    assert ours < zero
    rates = gw.group_rates(y, pred, sensitive_features=sf)
    assert rates["tpr"].isna().any()                   # the groups without positives


def test_vectorised_bootstrap_matches_the_generic_one(diabetes):
    """accuracy_score is bootstrapped vectorised; a lambda around it takes the generic
    per-replicate path: the same intervals up to Monte-Carlo error."""
    from sklearn.metrics import accuracy_score
    df, y, pred, _ = diabetes
    fast = gw.group_table(y, pred, sensitive_features=df["race"],
                          metrics={"acc": accuracy_score}, n_boot=400)
    slow = gw.group_table(y, pred, sensitive_features=df["race"],
                          metrics={"acc": lambda t, p: accuracy_score(t, p)}, n_boot=400)
    width = fast["acc_ci_high"] - fast["acc_ci_low"]
    assert ((fast["acc_ci_low"] - slow["acc_ci_low"]).abs() < 0.25 * width + 1e-9).all()
    assert ((fast["acc_ci_high"] - slow["acc_ci_high"]).abs() < 0.25 * width + 1e-9).all()


def test_minus_one_one_labels_need_pos_label():
    """-1/1 labels: with pos_label=1 fairlearn's value; without, a clear error (noharm
    used to give 0.5 where fairlearn and AIF360 give 0.25)."""
    y = np.array([-1, 1, -1, 1, -1, 1, -1, 1])
    p = np.array([1, 1, -1, -1, 1, -1, -1, -1])
    g = list("aaaabbbb")
    got = gw.demographic_parity_difference(y, p, sensitive_features=g, pos_label=1)
    assert got == pytest.approx(0.25)
    def selection_rate_pos1(y_true, y_pred):
        return fairlearn.selection_rate(y_true, y_pred, pos_label=1)
    frame = fairlearn.MetricFrame(metrics=selection_rate_pos1, y_true=y, y_pred=p,
                                  sensitive_features=g)
    assert got == pytest.approx(frame.difference())
    with pytest.raises(ConfigError, match="pos_label"):
        gw.demographic_parity_difference(y, p, sensitive_features=g)


def test_scores_and_one_group_are_refused():
    y, g = np.array([0, 1, 0, 1]), list("aabb")
    with pytest.raises(ConfigError, match="threshold them first"):
        gw.demographic_parity_difference(y, np.array([0.2, 0.7, 0.4, 0.9]),
                                         sensitive_features=g)
    with pytest.raises(GroupError, match="fewer than two groups"):
        gw.equal_opportunity_difference(y, y, sensitive_features=list("aaaa"))
    with pytest.raises(ConfigError, match="method"):
        gw.demographic_parity_difference(y, y, sensitive_features=g, method="worst")


def test_group_table_any_metric_with_bootstrap_intervals(diabetes):
    from sklearn.metrics import accuracy_score, recall_score
    df, y, pred, _ = diabetes
    t = gw.group_table(y, pred, sensitive_features=df["race"],
                       metrics={"accuracy": accuracy_score, "recall": recall_score},
                       n_boot=100)
    frame = fairlearn.MetricFrame(metrics={"accuracy": accuracy_score,
                                           "recall": recall_score},
                                  y_true=y, y_pred=pred, sensitive_features=df["race"])
    for grp in frame.by_group.index:
        assert t.loc[grp, "accuracy"] == pytest.approx(frame.by_group.loc[grp, "accuracy"])
        assert t.loc[grp, "recall"] == pytest.approx(frame.by_group.loc[grp, "recall"])
    assert t.loc["overall", "accuracy"] == pytest.approx(frame.overall["accuracy"])
    small, big = t.loc["Asian"], t.loc["Caucasian"]          # about 40 vs 4,500 rows
    assert small.accuracy_ci_low <= small.accuracy <= small.accuracy_ci_high
    assert (small.accuracy_ci_high - small.accuracy_ci_low) > \
        5 * (big.accuracy_ci_high - big.accuracy_ci_low)


def test_calibration_per_group():
    rng = np.random.default_rng(0)
    n = 20000
    g = np.where(rng.random(n) < 0.5, "a", "b")
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)                        # calibrated for everyone
    p_shown = np.where(g == "b", np.clip(p + 0.2, 0, 1), p)    # b over-predicted
    t = gw.calibration_by_group(y, p_shown, sensitive_features=g)
    assert t.loc["a", "ece"] < 0.02 and 0.15 < t.loc["b", "ece"] < 0.22
    assert t.loc["a", "ece_adaptive"] < 0.02
    from sklearn.metrics import brier_score_loss
    assert t.loc["overall", "brier"] == pytest.approx(brier_score_loss(y, p_shown))
    assert gw.expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0
    with pytest.raises(ConfigError, match="probabilities"):
        gw.expected_calibration_error([0, 1], [0.5, 1.5])


def test_gaps_by_run_equal_the_per_run_metrics():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    g = rng.choice(["x", "y", "z"], 300)
    pred = rng.integers(0, 2, (4, 300))
    gaps = gw.gaps_by_run(y, pred, g)
    for r in range(4):
        assert gaps["dp_difference"][r] == pytest.approx(
            gw.demographic_parity_difference(y, pred[r], sensitive_features=g))
        assert gaps["eqodds_difference"][r] == pytest.approx(
            gw.equalized_odds_difference(y, pred[r], sensitive_features=g))


def test_personalization_study_reports_the_gaps_each_model_leaves():
    from noharm.datasets import make_synthetic
    from noharm.experiments import PersonalizationStudy, run_study
    res = run_study(PersonalizationStudy(models=("generic", "decoupled", "logreg"),
                                         n_seeds=1, n_folds=3, max_epochs=3, hidden_layers=2),
                    make_synthetic(n_samples=300))
    gaps = res.results[res.results.role == "fairness"]
    assert set(gaps.subgroup) == {"attribute age", "attribute sex"}
    assert set(gaps.metric) == {"dp_difference", "eqodds_difference"}
    assert gaps.value.between(0, 1).all()
    s = res.summary[res.summary.subgroup == "attribute sex"]
    assert set(s.model) == {"generic", "decoupled", "logreg", "reference", "guarded"}
    from noharm.report import markdown_report               # the full tables keep them
    assert "Fairness gaps across each group attribute" in markdown_report(
        res.summary, title="t", full=True)


def test_equalized_odds_postprocessing_takes_several_groups():
    """Three groups (the wrapper used to refuse anything but 0/1): the post-processed
    predictions close the training gap that the raw scores leave."""
    from noharm.debias import equalized_odds_postprocessing
    rng = np.random.default_rng(0)
    n = 3000
    g = rng.choice(["x", "y", "z"], n)
    y = rng.integers(0, 2, n)
    shift = pd.Series(g).map({"x": 0.0, "y": 0.15, "z": 0.3}).to_numpy()
    score = np.clip(0.3 + 0.4 * y + shift + 0.15 * rng.normal(size=n), 0, 1)
    X = score[:, None]
    raw = gw.equalized_odds_difference(y, (score >= 0.5).astype(int), sensitive_features=g)
    opt = equalized_odds_postprocessing(lambda Z: np.asarray(Z)[:, 0], X, y, g)
    post = opt.predict(X, sensitive_features=g, random_state=0)
    fixed = gw.equalized_odds_difference(y, post, sensitive_features=g)
    assert raw > 0.3 and fixed < 0.1, (raw, fixed)
    with pytest.raises(GroupError, match="two groups"):
        equalized_odds_postprocessing(lambda Z: np.asarray(Z)[:, 0], X, y, ["x"] * n)


def test_reject_option_with_several_groups_meets_the_worst_pair_bound():
    """Three groups with different score shifts: with privileged="z" the fitted threshold
    and margin keep the worst-pair selection-rate gap within metric_ub (training rows) and
    on held-out rows it is far below the plain threshold's; the binary path is unchanged."""
    from noharm.debias import RejectOption
    gaps = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n = 6000
        g = rng.choice(["x", "y", "z"], n, p=[0.3, 0.3, 0.4])
        y = rng.integers(0, 2, n)
        shift = pd.Series(g).map({"x": -0.1, "y": 0.0, "z": 0.1}).to_numpy()
        p = np.clip(0.5 + 0.25 * (2 * y - 1) + shift + 0.15 * rng.normal(size=n), 0, 1)
        tr, te = np.arange(3000), np.arange(3000, n)
        roc = RejectOption(metric="spd", privileged="z", metric_ub=0.05).fit(
            y[tr], p[tr], g[tr])
        assert roc.constraint_met_ and roc.bias_ <= 0.05
        fitted = gw.demographic_parity_difference(
            y[tr], roc.predict(p[tr], g[tr]), sensitive_features=g[tr])
        assert fitted == pytest.approx(roc.bias_, abs=1e-9)     # the grid's own count
        plain = gw.demographic_parity_difference(y[te], (p[te] > 0.5).astype(int),
                                                 sensitive_features=g[te])
        held = gw.demographic_parity_difference(y[te], roc.predict(p[te], g[te]),
                                                sensitive_features=g[te])
        gaps.append((plain, held))
    plain, held = np.median(np.array(gaps), axis=0)
    assert plain > 0.15 and held < 0.08, gaps
    with pytest.raises(GroupError, match="privileged value"):
        RejectOption(privileged="w").fit(y, p, g)


def test_reliability_table_matches_sklearn_calibration_curve():
    from sklearn.calibration import calibration_curve
    rng = np.random.default_rng(3)
    p = rng.random(5000)
    y = (rng.random(5000) < p ** 1.5).astype(int)
    g = rng.choice(["a", "b", "c"], 5000)
    t = gw.reliability_table(y, p, sensitive_features=g, n_bins=10)
    for name, mask in (("all", np.ones(5000, bool)), ("b", g == "b")):
        rate, mean = calibration_curve(y[mask], p[mask], n_bins=10, strategy="uniform")
        d = t[t.group == name]
        np.testing.assert_allclose(d["observed_rate"], rate, atol=1e-12)
        np.testing.assert_allclose(d["mean_predicted"], mean, atol=1e-12)
    assert t[t.group == "all"]["n"].sum() == 5000
    with pytest.raises(ConfigError, match="probabilities"):
        gw.reliability_table(y, p * 2)


# Expectations on the small hand-made arrays of AIF360's own tests
# (tests/test_classification_metric.py: the generalized-entropy example, its second
# prediction), for every privileged / unprivileged split of its 3-valued attribute.  Values
# from AIF360 0.6.1's ClassificationMetric on those arrays, checked by hand for the first row
# (rates: group 0 TPR 1, FPR 0, selection 1/2; group 1 TPR 0, FPR 2/3, selection 1/2).
_FEAT = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
_Y = np.array([1, 0, 0, 1, 0, 0, 1, 0, 1, 1])
_P_A = np.array([1, 0, 0, 0, 1, 1, 1, 0, 1, 0])
_P_B = np.array([0, 1, 1, 0, 0, 0, 0, 1, 1, 1])
AIF360_CASES = [  # prediction, unprivileged, privileged, spd, eod, aod, disparate impact
    (_P_A, [0], [1], 0.0, 1.0, 1 / 6, 1.0),
    (_P_A, [1], [2], 0.0, -2 / 3, 0.0, 1.0),
    (_P_A, [2], [0, 1], 0.0, 1 / 6, -1 / 6, 1.0),
    (_P_B, [0], [1], 0.25, 0.0, 1 / 3, 2.0),
    (_P_B, [1], [2], -0.5, -2 / 3, -2 / 3, 1 / 3),
    (_P_B, [2], [0, 1], 5 / 12, 2 / 3, 7 / 12, 2.25),
]


@pytest.mark.parametrize("pred, unpriv, priv, spd, eod, aod, di", AIF360_CASES)
def test_aif360_hand_made_expectations(pred, unpriv, priv, spd, eod, aod, di):
    from noharm.fairness.metrics import (average_odds_difference,
                                         equal_opportunity_difference,
                                         statistical_parity_difference)
    rows = np.isin(_FEAT, unpriv + priv)
    y, p = _Y[rows], pred[rows]
    a = np.isin(_FEAT[rows], priv).astype(int)             # 1 = privileged
    assert statistical_parity_difference(y, p, a) == pytest.approx(spd, abs=1e-12)
    assert equal_opportunity_difference(y, p, a) == pytest.approx(eod, abs=1e-12)
    assert average_odds_difference(y, p, a) == pytest.approx(aod, abs=1e-12)
    # the any-number-of-groups forms: unsigned gap and min/max ratio of the same rates
    assert gw.demographic_parity_difference(y, p, sensitive_features=a) == \
        pytest.approx(abs(spd), abs=1e-12)
    assert gw.equal_opportunity_difference(y, p, sensitive_features=a) == \
        pytest.approx(abs(eod), abs=1e-12)
    assert gw.demographic_parity_ratio(y, p, sensitive_features=a) == \
        pytest.approx(min(di, 1 / di), abs=1e-12)
