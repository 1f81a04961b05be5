"""labels.txt that both apps read the same way."""

from __future__ import annotations

import pytest

from mobile.errors import LabelsMismatch
from mobile.labels import check_labels, format_labels, parse_labels, read_labels


def test_format_and_parse_round_trip():
    labels = ["daisy", "lily of the valley", "løvetann"]
    text = format_labels(labels)
    assert text == "daisy\nlily of the valley\nløvetann\n".encode()
    assert parse_labels(text) == labels


def test_windows_line_endings_and_missing_final_newline_are_fine():
    assert parse_labels(b"daisy\r\ntulips") == ["daisy", "tulips"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"daisy\n\ntulips\n", "blank"),  # Android would count 3 classes, iOS 2
        (b"daisy\ntulips\n\n", "blank"),
        (b"", "no labels"),
        (b"daisy\ndaisy\n", "appears twice"),
        (b" daisy\n", "leading or trailing spaces"),
        (b"\xff\xfe\n", "not UTF-8"),
    ],
)
def test_label_files_the_apps_would_misread_are_refused(text, message):
    with pytest.raises(LabelsMismatch, match=message):
        parse_labels(text, source="labels.txt")


def test_count_must_match_the_model():
    with pytest.raises(LabelsMismatch, match="3 labels but the model has 5 outputs"):
        check_labels(["a", "b", "c"], num_classes=5, source="labels.txt")


def test_read_labels_names_a_missing_file(tmp_path):
    with pytest.raises(LabelsMismatch, match="no such labels file"):
        read_labels(tmp_path / "labels.txt")
