"""Any scikit-learn classifier as a reference or a candidate (issue 30): in
GuardedClassifier and in the personalization study, saved and loaded without pickle."""
import json

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from noharm.datasets import make_interaction_cohort
from noharm.errors import ConfigError
from noharm.experiments import PersonalizationStudy, RunOptions, run_study
from noharm.models import GroupAware, GuardedClassifier
from noharm.models.any_estimator import EstimatorClassifier
from noharm.models.persistence import load_model

ET = dict(n_estimators=40, min_samples_leaf=5)


def test_a_wrapped_estimator_has_seeded_runs_and_round_trips(tmp_path):
    c = make_interaction_cohort(600, random_state=1)
    rows = np.arange(600)
    m = EstimatorClassifier(ExtraTreesClassifier(**ET)).fit_runs(
        c.X, c.y, train_indices=[rows[:400], rows[200:]], val_indices=[rows[:0], rows[:0]],
        seeds=[3, 4])
    assert [r.steps[-1][1].random_state for r in m.models_] == [3, 4]
    runs = m.predict_proba_runs(c.X)
    assert runs.shape == (2, 600) and not np.allclose(runs[0], runs[1])
    p = make_pipeline(StandardScaler(), LogisticRegression())
    for est in (m, EstimatorClassifier(p).fit(c.X, c.y)):
        est.save(tmp_path / type(est.models_[0]).__name__)
        back = load_model(tmp_path / type(est.models_[0]).__name__)
        assert np.array_equal(back.predict_proba(c.X), est.predict_proba(c.X))
    with pytest.raises(ConfigError, match="needs a classifier"):
        EstimatorClassifier(StandardScaler()).fit(c.X, c.y)


def test_extra_trees_as_reference_and_candidate_in_the_guard_and_the_study(tmp_path):
    c = make_interaction_cohort(2000, shift=4, random_state=0)
    g = GuardedClassifier(reference={"et": ExtraTreesClassifier(**ET)},
                          candidates={"et-aware": GroupAware(ExtraTreesClassifier(**ET))},
                          n_seeds=2, n_folds=2).fit(c.X, c.y, sensitive_features=c.groups)
    assert g.routing_["old_female"] == "et-aware" and g.routing_["young_male"] == "et"
    g.save(tmp_path / "g")
    back = GuardedClassifier.load(tmp_path / "g")
    assert np.array_equal(back.predict_proba(c.X, sensitive_features=c.subgroups),
                          g.predict_proba(c.X, sensitive_features=c.subgroups))
    study = PersonalizationStudy(
        models=("logreg",), extra_references={"et": ExtraTreesClassifier(**ET)},
        extra_candidates={"et-aware": GroupAware(ExtraTreesClassifier(**ET))},
        n_seeds=1, n_folds=2)
    assert study.references == ["logreg", "et"] and study.candidates == ["et-aware"]
    json.dumps(study.options())                     # the store's identity is JSON
    res = run_study(study, c, RunOptions(n_jobs=1))
    dep = res.results[(res.results.role == "guard") & (res.results.metric == "deployed")]
    assert dict(zip(dep["subgroup"], dep["model"]))["old_female"] == "et-aware"
    with pytest.raises(ConfigError, match="taken"):
        PersonalizationStudy(models=("logreg",), extra_references={"hgb": LogisticRegression()})
    with pytest.raises(ConfigError, match="not a classifier"):
        PersonalizationStudy(models=("logreg",), extra_candidates={"x": StandardScaler()})


def test_groups_flow_through_cross_val_score_and_grid_search():
    """With scikit-learn's metadata routing, sensitive_features reaches fit and score of
    a model that needs the groups at prediction (before: nan scores and a warning)."""
    import sklearn
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

    from noharm.models import DecoupledClassifier
    c = make_interaction_cohort(600, shift=1, random_state=2)
    g = c.subgroups.to_numpy()
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    est = DecoupledClassifier(hidden_layers=1, hidden_units=8, max_epochs=20)
    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_val_score(est, c.X, c.y, cv=cv, params={"sensitive_features": g})
        gs = GridSearchCV(est, {"hidden_units": [4, 8]}, cv=cv).fit(
            c.X, c.y, sensitive_features=g)
    manual = [sklearn.base.clone(est).fit(c.X.iloc[tr], c.y.iloc[tr], sensitive_features=g[tr])
              .score(c.X.iloc[te], c.y.iloc[te], sensitive_features=g[te])
              for tr, te in cv.split(c.X, c.y)]
    assert np.isfinite(scores).all() and np.allclose(scores, manual)
    assert gs.best_params_["hidden_units"] in (4, 8) and np.isfinite(gs.best_score_)
    from noharm.models import DecoupledRegressor
    reg = DecoupledRegressor(hidden_layers=1, hidden_units=8, max_epochs=5)
    with sklearn.config_context(enable_metadata_routing=True):
        r2 = cross_val_score(reg, c.X, 2 * c.X["x0"], cv=3, params={"sensitive_features": g})
    assert np.isfinite(r2).all()


def test_an_estimator_noharm_cannot_load_is_refused_at_save(tmp_path):
    from noharm.errors import PersistenceError

    class Mine(LogisticRegression):
        pass
    c = make_interaction_cohort(300, random_state=0)
    m = EstimatorClassifier(Mine()).fit(c.X, c.y)
    with pytest.raises(PersistenceError, match="would not load back"):
        m.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()
