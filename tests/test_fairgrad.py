import numpy as np
import pandas as pd
import pytest
import torch

from noharm.errors import ConfigError, GroupError
from noharm.fairness.losses import group_gap_loss
from noharm.models import FairGradClassifier, GenericClassifier
from noharm.training import project


def test_projection_of_conflicting_pair_by_hand():
    g = torch.tensor([[[1.0, 0.0]], [[-1.0, 1.0]]])            # (K=2, E=1, P=2), dot = -1
    combined, conflict = project(g, "conflict")
    # g1' = g1 - (-1/2) g2 = (0.5, 0.5); g2' = g2 - (-1/1) g1 = (0, 1)
    torch.testing.assert_close(combined, torch.tensor([[0.5, 1.5]]))
    assert conflict.tolist() == [[True]]
    for gi in (g[0, 0], g[1, 0], torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0])):
        assert torch.dot(combined[0], gi) >= 0


def test_non_conflicting_pair_untouched_unless_always():
    g = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])             # dot = 1 > 0
    combined, conflict = project(g, "conflict")
    torch.testing.assert_close(combined, torch.tensor([[2.0, 1.0]]))
    assert conflict.tolist() == [[False]]
    always, _ = project(g, "always")
    # g1' = g1 - (1/2) g2 = (0.5, -0.5); g2' = g2 - 1 * g1 = (0, 1)
    torch.testing.assert_close(always, torch.tensor([[0.5, 0.5]]))


def test_conflict_mode_random_pairs_nonnegative():
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(2, 50, 7, generator=gen)
    combined, _ = project(g, "conflict")
    assert ((combined * g[0]).sum(-1) >= -1e-6).all()
    assert ((combined * g[1]).sum(-1) >= -1e-6).all()


def test_group_gap_loss_worst_pair():
    p = torch.tensor([[0.9, 0.1, 0.5, 0.7]])
    codes = torch.tensor([[0, 1, 2, 2]])
    y = torch.tensor([[1, 1, 1, 0]])
    # soft TPRs: g0 0.9, g1 0.1, g2 0.5 -> worst gap 0.8; FPR only g2 -> no gap
    assert group_gap_loss(p, codes, y, 3, "eod").item() == pytest.approx(0.8)
    assert group_gap_loss(p, codes, y, 3, "eqodds").item() == pytest.approx(0.8)
    assert group_gap_loss(p, codes, y, 3, "spd").item() == pytest.approx(0.9 - 0.1)


@pytest.fixture(scope="module")
def two_attribute_bias():
    rng = np.random.default_rng(0)
    n = 2400
    s1, s2 = rng.integers(0, 2, n), rng.integers(0, 3, n)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    X[:, 0] += 1.5 * s1
    X[:, 1] += 1.0 * (s2 == 2)
    y = ((X[:, 2] + X[:, 3] + s1 + 0.8 * (s2 == 2) + 0.5 * rng.normal(size=n)) > 0.8)
    S = pd.DataFrame({"sex": s1, "site": s2})
    return X, y.astype(int), S


def _tpr_gap(pred, y, g):
    tprs = [pred[(g == v) & (y == 1)].mean() for v in np.unique(g)]
    return max(tprs) - min(tprs)


_GENERIC: dict = {}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("balance", ["none", "clip"])
def test_fairgrad_weight_one_reduces_both_gaps_and_keeps_auroc_at_every_seed(
        two_attribute_bias, seed, balance):
    """The paper's setting (weights 1) with balance 'none' and 'clip', held-out rows,
    every one of 3 seeds (5 when it was the default).  Measured: gap ratios 0.18-0.61 ('none'; 0.31-0.92 'clip') per
    attribute, AUROC 0.005-0.016 ('none'; 0.006-0.011 'clip') below generic."""
    X, y, S = two_attribute_bias
    tr, te = np.arange(1600), np.arange(1600, 2400)
    kw = dict(hidden_layers=3, hidden_units=32, max_epochs=40, patience=8, random_state=seed)
    if seed not in _GENERIC:                 # the same generic model for both balances
        _GENERIC[seed] = GenericClassifier(**kw).fit(X[tr], y[tr])
    gen = _GENERIC[seed]
    fg = FairGradClassifier(fairness_loss="eod", balance=balance, fairness_weights=[1, 1],
                            **kw).fit(X[tr], y[tr], sensitive_features=S.iloc[tr])
    ratios, auc = _compare(gen, fg, X[te], y[te], S.iloc[te])
    assert max(ratios) < 1.0 and np.mean(ratios) < 0.85, ratios
    assert auc[1] > auc[0] - 0.02, auc                   # accuracy kept: AUROC within 0.02
    share = fg.train_report_.conflict_share
    assert len(share) == fg.train_report_.epochs_run[0] and 0 < max(share) <= 1


def _compare(gen, fg, X, y, S):
    from sklearn.metrics import roc_auc_score
    pg, pf = gen.predict(X), fg.predict(X)
    ratios = [_tpr_gap(pf, y, S[c].to_numpy()) / _tpr_gap(pg, y, S[c].to_numpy()) for c in S]
    auc = [roc_auc_score(y, m.predict_proba(X)[:, 1]) for m in (gen, fg)]
    return ratios, auc


@pytest.mark.parametrize("seed", range(5))
def test_fairgrad_auto_weight_keeps_auroc_and_narrows_gaps_at_every_seed(two_attribute_bias,
                                                                          seed):
    """Default settings: the weight chosen on validation rows.  Compared on held-out rows
    with the weight-0 member trained on the same rows, seed and batches.  Measured: kept
    weights 1, 0.3, 0.3, 0.3, 1; mean gap ratios 0.53-0.71; AUROC 0.001-0.016 below."""
    X, y, S = two_attribute_bias
    tr, te = np.arange(1600), np.arange(1600, 2400)
    kw = dict(hidden_layers=3, hidden_units=32, max_epochs=40, patience=8, random_state=seed,
              fairness_loss="eod")
    fg = FairGradClassifier(**kw).fit(X[tr], y[tr], sensitive_features=S.iloc[tr])
    gen = FairGradClassifier(weight_grid=(0.0,), **kw).fit(X[tr], y[tr],
                                                           sensitive_features=S.iloc[tr])
    table = fg.selection_
    floor = table.loc[table["weight"] == 0, "auroc"].iloc[0] - 0.01
    chosen = table.loc[table["chosen"], "weight"].iloc[0]
    assert chosen == table.loc[table["auroc"] >= floor, "weight"].max()   # the rule
    assert list(fg.weights_) == [chosen, chosen] and gen.weights_.tolist() == [0, 0]
    ratios, auc = _compare(gen, fg, X[te], y[te], S.iloc[te])
    assert auc[1] > auc[0] - 0.02, auc
    assert np.mean(ratios) < 0.85, ratios


def test_clip_keeps_the_prediction_gradient_and_bounds_fairness_ones():
    g0 = torch.tensor([[1.0, 0.0]])
    g1 = torch.tensor([[-3.0, 4.0]])          # conflicts with g0, norm 5
    out, conflict = project(torch.stack([g0, g1]), "conflict", torch.tensor([1.0]))
    # g1 shrunk to norm 1 -> (-0.6, 0.8), projected off g0 -> (0, 0.8); g0 untouched
    assert torch.allclose(out, torch.tensor([[1.0, 0.8]])) and conflict.all()
    plain, _ = project(torch.stack([g0, g1]), "conflict")
    assert not torch.allclose(plain[0, 0], torch.tensor(1.0))      # PCGrad moves g0 too


def test_fairgrad_reproducible_and_round_trip(two_attribute_bias, tmp_path):
    X, y, S = two_attribute_bias
    kw = dict(hidden_layers=2, hidden_units=16, max_epochs=5, patience=3, random_state=2)
    a = FairGradClassifier(**kw).fit(X, y, sensitive_features=S)
    b = FairGradClassifier(**kw).fit(X, y, sensitive_features=S)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    a.save(tmp_path / "fg")
    c = FairGradClassifier.load(tmp_path / "fg")
    assert np.array_equal(a.predict_proba(X), c.predict_proba(X))
    assert c.attributes_ == ["sex", "site"]


def test_fairgrad_auto_keeps_one_member_and_round_trips(two_attribute_bias, tmp_path):
    X, y, S = two_attribute_bias
    kw = dict(hidden_layers=2, hidden_units=16, max_epochs=5, patience=3, random_state=1)
    fg = FairGradClassifier(weight_grid=(0.0, 0.5), **kw).fit(X, y, sensitive_features=S)
    assert fg.net_.fairness_scale.tolist() == [fg.weights_[0]]
    assert fg.predict_proba_runs(X).shape == (1, len(X))
    assert list(fg.selection_.columns) == ["weight", "auroc", "gap_sex", "gap_site", "chosen"]
    fg.save(tmp_path / "fg")
    back = FairGradClassifier.load(tmp_path / "fg")
    assert np.array_equal(back.predict_proba(X), fg.predict_proba(X))
    assert back.weights_.tolist() == fg.weights_.tolist()


def test_fairgrad_bad_inputs(two_attribute_bias):
    X, y, S = two_attribute_bias
    kw = dict(hidden_layers=2, hidden_units=8, max_epochs=2)
    with pytest.raises(GroupError, match="'flat' has a single group"):
        FairGradClassifier(**kw).fit(X, y, sensitive_features=S.assign(flat=1))
    with pytest.raises(ConfigError, match="3 values but there are 2"):
        FairGradClassifier(fairness_weights=[1, 2, 3], **kw).fit(X, y, sensitive_features=S)
    with pytest.raises(ConfigError, match="unknown"):
        FairGradClassifier(fairness_weights={"sex": 1, "age": 1}, **kw).fit(
            X, y, sensitive_features=S)
    with pytest.raises(ConfigError, match="fairness_loss"):
        FairGradClassifier(fairness_loss="dp", **kw).fit(X, y, sensitive_features=S)
    with pytest.raises(ConfigError, match="including 0"):
        FairGradClassifier(weight_grid=(0.1, 1.0), **kw).fit(X, y, sensitive_features=S)
    with pytest.raises(ConfigError, match="'best'.*'auto'"):
        FairGradClassifier(fairness_weights="best", **kw).fit(X, y, sensitive_features=S)
    with pytest.raises(ConfigError, match="auroc_tolerance"):
        FairGradClassifier(auroc_tolerance=-0.1, **kw).fit(X, y, sensitive_features=S)
    with pytest.raises(GroupError, match="needs sensitive_features"):
        FairGradClassifier(**kw).fit(X, y)
