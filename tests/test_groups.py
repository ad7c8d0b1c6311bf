import pandas as pd
import pytest

from noharm.errors import ColumnNotFoundError, ConfigError, MissingValuesError
from noharm.groups import GroupSpec


def test_parse_cuts_labels_and_intersections():
    df = pd.DataFrame({"age": [30, 60, 75], "sex": [0, 1, 1], "site": ["A", "B", "A"]})
    spec = GroupSpec.parse(["age:60:young,old", "sex"])
    assert spec.labels(df).tolist() == ["young_sex=0", "old_sex=1", "old_sex=1"]
    assert GroupSpec.parse(["age:50,70"]).labels(df).tolist() == ["age<50", "50<=age<70",
                                                                  "age>=70"]
    assert GroupSpec.parse(["site"]).labels(df).tolist() == ["A", "B", "A"]


def test_bad_specs():
    with pytest.raises(ConfigError, match="numbers"):
        GroupSpec.parse(["age:old"])
    with pytest.raises(ConfigError, match="2 labels"):
        GroupSpec.parse(["age:60:a,b,c"])
    with pytest.raises(ConfigError, match="repeat"):
        GroupSpec.parse(["age", "age:60"])
    df = pd.DataFrame({"age": [1.0, None], "s": ["x", "y"]})
    with pytest.raises(ColumnNotFoundError, match="'sex'"):
        GroupSpec.parse(["sex"]).labels(df)
    with pytest.raises(MissingValuesError, match="'age'"):
        GroupSpec.parse(["age:60"]).labels(df)
    with pytest.raises(ConfigError, match="not numeric"):
        GroupSpec.parse(["s:1"]).labels(df)
