import pytest

from auditor.checks.unreadable_file import unreadable_file


def test_each_unreadable_file_is_one_warning_naming_the_file_and_the_reason():
    found = unreadable_file(
        ["/daisy/.DS_Store", "/roses/cut.jpg"], ["not an image", "truncated JPEG"]
    )
    assert [(f.check, f.severity, f.classes, f.files) for f in found] == [
        ("unreadable_file", "warn", ["daisy"], ["/daisy/.DS_Store"]),
        ("unreadable_file", "warn", ["roses"], ["/roses/cut.jpg"]),
    ]
    assert "truncated JPEG" in found[1].message
    assert found[1].details == {"reason": "truncated JPEG"}


def test_no_unreadable_files_no_findings():
    assert unreadable_file([], []) == []


def test_severity_comes_from_the_option():
    assert unreadable_file(["/a/x"], [None], severity="fail")[0].severity == "fail"


def test_mismatched_inputs_are_refused_with_the_numbers():
    with pytest.raises(ValueError, match="reasons has 1 entries but paths has 2"):
        unreadable_file(["/a/x", "/a/y"], ["bad"])
    with pytest.raises(TypeError):
        unreadable_file("/a/x", ["bad"])
    with pytest.raises(ValueError, match="severity"):
        unreadable_file(["/a/x"], ["bad"], severity="error")
