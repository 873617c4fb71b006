from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evals import records
from evals.records import HEADER, RecordWriter, read_records, record_key
from reasoner.errors import SuiteError


def record(key: str) -> dict[str, object]:
    return {
        "key": key,
        "suite": "arith",
        "problem_id": "p1",
        "strategy": "direct",
        "budget": 64,
        "correct": True,
        "usage": {"generated_tokens": 3},
    }


def header() -> str:
    return json.dumps(HEADER) + "\n"


def test_each_record_is_on_disk_as_soon_as_it_is_written(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "a.jsonl"
    with RecordWriter(out) as writer:
        writer.write(record("one"))
        assert read_records(out).keys == {"one"}
        writer.write(record("two"))
        assert [item["key"] for item in read_records(out).records] == ["one", "two"]


def test_a_half_written_last_line_is_skipped_when_reading(tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    out.write_text(json.dumps(record("one")) + "\n" + '{"key": "tw')
    loaded = read_records(out)
    assert loaded.keys == {"one"}
    assert loaded.malformed_lines == [2]


def test_reopening_cuts_the_half_written_line_so_the_next_record_is_whole(tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    out.write_text(json.dumps(record("one")) + "\n" + '{"key": "tw')
    with RecordWriter(out) as writer:
        writer.write(record("two"))
    loaded = read_records(out)
    assert [item["key"] for item in loaded.records] == ["one", "two"]
    assert loaded.malformed_lines == []


def test_a_marked_file_that_is_only_a_partial_record_is_cut_back_to_the_marker(tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    out.write_text(header() + '{"key": "on')
    RecordWriter(out).open().close()
    assert out.read_text() == header()


def test_a_new_file_starts_with_the_marker_which_reading_skips(tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    with RecordWriter(out) as writer:
        writer.write(record("one"))
    assert out.read_text().splitlines()[0] == json.dumps(HEADER)
    loaded = read_records(out)
    assert loaded.keys == {"one"}
    assert loaded.malformed_lines == []


def test_a_records_file_written_before_the_marker_is_still_appended_to(tmp_path: Path) -> None:
    out = tmp_path / "old.jsonl"
    out.write_text(json.dumps(record("one")) + "\n")
    with RecordWriter(out) as writer:
        writer.write(record("two"))
    assert [item["key"] for item in read_records(out).records] == ["one", "two"]
    assert not out.read_text().startswith(json.dumps(HEADER))


def test_malformed_lines_are_counted_with_their_numbers(tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    lines = [json.dumps(record("one")), "garbage", "[1, 2]", '{"no": "key"}', "", json.dumps(record("two"))]
    out.write_text("\n".join(lines) + "\n")
    loaded = read_records(out)
    assert loaded.keys == {"one", "two"}
    assert loaded.malformed_lines == [2, 3, 4]


def test_an_unwritable_path_is_a_suite_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SuiteError, match="cannot write records to .*--out"):
        RecordWriter(blocker / "a.jsonl").open()


def test_a_missing_records_file_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=f"no records file at {tmp_path}/none.jsonl"):
        read_records(tmp_path / "none.jsonl")
    assert read_records(tmp_path / "none.jsonl", must_exist=False).records == []


def test_record_key_ignores_option_order_but_not_values() -> None:
    first = record_key("arith", "p1", "direct", 64, {"a": 1, "b": 2})
    assert first == record_key("arith", "p1", "direct", 64, {"b": 2, "a": 1})
    assert first != record_key("arith", "p1", "direct", 64, {"a": 1, "b": 3})
    assert first != record_key("arith", "p1", "direct", 128, {"a": 1, "b": 2})


@pytest.mark.parametrize(
    "content",
    [
        b"my notes\nline two without newline",
        b"my notes\n",
        b'{"key": "one"}\nnot a record\n{"key": "two"}\n',
        b'[1, 2]\n{"key": "tw',
        b"\xff\xfe binary \x00\x01",
        b'{"key": "my-api-key-123", "retries": 3}',
        b'{"key": "my-api-key-123", "retries": 3}\n',
        b'{"key": "on',
        b"\n\n",
    ],
)
def test_a_file_that_is_not_a_records_file_is_refused_and_left_byte_identical(tmp_path: Path, content: bytes) -> None:
    out = tmp_path / "notes.txt"
    out.write_bytes(content)
    with pytest.raises(SuiteError, match="is not a records file .*left unchanged"):
        RecordWriter(out).open()
    assert out.read_bytes() == content


def test_record_key_names_the_model() -> None:
    assert record_key("arith", "p1", "direct", 64, {}, "model-a") != record_key("arith", "p1", "direct", 64, {}, "b")


def test_a_second_writer_is_refused_while_the_first_holds_the_file(tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    with RecordWriter(out) as first:
        first.write(record("one"))
        before = out.read_bytes()
        with pytest.raises(SuiteError, match="another run is writing records to"):
            RecordWriter(out).open()
        assert out.read_bytes() == before
    with RecordWriter(out) as second:
        second.write(record("two"))
    assert [item["key"] for item in read_records(out).records] == ["one", "two"]


def test_a_fifo_is_refused_by_the_writer_and_the_reader_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(SuiteError, match="is not a regular file"):
        RecordWriter(fifo).open()
    with pytest.raises(SuiteError, match="is not a regular file"):
        read_records(fifo)


def test_a_device_is_refused_by_the_reader() -> None:
    with pytest.raises(SuiteError, match="/dev/zero is not a regular file"):
        read_records("/dev/zero")


def test_a_line_over_the_cap_is_malformed_and_never_held_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "MAX_LINE_BYTES", 300)
    out = tmp_path / "a.jsonl"
    long_record = json.dumps(record("long") | {"text": "x" * 500})
    out.write_text(header() + json.dumps(record("one")) + "\n" + long_record + "\n" + json.dumps(record("two")) + "\n")
    loaded = read_records(out)
    assert loaded.keys == {"one", "two"}
    assert loaded.malformed_lines == [3]
    with pytest.raises(SuiteError, match="line 3 is not an eval record"):
        RecordWriter(out).open()


def test_a_file_over_the_cap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "a.jsonl"
    out.write_text(header() + json.dumps(record("one")) + "\n")
    monkeypatch.setattr(records, "MAX_FILE_BYTES", 32)
    with pytest.raises(SuiteError, match="is larger than"):
        read_records(out)
