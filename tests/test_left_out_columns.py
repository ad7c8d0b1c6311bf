"""A column with nothing to learn from on a run's training rows (missing on every one of
them, or one value) is left out of that run by every model, references included, with a
note (issue 29: the Hungarian heart file, whose `ca` is missing on 291 of 294 rows)."""
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from noharm.cli import app
from noharm.models import ConditionalBiasClassifier, GenericClassifier, ReferenceClassifier

COLS = "age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal,num"


def _data(seed=0, n=240):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] - X["b"] + rng.logistic(size=n) * 0.5 > 0).astype(int).to_numpy()
    g = np.where(rng.random(n) < 0.5, "f", "m")
    return X, y, g


MODELS = [lambda: GenericClassifier(max_epochs=10),
          lambda: ConditionalBiasClassifier(max_epochs=10),
          lambda: ReferenceClassifier("logreg"), lambda: ReferenceClassifier("hgb")]


@pytest.mark.parametrize("make", MODELS, ids=["generic", "conditional-bias", "logreg", "hgb"])
@pytest.mark.parametrize("empty", ["missing", "constant"])
def test_a_column_without_variation_in_training_is_left_out(make, empty):
    """Trained where column d is missing (or 7.0) on every row, a model's predictions do
    not move when later rows hold values there (its weights were never trained)."""
    X, y, g = _data()
    train = X.copy()
    train["d"] = np.nan if empty == "missing" else 7.0
    model = make().fit(train, y, sensitive_features=g)
    new = X.copy()
    new["d"] = 50.0 * np.sign(X["d"])                     # large values the model never saw
    base = model.predict_proba(train, sensitive_features=g)[:, 1]
    assert np.allclose(model.predict_proba(new, sensitive_features=g)[:, 1], base, atol=1e-6)


def test_a_file_with_a_column_missing_in_some_runs_runs_to_the_end(tmp_path):
    """Hungarian-like: Cleveland with `ca` observed on 2 rows, which the plan puts outside
    the training rows (before: a traceback inside gradient boosting), and chol=0 meaning
    missing; every model trains, and a note names the left-out column."""
    from noharm.datasets._fetch import packaged
    raw = pd.read_csv(packaged("uci_heart", "processed.cleveland.data"), header=None,
                      dtype=str)
    raw[11] = "?"
    raw.loc[[3, 4], 11] = "1.0"           # observed on 2 rows, outside the runs' training rows
    raw.loc[::9, 4] = "0"
    f = tmp_path / "hungarian.data"
    raw.to_csv(f, header=False, index=False)
    r = CliRunner().invoke(app, [
        "personalize", "--data", str(f), "--sep", ",", "--names", COLS, "--na-values", "?",
        "--na-values", "chol=0", "--target", "num>0", "--group", "age:50", "--group", "sex",
        "--seeds", "1", "--folds", "2", "--max-epochs", "3", "--outer-splits", "2",
        "--models", "generic,conditional-bias,logreg,hgb", "--output", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "column(s) ca (" in r.output and "leaves them out" in r.output
    res = pd.read_csv(tmp_path / "o" / "results.csv")
    assert {"generic", "conditional-bias", "logreg", "hgb"} <= set(res["model"])
