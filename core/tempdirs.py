"""Where this deployment keeps temporary files: under its own directory (LATHE_TEMP_DIR,
default data_dir/tmp), never the system's temp directory.

The sweeper removes stale temp directories of uploads and runs; in the shared system temp
directory it removed those of another deployment on the host (or of tests beside a running
service), whose database did not know their jobs. Under a directory the deployment owns, it
only ever sees its own. Upload directories carry the receiving process's id, so an API
starting up removes what a killed API left (hundreds of MB) without touching a live sibling's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from core.settings import Settings

UPLOAD_PREFIX = "lathe-upload-"


def temp_root(settings: Settings) -> Path:
    """The deployment's temp directory, created on first use."""
    path = settings.resolved_temp_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_dir(settings: Settings) -> tempfile.TemporaryDirectory:
    """A temp directory for one upload being received, named for this process."""
    return tempfile.TemporaryDirectory(
        prefix=f"{UPLOAD_PREFIX}{os.getpid()}-", dir=temp_root(settings)
    )


def remove_dead_uploads(settings: Settings) -> int:
    """Upload directories of processes no longer running (an API killed mid-upload)."""
    removed = 0
    for path in temp_root(settings).glob(f"{UPLOAD_PREFIX}*"):
        pid = path.name[len(UPLOAD_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
