"""Saving the scikit-learn references without pickle (skops), loading any saved model by
its class, checksum manifests of saved directories, and references fitting on all their
rows."""
import hashlib
import json
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from conftest import SMALL
from noharm.errors import ConfigError, NotFittedError, PersistenceError
from noharm.models import GenericClassifier, ReferenceClassifier, ReferenceRegressor
from noharm.models.persistence import load_model, verify_checksums, write_checksums
from noharm.models.reference import MODELS_FILE, _models_digest


class Foreign:
    """A type that is neither scikit-learn's nor numpy's."""


@pytest.fixture
def gappy(toy):
    """The toy data with missing values in two columns (every 5th and 7th row) and
    string labels."""
    X, y, g = toy
    X = X.copy()
    X.loc[X.index[::5], "f1"] = np.nan
    X.loc[X.index[::7], "f3"] = np.nan
    return X, y.map({0: "neg", 1: "pos"}), g


def _runs(n):
    rows = np.arange(n)
    return dict(train_indices=[rows[rows % 4 != 0], rows[rows % 4 != 1]],
                val_indices=[rows[rows % 4 == 0], rows[rows % 4 == 1]], seeds=[0, 1])


def _rewrite(path, cfg=None, **changes):
    """Change config.json and give it the checksum of the (possibly replaced)
    models.skops, as a save would have: reaches the checks behind the checksum."""
    cfg = dict(cfg or json.loads((path / "config.json").read_text()), **changes)
    cfg["models_sha256"] = _models_digest(path / MODELS_FILE, cfg)
    (path / "config.json").write_text(json.dumps(cfg))


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("kind", ["logreg", "hgb"])
def test_reference_classifier_round_trip_is_bit_identical(kind, gappy, tmp_path):
    X, y, _ = gappy
    m = ReferenceClassifier(kind=kind, random_state=3).fit_runs(X, y, **_runs(len(X)))
    out = m.save(tmp_path / "m")
    assert out == tmp_path / "m"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", MODELS_FILE]
    with zipfile.ZipFile(out / MODELS_FILE) as z:          # skops' zip, not a pickle
        assert "schema.json" in z.namelist()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == "noharm-model" and cfg["class"] == "ReferenceClassifier"
    assert cfg["kind"] == kind and cfg["classes"] == ["neg", "pos"] and cfg["n_runs"] == 2
    assert cfg["feature_names"] == list(X.columns) and cfg["params"]["random_state"] == 3

    back = ReferenceClassifier.load(out)
    assert back.get_params() == m.get_params() and back.n_runs_ == 2
    assert np.isnan(X.to_numpy()).any()                    # the NaN rows are predicted too
    assert np.array_equal(back.predict_proba_runs(X), m.predict_proba_runs(X))
    assert np.array_equal(back.predict_proba(X), m.predict_proba(X))
    assert list(back.predict(X)) == list(m.predict(X))
    assert np.array_equal(back.predict_proba(X[X.columns[::-1]]), m.predict_proba(X))
    if kind == "logreg":                                   # the imputer came back fitted
        imp, imp0 = back.models_[0].steps[0][1], m.models_[0].steps[0][1]
        assert type(imp).__name__ == "SimpleImputer"
        assert np.array_equal(imp.statistics_, imp0.statistics_, equal_nan=True)
        assert list(imp.indicator_.features_) == list(imp0.indicator_.features_) == [1, 3]


@pytest.mark.parametrize("kind", ["linreg", "hgb"])
def test_reference_regressor_round_trip_is_bit_identical(kind, gappy, tmp_path):
    X, _, _ = gappy
    t = 2.0 * X["f0"].to_numpy() + np.sin(X["f2"].to_numpy())
    m = ReferenceRegressor(kind=kind).fit_runs(X, t, **_runs(len(X)))
    back = ReferenceRegressor.load(m.save(tmp_path / "r"))
    assert "classes" not in json.loads((tmp_path / "r" / "config.json").read_text())
    assert np.array_equal(back.predict_runs(X), m.predict_runs(X))
    assert np.array_equal(back.predict(X), m.predict(X))
    assert type(load_model(tmp_path / "r")) is ReferenceRegressor


def test_save_needs_a_fitted_model_and_a_directory(gappy, tmp_path):
    with pytest.raises(NotFittedError, match="not fitted"):
        ReferenceClassifier().save(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    X, y, _ = gappy
    (tmp_path / "file").write_text("x")
    with pytest.raises(PersistenceError, match="is a file"):
        ReferenceClassifier().fit(X, y).save(tmp_path / "file")


# ---------------------------------------------------------------------- load_model
def test_load_model_dispatches_on_the_saved_class(toy, tmp_path):
    X, y, g = toy
    net = GenericClassifier(random_state=1, **SMALL).fit(X, y, sensitive_features=g)
    ref = ReferenceClassifier(kind="hgb").fit(X, y)
    net.save(tmp_path / "net")
    ref.save(tmp_path / "ref")

    a, b = load_model(tmp_path / "net"), load_model(str(tmp_path / "ref"))
    assert type(a) is GenericClassifier and type(b) is ReferenceClassifier
    assert np.array_equal(a.predict_proba(X), net.predict_proba(X))
    assert np.array_equal(b.predict_proba(X), ref.predict_proba(X))

    # each class's own load refuses the other kind, pointing to load_model
    with pytest.raises(PersistenceError, match="scikit-learn reference.*load_model"):
        GenericClassifier.load(tmp_path / "ref")
    with pytest.raises(PersistenceError, match="'GenericClassifier', not a ReferenceClass"):
        ReferenceClassifier.load(tmp_path / "net")
    with pytest.raises(PersistenceError, match="not a ReferenceRegressor"):
        ReferenceRegressor.load(tmp_path / "ref")


def test_load_model_refuses_unknown_classes_and_non_models(toy, tmp_path):
    X, y, _ = toy
    ReferenceClassifier().fit(X, y).save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "class": "Mystery"}))
    with pytest.raises(PersistenceError, match="class 'Mystery'.*does not know"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(PersistenceError, match="model format 99.*re-save"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(PersistenceError, match="not valid JSON"):
        load_model(tmp_path / "m")
    with pytest.raises(PersistenceError, match="not a saved noharm model.*model.save"):
        load_model(tmp_path / "nothing")


# ---------------------------------------------------------------------- broken models.skops
@pytest.fixture
def saved(toy, tmp_path):
    X, y, _ = toy
    m = ReferenceClassifier(kind="logreg").fit(X, y)
    return m, m.save(tmp_path / "m")


def test_a_changed_models_file_or_config_is_refused(saved):
    _, path = saved
    data = bytearray((path / MODELS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / MODELS_FILE).write_bytes(bytes(data))
    with pytest.raises(PersistenceError, match="changed after saving.*re-save"):
        ReferenceClassifier.load(path)


def test_a_reordered_feature_list_is_refused(saved):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["feature_names"] = cfg["feature_names"][::-1]
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(PersistenceError, match="changed after saving"):
        load_model(path)


def test_a_corrupt_models_file_is_refused(saved):
    _, path = saved
    (path / MODELS_FILE).write_bytes((path / MODELS_FILE).read_bytes()[:500])
    _rewrite(path)                           # the checksum agrees: skops itself must refuse
    with pytest.raises(PersistenceError, match=f"{MODELS_FILE} is damaged.*re-save"):
        ReferenceClassifier.load(path)
    (path / MODELS_FILE).unlink()
    with pytest.raises(PersistenceError, match=f"holds no {MODELS_FILE}"):
        load_model(path)


def test_foreign_types_are_not_loaded(saved):
    _, path = saved
    sio.dump([Foreign()], path / MODELS_FILE)
    _rewrite(path)
    with pytest.raises(PersistenceError, match=r"'test_persistence\.Foreign'.*only "
                                               "scikit-learn and numpy types are trusted"):
        ReferenceClassifier.load(path)


def test_other_sklearn_estimators_are_not_taken_for_the_runs(saved, toy):
    _, path = saved
    X, y, _ = toy
    sio.dump([LogisticRegression().fit(X.to_numpy(), y)], path / MODELS_FILE)  # no pipeline
    _rewrite(path)
    with pytest.raises(PersistenceError, match="does not hold 1 run.*Pipeline"):
        ReferenceClassifier.load(path)


# ---------------------------------------------------------------------- checksums
@pytest.fixture
def checked(saved):
    _, path = saved
    (path / "notes").mkdir()
    (path / "notes" / "readme.txt").write_text("a nested file\n")
    return path, write_checksums(path)


def test_checksums_list_every_file_and_verify(checked):
    path, manifest_file = checked
    assert manifest_file == path / "checksums.json"
    manifest = json.loads(manifest_file.read_text())
    assert {k: manifest[k] for k in ("format", "format_version", "algorithm")} == \
        {"format": "noharm-checksums", "format_version": 1, "algorithm": "sha256"}
    assert list(manifest["files"]) == ["config.json", MODELS_FILE, "notes/readme.txt"]
    for rel, digest in manifest["files"].items():
        assert digest == hashlib.sha256((path / rel).read_bytes()).hexdigest()
    verify_checksums(path)
    write_checksums(path)                     # rewriting leaves checksums.json out again
    verify_checksums(path)


@pytest.mark.parametrize("rel", ["config.json", MODELS_FILE, "notes/readme.txt"])
def test_a_changed_byte_in_any_file_is_refused(checked, rel):
    path, _ = checked
    data = bytearray((path / rel).read_bytes())
    data[-2] ^= 0x01
    (path / rel).write_bytes(bytes(data))
    with pytest.raises(PersistenceError, match=f"{rel} in .* differs from its checksum: the "
                                               "directory was modified after it was saved; "
                                               "re-save or re-run"):
        verify_checksums(path)


def test_a_removed_or_added_file_is_refused(checked):
    path, _ = checked
    (path / "notes" / "extra.txt").write_text("added later")
    with pytest.raises(PersistenceError, match="notes/extra.txt in .* is not listed"):
        verify_checksums(path)
    (path / "notes" / "extra.txt").unlink()
    (path / "notes" / "readme.txt").unlink()
    with pytest.raises(PersistenceError, match="notes/readme.txt is listed .* but missing"):
        verify_checksums(path)


def test_missing_or_malformed_manifests_and_symlinks_are_refused(checked):
    path, manifest_file = checked
    manifest = json.loads(manifest_file.read_text())
    manifest_file.write_text(json.dumps({**manifest, "algorithm": "md5"}))
    with pytest.raises(PersistenceError, match="malformed"):
        verify_checksums(path)
    manifest_file.write_text("[1, 2")
    with pytest.raises(PersistenceError, match="cannot be read as JSON"):
        verify_checksums(path)
    manifest_file.unlink()
    with pytest.raises(PersistenceError, match="has no checksums.json; write one"):
        verify_checksums(path)
    (path / "link").symlink_to(path / "config.json")
    with pytest.raises(PersistenceError, match="link in .* is a symbolic link"):
        write_checksums(path)
    with pytest.raises(PersistenceError, match="not a directory"):
        write_checksums(path / "config.json")


# ---------------------------------------------------------------------- all training rows
def test_fit_runs_trains_on_the_early_stopping_rows_too(toy):
    X, y, _ = toy
    y = y.to_numpy()
    zeros, ones = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    train, val = zeros[::-1], ones                 # training rows of one class only
    m = ReferenceClassifier(kind="logreg").fit_runs(X, y, train_indices=[train],
                                                    val_indices=[val], seeds=[0])
    rows = np.union1d(train, val)
    alone = ReferenceClassifier(kind="logreg").fit(X.iloc[rows], y[rows])
    assert np.array_equal(m.models_[0][-1].coef_, alone.models_[0][-1].coef_)
    assert np.array_equal(m.predict_proba(X), alone.predict_proba(X))


def test_fit_runs_uses_each_row_once_with_hgb(toy):
    X, y, _ = toy
    y = y.to_numpy()
    train, val = np.arange(0, 160), np.arange(120, 200)     # overlapping rows
    m = ReferenceClassifier(kind="hgb").fit_runs(X, y, train_indices=[train],
                                                 val_indices=[val], seeds=[7])
    rows = np.arange(200)
    ref = HistGradientBoostingClassifier(random_state=7).fit(X.to_numpy(np.float64)[rows],
                                                             y[rows])
    assert np.array_equal(m.predict_proba_runs(X)[0],
                          ref.predict_proba(X.to_numpy(np.float64))[:, 1])
    with pytest.raises(ConfigError, match="2 train_indices, 1 val_indices and 2 seeds"):
        ReferenceClassifier().fit_runs(X, y, train_indices=[train, train],
                                       val_indices=[val], seeds=[0, 1])
