import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from conftest import SMALL
from noharm.errors import (ConfigError, FeatureMismatchError, GroupError, NotFittedError,
                           PersistenceError)
from noharm.models import ConditionalBiasClassifier, DecoupledClassifier, GenericClassifier
from noharm.models.conditional_bias import _set_trainable, label_loss
from noharm.models.base import train_val_split

ALL = [GenericClassifier, DecoupledClassifier, ConditionalBiasClassifier]


@pytest.mark.parametrize("cls", ALL)
def test_fit_predict_shapes_and_reproducibility(cls, toy):
    X, y, g = toy
    a = cls(random_state=3, **SMALL).fit(X, y, sensitive_features=g)
    b = cls(random_state=3, **SMALL).fit(X, y, sensitive_features=g)
    pa = a.predict_proba(X, sensitive_features=g)
    assert pa.shape == (len(X), 2) and np.allclose(pa.sum(1), 1)
    assert np.array_equal(pa, b.predict_proba(X, sensitive_features=g))   # bit-identical
    assert set(a.predict(X, sensitive_features=g)) <= {0, 1}
    c = cls(random_state=4, **SMALL).fit(X, y, sensitive_features=g)
    assert not np.array_equal(pa, c.predict_proba(X, sensitive_features=g))


@pytest.mark.parametrize("cls", ALL)
def test_save_load_round_trip(cls, toy, tmp_path):
    X, y, g = toy
    m = cls(**SMALL).fit(X, y.map({0: "neg", 1: "pos"}), sensitive_features=g)
    m.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json",
                                                                 "model.safetensors"]
    back = cls.load(tmp_path / "m")
    assert np.array_equal(m.predict_proba(X, g), back.predict_proba(X, g))
    assert list(back.predict(X, g)[:5]) == list(m.predict(X, g)[:5])
    assert back.get_params() == m.get_params()


def test_load_errors(tmp_path, toy):
    with pytest.raises(PersistenceError, match="not a saved noharm model"):
        GenericClassifier.load(tmp_path)
    X, y, g = toy
    GenericClassifier(**SMALL).fit(X, y).save(tmp_path / "g")
    with pytest.raises(PersistenceError, match="not a DecoupledClassifier"):
        DecoupledClassifier.load(tmp_path / "g")
    cfg = (tmp_path / "g" / "config.json")
    cfg.write_text(cfg.read_text().replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(PersistenceError, match="format 99"):
        GenericClassifier.load(tmp_path / "g")


def test_sklearn_params_and_clone():
    m = ConditionalBiasClassifier(n_bias=2, training="joint")
    assert m.get_params()["n_bias"] == 2
    m.set_params(attr_layers=3)
    assert clone(m).get_params()["attr_layers"] == 3


def test_groups_at_prediction_time(toy):
    X, y, g = toy
    generic = GenericClassifier(**SMALL).fit(X, y)
    cb = ConditionalBiasClassifier(**SMALL).fit(X, y, sensitive_features=g)
    assert generic.predict(X).shape == cb.predict(X).shape == (len(X),)   # no group needed
    dcp = DecoupledClassifier(**SMALL).fit(X, y, sensitive_features=g)
    with pytest.raises(GroupError, match="needs sensitive_features at prediction"):
        dcp.predict(X)
    with pytest.raises(GroupError, match="'c' was never seen"):
        dcp.predict(X.iloc[:3], sensitive_features=["a", "b", "c"])
    with pytest.raises(GroupError, match="needs sensitive_features at fit"):
        ConditionalBiasClassifier(**SMALL).fit(X, y)


def test_single_class_group_named_by_decoupled_only(toy):
    X, y, g = toy
    y = y.copy()
    y[g == "a"] = 1
    with pytest.raises(GroupError, match="subgroup 'a' has training rows of one class only"):
        DecoupledClassifier(**SMALL).fit(X, y, sensitive_features=g)
    GenericClassifier(**SMALL).fit(X, y, sensitive_features=g)
    ConditionalBiasClassifier(**SMALL).fit(X, y, sensitive_features=g)


def test_bad_inputs(toy):
    X, y, g = toy
    m = GenericClassifier(**SMALL)
    with pytest.raises(NotFittedError):
        m.predict(X)
    with pytest.raises(ValueError, match="missing values"):
        GenericClassifier(**SMALL, impute="none").fit(X.assign(f0=np.nan), y)
    m.fit(X.assign(f0=np.nan), y)       # left out (tests/test_left_out_columns.py)
    with pytest.raises(ValueError, match="binary"):
        m.fit(X, np.arange(len(X)) % 3)
    with pytest.raises(ValueError, match="rows"):
        m.fit(X, y[:-1])
    with pytest.raises(ValueError, match="rows"):
        ConditionalBiasClassifier(**SMALL).fit(X, y, sensitive_features=g[:-1])
    m.fit(X, y)
    with pytest.raises(FeatureMismatchError, match=r"missing \['f4', 'f5'\]"):
        m.predict(X.iloc[:, :4])
    with pytest.raises(FeatureMismatchError, match="expecting 6 features"):
        m.predict(X.iloc[:, :4].to_numpy())
    with pytest.raises(ConfigError, match="n_bias=3"):
        ConditionalBiasClassifier(n_bias=3, hidden_layers=2).fit(X, y, sensitive_features=g)
    with pytest.raises(ConfigError, match="training"):
        ConditionalBiasClassifier(training="both").fit(X, y, sensitive_features=g)


def test_validation_split_keeps_every_group():
    y = np.array([0, 1] * 20)
    g = np.array(["a"] * 36 + ["b"] * 4)
    tr, va = train_val_split(y, g, 0.2, 0)
    assert set(g[va]) == {"a", "b"} and set(g[tr]) == {"a", "b"}
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 40


def test_two_stage_freezes_attribute_predictor(toy):
    X, y, g = toy
    m = ConditionalBiasClassifier(**SMALL)
    m.fit(X, y, sensitive_features=g)
    Xt = torch.from_numpy(X.to_numpy(np.float32).copy())
    arrays = {"y": torch.tensor(y.to_numpy(), dtype=torch.float32),
              "g": torch.from_numpy(m._group_codes(g.to_numpy()))}
    tr, va = train_val_split(y.to_numpy(), g.to_numpy(), 0.2, 0)
    attr_before = {k: v.clone() for k, v in m.net_.attr.state_dict().items()}
    label_before = {k: v.clone() for k, v in m.net_.label.state_dict().items()}
    m.fit_label_network(Xt, arrays, [tr], [va], [7])
    for k, v in m.net_.attr.state_dict().items():
        assert torch.equal(v, attr_before[k]), k          # weights and BN statistics
    assert any(not torch.equal(v, label_before[k]) for k, v in m.net_.label.state_dict().items())


def test_joint_mode_gradients_reach_attribute_predictor(toy):
    X, y, g = toy
    m = ConditionalBiasClassifier(training="joint", **SMALL).fit(X, y, sensitive_features=g)
    net = m.net_
    _set_trainable(net, attr=True, label=True)
    net.train()
    x = torch.from_numpy(X.to_numpy(np.float32).copy()).unsqueeze(0)
    batch = {"y": torch.tensor(y.to_numpy(), dtype=torch.float32).unsqueeze(0),
             "g": torch.from_numpy(m._group_codes(g.to_numpy())).unsqueeze(0)}
    # even with attr_weight = 0, the label loss reaches the attribute predictor
    label_loss(net, 0.0)(x, batch, None).sum().backward()
    grads = [p.grad for p in net.attr.linears.parameters()]
    assert all(gr is not None and gr.abs().sum() > 0 for gr in grads)


def test_predict_groups(toy):
    X, y, g = toy
    m = ConditionalBiasClassifier(**SMALL).fit(X, y, sensitive_features=g)
    assert (m.predict_groups(X) == g.to_numpy()).mean() > 0.8


@pytest.mark.parametrize("params", [dict(n_bias=2), dict(training="joint", attr_weight=0.5)])
def test_conditional_bias_variants_train_and_round_trip(params, toy, tmp_path):
    X, y, g = toy
    m = ConditionalBiasClassifier(**SMALL, **params).fit(X, y, sensitive_features=g)
    assert len(m.net_.proj) == params.get("n_bias", 1)
    assert (m.predict(X) == y).mean() > 0.6
    m.save(tmp_path / "m")
    assert np.array_equal(ConditionalBiasClassifier.load(tmp_path / "m").predict_proba(X),
                          m.predict_proba(X))


def test_load_and_save_errors_are_persistence_errors(tmp_path, toy):
    """Tampered config, truncated or flipped weights, a file as the target: one
    PersistenceError each (not SafetensorError, TypeError or a silent wrong model)."""
    import json
    from noharm.errors import PersistenceError
    X, y, g = toy
    m = GenericClassifier(hidden_layers=2, hidden_units=8, max_epochs=3).fit(X, y)
    d = m.save(tmp_path / "m")
    GenericClassifier.load(d)                                     # round trip works
    cfg = json.loads((d / "config.json").read_text())
    weights = (d / "model.safetensors").read_bytes()
    bad = dict(cfg, params={**cfg["params"], "hidden_layerz": 2})
    (d / "config.json").write_text(json.dumps(bad))
    with pytest.raises(PersistenceError, match="changed after saving"):
        GenericClassifier.load(d)
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "model.safetensors").write_bytes(weights[:len(weights) // 2])
    with pytest.raises(PersistenceError, match="damaged"):
        GenericClassifier.load(d)
    flipped = bytearray(weights)
    flipped[-5] ^= 0x40                                           # one weight's bits
    (d / "model.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(PersistenceError, match="checksum differs"):
        GenericClassifier.load(d)
    (tmp_path / "file").write_text("x")
    with pytest.raises(PersistenceError, match="is a file"):
        m.save(tmp_path / "file")
    # reordering a decoupled model's groups would route rows to another group's network
    dcp = DecoupledClassifier(hidden_layers=2, hidden_units=8, max_epochs=3).fit(
        X, y, sensitive_features=g)
    dd = dcp.save(tmp_path / "dcp")
    dcfg = json.loads((dd / "config.json").read_text())
    (dd / "config.json").write_text(json.dumps(dict(dcfg, groups=dcfg["groups"][::-1])))
    with pytest.raises(PersistenceError, match="groups, classes or features.*changed|"
                                               "changed after saving"):
        DecoupledClassifier.load(dd)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decoupled_routes_each_row_to_its_own_groups_network(seed):
    """Group b's label relationship is the flip of a's: each subgroup's network must serve
    its own rows (held out).  Routing a's rows to b's network (or the reverse) turns the
    accuracy upside down, so the mutation "route rows to another group's sub-network"
    fails here."""
    rng = np.random.default_rng(seed)
    n = 600
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd"))
    g = np.where(rng.random(n) < 0.5, "a", "b")
    s = X["b"] + X["c"]
    y = ((np.where(g == "a", -s, s) + 0.2 * rng.normal(size=n)) > 0).astype(int)
    tr, te = np.arange(400), np.arange(400, n)
    m = DecoupledClassifier(hidden_layers=2, hidden_units=16, random_state=seed).fit(
        X.iloc[tr], y[tr], sensitive_features=g[tr])
    right = m.predict(X.iloc[te], sensitive_features=g[te]) == y[te]
    swapped = m.predict(X.iloc[te], sensitive_features=np.where(g[te] == "a", "b", "a"))
    for grp in ("a", "b"):
        rows = g[te] == grp
        assert right[rows].mean() > 0.85, (grp, right[rows].mean())
        assert (swapped == y[te])[rows].mean() < 0.2
