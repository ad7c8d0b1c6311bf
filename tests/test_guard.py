"""The harm guard: burden of proof on personalization, Holm over groups x candidates,
the deployable GuardedClassifier, and the inference it rests on."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from conftest import SMALL
from noharm.audit.guard import deploy, guard_tests
from noharm.datasets import make_synthetic
from noharm.errors import ConfigError, NotFittedError, PersistenceError
from noharm.experiments import PersonalizationStudy, RunOptions, run_study
from noharm.inference import (corrected_t_interval, corrected_t_test, delong_test, holm,
                              paired_bootstrap, paired_mean_test, refit_aware_test,
                              smallest_detectable, studentized_bootstrap_test, verdict)
from noharm.models import (ConditionalBiasClassifier, DecoupledClassifier,
                           GenericClassifier, GuardedClassifier, ReferenceClassifier)


# -- inference -----------------------------------------------------------------------------

def test_holm_matches_the_step_down_definition():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 -> x4, x3, x2, x1, running max, capped at 1
    np.testing.assert_allclose(holm(p), [0.04, 0.09, np.nan, 0.09, 0.5])


def test_corrected_t_is_wider_than_the_plain_t():
    v = np.array([0.02, 0.05, -0.01, 0.04, 0.03])
    plain = corrected_t_interval(v, 0.0)
    corr = corrected_t_interval(v, 0.25)
    assert corr[0] < plain[0] and corr[1] > plain[1]
    se = np.sqrt(v.var(ddof=1) * (1 / 5 + 0.25))
    assert corr[1] - v.mean() == pytest.approx(stats.t.ppf(0.975, 4) * se)
    assert corrected_t_test(v, 0.25) > corrected_t_test(v, 0.0)
    assert np.isnan(corrected_t_test(np.zeros(3)))          # the same model: no test


def test_paired_tests_and_bootstrap():
    rng = np.random.default_rng(0)
    d = rng.normal(0.3, 1, 400)
    mean, low, _, p = paired_mean_test(d)
    assert p < 1e-4 and low < mean
    assert paired_mean_test(-d)[3] > 0.99
    assert paired_mean_test(d - 0.5, margin=0.5)[3] == pytest.approx(p)   # shifted H0
    lo, hi, pb = paired_bootstrap(d)
    assert lo < 0.3 < hi and pb < 0.01
    y = rng.integers(0, 2, 300)
    good = y + rng.normal(0, 0.6, 300)
    bad = y + rng.normal(0, 2.0, 300)
    diff, se, p = delong_test(y, bad, good)
    assert diff == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, bad))
    assert p < 0.001 and se > 0
    assert delong_test(y, good, good)[2] == pytest.approx(0.5) or \
        delong_test(y, good, good)[0] == 0
    assert verdict(0.1, 0.01) == "helps" and verdict(-0.1, 0.01) == "harms"
    assert verdict(0.1, 0.2) == "cannot tell"


# -- the decision rule --------------------------------------------------------------------

def _null_case(rng, n_per_group=150, groups=4):
    """Reference and candidate of the same skill: no group should be personalized."""
    g = np.repeat([f"g{k}" for k in range(groups)], n_per_group)
    score = rng.normal(size=len(g))
    y = (score + rng.normal(0, 1, len(g)) > 0).astype(int)
    p_ref = 1 / (1 + np.exp(-(score + rng.normal(0, 0.7, len(g)))))
    p_c = 1 / (1 + np.exp(-(score + rng.normal(0, 0.7, len(g)))))
    return y, g, p_ref, p_c


@pytest.mark.parametrize("metric", ["log-loss", "zero-one", "auroc"])
def test_guard_deploys_without_effect_at_most_alpha(metric):
    """200 null replicates x 4 groups x 2 candidates: the family-wise rate of deploying
    a candidate anywhere stays at or below alpha (plus Monte-Carlo slack)."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        y, g, p_ref, p_c = _null_case(rng)
        _, _, _, p_c2 = _null_case(rng)
        tests = guard_tests(y, g, p_ref, {"a": p_c, "b": p_c2}, metric=metric)
        cert = deploy(tests, sorted(set(g)), "ref")
        hits += (cert["deployed"] != "ref").any()
    assert hits / 200 <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 200)


def test_guard_deploys_where_the_candidate_helps_and_names_its_evidence():
    rng = np.random.default_rng(2)
    y, g, p_ref, _ = _null_case(rng)
    p_c = p_ref.copy()
    help_ = g == "g1"
    p_c[help_] = np.where(y[help_] == 1, 0.9, 0.1)          # much better in g1 only
    harm = g == "g2"
    p_c[harm] = 1 - p_ref[harm]                               # much worse in g2
    tests = guard_tests(y, g, p_ref, {"cb": p_c})
    cert = deploy(tests, ["g0", "g1", "g2", "g3", "unseen"], "generic").set_index("group")
    assert cert.loc["g1", "deployed"] == "cb" and cert.loc["g1", "p_holm"] < 0.05
    assert (cert.drop("g1")["deployed"] == "generic").all()
    assert cert.loc["unseen", "n"] == 0
    assert cert.loc["g1", "effect"] > 0 > cert.loc["g2", "effect"]
    assert cert.loc["g1", "ci_low"] > 0 and cert.loc["g1", "detectable"] > 0
    # non-inferiority: a candidate equal to the reference passes with a margin
    tests = guard_tests(y, g, p_ref, {"same": p_ref + 1e-9 * rng.normal(size=len(y))},
                        margin=0.05)
    assert (deploy(tests, ["g0"], "ref")["deployed"] == "same").all()
    with pytest.raises(ConfigError, match="guard_metric"):
        guard_tests(y, g, p_ref, {"cb": p_c}, metric="brier")


def test_zero_variance_proves_nothing_and_the_detectable_effect_is_exact():
    """A constant difference has p = 1 (it was p = 0); the smallest detectable effect
    solves the noncentral t's power equation (simulated power ~ 0.8) with no margin."""
    for test in (paired_mean_test, studentized_bootstrap_test):
        assert test(np.full(3, 0.2), margin=0.01)[3] == 1.0
    assert refit_aware_test(np.full(5, 0.1), np.full(3, 0.1))[3] == 1.0
    rng = np.random.default_rng(0)
    n, level = 9, 0.05 / 6
    delta = smallest_detectable(1.0, n, level)
    d = rng.normal(delta, 1.0, (20000, n))
    t = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(n))
    power = np.mean(t > stats.t.isf(level, n - 1))
    assert power == pytest.approx(0.8, abs=0.015)
    normal = (stats.norm.isf(level) + stats.norm.ppf(0.8)) / np.sqrt(n)
    assert delta > 1.2 * normal                   # the normal approximation is too small


def test_bootstrap_t_holds_its_level_on_skewed_differences():
    """Differences with a long left tail (a candidate usually slightly better, sometimes
    confidently wrong), mean 0, n = 30: the bootstrap-t rejects at most ~alpha where the
    t-test rejects about twice as often."""
    rng = np.random.default_rng(3)
    boot = t = 0
    for i in range(600):
        d = 1 - rng.exponential(1.0, 30)
        boot += studentized_bootstrap_test(d, n_boot=999, random_state=i)[3] < 0.05
        t += paired_mean_test(d)[3] < 0.05
    assert boot / 600 <= 0.075 and t / 600 > boot / 600 + 0.02


def test_several_references_are_an_intersection_union_test():
    """The candidate must beat every reference: its p-value is the largest, and the row
    names the binding reference."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 400)
    g = np.repeat(["a", "b"], 200)
    good = np.where(y == 1, 0.8, 0.2) + rng.normal(0, 0.05, 400)
    weak = np.where(y == 1, 0.6, 0.4) + rng.normal(0, 0.05, 400)
    cand = np.where(y == 1, 0.75, 0.25) + rng.normal(0, 0.05, 400)
    both = guard_tests(y, g, {"weak": weak, "good": good}, {"c": cand})
    alone = guard_tests(y, g, weak, {"c": cand})
    assert (both["versus"] == "good").all()
    assert (both["p_value"] >= alone["p_value"]).all() and (alone["p_holm"] < 0.05).all()
    assert (both["p_holm"] > 0.05).all()
    with pytest.raises(ConfigError, match="patient ids"):
        guard_tests(y, g, weak, {"c": cand}, metric="auroc", ids=np.arange(400))


def test_patients_are_the_unit_of_the_test():
    """Rows of one patient count once: n is in patients, and the evidence of 3 identical
    rows per patient is that of one."""
    rng = np.random.default_rng(5)
    y1 = rng.integers(0, 2, 40)
    p_ref1, p_c1 = rng.uniform(0.2, 0.8, 40), rng.uniform(0.2, 0.8, 40)
    rep = lambda a: np.repeat(a, 3)                           # noqa: E731
    g = np.repeat("a", 120)
    by_patient = guard_tests(rep(y1), g, rep(p_ref1), {"c": rep(p_c1)},
                             ids=rep(np.arange(40)))
    single = guard_tests(y1, g[:40], p_ref1, {"c": p_c1})
    assert by_patient["n"].iloc[0] == 40
    assert by_patient["p_value"].iloc[0] == pytest.approx(single["p_value"].iloc[0],
                                                          abs=0.03)   # bootstrap noise
    as_rows = guard_tests(rep(y1), g, rep(p_ref1), {"c": rep(p_c1)})
    assert as_rows["n"].iloc[0] == 120


# -- the deployable model -----------------------------------------------------------------

def test_guarded_classifier_personalizes_the_planted_group_only(tmp_path):
    c = make_synthetic(n_samples=1200, random_state=1)
    new = make_synthetic(n_samples=1200, random_state=2)
    kw = dict(SMALL, hidden_units=32, max_epochs=60, patience=10)
    g = GuardedClassifier(reference={"generic": GenericClassifier(**kw),
                                     "logreg": ReferenceClassifier("logreg")},
                          candidates={"decoupled": DecoupledClassifier(**kw)}, n_seeds=2)
    g.fit(c.X, c.y, sensitive_features=c.subgroups)
    cert = g.certificate_.set_index("group")
    assert cert.loc["old_female", "deployed"] == "decoupled"
    assert list(cert.columns) == ["deployed", "reference", "n", "effect", "ci_low", "ci_high",
                                  "p_value", "p_holm", "detectable", "versus"]
    assert cert["n"].sum() == len(g.guard_rows_)
    assert g.reference_ in ("generic", "logreg") and set(g.reference_losses_) == {
        "generic", "logreg"}
    yn, gn = new.y.to_numpy(), new.subgroups.to_numpy()
    acc = lambda p, m: float(((p >= 0.5) == yn)[m].mean())   # noqa: E731
    p_guard = g.predict_proba(new.X, sensitive_features=gn)[:, 1]
    p_ref = g.models_[g.reference_].predict_proba(new.X)[:, 1]
    of = gn == "old_female"
    assert acc(p_guard, of) > acc(p_ref, of) + 0.1            # held-out rows
    g.save(tmp_path / "guarded")                       # whichever reference won
    back = GuardedClassifier.load(tmp_path / "guarded")
    np.testing.assert_allclose(back.predict_proba(new.X, sensitive_features=gn),
                               g.predict_proba(new.X, sensitive_features=gn))
    pd.testing.assert_frame_equal(back.certificate_, g.certificate_, check_dtype=False)
    unseen = g.predict_proba(new.X.iloc[:3], sensitive_features=["x", "x", "x"])
    np.testing.assert_allclose(unseen[:, 1], p_ref[:3])       # unseen group -> reference


def test_guarded_classifier_prefit_and_errors(toy, tmp_path):
    X, y, grp = toy
    h0 = GenericClassifier(**SMALL).fit(X, y)
    hp = ConditionalBiasClassifier(**SMALL, attr_layers=2).fit(X, y, sensitive_features=grp)
    g = GuardedClassifier(reference=h0, candidates={"cb": hp}, prefit=True)
    g.fit(X, y, sensitive_features=grp)                     # held-out data in real use
    assert set(g.routing_) == {"a", "b"}
    with pytest.raises(NotFittedError):
        GuardedClassifier().predict(X, sensitive_features=grp)
    with pytest.raises(NotFittedError, match="not fitted"):
        GuardedClassifier(reference=GenericClassifier(), candidates={"cb": hp},
                          prefit=True).fit(X, y, sensitive_features=grp)
    two = GuardedClassifier(reference={"a": h0, "b": GenericClassifier(**SMALL).fit(X, y)},
                            candidates={"cb": hp}, prefit=True).fit(X, y, sensitive_features=grp)
    assert set(two.tests_["versus"]) <= {"a", "b"}
    lr = GuardedClassifier(reference=ReferenceClassifier("logreg"),
                           candidates={"g2": GenericClassifier(**SMALL)}, n_seeds=1, n_folds=3)
    lr.fit(X, y, sensitive_features=grp)
    lr.save(tmp_path / "x")
    with pytest.raises(PersistenceError, match="not empty"):
        lr.save(tmp_path / "x")                         # nothing is overwritten
    (tmp_path / "junk").mkdir()
    with pytest.raises(PersistenceError, match="not a saved GuardedClassifier"):
        GuardedClassifier.load(tmp_path / "junk")


# -- the study (acceptance) ---------------------------------------------------------------

def test_planted_cohort_guard_deploys_and_keeps_the_gain():
    """5 outer splits of the planted synthetic cohort: personalization is deployed for
    old_female in >= 90 % of them and keeps >= 80 % of the best personalized gain there
    (test rows); the other subgroups, where nothing is planted, are not harmed."""
    c = make_synthetic(n_samples=800, random_state=0)
    study = PersonalizationStudy(models=("generic", "decoupled", "conditional-bias", "logreg"),
                                 n_seeds=1, n_folds=5, outer_splits=5, hidden_layers=3,
                                 hidden_units=32, attr_layers=3, reference="generic")
    res = run_study(study, c, RunOptions(n_jobs=2))
    guard = res.results[(res.results.role == "guard") & (res.results.metric == "deployed")]
    of = guard[guard.subgroup == "old_female"]
    assert (of["model"] != "generic").mean() >= 0.9
    s = res.summary[(res.summary.metric == "accuracy")].set_index(["subgroup", "model"])
    best = max(s.loc[("old_female", m), "gain"] for m in ("decoupled", "conditional-bias"))
    assert best > 0.1
    assert s.loc[("old_female", "guarded"), "gain"] >= 0.8 * best
    guarded = res.summary[res.summary.model == "guarded"]
    assert not (guarded["verdict"] == "harms").any()


def test_a_fixed_reference_is_the_one_recorded_reported_and_exported(tmp_path):
    """--reference generic must stay generic in the results, the report and the saved
    guarded model even where logistic regression has the lower guard log-loss."""
    from typer.testing import CliRunner
    from noharm.cli import app
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["personalize", "--n-samples", "400", "--models",
                                   "generic,decoupled,logreg", "--reference", "generic",
                                   "--seeds", "1", "--folds", "3", "--max-epochs", "2",
                                   "--patience", "2", "--hidden-layers", "2",
                                   "--hidden-units", "4", "--output", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    results = pd.read_csv(out / "results.csv")
    g = results[results.role == "guard"]
    losses = g[g.metric == "guard_log_loss"].set_index("model")["value"]
    assert losses["logreg"] < losses["generic"]        # an under-trained MLP: logreg wins
    assert list(g[g.metric == "reference"]["model"]) == ["generic"]
    assert "Guard certificate (reference generic;" in res.stdout
    assert GuardedClassifier.load(out / "models" / "guarded" / "split0").reference_ == "generic"


def test_a_tampered_or_inconsistent_guard_json_is_refused(toy, tmp_path):
    """Reversed classes, an unknown routed model, an edited certificate: each is one
    PersistenceError (the checksum, then the consistency check behind it)."""
    import json
    from noharm.models.persistence import write_checksums
    X, y, grp = toy
    g = GuardedClassifier(reference=ReferenceClassifier("logreg"),
                          candidates={"g2": GenericClassifier(**SMALL)}, n_seeds=1,
                          n_folds=3).fit(X, y, sensitive_features=grp)
    path = g.save(tmp_path / "m")
    meta = json.loads((path / "guard.json").read_text())
    edits = {"classes": lambda m: m.update(classes=m["classes"][::-1]),
             "routing": lambda m: m["routing"].update(a="nope"),
             "certificate": lambda m: m["certificate"][0].update(deployed="nope")}
    for what, edit in edits.items():
        m = json.loads(json.dumps(meta))
        edit(m)
        (path / "guard.json").write_text(json.dumps(m))
        with pytest.raises(PersistenceError, match="modified|changed"):
            GuardedClassifier.load(path)               # the checksum catches it first
        write_checksums(path)                          # a forger recomputes checksums
        with pytest.raises(PersistenceError, match="inconsistent|do not match"):
            GuardedClassifier.load(path)
    (path / "guard.json").write_text(json.dumps(meta))
    write_checksums(path)
    np.testing.assert_allclose(GuardedClassifier.load(path).predict_proba(
        X, sensitive_features=grp), g.predict_proba(X, sensitive_features=grp))
