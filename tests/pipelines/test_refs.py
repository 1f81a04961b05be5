import pytest

from pipelines.errors import InvalidPath, InvalidReference
from pipelines.refs import normalize_path, parse_ref


@pytest.mark.parametrize(
    ("text", "repo", "ref", "ancestry", "path"),
    [
        ("flower_photos", "flower_photos", "master", 0, None),
        ("flower_photos@master", "flower_photos", "master", 0, None),
        ("flower_photos@dev^", "flower_photos", "dev", 1, None),
        ("flower_photos@master^^", "flower_photos", "master", 2, None),
        ("flower_photos@master^3", "flower_photos", "master", 3, None),
        (
            "Convert@0123456789abcdef0123456789abcdef",
            "Convert",
            "0123456789abcdef0123456789abcdef",
            0,
            None,
        ),
        ("flower_photos@master:/orchids", "flower_photos", "master", 0, "/orchids"),
        ("flower_photos@master:orchids/1.jpg", "flower_photos", "master", 0, "/orchids/1.jpg"),
        ("Train.spec@master", "Train.spec", "master", 0, None),
    ],
)
def test_parse_ref_forms(text, repo, ref, ancestry, path):
    r = parse_ref(text)
    assert (r.repo, r.ref, r.ancestry, r.path) == (repo, ref, ancestry, path)


def test_commit_ids_are_recognised():
    assert parse_ref("r@0123456789abcdef0123456789abcdef").is_commit_id
    assert not parse_ref("r@master").is_commit_id


@pytest.mark.parametrize("bad", ["", "@master", "repo@", "re po@master", "repo@mas ter", "repo@@x"])
def test_malformed_references_say_what_is_accepted(bad):
    with pytest.raises(InvalidReference, match="REPO@BRANCH"):
        parse_ref(bad)


def test_path_required_when_asked():
    with pytest.raises(InvalidReference, match="needs a path"):
        parse_ref("repo@master", require_path=True)


@pytest.mark.parametrize("bad", ["../etc/passwd", "/a/../../b", "a/..", "/x/\x00"])
def test_paths_cannot_climb_out(bad):
    with pytest.raises(InvalidPath):
        normalize_path(bad)


def test_paths_are_canonical():
    assert normalize_path("a//b/./c/") == "/a/b/c"
    assert normalize_path("") == "/"
    assert normalize_path("\\\\a\\b") == "/a/b"
