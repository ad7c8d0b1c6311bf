"""scikit-learn's estimator checks over noharm's estimators (issue 30).

Every check runs; the only expected failures are those of models that need the groups
at fit (conditional bias, decoupled, FairGrad, and the regressors of the first two):
scikit-learn's checks pass no sensitive_features,
and these models refuse to train without them (a GroupError before anything else) —
silently training an unpersonalized model instead would be wrong.
"""
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from noharm.models import (ConditionalBiasClassifier, ConditionalBiasRegressor,
                           DecoupledClassifier, DecoupledRegressor, FairGradClassifier,
                           GenericClassifier, GenericRegressor, ReferenceClassifier)
from noharm.models.any_estimator import EstimatorClassifier
from noharm.models.regression import ReferenceRegressor

SMALL = dict(max_epochs=30, hidden_layers=1, hidden_units=16)
NEEDS_GROUPS = ("needs sensitive_features at fit; scikit-learn's checks pass none, and the "
                "model refuses to train without them")
_CB_FAILS = (
    "check_classifier_data_not_an_array", "check_classifier_not_supporting_multiclass",
    "check_classifiers_classes", "check_classifiers_one_label",
    "check_classifiers_regression_target", "check_classifiers_train", "check_dict_unchanged",
    "check_dont_overwrite_parameters", "check_dtype_object", "check_estimators_dtypes",
    "check_estimators_fit_returns_self", "check_estimators_overwrite_params",
    "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_fit2d_1feature",
    "check_fit2d_1sample", "check_fit2d_predict1d", "check_fit_check_is_fitted",
    "check_fit_idempotent", "check_fit_score_takes_y", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_n_features_in",
    "check_n_features_in_after_fitting", "check_pipeline_consistency",
    "check_positive_only_tag_during_fit", "check_readonly_memmap_input",
    "check_requires_y_none", "check_supervised_y_2d")
_REG_FAILS = (
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_regressor_data_not_an_array",
    "check_regressors_int",
    "check_regressors_no_decision_function",
    "check_regressors_train",
    "check_requires_y_none",
    "check_supervised_y_2d",
)
_FG_FAILS = tuple(c for c in _CB_FAILS if c not in (
    "check_classifier_not_supporting_multiclass", "check_classifiers_one_label",
    "check_classifiers_regression_target", "check_fit2d_1sample", "check_requires_y_none"))

ESTIMATORS = [GenericClassifier(**SMALL), GenericRegressor(**SMALL),
              ReferenceClassifier("logreg"), ReferenceClassifier("hgb"),
              ReferenceRegressor("linreg"), EstimatorClassifier(DecisionTreeClassifier()),
              ConditionalBiasClassifier(**SMALL, attr_layers=1),
              FairGradClassifier(**SMALL), DecoupledClassifier(**SMALL),
              DecoupledRegressor(**SMALL), ConditionalBiasRegressor(**SMALL, attr_layers=1)]


def expected_failures(est) -> dict[str, str]:
    names = {"ConditionalBiasClassifier": _CB_FAILS, "FairGradClassifier": _FG_FAILS,
             "DecoupledClassifier": _CB_FAILS, "DecoupledRegressor": _REG_FAILS,
             "ConditionalBiasRegressor": _REG_FAILS}
    return {c: NEEDS_GROUPS for c in names.get(type(est).__name__, ())}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
