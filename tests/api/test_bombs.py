"""Dataset bombs against the real server (uvicorn on Postgres + S3, default read limits):
each upload answers promptly with `status: error` naming the line and the limit, and the
server's RSS stays within RSS_BUDGET_MB throughout. The bombs are made in the test from
repeated compressed blocks: ~10 MB on disk at most, never their inflated size."""

from __future__ import annotations

import time

import openai
import pytest

from tests.utils import bombs
from tests.utils.rss import PeakRss

RSS_BUDGET_MB = 256
"""Growth of the API process allowed during one bomb: the 8 MiB line buffer, its decoded
copy and the upload spool, with room for the allocator; a bomb read whole costs GBs."""


def upload(stack, path, name: str):
    """The client's 120 s timeout bounds each upload: a bomb read whole holds the API for
    minutes (the newline bomb 600 s, the wide CSV's duplicate check 534 s)."""
    started = time.monotonic()
    with PeakRss(stack.api.popen.pid) as rss:
        f = stack.client().files.create(file=(name, path.read_bytes()), purpose="fine-tune")
    seconds = time.monotonic() - started
    print(f"{name}: {path.stat().st_size} bytes, {seconds:.1f}s, RSS +{rss.growth_mb:.0f} MB")
    assert rss.growth_mb < RSS_BUDGET_MB, rss.growth_mb
    return f


def test_gzip_one_line_bomb(stack, tmp_path):
    path = bombs.one_line_bomb(tmp_path / "b.jsonl.gz")  # 10 MB -> one 10 GiB line
    assert path.stat().st_size < 12 * 1024**2
    f = upload(stack, path, "line.jsonl.gz")
    assert f.status == "error"
    assert f.status_details.startswith("line 1: line is longer than 8388608 bytes")
    assert "line 1: the gzip stream inflates to more than" in f.status_details
    with pytest.raises(openai.BadRequestError) as exc:  # and it cannot be trained on
        stack.client().fine_tuning.jobs.create(model="tiny-llama", training_file=f.id)
    error = exc.value.response.json()["error"]
    assert (error["param"], error["code"]) == ("training_file", "invalid_file")
    assert "LATHE_MAX_LINE_BYTES" in error["message"]


def test_gzip_newline_bomb_is_bounded_in_time(stack, tmp_path):
    path = bombs.newline_bomb(tmp_path / "n.jsonl.gz")  # 1 MB -> 1 GiB of newlines
    f = upload(stack, path, "newlines.jsonl.gz")
    assert f.status == "error"
    # read up to the line past the limit and no further: not the 1 GiB of newlines
    assert f.status_details.startswith("line 5000001: the file has more than 5000000 lines")


def test_zstd_parquet_bomb_is_refused_from_its_footer(stack, tmp_path):
    path = bombs.parquet_bomb(tmp_path / "p.parquet")  # ~45 KB -> 512 MiB decoded
    assert path.stat().st_size < 100_000
    f = upload(stack, path, "bomb.parquet")
    assert f.status == "error"
    assert f.status_details.startswith("line 1: row group 0 (rows 1-512) decodes to 53")
    assert "LATHE_MAX_PARQUET_ROW_GROUP_BYTES" in f.status_details


def test_csv_with_200k_columns_is_refused_at_once(stack, tmp_path):
    path = bombs.csv_wide_header(tmp_path / "w.csv")
    f = upload(stack, path, "wide.csv")
    assert f.status == "error"
    assert f.status_details.startswith(
        "line 1: the header has 200000 columns, more than 1000 (LATHE_MAX_DATASET_COLUMNS)"
    )
