"""``noharm predict``: apply a saved model (a network or the guarded model) to a new file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError, GroupError, PersistenceError
from ._errors import friendly
from ._options import NamesOpt, NaValuesOpt, SepOpt
from ._study import FEATURES_FILE, say_fn

EXAMPLES = """
Examples:

  noharm predict --model runs/heart/models/guarded/split0 --data new.csv --out preds.csv

  noharm predict --model runs/heart/models/generic/split0 --data new.data --names age,sex,...
"""


def _features_of(model: Path) -> tuple[Path, dict]:
    """The run's ``models/features.json`` above a model directory."""
    for d in [model, *model.resolve().parents][:4]:
        f = d / FEATURES_FILE
        if f.is_file():
            try:
                doc = json.loads(f.read_text())
            except json.JSONDecodeError as exc:
                raise PersistenceError(f"{f} is not valid JSON ({exc}).") from None
            if doc.get("format") != "noharm-features":
                raise PersistenceError(f"{f} is not a noharm features file.")
            return f, doc
    raise PersistenceError(
        f"no {FEATURES_FILE} above {model}: predict needs a model saved by a noharm run on "
        "your own --data file (DIR/models/<model>/split<o>, or DIR/models/guarded/split<o>).")


def _load_model(model: Path):
    from ..models import NetClassifier
    from ..models.guarded import GuardedClassifier
    if not model.is_dir():
        models = model.parent.parent
        if model.parent.name == "guarded" and (models / FEATURES_FILE).is_file():
            saved = sorted(p.name for p in models.iterdir() if p.is_dir()
                           and p.name != "guarded")
            raise PersistenceError(
                f"{model} was not exported: the run's guard chose a reference that is not a "
                "network (logreg or hgb), which noharm does not save; rerun personalize with "
                "--reference generic, or predict with one of the saved models "
                f"({', '.join(f'{models}/{m}/{model.name}' for m in saved)}).")
        raise PersistenceError(f"--model {model} is not a directory; give a saved model "
                               "directory such as DIR/models/guarded/split0.")
    if (model / "guard.json").is_file():
        return GuardedClassifier.load(model)
    return NetClassifier.load(model)


@friendly
def predict(
    model: Annotated[Path, typer.Option(help="A saved model directory: "
                                        "DIR/models/<model>/split<o> or "
                                        "DIR/models/guarded/split<o>.")],
    data: Annotated[Path, typer.Option(help="The file to predict on (same columns as the "
                                       "training file, any order; the target may be "
                                       "absent).")],
    out: Annotated[Path, typer.Option(help="CSV to write: row, subgroup, p (probability of "
                                      "the positive class), prediction, plus the training "
                                      "file's excluded columns (IDs) when present.")],
    sep: SepOpt = None, names: NamesOpt = None, na_values: NaValuesOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    quiet: Annotated[bool, typer.Option(help="No message on stderr.")] = False,
) -> None:
    """Apply a saved model to a new file, read and encoded like the training file.

    Reading options default to the ones the model was trained with; give --sep, --names
    or --na-values to read a file in another layout.
    """
    import numpy as np
    import pandas as pd

    from ..datasets.features import FeatureSchema
    from ..datasets.reading import ReadOptions
    from ..datasets.tabular import encode_new
    from ..experiments.rundir import write_text

    say = say_fn(quiet)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; choose another --out or pass --overwrite.")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name such as preds.csv.")
    _, doc = _features_of(model)
    est = _load_model(model)
    given = sep is not None or names is not None or na_values
    read = (ReadOptions(sep=sep, names=tuple(names.split(",")) if names else (),
                        na_values=tuple(na_values or ())) if given else
            ReadOptions(sep=doc["read"]["sep"], names=tuple(doc["read"]["names"]),
                        na_values=tuple(doc["read"]["na_values"])))
    new = encode_new(data, schema=FeatureSchema.from_dict(doc["schema"]), groups=doc["groups"],
                     read=read, known=[doc["target"], *doc["excluded"]])
    needs_groups = getattr(est, "requires_groups_predict", True)
    if new.subgroups is None and needs_groups:
        raise GroupError(f"{data} lacks the group column(s) {new.missing_groups}, which this "
                         f"{type(est).__name__} needs to route each row; add them.")
    kw = {"sensitive_features": new.subgroups} if new.subgroups is not None else {}
    regression = getattr(est, "_regression", False)
    frame = pd.DataFrame({"row": np.arange(1, len(new.X) + 1)})
    frame = pd.concat([frame, new.passthrough], axis=1)
    if new.subgroups is not None:
        frame["subgroup"] = new.subgroups
    if regression:
        frame["prediction"] = est.predict(new.X, **kw)
        what = f"predicted {doc['target_expression']}"
    else:
        p1 = est.predict_proba(new.X, **kw)[:, 1]
        frame["p"] = p1
        frame["prediction"] = [str(c) for c in est.classes_[(p1 >= 0.5).astype(int)]]
        what = f"p = P({doc['target_expression']} = {est.classes_[1]})"
    write_text(out, frame.to_csv(index=False))
    say(f"wrote {out}: {len(frame)} rows, {what} from {type(est).__name__} at {model}")
