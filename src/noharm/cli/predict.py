"""``noharm predict``: apply a saved model (a network or the guarded model) to a new file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ConfigError, DatasetError, GroupError, PersistenceError
from ._errors import friendly
from ._options import NamesOpt, NaValuesOpt, SepOpt
from ._study import FEATURES_FILE, say_fn

if TYPE_CHECKING:
    from ..datasets.reading import ReadOptions

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
    from ..experiments.rundir import read_config
    for d in [model, *model.resolve().parents][:4]:
        cfg = read_config(d)
        src = (cfg or {}).get("data_source") or {}
        if cfg is not None and not src.get("data") and not src.get("images"):
            raise PersistenceError(
                f"{d} was trained on the built-in dataset {src.get('dataset') or 'synthetic'}"
                ", whose loader "
                f"recodes its columns, so it has no {FEATURES_FILE} to read a new file with; "
                "train on a file instead (noharm personalize --data FILE --target COL --group "
                "... --output DIR) and predict with DIR/models/guarded/split0.")
    raise PersistenceError(
        f"no {FEATURES_FILE} above {model}: predict needs a model saved by a noharm run on "
        "your own --data file (DIR/models/<model>/split<o>, or DIR/models/guarded/split<o>).")


def _load_model(model: Path):
    from ..models.guarded import GuardedClassifier
    from ..models.persistence import load_model
    if not model.is_dir():
        models = model.parent.parent
        if model.parent.name == "guarded" and (models / FEATURES_FILE).is_file():
            saved = sorted(p.name for p in models.iterdir() if p.is_dir()
                           and p.name != "guarded" and (p / model.name).is_dir())
            use = (f"predict with one of the saved models "
                   f"({', '.join(f'{models}/{m}/{model.name}' for m in saved)})"
                   if saved else "")
            if any(models.glob(f"*/{model.name}-part*")):
                raise PersistenceError(
                    f"{model} was not exported: a model its guard deploys was saved in parts "
                    "(more runs than --ensemble-size); rerun personalize with --ensemble-size "
                    "of at least seeds x folds and --force-new" + (f", or {use}" if use else "")
                    + ".")
            raise PersistenceError(
                f"{model} was not exported or was deleted; run the same `noharm personalize` "
                f"command with --output {models.parent} again (it exports the guarded model "
                "from the stored results, without training)" + (f", or {use}" if use else "")
                + ".")
        raise PersistenceError(f"--model {model} is not a directory; give a saved model "
                               "directory such as DIR/models/guarded/split0.")
    if (model / "guard.json").is_file():
        return GuardedClassifier.load(model)
    return load_model(model)            # a network or a scikit-learn reference (logreg, hgb)


def _first_row(data: Path, sep: str | None, decimal: str = ".") -> list[str] | None:
    """The cells of the first non-empty line of a delimited text file (None: not a text
    file, unreadable or empty; reading it later names the problem)."""
    import csv
    import gzip

    from ..datasets.reading import PARQUET_EXTENSIONS, SNIFFED
    name = data.name.lower()
    if not data.is_file() or name.endswith(PARQUET_EXTENSIONS):
        return None
    try:
        with (gzip.open if name.endswith(".gz") else open)(data, "rt", errors="replace") as f:
            line = next((ln.rstrip("\r\n") for ln in f if ln.strip()), None)
    except (OSError, EOFError):
        return None
    if line is None:
        return None
    if sep is None:
        candidates = [c for c in SNIFFED if c != decimal]       # never the decimal mark
        sep = "\t" if name.endswith((".tsv", ".tsv.gz")) else max(candidates, key=line.count)
    return [c.strip() for c in next(csv.reader([line], delimiter=sep))]


def read_options(data: Path, doc: dict, sep: str | None, names: str | None,
                 na_values: list[str] | None) -> "ReadOptions":
    """How to read ``data``: each option given on the command line, else the training
    file's; the training file's ``--names`` only when ``data`` has no header row (a
    header naming the model's columns is read as one), without the target when
    ``data`` has one column fewer (the target may be absent)."""
    from ..datasets.reading import ReadOptions
    trained = doc["read"]
    sep = sep if sep is not None else trained["sep"]
    if names is not None:
        return ReadOptions(sep=sep, names=tuple(names.split(",")),
                           na_values=tuple(na_values if na_values else trained["na_values"]),
                           decimal=trained.get("decimal", "."))
    known = {*doc["schema"]["order"], *trained["names"], doc["target"], *doc["excluded"],
             *(g.split(":")[0] for g in doc["groups"])}
    first = _first_row(data, sep, trained.get("decimal", "."))
    header = first is None or sum(c in known for c in first) >= max(1, len(first) // 2)
    cols = set(first or ()) if header else set(trained["names"])
    use: tuple[str, ...] = ()
    if not header:
        full = tuple(trained["names"])
        no_target = tuple(n for n in full if n != doc["target"])
        if len(first) == len(full) and full:
            use = full
        elif len(first) == len(no_target) and no_target and len(no_target) < len(full):
            use, cols = no_target, set(no_target)
        else:
            layout = (f"the training file's {len(full)} columns ({','.join(full)}), or those "
                      f"without the target {doc['target']}" if full else
                      f"the model's columns ({', '.join(doc['schema']['order'][:8])}"
                      f"{', ...' if len(doc['schema']['order']) > 8 else ''})")
            raise DatasetError(
                f"the first row of {data} is not a header (it names none of the model's "
                f"columns) and the file has {len(first)} columns; add a header row naming "
                f"{layout}, or give the names with --names.")
    if na_values:
        codes = tuple(na_values)
    else:                  # the training codes, less those of columns this file lacks
        codes = tuple(v for v in trained["na_values"] if "=" not in v or v.startswith("=")
                      or v.split("=", 1)[0].strip() in cols)
    return ReadOptions(sep=sep, names=use, na_values=codes,
                       decimal=trained.get("decimal", "."))   # the training file's mark


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
    from ..datasets.tabular import encode_new
    from ..experiments.rundir import write_text

    say = say_fn(quiet)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; choose another --out or pass --overwrite.")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name such as preds.csv.")
    _, doc = _features_of(model)
    est = _load_model(model)
    read = read_options(data, doc, sep, names, na_values)
    with np.errstate(over="ignore"):    # a value beyond float32 is an error of the model
        new = encode_new(data, schema=FeatureSchema.from_dict(doc["schema"]),
                         groups=doc["groups"], read=read,
                         known=[doc["target"], *doc["excluded"]])
    needs_groups = getattr(est, "requires_groups_predict", True)
    if new.subgroups is None and needs_groups:
        raise GroupError(f"{data} lacks the group column(s) {new.missing_groups}, which this "
                         f"{type(est).__name__} needs to route each row; add them.")
    kw = {"sensitive_features": new.subgroups} if new.subgroups is not None else {}
    from sklearn.base import is_regressor
    regression = getattr(est, "_regression", False) or is_regressor(est)
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
