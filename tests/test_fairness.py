import numpy as np
import pytest
import torch
from fairlearn.metrics import (MetricFrame, equalized_odds_difference, false_positive_rate,
                               selection_rate, true_positive_rate)
from sklearn.metrics import balanced_accuracy_score

from noharm.errors import ConfigError, GroupError
from noharm.fairness import (average_odds_difference, balanced_accuracy, best_threshold,
                             bootstrap_ci, eod_proxy, fairness_report, spd_proxy,
                             statistical_parity_difference)
from noharm.fairness import binary_group_rates as group_rates
from noharm.fairness import signed_equal_opportunity_difference as equal_opportunity_difference
from noharm.fairness.metrics import equalized_odds_difference as eqodds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_fairlearn(seed):
    rng = np.random.default_rng(seed)
    n = 500
    a = rng.integers(0, 2, n)
    y = rng.integers(0, 2, n)
    pred = (rng.random(n) < 0.3 + 0.3 * a).astype(int)
    mf = MetricFrame(metrics={"sel": selection_rate, "tpr": true_positive_rate,
                              "fpr": false_positive_rate},
                     y_true=y, y_pred=pred, sensitive_features=a).by_group
    d = mf.loc[0] - mf.loc[1]
    assert statistical_parity_difference(y, pred, a) == pytest.approx(d["sel"])
    assert equal_opportunity_difference(y, pred, a) == pytest.approx(d["tpr"])
    assert average_odds_difference(y, pred, a) == pytest.approx(0.5 * (d["tpr"] + d["fpr"]))
    assert eqodds(y, pred, a) == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=a))
    assert balanced_accuracy(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))
    rates = group_rates(y, pred, a)
    assert rates.loc[1, "tpr"] == pytest.approx(mf.loc[1, "tpr"])


def test_bootstrap_ci_and_report():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 400)
    y = rng.integers(0, 2, 400)
    pred = (rng.random(400) < 0.2 + 0.4 * a).astype(int)
    est, lo, hi = bootstrap_ci(statistical_parity_difference, y, pred, a, n_boot=300)
    assert lo < est < hi < 0                             # planted: A=0 gets fewer positives
    rep = fairness_report(y, pred, a, n_boot=100)
    assert list(rep["metric"]) == ["spd", "eod", "aod", "eqodds", "balanced_accuracy"]


def test_proxies_equal_metrics_on_hard_predictions_and_have_gradients():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2, 300)
    y = rng.integers(0, 2, 300)
    pred = rng.integers(0, 2, 300)
    p = torch.tensor(pred, dtype=torch.float32, requires_grad=True)
    s = spd_proxy(p, torch.tensor(a))
    e = eod_proxy(p, torch.tensor(a), torch.tensor(y))
    assert s.item() == pytest.approx(statistical_parity_difference(y, pred, a), abs=1e-6)
    assert e.item() == pytest.approx(equal_opportunity_difference(y, pred, a), abs=1e-6)
    (s + e).backward()
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_best_threshold_is_the_grid_argmax():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1)
    t, ba = best_threshold(y, p)
    brute = max(balanced_accuracy_score(y, p >= g) for g in np.linspace(0, 1, 101))
    assert ba == pytest.approx(brute) and 0 < t < 1


def test_bad_inputs():
    y = np.array([0, 1, 0, 1])
    pred = np.array([0, 1, 1, 1])
    with pytest.raises(ConfigError, match="binarize"):
        statistical_parity_difference(y, pred, np.array([0, 1, 2, 1]))
    with pytest.raises(GroupError, match="unprivileged .*absent"):
        statistical_parity_difference(y, pred, np.ones(4, int))
    with pytest.raises(GroupError, match="no positive labels in the unprivileged"):
        equal_opportunity_difference(np.array([0, 1, 0, 0]), pred, np.array([1, 1, 0, 0]))


def test_the_top_level_names_are_fairlearns():
    """A fairlearn user's call works as typed: keyword sensitive_features, 6 groups."""
    import fairlearn.metrics as flm

    import noharm.fairness as nf
    rng = np.random.default_rng(0)
    y, yp = rng.integers(0, 2, 3000), rng.integers(0, 2, 3000)
    race = rng.choice(["a", "b", "c", "d", "e", "f"], 3000)
    for name in ("equalized_odds_difference", "demographic_parity_difference",
                 "demographic_parity_ratio", "equalized_odds_ratio"):
        assert getattr(nf, name)(y, yp, sensitive_features=race) == pytest.approx(
            getattr(flm, name)(y, yp, sensitive_features=race), abs=1e-12)
    a = (race == "a").astype(int)
    assert nf.equalized_odds_difference(y, yp, sensitive_features=a) == pytest.approx(
        eqodds(y, yp, a), abs=1e-12)          # two groups: the binary form's value
