"""Splits are keyed by content: adding data never moves a file; duplicates stay together."""

from __future__ import annotations

import hashlib

from training.splits import TEST, TRAIN, VALIDATION, assign_splits, split_of


def _files(n: int, label: str, start: int = 0):
    paths = [f"/{label}/{i}.jpg" for i in range(start, start + n)]
    hashes = [hashlib.sha256(f"{label}-{i}".encode()).hexdigest() for i in range(start, start + n)]
    return paths, [label] * n, hashes


def test_split_of_is_a_pure_function_of_the_hash_with_the_right_fractions():
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)]
    splits = [split_of(h) for h in hashes]
    assert splits == [split_of(h) for h in hashes]
    assert 0.07 < splits.count(TEST) / 5000 < 0.13
    assert 0.07 < splits.count(VALIDATION) / 5000 < 0.13


def test_files_keep_their_split_when_data_is_added():
    p1, l1, h1 = _files(200, "daisy")
    before = assign_splits(p1, l1, h1).assignment
    p2, l2, h2 = _files(300, "daisy", start=200)
    p3, l3, h3 = _files(100, "orchids")
    after = assign_splits(p1 + p2 + p3, l1 + l2 + l3, h1 + h2 + h3).assignment
    assert all(after[p] == before[p] for p in p1)
    assert {after[p] for p in p2} == {TRAIN, VALIDATION, TEST}


def test_identical_content_lands_in_one_split_even_across_folders():
    h = hashlib.sha256(b"same bytes").hexdigest()
    s = assign_splits(["/a/x.jpg", "/b/y.jpg", "/a/z.jpg"], ["a", "b", "a"], [h, h, h])
    assert len(set(s.assignment.values())) == 1


def test_a_class_without_training_images_keeps_all_of_them_in_train():
    held_out = [
        h
        for h in (hashlib.sha256(str(i).encode()).hexdigest() for i in range(200))
        if split_of(h) != TRAIN
    ][:2]
    p, labels, h = _files(20, "daisy")
    s = assign_splits(
        [*p, "/tiny/1.jpg", "/tiny/2.jpg"], [*labels, "tiny", "tiny"], [*h, *held_out]
    )
    assert s.assignment["/tiny/1.jpg"] == s.assignment["/tiny/2.jpg"] == TRAIN
    assert s.all_train_classes == ["tiny"]
    assert s.to_json_dict()["files"]["/tiny/1.jpg"]["sha256"] == held_out[0]
