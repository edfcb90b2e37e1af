import json
import logging
import shutil

import pytest

from dfdc.dataset.entries import MetadataError, read_metadata
from dfdc.dataset.index import build_index, collect_entries


def _write_meta(folder, entries):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.json").write_text(json.dumps(entries))
    return folder / "metadata.json"


def test_real_rows_may_omit_original_or_carry_null(tmp_path):
    meta = _write_meta(
        tmp_path / "dfdc_train_part_3",
        {
            "a.mp4": {"label": "REAL", "split": "train"},
            "b.mp4": {"label": "REAL", "split": "train", "original": None},
            "c.mp4": {"label": "FAKE", "split": "train", "original": "a.mp4"},
            "d.mp4": {"label": "FAKE", "split": "train"},
        },
    )
    rows = {e.name: e for e in read_metadata(meta)}
    assert rows["a.mp4"].original is None and rows["b.mp4"].original is None
    assert rows["c.mp4"].original == "a.mp4"
    assert rows["d.mp4"].original is None  # a fake whose original is unknown
    assert {e.part for e in rows.values()} == {"dfdc_train_part_3"}


def test_metadata_only_file_takes_part_from_its_name(tmp_path):
    path = tmp_path / "dfdc_train_part_7_metadata.json"
    path.write_text(json.dumps({"x.mp4": {"label": "FAKE", "original": "y.mp4", "split": "train"}}))
    (entry,) = read_metadata(path)
    assert entry.part == "dfdc_train_part_7"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"a.mp4": {"label": "MAYBE"}}', "label 'MAYBE'"),
        ('{"a.mp4": "REAL"}', "is not an object"),
        ("[]", "expected an object"),
    ],
)
def test_bad_metadata_names_file_and_problem(tmp_path, content, fragment):
    path = tmp_path / "metadata.json"
    path.write_text(content)
    with pytest.raises(MetadataError) as err:
        read_metadata(path)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_duplicate_names_across_parts_are_an_error(tmp_path):
    _write_meta(tmp_path / "p1", {"a.mp4": {"label": "REAL"}})
    _write_meta(tmp_path / "p2", {"a.mp4": {"label": "REAL"}})
    with pytest.raises(MetadataError, match="listed again"):
        collect_entries(tmp_path)


def test_no_metadata_is_a_clear_error(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"")
    with pytest.raises(MetadataError, match=r"no known dataset layout \(expected DFDC part "):
        collect_entries(tmp_path)


def test_bad_files_are_indexed_with_reasons_not_crashes(tmp_path, tiny_raw, caplog):
    part = tmp_path / "dfdc_train_part_0"
    part.mkdir()
    good = next((tiny_raw / "train").rglob("*.mp4"))
    shutil.copy(good, part / "good.mp4")
    (part / "empty.mp4").write_bytes(b"")
    data = good.read_bytes()
    (part / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (part / "text.mp4").write_text("this is not a video\n" * 50)
    _write_meta(
        part,
        {
            n: {"label": "REAL", "split": "train"}
            for n in ["good.mp4", "empty.mp4", "truncated.mp4", "text.mp4", "gone.mp4"]
        },
    )
    with caplog.at_level(logging.WARNING):
        index = build_index(collect_entries(tmp_path), workers=2).set_index("name")
    assert bool(index.loc["good.mp4", "readable"])
    assert index.loc["good.mp4", "width"] == 480
    for name in ["empty.mp4", "truncated.mp4", "text.mp4", "gone.mp4"]:
        assert not index.loc[name, "readable"], name
        assert index.loc[name, "reason"], name
    assert index.loc["gone.mp4", "reason"] == "missing file"
    assert "0 bytes" in index.loc["empty.mp4", "reason"]
    assert "4 of 5 videos unreadable or missing" in caplog.text


def test_test_videos_are_indexed_without_labels(tiny_raw):
    index = build_index(collect_entries(tiny_raw / "train", tiny_raw / "test_videos"), workers=1)
    test = index[index["split"] == "test"]
    assert len(test) == 2
    assert test["label"].isna().all()
    assert test["readable"].all()
