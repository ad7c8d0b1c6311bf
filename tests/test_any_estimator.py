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
