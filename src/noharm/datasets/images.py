"""Image cohorts: a folder of images + a metadata CSV (DESIGN §10).

The cohort holds file paths, never pixels: :class:`ImageDataset` opens an image when a
batch asks for it (``Dataset[i]`` -> a float tensor ``(C, H, W)`` in [0, 1]), so the
cohort never has to fit in memory.  The cohort's ``X`` has two columns, the absolute
``file`` and the ``sha256`` of its bytes, so the results store's data fingerprint changes
when an image does.

``load_image_cohort(images, metadata, target=, protected=, patient=)`` reads a user's
folder; ``load_covid_cxr()`` the shared 266-image chest X-ray subset (its PROVENANCE.md:
CC BY-NC-SA 4.0, split by patient, source site confounded with the label, no diagnostic
claim).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..errors import ColumnNotFoundError, DataNotFoundError, DatasetError, TargetError
from ._fetch import resolve, sha256_of
from .cohort import Cohort
from .tabular import Target

COVID_CXR_SHA256 = "aadc1fbc4379c1217bc626b73a69305bb1bb5b2b9921dd678937c27f059c74f8"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:                                   # pragma: no cover
        raise DatasetError("reading images needs Pillow: pip install pillow") from exc
    return Image


class ImageDataset(Dataset):
    """Images read lazily from files.

    Parameters
    ----------
    files : one path per row.
    channels : 1 (grayscale) or 3 (RGB); every image is converted to it.
    size : (height, width) to resize to, or None to keep each file's size (all files must
        then share one size, which :func:`load_image_cohort` checks).
    """

    def __init__(self, files, channels: int = 1, size: tuple[int, int] | None = None):
        self.files = [str(f) for f in files]
        if channels not in (1, 3):
            raise DatasetError(f"channels must be 1 or 3, got {channels!r}.")
        self.channels, self.size = channels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        Image = _pil()
        with Image.open(self.files[i]) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):          # 16-bit: min/max to 8 bit
                a = np.asarray(im, dtype=np.float64)
                span = a.max() - a.min()
                im = Image.fromarray(((a - a.min()) / (span if span else 1) * 255)
                                     .astype(np.uint8))
            im = im.convert("L" if self.channels == 1 else "RGB")
            if self.size is not None and im.size != (self.size[1], self.size[0]):
                im = im.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
        t = torch.from_numpy(a.copy())
        return t[None] if t.dim() == 2 else t.permute(2, 0, 1)


def augment(x: torch.Tensor, generator: torch.Generator, *, max_shift: int = 8,
            flip: bool = True) -> torch.Tensor:
    """Light augmentation of a batch ``(B, C, H, W)``: each image shifted by up to
    ``max_shift`` pixels in each direction (zero fill) and mirrored left-right with
    probability 1/2.  The draws come from ``generator`` (on the CPU), so a seed gives the
    same batches on any device."""
    B, _, H, W = x.shape
    out = torch.zeros_like(x)
    shifts = torch.randint(-max_shift, max_shift + 1, (B, 2), generator=generator).tolist()
    flips = (torch.rand(B, generator=generator) < 0.5).tolist() if flip else [False] * B
    for b, ((dy, dx), f) in enumerate(zip(shifts, flips)):
        img = x[b].flip(-1) if f else x[b]
        ys, yd = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H),
                                                                     slice(0, H + dy))
        xs, xd = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W),
                                                                     slice(0, W + dx))
        out[b, :, yd, xd] = img[:, ys, xs]
    return out


def image_dataset(cohort: Cohort) -> ImageDataset:
    """The lazy dataset of an image cohort (as made by :func:`load_image_cohort`)."""
    if cohort.meta.get("kind") != "images":
        raise DatasetError(f"{cohort.name} is not an image cohort; load it with "
                           "--images DIR --metadata FILE or --dataset covid-cxr.")
    size = cohort.meta.get("resize")
    return ImageDataset(cohort.X["file"].to_numpy(), cohort.meta["channels"],
                        None if size is None else tuple(size))


def _resolve_files(root: Path, names: pd.Series) -> tuple[list[Path], list[str]]:
    files, missing = [], []
    for name in names.astype(str):
        p = Path(name)
        cands = [p] if p.is_absolute() else [root / p, root / p.name]
        hit = next((c for c in cands if c.is_file()), None)
        if hit is None:
            missing.append(name)
        files.append(hit if hit is not None else cands[0])
    return files, missing


def _read_metadata(path: Path) -> pd.DataFrame:
    """The metadata CSV; an empty or unparsable file is a DatasetError naming it."""
    if path.is_dir():
        raise DatasetError(f"--metadata {path} is a directory; give the CSV file itself (e.g. "
                           f"{path}/metadata.csv).")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"metadata file {path} is empty; it needs a header row (the file "
                           "column, the target and the protected attribute) and one row per "
                           "image.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"cannot read the metadata file {path} as a CSV ({exc}); save it "
                           "as comma-separated text with a header row.") from None


def load_image_cohort(images: str | os.PathLike, metadata: str | os.PathLike | pd.DataFrame,
                      *, target: str, protected: str, patient: str | None = None,
                      file_column: str = "file", image_size: int | None = None,
                      name: str | None = None) -> Cohort:
    """Read an image cohort: a folder of images and a CSV with one row per image.

    Parameters
    ----------
    images : the folder; a row's ``file`` is looked up as ``images/file``, then
        ``images/<file name>`` (an absolute path is used as is).
    metadata : the CSV (or a DataFrame): ``file_column``, the ``target`` column (0/1, two
        values, or an expression such as ``'finding==COVID-19'``), the ``protected``
        attribute, and optionally a ``patient`` id (images of one patient stay in one
        split).
    image_size : resize every image to ``image_size x image_size``; without it all images
        must have one size.

    Raises
    ------
    DataNotFoundError, ColumnNotFoundError, TargetError, DatasetError
        A missing folder, file or column, a target that is not binary, unreadable images
        or images of different sizes, each named with the fix.
    """
    root = Path(images)
    if not root.is_dir():
        raise DataNotFoundError(f"image folder {root} does not exist; pass the folder that "
                                "holds the images with --images.")
    if isinstance(metadata, pd.DataFrame):
        meta = metadata.reset_index(drop=True)
        meta_name = "metadata"
    else:
        mpath = Path(metadata)
        if not mpath.is_file() and not mpath.is_dir():
            raise DataNotFoundError(f"metadata file {mpath} does not exist; pass the CSV with "
                                    "one row per image with --metadata.")
        meta, meta_name = _read_metadata(mpath), mpath.name
    if len(meta) == 0:
        raise DatasetError(f"{meta_name} has a header but no rows; give one row per image "
                           f"({file_column}, the target and the protected attribute).")
    tgt = Target.parse(target)
    needed = {"file column": file_column, "target": tgt.column, "protected attribute":
              protected, **({"patient id": patient} if patient else {})}
    for what, col in needed.items():
        if col not in meta.columns:
            raise ColumnNotFoundError(f"{what} column {col!r} is not in {meta_name} "
                                      f"(columns: {', '.join(map(str, meta.columns[:12]))}).")
    keep = meta[[file_column, tgt.column, protected]].notna().all(axis=1).to_numpy()
    dropped = int((~keep).sum())
    meta = meta[keep].reset_index(drop=True)
    y = tgt.apply(meta)
    values = sorted(pd.unique(y.astype(str)))
    if len(values) != 2:
        raise TargetError(f"target {tgt.expression!r} has {len(values)} value(s) "
                          f"({values[:6]}); image debiasing needs a binary target (use an "
                          "expression such as 'finding==COVID-19').")
    if set(values) != {"0", "1"}:
        y = (y.astype(str) == values[1]).astype(np.int64)
    files, missing = _resolve_files(root, meta[file_column])
    if missing:
        raise DataNotFoundError(f"{len(missing)} image file(s) listed in {meta_name} are not "
                                f"in {root}: {', '.join(missing[:5])}"
                                f"{' ...' if len(missing) > 5 else ''}; check --images (the "
                                "folder the file column is relative to).")
    bad = [str(f) for f in files if f.suffix.lower() not in IMAGE_SUFFIXES]
    if bad:
        raise DatasetError(f"not image files ({', '.join(IMAGE_SUFFIXES)}): "
                           f"{', '.join(bad[:5])}.")
    Image = _pil()
    sizes, modes, unreadable = [], set(), []
    for f in files:
        try:
            with Image.open(f) as im:
                sizes.append((im.size[1], im.size[0]))
                modes.add(im.mode)
        except Exception:                                     # noqa: BLE001 - named below
            unreadable.append(str(f))
    if unreadable:
        raise DatasetError(f"{len(unreadable)} image(s) cannot be read: "
                           f"{', '.join(unreadable[:5])}; remove them from {meta_name}.")
    distinct = sorted(set(sizes))
    if image_size is None and len(distinct) > 1:
        raise DatasetError(f"the images have {len(distinct)} sizes ({distinct[:4]}); pass "
                           "--image-size N to resize them all to N x N.")
    channels = 1 if modes <= {"L", "I;16", "I;16B", "I;16L", "I", "1", "LA"} else 3
    groups = pd.DataFrame({protected: meta[protected].astype(str).str.strip()})
    X = pd.DataFrame({"file": [str(f.resolve()) for f in files],
                      "sha256": [sha256_of(f) for f in files]})
    ids = None
    if patient:
        ids = meta[patient].astype(str).rename(patient)
    notes = [f"{dropped} row(s) without file, target or {protected} dropped"] if dropped else []
    size = (image_size, image_size) if image_size else distinct[0]
    return Cohort(X=X, y=y.astype(np.int64).rename("y"), groups=groups, split_by=ids,
                  meta={"name": name or root.name, "kind": "images", "channels": channels,
                        "image_size": list(size),
                        "resize": [image_size, image_size] if image_size else None,
                        "source": str(root), "target": tgt.expression, "notes": notes})


def load_covid_cxr(path: str | os.PathLike | None = None) -> Cohort:
    """The shared COVID-19 chest X-ray subset (266 images, 128 x 128, 141 patients).

    Target ``label_covid``, protected attribute ``sex`` (F/M), split by ``patient_id``.
    Read ``covid_cxr/PROVENANCE.md`` before using it: CC BY-NC-SA 4.0, the source site is
    confounded with the label, and no diagnostic performance may be claimed from it.
    """
    meta = resolve("covid_cxr", "metadata.csv", sha256=COVID_CXR_SHA256, url=None, path=path)
    return load_image_cohort(meta.parent, meta, target="label_covid", protected="sex",
                             patient="patient_id", name="covid-cxr")
