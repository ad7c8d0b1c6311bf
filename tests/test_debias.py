import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from noharm import debias as D
from noharm.errors import ConfigError, GroupError, LengthMismatchError
from noharm.fairness import balanced_accuracy, statistical_parity_difference
from noharm.models import GenericClassifier


@pytest.fixture(scope="module")
def planted():
    """A model that learned a planted bias: A shifts both a feature and the label."""
    rng = np.random.default_rng(0)
    n = 2400
    a = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    X[:, 0] += 1.5 * a
    y = ((X[:, 1] + X[:, 2] + 1.2 * a + 0.5 * rng.normal(size=n)) > 0.6).astype(int)
    tr, va = np.arange(0, 1600), np.arange(1600, n)
    m = GenericClassifier(hidden_layers=3, hidden_units=32, max_epochs=30,
                          random_state=0).fit(X[tr], y[tr])
    return m, X[va], y[va], a[va]


def _planted_nets(seeds=(0, 1, 2, 3, 4)):
    """Five networks (own data draw and seed): rows 0-1599 train, 1600-1999 validation
    (the methods select there), 2000-2399 held-out test rows."""
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        n = 2400
        a = rng.integers(0, 2, n)
        X = rng.normal(size=(n, 8)).astype(np.float32)
        X[:, 0] += 1.5 * a
        y = ((X[:, 1] + X[:, 2] + 1.2 * a + 0.5 * rng.normal(size=n)) > 0.6).astype(int)
        m = GenericClassifier(hidden_layers=3, hidden_units=32, max_epochs=30,
                              random_state=seed).fit(X[:1600], y[:1600])
        out.append((m, X, y, a))
    return out


@pytest.fixture(scope="module")
def planted_nets():
    return _planted_nets()


# (name, function, options, held-out median |SPD| must fall below share x the original's)
# at DEFAULT settings.  Measured (3 seeds): dynamic pruning, cluster pruning, adaptive
# pruning, bias gradient and both engineered gradients cut it by 15-90 %, the per-row
# adversary to a median 0.51 of the original (5 networks); random perturbation, static
# pruning and seed 004's batch critic do not reliably (held to "no worse").
METHODS = [
    ("random_perturbation", D.random_perturbation, {}, None),
    ("pruning", D.pruning, {}, None),
    ("pruning_dynamic", D.pruning, {"dynamic": True}, 0.7),
    ("adaptive_pruning", D.adaptive_pruning, {}, 0.9),
    ("cluster_pruning", D.cluster_pruning, {}, 0.9),
    ("bias_gradient", D.bias_gradient, {}, 0.7),
    ("engineered_gradient", D.engineered_gradient, {}, 0.7),
    ("engineered_gradient_fixed", D.engineered_gradient, {"dynamic": False}, 0.7),
    ("adversarial", D.adversarial, {}, 0.7),
    ("adversarial", D.adversarial, {"critic": "batch"}, None),
]


@pytest.mark.parametrize("name, fn, kw, share", METHODS,
                         ids=[m[0] + ("_batch" if m[2].get("critic") == "batch" else "")
                              for m in METHODS])
def test_each_method_at_defaults_on_held_out_rows(planted_nets, name, fn, kw, share):
    va, te = np.arange(1600, 2000), np.arange(2000, 2400)
    before, after, ba0, ba1 = [], [], [], []
    for k, (m, X, y, a) in enumerate(planted_nets):
        r = fn(m, X[va], y[va], a[va], metric="spd", **kw)
        assert r.method == name
        if k == 0:     # the reported numbers are those of the returned model (validation)
            assert r.constraint_met and len(r.trace) > 1
            assert statistical_parity_difference(y[va], r.predict(X[va], a[va]), a[va]) \
                == pytest.approx(r.bias)
            assert r.balanced_accuracy >= 0.95 * r.original.balanced_accuracy - 1e-12
        p = D.Evaluator(X[te], y[te], a[te]).proba(D.as_module(m))
        orig = (p >= r.original.threshold).astype(int)
        pred = r.predict(X[te], a[te])
        before.append(abs(statistical_parity_difference(y[te], orig, a[te])))
        after.append(abs(statistical_parity_difference(y[te], pred, a[te])))
        ba0.append(balanced_accuracy(y[te], orig))
        ba1.append(balanced_accuracy(y[te], pred))
    assert np.median(before) > 0.08                               # the planted bias
    limit = np.median(before) + 0.02 if share is None else share * np.median(before)
    assert np.median(after) < limit, (name, before, after)
    assert np.median(ba1) >= np.median(ba0) - 0.06, (ba0, ba1)     # accuracy kept


def test_original_comes_back_when_nothing_meets_the_constraint(planted):
    m, X, y, a = planted
    r = D.random_perturbation(m, X, y, a, rho=0.999, n_trials=5)
    assert not r.constraint_met and "original model is returned" in r.note
    orig = D.as_module(m)
    with torch.no_grad():
        xt = torch.from_numpy(X)
        assert torch.equal(orig(xt), r.model(xt))


def test_same_seed_same_result(planted):
    m, X, y, a = planted
    r1 = D.random_perturbation(m, X, y, a, n_trials=11, random_state=3)
    r2 = D.random_perturbation(m, X, y, a, n_trials=11, random_state=3)
    assert r1.bias == r2.bias and r1.trace.equals(r2.trace)


def test_pruned_unit_is_exactly_zero_after_batchnorm(planted):
    m, X, y, a = planted
    r = D.pruning(m, X, y, a, max_steps=5)
    assert r.extra, "some units were pruned"
    acts = {}
    relus = [mod for mod in r.model.modules() if isinstance(mod, nn.ReLU)]
    hooks = [u.register_forward_hook(lambda mod, i, o, k=k: acts.__setitem__(k, o))
             for k, u in enumerate(relus)]
    with torch.no_grad():
        r.model(torch.from_numpy(X))
    for layer, unit in r.extra:
        assert (acts[layer][:, unit] == 0).all()
    for h in hooks:
        h.remove()


def test_as_module_matches_the_estimator(planted):
    m, X, y, a = planted
    net = D.as_module(m)
    with torch.no_grad():
        p = torch.sigmoid(net(torch.from_numpy(X))).numpy().ravel()
    np.testing.assert_allclose(p, m.predict_proba(X)[:, 1], atol=1e-5)


def test_user_module_and_conv_pruning():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    n = 400
    a = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 1, 4, 4)).astype(np.float32)
    X[:, 0, 0, 0] += 2 * a
    y = (X[:, 0, 0, 0] + rng.normal(size=n) > 1).astype(int)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(100):
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(
            net(torch.from_numpy(X)).squeeze(1), torch.tensor(y, dtype=torch.float32)).backward()
        opt.step()
    r = D.pruning(net, X, y, a, rho=0.5)
    assert len(D.hidden_units(r.model)) == 1 and r.trace.shape[0] >= 2
    with pytest.raises(ConfigError, match="no"):
        D.pruning(nn.Sequential(nn.Flatten()), X, y, a)


def test_reject_option_selects_within_bounds_and_beats_loops():
    rng = np.random.default_rng(0)
    n = 3000
    a = rng.integers(0, 2, n)
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + 0.15 * a + rng.random(n) * 0.5, 0, 1)
    roc = D.RejectOption(metric="spd", num_class_thresh=20, num_roc_margin=10).fit(y, p, a)
    assert roc.constraint_met_ and -0.05 <= roc.bias_ <= 0.05
    pred = roc.predict(p, a)
    assert statistical_parity_difference(y, pred, a) == pytest.approx(roc.bias_)
    # brute force over the same grid with the same rule
    th, m = roc.grid()
    best, best_ba = None, -1
    for t, mm in zip(th, m):
        lab = np.where((p <= t + mm) & (p > t - mm), a == 0, p > t).astype(int)
        b = statistical_parity_difference(y, lab, a)
        ba = 0.5 * (lab[y == 1].mean() + 1 - lab[y == 0].mean())
        if -0.05 <= b <= 0.05 and ba > best_ba:
            best, best_ba = (t, mm), ba
    assert (roc.threshold_, roc.margin_) == pytest.approx(best)


def test_equalized_odds_postprocessing(planted):
    m, X, y, a = planted
    ev = D.Evaluator(X, y, a)
    net = D.as_module(m)
    opt = D.equalized_odds_postprocessing(lambda Z: ev.proba(net, torch.from_numpy(
        np.asarray(Z, np.float32))), X, y, a)
    pred = opt.predict(X, sensitive_features=a, random_state=0)
    from noharm.fairness import equalized_odds_difference
    before = equalized_odds_difference(y, (ev.proba(net) >= 0.5).astype(int),
                                       sensitive_features=a)
    assert equalized_odds_difference(y, pred, sensitive_features=a) < before


def test_bad_inputs(planted):
    m, X, y, a = planted
    with pytest.raises(LengthMismatchError, match="sensitive_features has"):
        D.pruning(m, X, y, np.arange(len(y) - 1) % 3)
    with pytest.raises(GroupError, match="missing values"):
        D.pruning(m, X, y, np.where(np.arange(len(y)) % 5 == 0, None, "a"))
    with pytest.raises(GroupError, match="one group"):
        D.pruning(m, X, y, np.full(len(y), "site A"))
    with pytest.raises(GroupError, match="absent"):
        D.pruning(m, X, y, np.ones(len(y), int))
    y2 = y.copy()
    y2[a == 0] = 0
    with pytest.raises(GroupError, match="no positive labels"):
        D.bias_gradient(m, X, y2, a, metric="eod")
    with pytest.raises(ConfigError, match="GenericClassifier or a torch"):
        D.pruning(object(), X, y, a)


@pytest.fixture(scope="module")
def three_groups():
    """Three sites (strings) shifting a feature and the label: a multi-valued attribute."""
    rng = np.random.default_rng(7)
    n = 3000
    site = rng.choice(np.array(["north", "south", "west"]), n)
    shift = pd.Series(site).map({"north": 0.0, "south": 0.8, "west": 1.6}).to_numpy()
    X = rng.normal(size=(n, 8)).astype(np.float32)
    X[:, 0] += 1.5 * shift
    y = ((X[:, 1] + X[:, 2] + shift + 0.5 * rng.normal(size=n)) > 0.9).astype(int)
    m = GenericClassifier(hidden_layers=3, hidden_units=32, max_epochs=30,
                          random_state=0).fit(X[:1800], y[:1800])
    return m, X, y, site


# measured (held-out worst-pair DPD 0.226 before): pruning 0.215, bias gradient 0.153,
# engineered gradient with fixed lambda 0.166, dynamic pruning 0.256 (its selection on 600
# validation rows does not carry over here; not asserted)
@pytest.mark.parametrize("fn, kw, share", [(D.pruning, {}, None), (D.bias_gradient, {}, 0.8),
                                           (D.engineered_gradient, {"dynamic": False}, 0.85)],
                         ids=["pruning", "bias_gradient", "engineered_gradient_fixed"])
def test_methods_take_a_multi_valued_attribute_worst_pair_gap(three_groups, fn, kw, share):
    from fairlearn.metrics import demographic_parity_difference as fl_dpd
    m, X, y, site = three_groups
    va, te = np.arange(1800, 2400), np.arange(2400, 3000)
    r = fn(m, X[va], y[va], site[va], **kw)
    # the reported bias is fairlearn's worst-pair demographic parity difference
    assert r.original.bias == pytest.approx(fl_dpd(
        y[va], (D.Evaluator(X[va], y[va], site[va]).proba(D.as_module(m))
                >= r.original.threshold).astype(int), sensitive_features=site[va]))
    assert r.constraint_met and r.bias < r.original.bias
    p0 = D.Evaluator(X[te], y[te], site[te]).proba(D.as_module(m)) >= r.original.threshold
    before = fl_dpd(y[te], p0.astype(int), sensitive_features=site[te])
    after = fl_dpd(y[te], r.predict(X[te], site[te]), sensitive_features=site[te])
    limit = before + 0.02 if share is None else share * before
    assert after < limit, (before, after)                          # held-out rows


def test_worst_pair_proxy_by_hand():
    from noharm.debias._common import worst_pair_proxy
    p = torch.tensor([0.9, 0.7, 0.2, 0.4, 0.5])
    codes = torch.tensor([0, 0, 1, 1, 2])
    assert worst_pair_proxy(p, codes, 3).item() == pytest.approx(0.8 - 0.3)
    y = torch.tensor([1, 0, 1, 0, 0])          # EOD form: group 2 has no positive
    assert worst_pair_proxy(p, codes, 3, y).item() == pytest.approx(0.9 - 0.2)
