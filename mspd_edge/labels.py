"""Where the label of each image comes from: a model (``classifier``, ``couple``) or ground truth.

Ground truth is the image's parent folder name (``folder``) or a CSV file with the columns
``file,label`` (``file`` relative to the CSV's folder or absolute; ``label`` a class index or
name). Class names match case-insensitively.
"""
import csv
from pathlib import Path

MODEL_MODES = ("classifier", "couple")   # labels predicted by the classifier / the backbone
FOLDER = "folder"
CSV_COLUMNS = ("file", "label")


class LabelError(ValueError):
    """A label that cannot be resolved; the message says which and why."""


def pipeline_mode(option):
    """The pipeline's label mode ("classifier", "couple" or "gt") for a ``--labels`` value."""
    return option if option in MODEL_MODES else "gt"


def class_index(value, classes):
    """The class index of ``value``: an index ("3") or a class name of ``classes``."""
    text = str(value).strip()
    if text.isdigit():
        if classes is not None and int(text) >= len(classes):
            raise LabelError(f"class index {text} out of range (the model has {len(classes)} classes)")
        return int(text)
    by_name = {name.casefold(): i for i, name in enumerate(classes or ())}
    try:
        return by_name[text.casefold()]
    except KeyError:
        raise LabelError(f"{text!r} is not a class of the model") from None


def label_source(option, classes):
    """A function ``path -> class index`` for a ground-truth ``--labels`` value, else None.

    Raises :class:`LabelError` for an unreadable or malformed CSV file.
    """
    if option in MODEL_MODES:
        return None
    if option == FOLDER:
        return lambda path: class_index(Path(path).parent.name, classes)
    return CsvLabels(option, classes)


class CsvLabels:
    """Ground truth from a ``file,label`` CSV; calling it with an image path gives its class index."""

    def __init__(self, path, classes):
        self.path = Path(path)
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as f:
                self.labels = self._parse(csv.DictReader(f), classes)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise LabelError(f"cannot read {self.path}: {exc}") from None

    def _parse(self, rows, classes):
        if rows.fieldnames is None or not set(CSV_COLUMNS) <= {c.strip() for c in rows.fieldnames}:
            raise LabelError(f"{self.path}: needs a header with the columns {','.join(CSV_COLUMNS)}")
        labels = {}
        for row in rows:
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            key = (self.path.parent / row["file"]).resolve()
            try:
                label = class_index(row["label"], classes)
            except LabelError as exc:
                raise LabelError(f"{self.path} line {rows.line_num}: {exc}") from None
            if labels.setdefault(key, label) != label:
                raise LabelError(f"{self.path} line {rows.line_num}: conflicting label for {row['file']}")
        return labels

    def __call__(self, path):
        try:
            return self.labels[Path(path).resolve()]
        except KeyError:
            raise LabelError(f"no row in {self.path}") from None
