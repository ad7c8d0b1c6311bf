"""Personalization for continuous outcomes (issue 20): regressors, the study on squared
error with the guard, the audit's BoP family and k_max, bad targets."""
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import is_regressor
from typer.testing import CliRunner

from noharm.cli import app
from noharm.datasets import load_tabular
from noharm.errors import ConfigError, MissingValuesError, TargetError
from noharm.experiments import PersonalizationStudy, run_study
from noharm.models import (ConditionalBiasRegressor, DecoupledRegressor, GenericRegressor,
                           NetClassifier, ReferenceRegressor)

from conftest import runner_error as _err

runner = CliRunner()
SMALL = dict(hidden_layers=2, hidden_units=16, max_epochs=60, patience=10)
NOISE = 0.5


def planted(seed: int, n: int = 1200) -> pd.DataFrame:
    """y = a + s_g * b + noise: subgroup A (c > 0.5, about 30 %) has slope -1.5 on b,
    B has +1; the group is a function of c, so every network can see it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    grp = np.where(x[:, 2] > 0.5, "A", "B")
    y = x[:, 0] + np.where(grp == "A", -1.5, 1.0) * x[:, 1] + NOISE * rng.normal(size=n)
    return pd.DataFrame(x, columns=["a", "b", "c"]).assign(grp=grp, y=y)


def test_regressors_fit_predict_save_and_refuse_probabilities(tmp_path):
    df = planted(0, 600)
    X, y, g = df[["a", "b", "c"]], df["y"], df["grp"]
    for est in (GenericRegressor(**SMALL), DecoupledRegressor(**SMALL),
                ConditionalBiasRegressor(**SMALL, attr_layers=2)):
        est.fit(X, y, sensitive_features=g)
        assert is_regressor(est)
        p = est.predict(X, sensitive_features=g)
        assert p.shape == (600,) and np.isfinite(p).all()
        assert abs(p.mean() - y.mean()) < 0.5                    # in the target's units
        assert not hasattr(est, "predict_proba")     # a regressor, as scikit-learn sees it
        with pytest.raises(AttributeError, match="predict_proba"):
            est.predict_proba(X)
        d = est.save(tmp_path / type(est).__name__)
        back = NetClassifier.load(d)
        np.testing.assert_array_equal(back.predict(X, sensitive_features=g), p)
    for kind in ("linreg", "hgb"):
        ref = ReferenceRegressor(kind=kind).fit(X, y)
        assert ref.predict_runs(X).shape == (1, 600) and is_regressor(ref)


def test_the_planted_slope_change_is_recovered_and_deployed_by_the_guard():
    """Against a linear reference that cannot model the subgroup's slope, the
    conditional-bias regressor and the guarded model recover most of the planted gain in
    subgroup A on held-out rows (median over 3 seeds); the guard deploys a personalized
    model there."""
    cb_share, guard_share, deployed = [], [], []
    for seed in range(3):
        cohort = load_tabular(planted(seed), target="y", groups=["grp"], task="regression",
                              drop_group_columns=True)
        study = PersonalizationStudy(task="regression", models=("conditional-bias", "linreg"),
                                     reference="linreg", n_seeds=1, n_folds=3,
                                     random_state=seed, hidden_layers=2, hidden_units=32,
                                     attr_layers=2)
        res = run_study(study, cohort)
        s = res.summary[(res.summary.metric == "mse") & (res.summary.subgroup == "A")]
        mse = s.set_index("model")["mean"]
        planted_gain = mse["reference"] - NOISE ** 2
        assert planted_gain > 1.0                      # the reference misses the slope
        cb_share.append((mse["reference"] - mse["conditional-bias"]) / planted_gain)
        guard_share.append((mse["reference"] - mse["guarded"]) / planted_gain)
        dep = res.results[(res.results.role == "guard") & (res.results.metric == "deployed")
                          & (res.results.subgroup == "A")]
        deployed.append(dep["model"].iloc[0])
        verdict = s.set_index("model").loc["guarded", "verdict"]
        assert verdict in ("helps", "cannot tell")
    assert np.median(cb_share) > 0.7, cb_share
    assert np.median(guard_share) > 0.7, guard_share
    assert deployed.count("conditional-bias") >= 2, deployed


def test_regression_study_from_the_cli_and_predict(tmp_path):
    path = tmp_path / "los.csv"
    planted(1, 500).rename(columns={"y": "los"}).to_csv(path, index=False)
    out = tmp_path / "run"
    res = runner.invoke(app, ["personalize", "--data", str(path), "--target", "los",
                              "--group", "grp", "--task", "regression", "--seeds", "1",
                              "--folds", "3", "--max-epochs", "5", "--hidden-layers", "2",
                              "--hidden-units", "8", "--attr-layers", "2", "--output", str(out),
                              "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert "Guard certificate" in res.stdout and "MSE" in res.stdout
    from noharm.report import markdown_report                # the full tables
    full = markdown_report(pd.read_csv(out / "summary.csv"), title="t", full=True)
    assert "Mean squared error per subgroup" in full and "ridge regression" in full
    s = pd.read_csv(out / "summary.csv")
    assert {"mse", "mae", "r2"} == set(s.metric)
    assert set(s.model) == {"generic", "decoupled", "conditional-bias", "linreg", "hgb",
                            "reference", "guarded"}
    results = pd.read_csv(out / "results.csv")
    assert (results.role == "guard").any()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["options"]["task"] == "regression"
    assert cfg["options"]["guard_metric"] == "squared-error"
    new = tmp_path / "new.csv"
    planted(2, 20).drop(columns="y").to_csv(new, index=False)
    res = runner.invoke(app, ["predict", "--model", str(out / "models" / "generic" / "split0"),
                              "--data", str(new), "--out", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    p = pd.read_csv(tmp_path / "p.csv")
    assert list(p.columns) == ["row", "subgroup", "prediction"] and len(p) == 20


def test_regression_audit_reports_squared_error_bop_family_and_k_max():
    from noharm.audit import audit_models
    df = planted(3, 800)
    X, y, g = df[["a", "b", "c", "grp"]].assign(grp=lambda d: (d.grp == "A") * 1.0), \
        df["y"], df["grp"]
    tr, te = np.arange(600), np.arange(600, 800)
    h0 = GenericRegressor(hidden_layers=1, hidden_units=4, max_epochs=30).fit(
        X.iloc[tr], y.iloc[tr])
    hp = DecoupledRegressor(**SMALL).fit(X.iloc[tr], y.iloc[tr], sensitive_features=g[tr])
    res = audit_models(h0, hp, X.iloc[te], y.iloc[te], sensitive_features=g.iloc[te],
                       explain=False, eps=0.1)
    t = res.table
    assert set(t.metric) == {"squared_error"}
    a = t[(t.group == "A")].iloc[0]
    assert a.bop > 0 and a.verdict == "helps"                   # decoupled models slope A
    assert res.family["family"] in ("gaussian", "laplace") and res.family["sigma"] > 0
    assert res.reliability["k_max"] > 0 and res.task == "regression"
    assert "individual BoP (squared error) family" in res.summary_lines()[0]


@pytest.mark.parametrize("mutate, err, needle", [
    (lambda d: d.assign(y=["a", "b"] * (len(d) // 2)), TargetError, "must be numeric"),
    (lambda d: d.assign(y=3.0), TargetError, "is constant"),
    (lambda d: d.assign(y=d.y.where(d.index > 2)), MissingValuesError, "missing on 3 row"),
])
def test_bad_regression_targets(mutate, err, needle):
    df = mutate(planted(0, 100))
    with pytest.raises(err, match=needle):
        c = load_tabular(df, target="y", groups=["grp"], task="regression")
        run_study(PersonalizationStudy(task="regression", models=("generic", "linreg"),
                                       n_seeds=1, n_folds=3), c)


def test_bad_regression_options_are_one_line(tmp_path):
    path = tmp_path / "los.csv"
    planted(1, 200).to_csv(path, index=False)
    base = ["personalize", "--data", str(path), "--target", "y", "--group", "grp", "--task",
            "regression"]
    assert "use linreg" in _err(runner.invoke(app, [*base, "--models", "generic,logreg"]))
    assert "does not fit the regression task" in _err(runner.invoke(
        app, [*base, "--guard-metric", "log-loss"]))
    path2 = tmp_path / "txt.csv"
    planted(1, 200).assign(y=["x", "y"] * 100).to_csv(path2, index=False)
    assert "must be numeric for --task regression" in _err(runner.invoke(
        app, ["personalize", "--data", str(path2), "--target", "y", "--group", "grp",
              "--task", "regression"]))
