"""Image debiasing: lazy image cohorts, CNN backbones, every method over a Dataset."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import Dataset, Subset

from noharm import debias as D
from noharm.datasets.images import ImageDataset, augment, load_image_cohort
from noharm.errors import DataNotFoundError, DatasetError, PersistenceError
from noharm.fairness import balanced_accuracy, statistical_parity_difference
from noharm.nn.backbones import ARCHS, SmallCNN, build_backbone, load_backbone_weights
from noharm.training import TrainConfig
from noharm.training.single import fit_binary

SIZE = 24


class Planted(Dataset):
    """Synthetic X-rays: a central blob whose brightness carries the label signal, and a
    corner marker present for A = 1 only; A also raises the label's base rate, so a
    network learns the marker as a shortcut (SPD far from 0).  Returns (x,) tuples like
    many user datasets do."""

    def __init__(self, n: int, seed: int):
        g = np.random.default_rng(seed)
        self.a = g.integers(0, 2, n)
        s = g.normal(size=n)
        self.y = ((s + 2.0 * self.a + 0.5 * g.normal(size=n)) > 1.0).astype(int)
        img = 0.15 * g.normal(size=(n, 1, SIZE, SIZE)).astype(np.float32)
        c = SIZE // 2
        img[:, :, c - 4:c + 4, c - 4:c + 4] += (0.5 + 0.4 * s)[:, None, None, None]
        img[self.a == 1, :, 1:5, 1:5] += 1.0
        self.x = torch.from_numpy(img)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return (self.x[i],)


def _trained(seed: int):
    ds = Planted(900, seed)
    torch.manual_seed(seed)
    net = SmallCNN(1, widths=(8, 16))
    rows = np.arange(900)
    fit_binary(net, ds, ds.y, rows[:450], rows[450:550], seed=seed,
               config=TrainConfig(max_epochs=15, patience=5, batch_size=32))
    return net, ds, rows[550:750], rows[750:]


@pytest.fixture(scope="module")
def planted_nets():
    return [_trained(s) for s in (0, 1, 2)]


def _test_scores(net, ds, rows, threshold):
    p = D.Evaluator(Subset(ds, rows.tolist()), ds.y[rows], ds.a[rows]).proba(net)
    pred = (p >= threshold).astype(int)
    return (balanced_accuracy(ds.y[rows], pred),
            statistical_parity_difference(ds.y[rows], pred, ds.a[rows]))


# (name, function, options, the median held-out |SPD| must fall below this share of the
# original's).  Measured medians over the three networks (defaults): pruning 0.63,
# pruning_dynamic 0.77, adaptive 0.71, engineered 0.69, bias gradient 0.81, random
# perturbation 0.98, adversarial (per-row adversary) 0.65.  Seed 004's batch critic
# (critic="batch") stays at 1.00 (ten variants in benchmarks/RESULTS.md); not tested here.
METHODS = [("random_perturbation", D.random_perturbation, {}, 1.0),
           ("pruning", D.pruning, {}, 0.8),
           ("pruning_dynamic", D.pruning, {"dynamic": True}, 0.9),
           ("adaptive_pruning", D.adaptive_pruning, {}, 0.85),
           ("bias_gradient", D.bias_gradient, {}, 0.9),
           ("engineered_gradient", D.engineered_gradient, {}, 0.85),
           ("adversarial", D.adversarial, {}, 0.8)]


@pytest.mark.parametrize("name, fn, kw, share", METHODS, ids=[m[0] for m in METHODS])
def test_each_method_reduces_a_planted_shortcut_on_held_out_images(planted_nets, name, fn,
                                                                   kw, share):
    """Default settings; fitted on validation images read through a Dataset; measured on
    held-out test images; medians over three seeded networks."""
    before, after, ba_before, ba_after = [], [], [], []
    for net, ds, val, test in planted_nets:
        r = fn(net, Subset(ds, val.tolist()), ds.y[val], ds.a[val], **kw)
        assert r.method == name
        ba0, b0 = _test_scores(net, ds, test, r.original.threshold)
        pred = r.predict(Subset(ds, test.tolist()), ds.a[test])
        before.append(abs(b0))
        ba_before.append(ba0)
        after.append(abs(statistical_parity_difference(ds.y[test], pred, ds.a[test])))
        ba_after.append(balanced_accuracy(ds.y[test], pred))
    assert np.median(before) > 0.3                       # the shortcut is there
    assert np.median(after) < share * np.median(before), (before, after)
    # accuracy kept on held-out images (the selection asked for 95 % of it on validation)
    assert np.median(ba_after) >= np.median(ba_before) - 0.08, (ba_before, ba_after)


def test_pruning_removes_the_conv_channel_it_names():
    ds = Planted(300, 5)
    torch.manual_seed(0)
    net = SmallCNN(1, widths=(8, 16)).eval()
    r = D.pruning(net, ds, ds.y, ds.a, rho=0.0, max_steps=3)
    assert len(r.extra) >= 1
    # zeroing the same channels by weights (BatchNorm gamma = beta = 0 before the ReLU)
    # gives the pruned model's outputs: the named units, and only they, are removed
    surgery = D.as_module(net)
    bns = [m for m in surgery.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for layer, ch in r.extra:
            bns[layer].weight[ch] = 0.0
            bns[layer].bias[ch] = 0.0
        x = ds.x[:50]
        assert torch.allclose(r.model(x), surgery(x), atol=1e-6)
        assert not torch.allclose(net(x), surgery(x), atol=1e-6)


def test_influence_summed_over_batches_equals_one_pass():
    ds = Planted(200, 3)
    torch.manual_seed(0)
    net = SmallCNN(1, widths=(8, 16)).eval()
    res = []
    for bs in (200, 32):
        ev = D.Evaluator(ds, ds.y, ds.a, batch_size=bs)
        from noharm.debias.intra import UnitMasks, hidden_units, influence
        masks = UnitMasks(net, hidden_units(net))
        res.append(influence(net, masks, ev)[0])
        masks.remove()
    np.testing.assert_allclose(res[0], res[1], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("arch", ARCHS)
def test_backbones_give_one_logit_and_load_their_own_weights(arch, tmp_path):
    torch.manual_seed(0)
    net = build_backbone(arch, 1).eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, 1)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    other = load_backbone_weights(build_backbone(arch, 1).eval(), tmp_path / "w.pt")
    with torch.no_grad():
        assert torch.equal(other(x), out)


def test_weights_of_another_architecture_are_named(tmp_path):
    torch.save(build_backbone("small").state_dict(), tmp_path / "w.pt")
    with pytest.raises(PersistenceError, match="do not fit this architecture.*--arch"):
        load_backbone_weights(build_backbone("resnet18"), tmp_path / "w.pt")
    with pytest.raises(PersistenceError, match="does not exist"):
        load_backbone_weights(build_backbone("small"), tmp_path / "none.pt")


def _write_images(root, n=40, size=(36, 36), seed=0):
    from PIL import Image
    g = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        a = (g.random(size) * 255).astype(np.uint8)
        Image.fromarray(a).save(root / "img" / f"{i:03d}.png")
        rows.append({"path": f"img/{i:03d}.png", "finding": "covid" if i % 3 else "none",
                     "sex": "M" if i % 2 else "F", "pid": i // 2})
    pd.DataFrame(rows).to_csv(root / "meta.csv", index=False)
    return root


def test_image_cohort_is_read_lazily_and_checked(tmp_path):
    root = _write_images(tmp_path)
    c = load_image_cohort(root, root / "meta.csv", target="finding==covid", protected="sex",
                          patient="pid", file_column="path")
    assert len(c) == 40 and c.meta["channels"] == 1 and c.meta["image_size"] == [36, 36]
    assert c.y.sum() == 26 and c.split_by.nunique() == 20
    assert list(c.X.columns) == ["file", "sha256"]            # paths, not pixels
    ds = ImageDataset(c.X["file"], 1)
    x = ds[3]
    assert x.shape == (1, 36, 36) and 0 <= float(x.min()) and float(x.max()) <= 1
    # a missing file, a missing column, mixed sizes: one error each, naming the fix
    meta = pd.read_csv(root / "meta.csv")
    meta.loc[0, "path"] = "img/gone.png"
    with pytest.raises(DataNotFoundError, match="gone.png.*--images"):
        load_image_cohort(root, meta, target="finding==covid", protected="sex",
                          file_column="path")
    with pytest.raises(Exception, match="'gender' is not in"):
        load_image_cohort(root, root / "meta.csv", target="finding==covid",
                          protected="gender", file_column="path")
    from PIL import Image
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(root / "img" / "000.png")
    with pytest.raises(DatasetError, match="--image-size"):
        load_image_cohort(root, root / "meta.csv", target="finding==covid", protected="sex",
                          file_column="path")
    c = load_image_cohort(root, root / "meta.csv", target="finding==covid", protected="sex",
                          file_column="path", image_size=16)
    assert ImageDataset(c.X["file"], 1, (16, 16))[0].shape == (1, 16, 16)


def test_augment_shifts_and_flips_reproducibly():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    a = augment(x, torch.Generator().manual_seed(1), max_shift=2)
    b = augment(x, torch.Generator().manual_seed(1), max_shift=2)
    assert torch.equal(a, b) and a.shape == x.shape
    zero = augment(x, torch.Generator().manual_seed(1), max_shift=0, flip=False)
    assert torch.equal(zero, x)


def test_debias_cli_on_an_image_folder(tmp_path, cli_main):
    from conftest import one_error_line
    root = _write_images(tmp_path / "data", n=60)
    out = tmp_path / "run"
    args = ["debias", "--images", str(root), "--metadata", str(root / "meta.csv"),
            "--file-column", "path", "--target", "finding==covid", "--protected", "sex",
            "--patient", "pid", "--methods", "pruning,reject_option", "--outer-splits", "1",
            "--max-epochs", "2", "--output", str(out), "--jobs", "1", "--quiet"]
    code, stdout, err = cli_main(args)
    assert code == 0, err
    assert "| pruning |" in stdout and "| reject_option |" in stdout
    tidy = pd.read_csv(out / "results.csv")
    assert set(tidy["model"]) == {"original", "pruning", "reject_option"}
    # options of the other kind of data are refused, naming them
    assert "--hidden-units" in one_error_line(cli_main(args[:-5] + ["--hidden-units", "8"]))
    assert "--arch" in one_error_line(cli_main(["debias", "--dataset", "heart", "--arch",
                                                "vgg11"]))
    assert "only `noharm debias`" in one_error_line(cli_main(
        ["personalize", "--dataset", "covid-cxr"]))


def test_debias_cli_debiases_the_users_own_weights(tmp_path, cli_main):
    """--weights: no training; a 3-channel network takes the grey images as RGB."""
    root = _write_images(tmp_path / "data", n=60)
    torch.manual_seed(0)
    torch.save(build_backbone("small", 3).state_dict(), tmp_path / "mine.pt")
    out = tmp_path / "run"
    code, stdout, err = cli_main([
        "debias", "--images", str(root), "--metadata", str(root / "meta.csv"),
        "--file-column", "path", "--target", "finding==covid", "--protected", "sex",
        "--weights", str(tmp_path / "mine.pt"), "--methods", "pruning", "--outer-splits", "1",
        "--output", str(out), "--jobs", "1", "--quiet"])
    assert code == 0, err
    cfg = (out / "config.json").read_text()
    assert "mine.pt" in cfg and "| pruning |" in stdout


def test_devices_are_resolved_or_refused(monkeypatch):
    from noharm._device import resolve_device
    from noharm.errors import ConfigError
    assert resolve_device("cpu").type == "cpu" and resolve_device(None).type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ConfigError, match="no CUDA GPU.*--device cpu"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_images_too_small_for_the_network_are_one_error(tmp_path, cli_main):
    from conftest import one_error_line
    root = _write_images(tmp_path / "data", n=20, size=(20, 20))
    msg = one_error_line(cli_main([
        "debias", "--images", str(root), "--metadata", str(root / "meta.csv"),
        "--file-column", "path", "--target", "finding==covid", "--protected", "sex",
        "--output", str(tmp_path / "run")]))
    assert "too small for --arch small" in msg and "--image-size 32" in msg


def test_same_seed_same_cnn_and_same_debiased_network():
    """CPU reproducibility: training (with augmentation) and a fine-tuning method give
    bit-identical weights when run twice with the same seed."""
    ds = Planted(200, 7)

    def run():
        torch.manual_seed(3)
        net = SmallCNN(1, widths=(8, 16))
        rows = np.arange(200)
        fit_binary(net, ds, ds.y, rows[:120], rows[120:160], seed=3, augment=augment,
                   config=TrainConfig(max_epochs=2, patience=2, batch_size=32))
        r = D.adversarial(net, Subset(ds, list(range(160, 200))), ds.y[160:], ds.a[160:],
                          n_steps=10, eval_every=5, rho=0.0)
        return [t.detach().clone() for t in r.model.state_dict().values()]

    a, b = run(), run()
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
