"""Per-video feature files and a labels CSV, read into :class:`VideoFeatures` for the importer.

The layout ``adaframe import`` reads (docs/design.md 1 is the cache it writes):

- ``FEATURE_DIR/<video>.npy``: a (T, D) array, one row per frame; or ``FEATURE_DIR/<video>.pth``
  holding ``{'fea': tensor (T, D)}`` (LiteEval's convention; a bare tensor is accepted too),
  loaded with ``torch.load(weights_only=True)`` so that a file cannot run code.
- optionally ``LIGHT_DIR/<video>.npy|.pth``: the light backbone's (T, Dl) features, same T.
- ``LABELS.csv``: a header naming the columns ``video,label[,split]`` (any order; other columns
  are ignored), then one row per video: the file name with or without its extension, a class
  name, and ``train``, ``val`` or ``test``.

Everything that can be checked without reading features is checked before the import starts
(a missing file, a duplicate row, an unknown split or class), so a long import does not fail
at the end for a typo. A feature file without a CSV row is left out with one warning, not an
error: feature folders often hold more videos than one labelled subset. Errors are
:class:`FeatureImportError` with one line naming the file, or the CSV and its line.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaframe_env.build.importer import FeatureImportError, VideoFeatures
from adaframe_env.data.schema import SPLITS, first_line

EXTENSIONS = (".npy", ".pth")


@dataclass(frozen=True)
class LabelRow:
    """One video of the labels CSV; ``line`` is its line number (for error messages)."""

    line: int
    video: str  # the name without a feature-file extension: the cache's video id
    label: str
    split: str | None


@dataclass(frozen=True)
class FolderImport:
    """The videos of a folder import, ready for :func:`import_features`."""

    videos: list[VideoFeatures]
    class_names: list[str]
    has_split: bool
    unlabelled: list[Path]  # feature files with no CSV row, left out


def read_labels(path: str | os.PathLike) -> tuple[list[LabelRow], bool]:
    """The rows of a labels CSV, and whether it has a split column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FeatureImportError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FeatureImportError(path, f"unreadable: {e}") from None
    reader = csv.reader(text.splitlines())
    header = next((r for r in reader if any(c.strip() for c in r)), None)
    columns = [c.strip().lower() for c in header or []]
    if "video" not in columns or "label" not in columns:
        raise FeatureImportError(
            f"{path}:{reader.line_num or 1}",
            f"the header must name the columns video,label[,split], got {','.join(header or [])!r}",
        )
    col = {name: columns.index(name) for name in ("video", "label", "split") if name in columns}
    rows: list[LabelRow] = []
    first: dict[str, int] = {}
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        where = f"{path}:{reader.line_num}"
        if len(cells) <= max(col.values()):
            raise FeatureImportError(
                where, f"{len(cells)} column(s), the header names {len(columns)}"
            )
        video, label = cells[col["video"]].strip(), cells[col["label"]].strip()
        video = _strip_extension(video)
        if not video or not label:
            raise FeatureImportError(where, "empty video or label")
        split = cells[col["split"]].strip().lower() if "split" in col else None
        if split is not None and split not in SPLITS:
            raise FeatureImportError(where, f"unknown split {split!r}; expected train, val or test")
        if video in first:
            raise FeatureImportError(where, f"video {video!r} is already on line {first[video]}")
        first[video] = reader.line_num
        rows.append(LabelRow(reader.line_num, video, label, split))
    if not rows:
        raise FeatureImportError(path, "no videos listed")
    return rows, "split" in col


def read_classes(path: str | os.PathLike) -> list[str]:
    """Class names, one per line (blank lines skipped), in index order."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise FeatureImportError(path, f"unreadable: {e}") from None
    names, seen = [], {}
    for i, line in enumerate(lines, 1):
        name = line.strip()
        if not name:
            continue
        if name in seen:
            raise FeatureImportError(
                f"{path}:{i}", f"class {name!r} is already on line {seen[name]}"
            )
        seen[name] = i
        names.append(name)
    return names


def load_features(path: str | os.PathLike) -> np.ndarray:
    """The (T, D) array of one ``.npy`` or ``.pth`` feature file (shape checked by the importer)."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise FeatureImportError(path, "empty file (0 bytes)")
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except Exception as e:  # a truncated or foreign file: numpy raises several kinds
            raise FeatureImportError(path, f"not a readable .npy array: {first_line(e)}") from None
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike
        raise FeatureImportError(
            path, f"not loadable with torch.load(weights_only=True): {first_line(e)}"
        ) from None
    if isinstance(obj, dict):
        if "fea" not in obj:
            raise FeatureImportError(
                path,
                f"a dict without the key 'fea' (keys: {sorted(map(str, obj))[:5]}); expected "
                "{'fea': tensor (T, D)}, LiteEval's convention",
            )
        obj = obj["fea"]
    if not isinstance(obj, torch.Tensor):
        raise FeatureImportError(
            path, f"holds a {type(obj).__name__}, expected {{'fea': tensor (T, D)}}"
        )
    obj = obj.detach()
    return (obj.float() if obj.dtype == torch.bfloat16 else obj).numpy()


def class_names(rows, labels: str | os.PathLike, classes: str | os.PathLike | None) -> list[str]:
    """The cache's classes: the ``classes`` file's, in its order, or the labels of ``rows``
    (anything with ``label`` and ``line``) sorted; every row's label must be one of them."""
    if classes is None:
        names = sorted({r.label for r in rows})
    else:
        names = read_classes(classes)
        known = set(names)
        for r in rows:
            if r.label not in known:
                raise FeatureImportError(
                    f"{labels}:{r.line}", f"class {r.label!r} is not in {classes}"
                )
    if len(names) < 2:
        raise FeatureImportError(labels, f"{len(names)} class(es); a recognizer needs at least 2")
    return names


def folder_videos(
    feature_dir: str | os.PathLike,
    labels: str | os.PathLike,
    light_dir: str | os.PathLike | None = None,
    classes: str | os.PathLike | None = None,
) -> FolderImport:
    """Match the CSV's rows to the feature files; check everything that needs no feature read."""
    feature_dir = Path(feature_dir)
    dirs = [feature_dir] + ([Path(light_dir)] if light_dir is not None else [])
    for d in dirs:
        if not d.is_dir():
            raise FeatureImportError(d, "no such folder")
    rows, has_split = read_labels(labels)
    names = class_names(rows, labels, classes)
    videos = []
    used: set[Path] = set()
    for r in rows:
        heavy = _find(feature_dir, r, labels)
        light = _find(Path(light_dir), r, labels) if light_dir is not None else None
        used.add(heavy.resolve())
        videos.append(
            VideoFeatures(
                video_id=r.video,
                label=r.label,
                split=r.split,
                features=functools.partial(load_features, heavy),
                light=functools.partial(load_features, light) if light is not None else None,
                source=str(heavy),
                light_source=str(light) if light is not None else None,
            )
        )
    unlabelled = sorted(
        p for ext in EXTENSIONS for p in feature_dir.rglob(f"*{ext}") if p.resolve() not in used
    )
    return FolderImport(videos, names, has_split, unlabelled)


def _find(folder: Path, row: LabelRow, labels) -> Path:
    found = [folder / (row.video + ext) for ext in EXTENSIONS]
    found = [p for p in found if p.is_file()]
    if len(found) == 1:
        return found[0]
    if found:
        raise FeatureImportError(
            f"{labels}:{row.line}",
            f"video {row.video!r} has both {found[0].name} and {found[1].name} in {folder}; "
            "keep one",
        )
    raise FeatureImportError(
        f"{labels}:{row.line}",
        f"no feature file for video {row.video!r} in {folder} "
        f"(looked for {row.video}.npy and {row.video}.pth)",
    )


def _strip_extension(name: str) -> str:
    for ext in EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name
