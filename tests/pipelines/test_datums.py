import pytest

from pipelines.datums import Datum, DatumPart, InputFile, enumerate_datums, glob_regex, match_glob
from pipelines.errors import InvalidSpec

FILES = [
    InputFile(p, h, 1)
    for p, h in [
        ("/daisy/1.jpg", "a1"),
        ("/daisy/2.jpg", "a2"),
        ("/roses/1.jpg", "b1"),
        ("/README", "r"),
        ("/roses/sub/3.jpg", "b3"),
    ]
]


def matched(glob):
    return [m for m, _files, _ in match_glob(glob, FILES)]


def test_root_glob_is_one_datum_with_everything():
    [(path, files, _)] = match_glob("/", FILES)
    assert path == "/" and len(files) == 5


def test_star_matches_top_level_entries_files_and_dirs():
    assert matched("/*") == ["/README", "/daisy", "/roses"]


def test_star_star_matches_second_level():
    assert matched("/*/*") == ["/daisy/1.jpg", "/daisy/2.jpg", "/roses/1.jpg", "/roses/sub"]


def test_directory_datum_holds_everything_under_it():
    files = {m: [f.path for f in fs] for m, fs, _ in match_glob("/*", FILES)}
    assert files["/roses"] == ["/roses/1.jpg", "/roses/sub/3.jpg"]


def test_double_star_crosses_segments_and_braces_alternate():
    assert "/roses/sub/3.jpg" in matched("/**.jpg")
    assert matched("/{daisy,roses}") == ["/daisy", "/roses"]


def test_empty_commit_has_no_datums():
    assert match_glob("/", []) == []


def test_bad_glob():
    with pytest.raises(InvalidSpec):
        glob_regex("/[abc")


def commits(**inputs):
    return {name: (name, "c" * 32, files) for name, files in inputs.items()}


def test_cross_is_a_product_and_union_a_concatenation():
    a = [InputFile("/x", "1", 1), InputFile("/y", "2", 1)]
    b = [InputFile("/p", "3", 1), InputFile("/q", "4", 1), InputFile("/r", "5", 1)]
    cross = {"cross": [{"pfs": {"repo": "a", "glob": "/*"}}, {"pfs": {"repo": "b", "glob": "/*"}}]}
    union = {"union": [{"pfs": {"repo": "a", "glob": "/*"}}, {"pfs": {"repo": "b", "glob": "/*"}}]}
    assert len(enumerate_datums(cross, commits(a=a, b=b))) == 6
    assert len(enumerate_datums(union, commits(a=a, b=b))) == 5
    # An input with no commit yet makes the cross empty, as in Pachyderm.
    assert enumerate_datums(cross, commits(a=a)) == []


def test_join_pairs_on_capture_groups():
    a = [InputFile("/1.jpg", "1", 1), InputFile("/2.jpg", "2", 1)]
    b = [InputFile("/1.txt", "3", 1), InputFile("/3.txt", "4", 1)]
    join = {
        "join": [
            {"pfs": {"repo": "a", "glob": "/(*).jpg", "joinOn": "$1"}},
            {"pfs": {"repo": "b", "glob": "/(*).txt", "joinOn": "$1"}},
        ]
    }
    datums = enumerate_datums(join, commits(a=a, b=b))
    assert [[p.matched for p in d.parts] for d in datums] == [["/1.jpg", "/1.txt"]]


def test_datum_hash_covers_content_paths_and_salt():
    d1 = enumerate_datums(
        {"pfs": {"repo": "a", "glob": "/"}}, commits(a=[InputFile("/x", "1", 1)])
    )[0]
    d2 = enumerate_datums(
        {"pfs": {"repo": "a", "glob": "/"}}, commits(a=[InputFile("/x", "2", 1)])
    )[0]
    d3 = enumerate_datums(
        {"pfs": {"repo": "a", "glob": "/"}}, commits(a=[InputFile("/y", "1", 1)])
    )[0]
    assert len({d1.hash("s"), d2.hash("s"), d3.hash("s"), d1.hash("t")}) == 4
    assert d1.hash("s") == d1.hash("s")


def test_datum_hashes_do_not_change_between_versions():
    """The digests a store has recorded must come out again, or an upgrade reruns every datum
    of every pipeline. (Pinned from the implementation of issue 12's first stops.)"""
    a = DatumPart(
        "images", "images", "c1", "/daisy/1.jpg", (InputFile("/daisy/1.jpg", "ab" * 32, 3),)
    )
    files = (InputFile("/l.txt", "cd" * 32, 1), InputFile("/ü/x", "ef" * 32, 2))
    b = DatumPart("labels", "labels", "c2", "/", files, "k")
    assert Datum((a,)).hash("salt") == (
        "2e53ef728d74552e1b5d5027bd446a5d44730badb931160e755d035a714d8490"
    )
    assert (
        Datum((b, a)).hash("salt")
        == Datum((a, b)).hash("salt")
        == ("5c79040e1a3bfd11b8621491d7d57e67cc132a9aaa1d34dd628985921567cd52")
    )
