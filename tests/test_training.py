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
