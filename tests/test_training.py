import numpy as np
import pytest
import torch
import torch.nn.functional as F

from noharm.errors import ConfigError
from noharm.models.generic import ScaledMLP, bce_loss
from noharm.training import TrainConfig, fit_members
from noharm.training.loop import plan_epoch


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = torch.from_numpy(rng.normal(size=(n, 5)).astype(np.float32))
    y = (X[:, 0] - X[:, 1] > 0).float()
    return X, y


def _train(seeds, train, val, X, y, **cfg):
    net = ScaledMLP(seeds, X.shape[1], [16, 16], dropout=0.0)
    net.scale.fit_rows(X, train)
    rep = fit_members(net, bce_loss(net), X, {"y": y}, train, val, seeds,
                      TrainConfig(**{"max_epochs": 60, "patience": 4, "lr": 1e-2, **cfg}),
                      set_generator=net.set_generator)
    return net, rep


def test_member_trains_as_if_alone():
    """Batched members are independent: member 0 of an ensemble == the same model alone
    (no dropout, so no shared random stream), including early stopping and compaction."""
    X, y = _data()
    rows = np.arange(200)
    tr = [rows[:150], rows[50:], rows[25:175]]
    va = [rows[150:], rows[:50], np.r_[rows[:25], rows[175:]]]
    ens, rep = _train([1, 2, 3], tr, va, X, y, batch_size=32)
    alone, rep1 = _train([1], tr[:1], va[:1], X, y, batch_size=32)
    assert rep.epochs_run[0] == rep1.epochs_run[0]
    assert len(set(rep.epochs_run.tolist())) > 1          # members stopped at different epochs
    for (name, a), b in zip(ens.state_dict().items(), alone.state_dict().values()):
        torch.testing.assert_close(a[0], b[0], rtol=1e-5, atol=1e-6, msg=name)


def test_best_checkpoint_is_restored():
    X, y = _data()
    rows = np.arange(200)
    net, rep = _train([4, 5], [rows[:150]] * 2, [rows[150:]] * 2, X, y)
    net.eval()
    with torch.no_grad():
        logits = net(X[rows[150:]].unsqueeze(0).expand(2, -1, -1))
        loss = F.binary_cross_entropy_with_logits(logits, y[150:].expand(2, -1),
                                                  reduction="none").mean(1)
    np.testing.assert_allclose(loss.numpy(), rep.best_val_loss, rtol=1e-5)
    assert (rep.best_epoch <= rep.epochs_run).all()
    assert (rep.epochs_run - rep.best_epoch <= 4).all()


def test_plan_epoch_equal_batches_own_rows():
    rngs = [np.random.default_rng(0), np.random.default_rng(1)]
    steps = plan_epoch([np.arange(100), np.arange(100, 202)], 32, rngs)
    assert len(steps) == 4 and all(s.shape[0] == 2 for s in steps)
    allrows = torch.cat(steps, 1)
    assert allrows.shape[1] == 100 and len(set(allrows[0].tolist())) == 100
    assert (allrows[1] >= 100).all()


def test_bad_configs():
    X, y = _data()
    rows = np.arange(200)
    with pytest.raises(ConfigError, match="batch_size"):
        _train([1], [rows[:100]], [rows[100:]], X, y, batch_size=1)
    with pytest.raises(ConfigError, match="very different training sizes"):
        _train([1, 2], [rows[:20], rows[:150]], [rows[150:]] * 2, X, y)
    with pytest.raises(ConfigError, match="patience"):
        TrainConfig(patience=0).validate()


def test_training_steps_in_train_mode_and_validates_in_eval_mode():
    """Every step runs in train mode (dropout, batch statistics) and every validation pass
    in eval mode, whatever the loop does to switch modes cheaply."""
    X, y = _data()
    rows = np.arange(200)
    net = ScaledMLP([1], X.shape[1], [8], dropout=0.2)
    net.scale.fit_rows(X, [rows[:150]])
    seen = []
    base = bce_loss(net)

    def loss(x, batch, w):
        seen.append((w is None, net.training, net.mlp.norms[0].training))
        return base(x, batch, w)

    fit_members(net, loss, X, {"y": y}, [rows[:150]], [rows[150:]], [1],
                TrainConfig(max_epochs=3, patience=5, batch_size=64),
                set_generator=net.set_generator)
    steps = [s for s in seen if s[0]]
    checks = [s for s in seen if not s[0]]
    assert len(steps) == 3 * 3 and len(checks) == 3
    assert all(s[1] and s[2] for s in steps)
    assert not any(s[1] or s[2] for s in checks)


def test_frozen_attribute_predictor_stays_in_eval_mode_while_the_label_net_trains():
    """Stage 2 of the conditional-bias network: its train() override keeps the frozen
    attribute predictor in eval mode (running statistics untouched) during training."""
    from noharm.nn import ConditionalBiasNet
    X, y = _data()
    rows = np.arange(200)
    net = ConditionalBiasNet([1], X.shape[1], 2, label_hidden=[8], attr_hidden=[8])
    net.scale.fit_rows(X, [rows[:150]])
    for p in net.attr.parameters():
        p.requires_grad_(False)
    net.freeze_attr = True
    before = net.attr.norms[0].running_mean.clone()
    modes = []

    def loss(x, batch, w):
        modes.append((w is None, net.label.training, net.attr.training))
        out, _ = net(x)
        return F.binary_cross_entropy_with_logits(out.squeeze(-1), batch["y"],
                                                  reduction="none").mean(1)

    fit_members(net, loss, X, {"y": y}, [rows[:150]], [rows[150:]], [1],
                TrainConfig(max_epochs=2, patience=5), set_generator=net.set_generator)
    assert any(m[0] for m in modes)
    assert all(m[1] == m[0] and not m[2] for m in modes)
    assert torch.equal(net.attr.norms[0].running_mean, before)
