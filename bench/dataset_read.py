"""Dataset read benchmark: what the read limits (core.data.limits) cost on honest files.

Generates chat JSONL (plain and gzipped) of the given size, then reads it in this process
twice: with `read_records` (bounded readline, inflate cap, line count) and with the unbounded
loop it replaced (`for line in gzip.open(...)`, json.loads), and prints rows/s of each and
their ratio. The bounds should cost next to nothing: the ratio should be near 1.

    .venv/bin/python bench/dataset_read.py --mb 50
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.limits import ReadLimits  # noqa: E402
from core.data.readers import read_records  # noqa: E402


def make(directory: Path, megabytes: int) -> tuple[Path, Path]:
    row = {
        "messages": [
            {"role": "user", "content": "What is the capital of France? " * 4},
            {"role": "assistant", "content": "Paris. " * 12},
        ]
    }
    line = (json.dumps(row) + "\n").encode()
    plain, packed = directory / "d.jsonl", directory / "d.jsonl.gz"
    plain.write_bytes(line * (megabytes * 1024**2 // len(line)))
    with gzip.open(packed, "wb", compresslevel=1) as f:
        f.write(plain.read_bytes())
    return plain, packed


def unbounded(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    with opener(path, "rb") as f:
        for raw in f:
            if raw.strip():
                json.loads(raw)
                n += 1
    return n


def bounded(path: Path) -> int:
    return sum(1 for _ in read_records(path, path.name, ReadLimits()))


def best_of(fn, path: Path, repeats: int) -> tuple[int, float]:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        n = fn(path)
        best = min(best, time.perf_counter() - start)
    return n, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for path in make(Path(tmp), args.mb):
            n, base = best_of(unbounded, path, args.repeats)
            m, ours = best_of(bounded, path, args.repeats)
            assert n == m, (n, m)
            print(
                f"{path.name}: {n} rows; unbounded {n / base:,.0f} rows/s, "
                f"bounded {m / ours:,.0f} rows/s; ratio {base / ours:.2f}"
            )


if __name__ == "__main__":
    main()
