"""Fair use of group attributes (issue 28): blind and aware forms of a model family, the
per-group rationality and envy-freeness audit, its error rate on null cohorts."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from noharm.audit.fair_use import FairUseAudit
from noharm.datasets import load_heart, make_interaction_cohort, make_null_cohort
from noharm.errors import ConfigError, GroupError
from noharm.models import GuardedClassifier, ReferenceClassifier
from noharm.models.forms import GroupAware, GroupBlind

LOGREG = {"logreg": ReferenceClassifier("logreg")}


def test_the_blind_form_never_sees_the_group_and_the_aware_form_is_told_it():
    c = load_heart()
    blind = GroupBlind(group_columns=["age", "sex"]).fit(c.X, c.y, sensitive_features=c.groups)
    moved = c.X.assign(age=c.X["age"] + 30, sex=1 - c.X["sex"])
    flipped = c.groups.assign(sex=c.groups["sex"].map({"male": "female", "female": "male"}))
    p = blind.predict_proba(c.X, sensitive_features=c.groups)
    assert np.array_equal(blind.predict_proba(moved, sensitive_features=flipped), p)
    aware = GroupAware(group_columns=["age", "sex"], encoding="onehot").fit(
        c.X, c.y, sensitive_features=c.groups)
    assert aware.onehot_names_ == ["age=old", "age=young", "sex=female", "sex=male"]
    q = aware.predict_proba(c.X, sensitive_features=c.groups)
    assert np.array_equal(aware.predict_proba(moved, sensitive_features=c.groups), q)
    assert not np.allclose(aware.predict_proba(c.X, sensitive_features=flipped), q)
    with pytest.raises(GroupError, match="not seen in training"):
        aware.predict_proba(c.X, sensitive_features=c.groups.assign(sex="other"))
    with pytest.raises(ConfigError, match=r"\['agee'\] are not columns of X"):
        GroupBlind(group_columns=["agee"]).fit(c.X, c.y, sensitive_features=c.groups)


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_interaction_one_hot_helps_one_group_harms_another_and_causes_envy(seed):
    """+4 logits for old women only; told age and sex additively, logistic regression
    helps old women, harms old men, and old men would do better claiming to be young."""
    c = make_interaction_cohort(6000, shift=4, random_state=seed)
    a = FairUseAudit(LOGREG, encoding="onehot").fit(c.X, c.y, sensitive_features=c.groups)
    s = a.summary_.set_index("group")
    assert s.loc["old_female", "rationality"] == "holds"
    assert s.loc["old_male", "rationality"] == "violated"
    assert s.loc["old_male", "envy"].startswith("envies young_")
    assert s.loc["young_male", "rationality"] == "cannot tell"
    assert s.loc["old_female", "vs_every_blind"] == "helps"
    assert a.gamma_.loc[0, "of_group"] in ("old_male", "young_female")
    assert a.gamma_.loc[0, "verdict"] == "cannot tell" and a.gamma_.loc[0, "gamma"] < 0
    # intersectional one-hot gives old women their own input: nobody is harmed
    b = FairUseAudit(LOGREG).fit(c.X, c.y, sensitive_features=c.groups)
    assert "violated" not in set(b.summary_["rationality"])
    assert b.summary_.set_index("group").loc["old_female", "rationality"] == "holds"


def test_null_cohorts_certify_a_gain_at_most_alpha():
    """The attributes are noise: over 100 cohorts the family-wise rate of certifying that
    some group gains from its attribute (rationality or against every blind model) is
    not significantly above alpha = 0.05."""
    hits = 0
    for r in range(100):
        c = make_null_cohort(800, random_state=r)
        a = FairUseAudit(LOGREG, metrics=("log-loss",), explain=False, random_state=r).fit(
            c.X, c.y, sensitive_features=c.groups)
        hits += bool((a.summary_["rationality"] == "holds").any()
                     or (a.summary_["vs_every_blind"] == "helps").any())
    assert stats.binomtest(hits, 100, 0.05, alternative="greater").pvalue > 0.05, hits


def test_every_metric_has_a_row_and_small_groups_are_not_tested():
    c = make_null_cohort(300, random_state=0)
    a = FairUseAudit(LOGREG, min_units=40).fit(c.X, c.y, sensitive_features=c.groups)
    r = a.rationality_
    assert set(r["metric"]) == {"log-loss", "zero-one", "auroc", "brier", "sufficiency",
                                "incomprehensiveness"}
    small = r[r["n"] < 40]
    assert len(small) and (small["verdict"] == "cannot tell").all()
    assert (small["p_helps"] == 1).all()


def test_the_guard_takes_blind_references_and_aware_candidates():
    """The guard with both forms: a deployed model uses the attribute only for a group
    that gains from it (here old women, the planted group)."""
    c = make_interaction_cohort(3000, shift=4, random_state=0)
    kw = dict(group_columns=(), encoding="intersectional")
    g = GuardedClassifier(reference={"blind": GroupBlind(ReferenceClassifier("logreg"), **kw)},
                          candidates={"aware": GroupAware(ReferenceClassifier("logreg"), **kw)},
                          n_seeds=1, n_folds=2).fit(c.X, c.y, sensitive_features=c.groups)
    cert = g.certificate_.set_index("group")
    assert cert.loc["old_female", "deployed"] == "aware"
    p = g.predict_proba(c.X, sensitive_features=c.subgroups)[:, 1]
    assert p.shape == (3000,)


def test_bad_inputs_are_one_clear_error():
    c = make_null_cohort(200, random_state=0)
    with pytest.raises(ConfigError, match="needs several attributes"):
        FairUseAudit(LOGREG, encoding="onehot").fit(c.X, c.y,
                                                    sensitive_features=c.subgroups)
    with pytest.raises(ValueError, match="metric"):
        FairUseAudit(LOGREG, metrics=("accuracy",)).fit(c.X, c.y,
                                                       sensitive_features=c.groups)
    with pytest.raises(GroupError, match="at least two groups"):
        FairUseAudit(LOGREG).fit(c.X, c.y, sensitive_features=np.array(["a"] * 200))
    with pytest.raises(Exception, match="not fitted"):
        FairUseAudit().individual_bop(c.X, c.y, sensitive_features=c.groups)


def test_the_cli_audits_heart_and_writes_its_files(tmp_path):
    from typer.testing import CliRunner

    from noharm.cli import app
    out = tmp_path / "fu"
    args = ["audit", "fair-use", "--dataset", "heart", "--families", "logreg",
            "--output", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "old_female" in r.output and "minimal group BoP" in r.output
    assert "k_max" in r.output
    for f in ("fair_use.csv", "envy.csv", "fair_use_summary.csv", "fair_use.md",
              "fair_use.png"):
        assert (out / f).is_file()
    from noharm.report.html import write_report
    html = write_report(out).read_text()
    assert "Fair use of group attributes" in html and "data:image/png" in html
    assert "minimal group BoP" in html
    again = CliRunner().invoke(app, args)                     # never overwrites
    assert again.exit_code == 2 and "--overwrite" in again.output
    bad = CliRunner().invoke(app, ["audit", "fair-use", "--dataset", "heart",
                                   "--families", "svm"])
    assert bad.exit_code == 2 and "unknown family 'svm'" in bad.output


def test_the_study_deploys_an_aware_form_only_where_it_helps_and_saves_it(tmp_path):
    """`personalize --models logreg,logreg-aware`: the reference is fitted blind, the
    aware form is deployed for the planted group, and the guarded model saves and loads."""
    from noharm.experiments import PersonalizationStudy, RunOptions, run_study
    from noharm.models.guarded import export_study_guard

    c = make_interaction_cohort(3000, shift=4, random_state=0)
    study = PersonalizationStudy(models=("logreg", "logreg-aware"), n_seeds=1, n_folds=2)
    assert study.blind_references
    res = run_study(study, c, RunOptions(n_jobs=1), model_dir=tmp_path)
    dep = res.results[(res.results.role == "guard") & (res.results.metric == "deployed")]
    routing = dict(zip(dep["subgroup"], dep["model"]))
    assert routing["old_female"] == "logreg-aware"
    out = export_study_guard(res.results, tmp_path, {"guard_metric": "log-loss",
                                                     "guard_alpha": 0.05, "margin": 0.0})
    g = GuardedClassifier.load(out[0])
    assert type(g.models_["logreg"]).__name__ == "GroupBlind"
    p = g.predict_proba(c.X, sensitive_features=c.subgroups)[:, 1]
    assert p.shape == (3000,) and np.isfinite(p).all()
    with pytest.raises(ConfigError, match="unknown model 'logreg-aware' for regression"):
        PersonalizationStudy(models=("linreg", "logreg-aware"), task="regression")


def test_explanation_bop_compares_each_forms_own_explanations():
    """Sufficiency / incomprehensiveness of blind and aware forms by feature ablation:
    told the planted attribute, gradient boosting explains old women's predictions with
    fewer features (sufficiency BoP > 0), and the blind and aware costs differ."""
    c = make_interaction_cohort(3000, shift=4, random_state=0)
    a = FairUseAudit({"hgb": ReferenceClassifier("hgb")}, metrics=("log-loss",)).fit(
        c.X, c.y, sensitive_features=c.groups)
    r = a.rationality_.set_index(["metric", "group"])
    assert r.loc[("sufficiency", "old_female"), "verdict"] == "helps"
    e = a.rationality_[a.rationality_["metric"].isin(["sufficiency", "incomprehensiveness"])]
    assert len(e) == 8 and (e["cost_blind"] != e["cost_aware"]).all()
    assert (e["cost_blind"][e["metric"] == "sufficiency"] >= 0).all()


def test_regression_fair_use_finds_the_planted_group_and_refuses_classifier_metrics():
    c = make_interaction_cohort(3000, shift=4, random_state=0)
    rng = np.random.default_rng(0)
    old_female = (c.groups["age"] == "old") & (c.groups["sex"] == "female")
    y = 2 * c.X["x0"] + 3 * old_female + rng.normal(size=3000)
    a = FairUseAudit(task="regression", encoding="onehot", explain=False).fit(
        c.X, y, sensitive_features=c.groups)
    s = a.summary_.set_index(["family", "group"])
    assert s.loc[("linreg", "old_female"), "rationality"] == "holds"
    assert s.loc[("linreg", "old_male"), "rationality"] == "violated"
    assert set(a.rationality_["metric"]) == {"squared-error"}
    with pytest.raises(ValueError, match="metric"):
        FairUseAudit(task="regression", metrics=("log-loss",)).fit(
            c.X, y, sensitive_features=c.groups)


def test_review_fixes_blind_hides_groups_tiny_groups_and_one_hot_group_columns():
    from noharm.models import DecoupledClassifier
    from noharm.models.forms import attribute_columns
    c = make_interaction_cohort(400, random_state=0)
    with pytest.raises(ConfigError, match="GroupBlind cannot wrap DecoupledClassifier"):
        GroupBlind(DecoupledClassifier()).fit(c.X, c.y, sensitive_features=c.groups)
    g = c.subgroups.to_numpy().copy()
    g[:1] = "tiny"                                  # 1 row: sometimes an audit row
    a = FairUseAudit(LOGREG, explain=False, audit_size=0.5)
    with pytest.raises(GroupError, match="tiny"):
        for seed in range(20):                      # some split leaves it no fit row
            a.set_params(random_state=seed).fit(c.X, c.y, sensitive_features=g)
    # a text group column one-hot encoded by load_tabular: every one of its columns goes
    X = c.X.assign(sex_female=(c.groups["sex"] == "female").astype(float),
                   sex_male=(c.groups["sex"] == "male").astype(float), sex_years=45.0)
    assert attribute_columns(X, ["sex", "age"]) == ["sex_female", "sex_male"]


def test_null_cohorts_with_three_rows_per_patient_count_patients_once():
    """200 patients x 3 rows, attributes noise: the audit holds out whole patients and
    tests per patient; over 100 cohorts it certifies a gain at most alpha (ignoring the
    ids would count each patient three times and certify far more often)."""
    hits = 0
    for r in range(100):
        c = make_null_cohort(300, rows_per_patient=3, random_state=r)
        a = FairUseAudit(LOGREG, metrics=("log-loss",), explain=False, random_state=r).fit(
            c.X, c.y, sensitive_features=c.groups, patient_ids=c.split_by)
        audit_ids = set(c.split_by.iloc[a.audit_rows_])
        assert not audit_ids & set(c.split_by.drop(index=a.audit_rows_))
        assert a.summary_["n"].sum() == len(audit_ids)          # n counts patients
        hits += bool((a.summary_["rationality"] == "holds").any()
                     or (a.summary_["vs_every_blind"] == "helps").any())
    assert stats.binomtest(hits, 100, 0.05, alternative="greater").pvalue > 0.05, hits
