import math

import numpy as np
import pytest
import torch
from scipy.special import comb
from sklearn.linear_model import LinearRegression

from conftest import SMALL
from noharm.audit import (audit_models, audit_predictions,
                          benefit_of_personalization, bounds_table, chi2_per_sample,
                          explanation_costs, fit_bop_family, k_max, mcnemar_exact,
                          prob_error_lower_bound)
from noharm.audit.bounds import equal_groups
from noharm.errors import ConfigError, FeatureMismatchError, GroupError
from noharm.models import ConditionalBiasClassifier, GenericClassifier


def test_k_max_matches_design():
    assert k_max(8e9, chi2_per_sample(0.01)) == pytest.approx(17.97, abs=0.01)
    assert k_max(8e9, chi2_per_sample(0.01, "gaussian", sigma=0.1)) == pytest.approx(22.30,
                                                                                     abs=0.01)


def test_bound_falls_with_n_and_rises_with_k():
    c = chi2_per_sample(0.05)
    by_n = [prob_error_lower_bound(equal_groups(n, 3), c) for n in (100, 1000, 5000)]
    assert by_n[0] > by_n[1] > by_n[2]
    by_k = [prob_error_lower_bound(equal_groups(4096, k), c) for k in (2, 4, 6, 8)]
    assert by_k == sorted(by_k) and by_k[-1] > by_k[0]
    table, kmax = bounds_table(8e9, 0.01)
    row = table.set_index("k")["informative"]
    assert row[17] and not row[18]                       # k_max = 17.97 separates them


def test_bound_bad_inputs():
    with pytest.raises(ConfigError, match="eps"):
        bounds_table(100, 0.0)
    with pytest.raises(ConfigError, match="n must be >= 1"):
        bounds_table(0.5, 0.1)
    with pytest.raises(GroupError, match="empty"):
        equal_groups(10, 4)
    with pytest.raises(ConfigError, match="sigma"):
        chi2_per_sample(0.1, "gaussian")


def test_bop_of_model_against_itself_is_zero():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 100), rng.random(100)
    g = rng.choice(["a", "b"], 100)
    t = audit_predictions(y, p, p, g, n_boot=50)
    assert (t["bop"] == 0).all() and (t["ci_low"] == 0).all() and (t["ci_high"] == 0).all()
    assert set(t["verdict"]) == {"cannot tell"}


def test_verdicts_help_and_harm():
    """hp is built to fix most errors of h0 in group A and to break group B."""
    rng = np.random.default_rng(1)
    n = 200
    g = np.array(["A"] * n + ["B"] * n)
    y = rng.integers(0, 2, 2 * n)
    p0 = np.where(rng.random(2 * n) < 0.7, y, 1 - y).astype(float)      # 70 % right
    pp = p0.copy()
    a = g == "A"
    pp[a] = np.where(rng.random(n) < 0.95, y[a], 1 - y[a])              # A: 95 % right
    pp[~a] = np.where(rng.random(n) < 0.4, y[~a], 1 - y[~a])            # B: 40 % right
    t = audit_predictions(y, p0, pp, g, n_boot=200).query("metric == 'zero_one'")
    v = dict(zip(t["group"], t["verdict"]))
    assert v["A"] == "helps" and v["B"] == "harms" and v["min_group"] == "harms"
    gamma = t.set_index("group").loc["min_group", "bop"]
    assert gamma == pytest.approx(t.set_index("group").loc["B", "bop"])
    row = t.set_index("group").loc["min_group"]
    assert row["of_group"] == "B"                       # the row names its group
    p_b = t.set_index("group").loc["B", "p_value"]
    assert row["p_value"] == pytest.approx(min(1.0, 2 * p_b))   # adjusted for selection


def test_mcnemar_equals_exact_binomial():
    c0 = np.array([1] * 9 + [0] * 3 + [1] * 10, bool)
    cp = np.array([0] * 9 + [1] * 3 + [1] * 10, bool)
    b, c, p = mcnemar_exact(c0, cp)
    assert (b, c) == (9, 3)
    n = b + c
    expected = min(1.0, 2 * sum(comb(n, i) for i in range(0, min(b, c) + 1)) / 2 ** n)
    assert p == pytest.approx(expected, rel=1e-12)
    _, _, p_one = mcnemar_exact(c0, cp, alternative="greater")
    assert p_one == pytest.approx(sum(comb(n, i) for i in range(b, n + 1)) / 2 ** n)


def test_explanation_costs_on_hand_made_linear_model():
    w = torch.tensor([2.0, -1.0, 0.5, 0.0, 3.0])

    def forward(x, codes):
        return torch.sigmoid(x @ w)
    X = np.array([[1.0, 1.0, 1.0, 1.0, 0.1], [0.5, -2.0, 2.0, 1.0, -1.0]], np.float32)
    out = explanation_costs(forward, X, method="integrated_gradients", top_frac=0.4,
                            n_steps=200)
    sig = lambda z: 1 / (1 + math.exp(-z))
    # IG of sigmoid(w.x) from a zero baseline is proportional to w_i x_i: top 2 by |w_i x_i|
    # row 0: |w x| = 2, 1, .5, 0, .3 -> keep {0, 1}; row 1: 1, 2, 1, 0, 3 -> keep {4, 1}
    full = [sig(2 - 1 + 0.5 + 0.3), sig(1 + 2 + 1 - 3)]
    kept = [sig(2 - 1), sig(2 - 3)]
    dropped = [sig(0.5 + 0.3), sig(1 + 1)]
    np.testing.assert_allclose(out["sufficiency"], np.abs(np.subtract(full, kept)), atol=1e-5)
    np.testing.assert_allclose(out["incomprehensiveness"],
                               -np.abs(np.subtract(full, dropped)), atol=1e-5)
    sal = explanation_costs(forward, X, method="saliency", top_frac=0.4)
    assert sal["attributions"].shape == X.shape


def test_fit_bop_family():
    rng = np.random.default_rng(0)
    assert fit_bop_family(rng.choice([-1, 0, 1], 200))["family"] == "categorical"
    assert fit_bop_family(rng.normal(0, 0.1, 3000))["family"] == "gaussian"
    fam = fit_bop_family(rng.laplace(0, 0.2, 3000))
    assert fam["family"] == "laplace" and fam["laplace_b"] == pytest.approx(0.2, rel=0.1)


def test_regression_bop_squared_error():
    rng = np.random.default_rng(0)
    n = 600
    g = rng.choice(["a", "b"], n, p=[0.3, 0.7])
    X = rng.normal(size=(n, 3))
    y = X @ [1.0, -1.0, 0.5] + np.where(g == "a", 2.0, 0.0) + 0.1 * rng.normal(size=n)
    tr, te = np.arange(400), np.arange(400, n)
    h0 = LinearRegression().fit(X[tr], y[tr])
    Xg = np.column_stack([X, g == "a"])
    hp = LinearRegression().fit(Xg[tr], y[tr])
    t = audit_predictions(y[te], h0.predict(X[te]), hp.predict(Xg[te]), g[te],
                          task="regression", n_boot=200)
    assert list(t["metric"].unique()) == ["squared_error"]
    v = t.set_index("group")
    assert v.loc["a", "verdict"] == "helps" and v.loc["population", "bop"] > 0
    assert np.isnan(v["p_value"]).all()


def test_bop_needs_two_rows_per_group():
    with pytest.raises(GroupError, match="'b' has 1 row"):
        benefit_of_personalization(np.zeros(3), np.zeros(3), np.array(["a", "a", "b"]))


def test_models_on_different_features_are_refused(toy):
    X, y, g = toy
    h0 = GenericClassifier(**SMALL).fit(X, y)
    hp = GenericClassifier(**SMALL).fit(X.iloc[:, :4], y)
    with pytest.raises(FeatureMismatchError, match="different feature sets"):
        audit_models(h0, hp, X, y, sensitive_features=g)


def test_audit_models_end_to_end(toy):
    X, y, g = toy
    h0 = GenericClassifier(**SMALL).fit(X, y)
    hp = ConditionalBiasClassifier(**SMALL).fit(X, y, sensitive_features=g)
    res = audit_models(h0, hp, X, y, sensitive_features=g, n_boot=100,
                       method="input_x_gradient")
    assert set(res.table["metric"]) == {"zero_one", "log_loss", "brier",
                                        "sufficiency[input_x_gradient]",
                                        "incomprehensiveness[input_x_gradient]"}
    assert res.reliability["n_groups"] == 2 and res.family["family"] == "categorical"
    assert 0 <= res.reliability["pe_lower_bound"] <= 1


def test_equal_group_bound_closed_form_and_huge_n():
    """The closed form equals the per-group sum, and n = 1e308 answers at once (it built
    arrays of 2^k groups and ran out of memory)."""
    import time
    from noharm.audit.bounds import equal_groups_bound
    for n, k, c in [(100, 2, math.log1p(4e-4)), (50, 3, 0.3), (1e4, 10, 1e-3)]:
        assert equal_groups_bound(n, k, c) == pytest.approx(
            prob_error_lower_bound(equal_groups(n, k), c), abs=1e-12)
    t = time.perf_counter()
    table, kmax = bounds_table(1e308, 0.01)
    assert time.perf_counter() - t < 1.0
    assert kmax["categorical"] > 1000 and table["pe_lower_bound"].between(0, 1).all()
    with pytest.raises(GroupError, match="k <= log2"):
        equal_groups_bound(10, 4, 0.1)


def test_explanation_baseline_is_the_training_mean_by_default(toy):
    """The removed-feature value of the explanation costs is h0's training-row mean (not
    zero in raw units, far outside data such as age): computed from the training rows
    only, and the costs differ from the zero baseline."""
    from noharm.audit import audit_models
    from noharm.audit.run import explanation_baseline
    from noharm.models import GenericClassifier, ConditionalBiasClassifier
    X, y, g = toy
    X = X.assign(f0=X["f0"] + 60.0)                       # an age-like column
    rows = np.arange(len(y))
    tr, va, te = rows[:150], rows[150:190], rows[190:]
    h0 = GenericClassifier(hidden_layers=2, hidden_units=8, max_epochs=5).fit_runs(
        X, y, train_indices=[tr], val_indices=[va], seeds=[0])
    hp = ConditionalBiasClassifier(hidden_layers=2, hidden_units=8, attr_layers=2,
                                   max_epochs=5).fit_runs(
        X, y, sensitive_features=g, train_indices=[tr], val_indices=[va], seeds=[0])
    base = explanation_baseline(h0, "mean", X.shape[1])
    np.testing.assert_allclose(base, X.iloc[tr].mean().to_numpy(), rtol=1e-5)
    assert explanation_baseline(h0, "zero", X.shape[1]) is None
    kw = dict(sensitive_features=g.iloc[te], n_boot=50)
    mean_t = audit_models(h0, hp, X.iloc[te], y.iloc[te], **kw).table
    zero_t = audit_models(h0, hp, X.iloc[te], y.iloc[te], baseline="zero", **kw).table
    suff = lambda t: t[t.metric.str.startswith("sufficiency")]["cost_h0"].to_numpy()
    assert not np.allclose(suff(mean_t), suff(zero_t))
    with pytest.raises(ConfigError, match="baseline must be"):
        audit_models(h0, hp, X.iloc[te], y.iloc[te], baseline="median", **kw)


def test_audit_brier_cost_is_the_per_group_brier_score():
    from sklearn.metrics import brier_score_loss
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    g = np.where(rng.random(n) < 0.5, "a", "b")
    p0 = np.clip(0.5 + 0.3 * (y - 0.5) + 0.1 * rng.normal(size=n), 0.01, 0.99)
    pp = np.where(g == "a", np.clip(p0 + 0.25, 0, 1), p0)    # a's calibration broken
    t = audit_predictions(y, p0, pp, g, n_boot=200)
    t = t[t.metric == "brier"].set_index("group")
    for grp in ("a", "b"):
        m = g == grp
        assert t.loc[grp, "cost_h0"] == pytest.approx(brier_score_loss(y[m], p0[m]))
        assert t.loc[grp, "cost_hp"] == pytest.approx(brier_score_loss(y[m], pp[m]))
    assert t.loc["a", "verdict"] == "harms" and t.loc["b", "bop"] == 0


@pytest.mark.parametrize("eps, b", [(0.1, 0.388), (0.01, 0.2), (1.0, 0.5)])
def test_laplace_chi2_is_exact(eps, b):
    """1 + chi2(Laplace(eps, b) || Laplace(0, b)) by numerical integration (issue 33: the
    bound used e^{eps/b}, an upper bound that inflated k_max)."""
    import math

    from scipy import integrate

    from noharm.audit.bounds import chi2_per_sample, k_max

    def f(x):
        return (np.exp(-abs(x - eps) / b) / (2 * b)) ** 2 / (np.exp(-abs(x) / b) / (2 * b))
    total = sum(integrate.quad(f, lo, hi)[0] for lo, hi in ((-60, 0), (0, eps), (eps, 60)))
    assert chi2_per_sample(eps, "laplace", laplace_b=b) == pytest.approx(math.log(total),
                                                                         rel=1e-9)
    if (eps, b) == (0.1, 0.388):
        assert k_max(19868, chi2_per_sample(eps, "laplace", laplace_b=b)) == \
            pytest.approx(7.79, abs=0.01)
