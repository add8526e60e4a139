"""Read limits (core.data.limits): every bomb ends as a dataset issue naming the line, read in
bounded memory. Limits are set small here so each file is tiny; tests/api/test_bombs.py runs
the full-size bombs against a real server with its default limits."""

from __future__ import annotations

import json
import resource

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.data import validate_dataset
from core.data.limits import GZIP_RATIO_FLOOR, ReadLimits
from core.data.parquet import batch_rows
from core.data.readers import read_records
from core.data.report import Record
from tests.utils import bombs

MiB = 1024**2
SMALL = ReadLimits(max_line_bytes=1024, max_lines=1000, max_columns=50)


def rows(path, name, limits=SMALL):
    return list(read_records(path, name, limits))


def codes(items):
    return [(i.line, i.code) for i in items if not isinstance(i, Record)]


def test_a_long_line_is_reported_and_skipped(tmp_path):
    path = tmp_path / "d.jsonl"
    ok = json.dumps({"text": "fine"})
    path.write_text(f"{ok}\n{json.dumps({'text': 'x' * 5000})}\n{ok}\n")
    out = rows(path, "d.jsonl")
    assert codes(out) == [(2, "line_too_long")]
    assert [r.line for r in out if isinstance(r, Record)] == [1, 3]


def test_a_line_at_the_limit_is_read(tmp_path):
    path = tmp_path / "d.jsonl"
    line = json.dumps({"text": "x" * (1024 - 12)})
    assert len(line) == 1024
    path.write_text(line + "\n" + line)  # the last line without its newline, too
    assert [r.line for r in rows(path, "d.jsonl")] == [1, 2]


def test_invalid_utf8_after_a_skipped_line_names_the_byte_in_its_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "' + b"x" * 2000 + b'"}\n{"text": "caf\xe9"}\n')
    [long, bad] = rows(path, "d.jsonl")
    assert (long.code, bad.code, bad.line) == ("line_too_long", "invalid_utf8", 2)
    assert "at byte 13 of the line" in bad.message and "offset" not in bad.message


def test_gzip_one_line_bomb_stops_at_the_inflate_cap(tmp_path):
    path = bombs.one_line_bomb(tmp_path / "b.jsonl.gz", inflated=512 * MiB)
    limits = ReadLimits(max_line_bytes=MiB, max_decompressed_bytes=128 * MiB)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = rows(path, "b.jsonl.gz", limits)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert codes(out) == [(1, "line_too_long"), (1, "decompressed_too_large")]
    assert grown_mb < 64  # never near the 512 MiB line, nor the 128 MiB read


def test_gzip_ratio_cap_applies_above_the_floor():
    limits = ReadLimits(max_gzip_ratio=100, max_decompressed_bytes=10**12)
    assert limits.inflate_cap(1000) == GZIP_RATIO_FLOOR  # small files: the floor
    assert limits.inflate_cap(10 * MiB) == 1000 * MiB
    assert ReadLimits(max_decompressed_bytes=5 * MiB).inflate_cap(10**9) == 5 * MiB


def test_gzip_ratio_bomb_names_the_line_where_reading_stopped(tmp_path):
    unit = (json.dumps({"text": "x" * 1011}) + "\n").encode()
    assert len(unit) == 1024
    path = bombs.gzip_bomb(tmp_path / "b.jsonl.gz", 100 * MiB, unit)
    assert path.stat().st_size * 100 < GZIP_RATIO_FLOOR  # so the cap is the floor
    out = rows(path, "b.jsonl.gz", ReadLimits(max_lines=10**9, max_gzip_ratio=100))
    [(line, code)] = codes(out)
    assert code == "decompressed_too_large" and line == GZIP_RATIO_FLOOR // 1024 + 1


def test_gzip_newline_bomb_stops_at_the_line_cap(tmp_path):
    path = bombs.newline_bomb(tmp_path / "n.jsonl.gz", inflated=64 * MiB)
    report = validate_dataset(path, "n.jsonl.gz")  # settings' limits: 5M lines
    assert (report.errors[0].line, report.errors[0].code) == (5_000_001, "too_many_lines")
    assert "LATHE_MAX_DATASET_LINES" in report.errors[0].message


def test_csv_too_many_columns_and_linear_duplicate_check(tmp_path):
    path = bombs.csv_wide_header(tmp_path / "w.csv", 200_000)
    assert codes(rows(path, "w.csv", ReadLimits())) == [(1, "too_many_columns")]
    wide = ReadLimits(max_columns=300_000)
    [issue] = rows(path, "w.csv", wide)  # 200k duplicates: one pass, not 200k**2
    assert issue.code == "invalid_csv" and "['c']" in issue.message


def test_csv_record_spanning_lines_is_bounded(tmp_path):
    path = tmp_path / "d.csv"
    cell = "\n".join(["y" * 100] * 30)  # 30 short lines, one 3 KB record
    path.write_text(f'text\nfine\n"{cell}"\nnever read\n')
    out = rows(path, "d.csv")
    assert [r.line for r in out if isinstance(r, Record)] == [2]
    assert codes(out)[0][1] == "line_too_long" and 3 < codes(out)[0][0] < 33


def test_parquet_bomb_is_refused_from_its_footer(tmp_path):
    path = bombs.parquet_bomb(tmp_path / "p.parquet", decoded=64 * MiB)
    assert path.stat().st_size < 100_000
    limits = ReadLimits(max_row_group_bytes=16 * MiB)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    [issue] = rows(path, "p.parquet", limits)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 32
    assert (issue.line, issue.code) == (1, "row_group_too_large")
    assert "rows 1-64" in issue.message and "LATHE_MAX_PARQUET_ROW_GROUP_BYTES" in issue.message


def test_parquet_columns_and_rows_are_capped(tmp_path):
    path = tmp_path / "w.parquet"
    pq.write_table(pa.table({f"c{i}": [1] for i in range(60)}), path)
    assert codes(rows(path, "w.parquet")) == [(0, "too_many_columns")]
    path = tmp_path / "long.parquet"
    pq.write_table(pa.table({"text": ["t"] * 1500}), path)
    assert codes(rows(path, "long.parquet")) == [(1001, "too_many_lines")]


def test_dictionary_columns_decode_in_small_batches(tmp_path):
    """A repeated 1 MiB value, dictionary-encoded: tiny pages, huge when decoded; batches
    are sized so that each stays within 4 x max_line_bytes."""
    path = tmp_path / "d.parquet"
    value = pa.array(["v" * MiB]).dictionary_encode()
    table = pa.table({"text": pa.chunked_array([value] * 40)})
    pq.write_table(table, path, use_dictionary=True, compression="zstd")
    group = pq.ParquetFile(path).metadata.row_group(0)
    assert group.total_byte_size < 2 * MiB  # the footer cannot see the decoded 40 MiB
    limits = ReadLimits(max_line_bytes=2 * MiB)
    assert batch_rows(group, limits) <= 8
    assert len(rows(path, "d.parquet", limits)) == 40


def test_read_limits_come_from_settings(monkeypatch, tmp_path):
    from core.settings import get_settings

    monkeypatch.setenv("LATHE_MAX_LINE_BYTES", "2048")
    get_settings.cache_clear()
    try:
        path = tmp_path / "d.jsonl"
        path.write_text(json.dumps({"text": "x" * 3000}) + "\n")
        report = validate_dataset(path, "d.jsonl")
        assert report.errors[0].code == "line_too_long" and "2048" in report.errors[0].message
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("name", ["d.jsonl", "d.csv"])
def test_line_count_includes_blank_lines(tmp_path, name):
    path = tmp_path / name
    first = "text" if name.endswith(".csv") else json.dumps({"text": "t"})
    path.write_text(first + "\n" + "\n" * 2000)
    assert codes(rows(path, name)) == [(1001, "too_many_lines")]


def test_a_ranked_row_is_capped_in_completions(tmp_path):
    path = tmp_path / "r.jsonl"
    row = {"prompt": "Q", "completions": ["a"] * 100_000, "ranking": list(range(100_000))}
    ok = {"prompt": "Q", "completions": ["x", "y", "z"], "ranking": [2, 0, 1]}
    path.write_text(json.dumps(row) + "\n" + json.dumps(ok) + "\n")
    report = validate_dataset(path, "r.jsonl")  # 5e9 pairs if expanded
    assert [(e.line, e.field, e.code) for e in report.errors] == [
        (1, "completions", "too_many_completions")
    ]
    assert report.n_examples == 3 and "at most 32 completions" in report.errors[0].message
