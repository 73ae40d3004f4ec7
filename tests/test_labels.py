"""Label options: model modes, folder names and CSV ground truth."""
import pytest

from mspd_edge.labels import LabelError, class_index, label_source, pipeline_mode

CLASSES = ("airplane", "automobile", "bird", "cat")


def test_modes_and_class_index():
    assert [pipeline_mode(m) for m in ("classifier", "couple", "folder", "x.csv")] == \
        ["classifier", "couple", "gt", "gt"]
    assert label_source("couple", CLASSES) is None
    assert class_index("Cat", CLASSES) == 3 and class_index(" 2 ", CLASSES) == 2
    with pytest.raises(LabelError, match="out of range"):
        class_index("4", CLASSES)
    with pytest.raises(LabelError, match="'dog' is not a class"):
        class_index("dog", CLASSES)


def test_folder_labels(tmp_path):
    labels = label_source("folder", CLASSES)
    assert labels(tmp_path / "Bird" / "x.png") == 2
    with pytest.raises(LabelError):
        labels(tmp_path / "x.png")


def test_csv_labels(tmp_path):
    (tmp_path / "imgs").mkdir()
    csv = tmp_path / "labels.csv"
    csv.write_text(f"file, label\nimgs/a.png, cat\n{tmp_path / 'b.png'},1\nimgs/a.png,3\n")
    labels = label_source(str(csv), CLASSES)
    assert labels(tmp_path / "imgs" / ".." / "imgs" / "a.png") == 3 and labels(tmp_path / "b.png") == 1
    with pytest.raises(LabelError, match="no row in"):
        labels(tmp_path / "c.png")


@pytest.mark.parametrize("text,message", [
    ("name,class\na.png,cat\n", "needs a header with the columns file,label"),
    ("file,label\na.png,cow\n", "line 2: 'cow' is not a class"),
    ("file,label\na.png,cat\na.png,bird\n", "line 3: conflicting label for a.png"),
])
def test_malformed_csv_files(tmp_path, text, message):
    csv = tmp_path / "labels.csv"
    csv.write_text(text)
    with pytest.raises(LabelError, match=message):
        label_source(str(csv), CLASSES)
