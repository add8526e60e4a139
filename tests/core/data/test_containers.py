"""Containers: gzip, CSV, parquet, encodings and unreadable files."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.data import (
    Conversation,
    DataError,
    DatasetFormat,
    LabeledText,
    Message,
    load_examples,
    validate_dataset,
)
from core.data.readers import read_records
from core.data.report import Record

CHAT = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "R"}]}
EXPECTED = Conversation((Message("user", "Q"), Message("assistant", "R")), line=1)


def issues(report):
    return [(i.line, i.field, i.code) for i in report.errors]


def test_jsonl_gz_streams(tmp_path):
    path = tmp_path / "upload.bin"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps(CHAT) + "\n\n" + json.dumps(CHAT) + "\n")
    fmt, examples = load_examples(path, "train.jsonl.gz")
    assert fmt == DatasetFormat.CHAT
    assert examples == [EXPECTED, Conversation(EXPECTED.messages, line=3)]
    # gzip bytes under a plain .jsonl name are sniffed, not read as garbage
    assert validate_dataset(path, "train.jsonl").ok


def test_truncated_gzip_is_a_file_error(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(gzip.compress((json.dumps(CHAT) + "\n").encode() * 50)[:-20])
    report = validate_dataset(path, path.name)
    assert report.errors[0].code == "read_error" and report.errors[0].line == 0


def test_json_extension_is_json_lines_or_a_json_array(jsonl):
    assert validate_dataset(jsonl([CHAT], name="d.json"), "d.json").container == "jsonl"
    path = jsonl(["[", json.dumps(CHAT), "]"], name="arr.json")
    report = validate_dataset(path, "arr.json")
    assert report.ok and report.container == "json_array" and report.n_examples == 1


def test_csv_chat_and_line_numbers(tmp_path):
    path = tmp_path / "d.csv"
    messages = json.dumps(CHAT["messages"]).replace('"', '""')
    path.write_text(
        "messages,id\n"
        f'"{messages}",1\n'
        "\n"
        '"[{""role"": ""user"", ""content"": ""multi""},\n'
        ' {""role"": ""assistant"", ""content"": """"}]",2\n'
        '"not json",3\n',
        encoding="utf-8",
    )
    report = validate_dataset(path, "d.csv")
    # header is line 1; the blank line 3 counts; the multi-line row starts on line 4
    assert issues(report) == [
        (4, "messages[1].content", "empty_content"),
        (6, "messages", "invalid_json"),
    ]
    assert report.n_examples == 1 and report.format == DatasetFormat.CHAT


def test_csv_classification_and_optional_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("\ufefftext,text_pair,label\ngood,,1\nbad,x,0\n", encoding="utf-8")
    fmt, examples = load_examples(path, "d.csv", method="classification")
    assert fmt == DatasetFormat.CLASSIFICATION
    assert examples == [LabeledText("good", "1", line=2), LabeledText("bad", "0", "x", line=3)]


def test_csv_row_length_and_bad_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text\nfine\n"a","b"\n', encoding="utf-8")
    assert issues(validate_dataset(path, "d.csv")) == [(3, None, "csv_row_length")]
    path.write_text("text,text\na,b\n", encoding="utf-8")
    assert issues(validate_dataset(path, "d.csv"))[0] == (1, None, "invalid_csv")


def test_parquet_in_batches(tmp_path, monkeypatch):
    monkeypatch.setattr("core.data.parquet.PARQUET_BATCH_ROWS", 2)
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(5)]
    rows[3]["rejected"] = ""
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)
    report = validate_dataset(path, "d.parquet", method="dpo")
    assert issues(report) == [(4, "rejected", "empty_rejected")]
    assert report.n_examples == 4


def test_parquet_nested_messages_and_nulls(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Q", "weight": None},
                {"role": "assistant", "content": "R", "weight": 1},
            ],
            "tools": None,
        }
    ]
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    fmt, [ex] = load_examples(path, "d.parquet")
    assert fmt == DatasetFormat.CHAT
    assert ex == Conversation((Message("user", "Q"), Message("assistant", "R", 1.0)), line=1)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1 not really")
    assert issues(validate_dataset(path, "d.parquet"))[0] == (0, None, "invalid_parquet")


def test_non_utf8_names_line_and_byte_offset(tmp_path):
    path = tmp_path / "d.jsonl"
    good = (json.dumps({"text": "ok"}) + "\n").encode()
    path.write_bytes(good + b'{"text": "caf\xe9"}\n' + good)
    report = validate_dataset(path, "d.jsonl")
    assert issues(report) == [(2, None, "invalid_utf8")]
    offset = len(good) + len(b'{"text": "caf')
    assert f"byte offset {offset}" in report.errors[0].message
    assert report.n_examples == 2  # reading goes on after a bad line


def test_non_utf8_in_csv_stops_with_offset(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text\nok\n\xff\xfebad\nlater\n")
    report = validate_dataset(path, "d.csv")
    assert issues(report) == [(3, None, "invalid_utf8")]
    assert "byte offset 8" in report.errors[0].message


def test_bom_and_blank_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"text": "a"}\n\n   \n{"text": "b"}\n')
    fmt, examples = load_examples(path, "d.jsonl")
    assert [e.line for e in examples] == [1, 4]


def test_unsupported_extension(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("hello")
    report = validate_dataset(path, "d.txt")
    assert issues(report)[0] == (0, None, "unsupported_file_type")
    with pytest.raises(DataError, match="unsupported file type"):
        load_examples(path, "d.txt")


def test_reader_is_lazy(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": str(i)}) + "\n" for i in range(1000)))
    rows = read_records(path, "d.jsonl")
    assert next(rows) == Record(1, {"text": "0"})  # a generator: nothing else read yet
    rows.close()


def test_csv_json_cells_for_dpo_and_ranked(tmp_path):
    dpo = tmp_path / "dpo.csv"
    dpo.write_text(
        "input,preferred_output,non_preferred_output\n"
        '"{""messages"": [{""role"": ""user"", ""content"": ""Q""}]}",'
        '"[{""role"": ""assistant"", ""content"": ""good""}]",'
        '"[{""role"": ""assistant"", ""content"": ""bad""}]"\n',
        encoding="utf-8",
    )
    fmt, [pair] = load_examples(dpo, "dpo.csv", method="dpo")
    assert fmt == DatasetFormat.PREFERENCE
    assert (pair.prompt[0].content, pair.chosen[0].content, pair.rejected[0].content) == (
        "Q",
        "good",
        "bad",
    )
    ranked = tmp_path / "ranked.csv"
    ranked.write_text('prompt,completions,ranking\nQ,"[""a"", ""b""]","[1, 0]"\n')
    fmt, [pair] = load_examples(ranked, "ranked.csv", method="reward_model")
    assert fmt == DatasetFormat.RANKED
    assert (pair.chosen[0].content, pair.rejected[0].content, pair.line) == ("b", "a", 2)


def test_csv_prompts_keep_other_columns_and_gzip(tmp_path):
    path = tmp_path / "p.csv.gz"
    path.write_bytes(gzip.compress(b"prompt,reference,topic\nQ,42,math\nQ2,,\n"))
    fmt, examples = load_examples(path, "p.csv.gz", method="grpo")
    assert fmt == DatasetFormat.PROMPTS
    assert [(e.reference, e.extra, e.line) for e in examples] == [
        ("42", {"topic": "math"}, 2),
        (None, {"topic": ""}, 3),
    ]
