"""`python -m worker.tinker_trainer`: a long-lived Tinker trainer process (core.tinker.trainer).

Run one per GPU (or one on a CPU host) beside the Celery workers; it holds training clients in
memory, so it is a process of its own rather than a Celery task."""

from __future__ import annotations

import argparse

from core.logging_setup import configure_logging
from core.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tinker_trainer", description=__doc__)
    parser.add_argument("--device", default=None, help="torch device (default: cuda if seen)")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    import torch

    from core.tinker.trainer import Trainer

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    Trainer(settings, device).run()


if __name__ == "__main__":
    main()
