import numpy as np
import pandas as pd
import pytest

from noharm import NoharmError
from noharm._validation import check_X, check_binary_y, check_group_sizes, check_groups
from noharm.errors import (ConfigError, GroupError, LengthMismatchError, MissingValuesError,
                           TargetError)


def test_errors_are_value_errors():
    assert issubclass(NoharmError, ValueError)
    assert issubclass(GroupError, NoharmError)


def test_check_X_names_missing_column():
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, 1.0]})
    with pytest.raises(MissingValuesError, match="'b'"):
        check_X(X)


def test_check_X_rejects_strings_and_1d():
    with pytest.raises(ConfigError, match="non-numeric"):
        check_X(pd.DataFrame({"a": ["x", "y"]}))
    with pytest.raises(ConfigError, match="2-D"):
        check_X(np.ones(3))


def test_check_X_copies_read_only_memory():
    arr = np.ones((3, 2), dtype=np.float32)
    arr.flags.writeable = False
    out, names = check_X(arr)
    assert out.flags.writeable and names == ["x0", "x1"]


def test_binary_y_maps_two_values_and_rejects_others():
    y, classes = check_binary_y(["no", "yes", "no"])
    assert y.tolist() == [0, 1, 0] and list(classes) == ["no", "yes"]
    with pytest.raises(TargetError, match="binary"):
        check_binary_y([0, 1, 2])
    with pytest.raises(TargetError, match="one class only"):
        check_binary_y([1, 1])
    with pytest.raises(MissingValuesError):
        check_binary_y(pd.Series([0, None, 1]))
    with pytest.raises(LengthMismatchError, match="3 rows"):
        check_binary_y([0, 1], n_rows=3)


def test_groups_intersections_and_lengths():
    g = check_groups(pd.DataFrame({"age": ["old", "young"], "sex": ["f", "m"]}), n_rows=2)
    assert g.tolist() == ["old_f", "young_m"]
    with pytest.raises(LengthMismatchError):
        check_groups(["a", "b", "c"], n_rows=2)


def test_unused_category_is_a_group_absent_from_training():
    s = pd.Series(pd.Categorical(["a", "a"], categories=["a", "b"]))
    with pytest.raises(GroupError, match="'b'.*no rows in the training data"):
        check_groups(s, n_rows=2)


def test_group_sizes_names_smallest_group():
    with pytest.raises(GroupError, match="'c' has 1 rows"):
        check_group_sizes(np.array(["a"] * 5 + ["c"]), minimum=2, purpose="here")
