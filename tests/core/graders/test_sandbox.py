"""python graders in the operator's sandbox: a subprocess with no network, and CPU, memory,
output and wall-clock limits; what breaks a limit scores nothing and says why."""

from __future__ import annotations

import tempfile

import pytest

from core.graders import parse_grader
from core.graders.base import GraderTools, PythonGraderError
from core.graders.grade import bind
from core.graders.run import run_grader
from core.graders.sandbox import isolation
from core.settings import Settings

pytestmark = pytest.mark.skipif(isolation() is None, reason="no network namespace here")

SETTINGS = Settings(graders={"python_sandbox": True, "python_timeout_s": 1.5})


def _grader(source: str):
    spec = {"type": "python", "name": "code", "source": source}
    return bind(parse_grader(spec), GraderTools(settings=SETTINGS))


def test_grade_reads_sample_and_item() -> None:
    grader = _grader(
        "def grade(sample, item):\n"
        "    ok = sample['output_text'] == item['answer'] and sample['output_json'] == 4\n"
        "    return 1.0 if ok else 0.25\n"
    )
    assert grader.score("4", {"answer": "4"}) == 1.0
    assert grader.score("5", {"answer": "4"}) == 0.25


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "import socket\ndef grade(s, i):\n"
            "    socket.create_connection(('127.0.0.1', 5432), timeout=1)\n    return 1\n",
            "Network is unreachable",
        ),
        ("def grade(s, i):\n    while True:\n        pass\n", "ran over"),
        ("def grade(s, i):\n    x = bytearray(2 ** 31)\n    return 1\n", "MemoryError"),
        ("def grade(s, i):\n    print('x' * 10 ** 7)\n    return 1\n", "File too large"),
        ("def grade(s, i):\n    return 'high'\n", "could not convert"),
    ],
)
def test_limits_hold(source: str, reason: str) -> None:
    grader = _grader(source)
    with pytest.raises(PythonGraderError, match=reason):
        grader.score("x", {})


def test_run_reports_openais_python_error_flags() -> None:
    out = run_grader(_grader("def grade(s, i):\n    raise ValueError('nope')\n"), "x", {})
    errors = out["metadata"]["errors"]
    assert out["reward"] == 0.0 and errors["python_grader_runtime_error"]
    assert "ValueError: nope" in errors["python_grader_runtime_error_details"]


def test_its_files_stay_in_the_deployments_temp_dir(tmp_path, monkeypatch) -> None:
    """Under the deployment's own temp dir (here below a 0700 directory `nobody` cannot
    traverse), never the system's: the sweeper of another deployment must not see them."""
    system = tmp_path / "system-tmp"
    system.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system))
    own = tmp_path / "deployment" / "tmp"
    settings = SETTINGS.model_copy(update={"temp_dir": own})
    source = "import os\ndef grade(s, i):\n    return float(os.getcwd().startswith(i['own']))\n"
    spec = {"type": "python", "name": "code", "source": source}
    grader = bind(parse_grader(spec), GraderTools(settings=settings))
    assert grader.score("x", {"own": str(own) + "/lathe-grader-"}) == 1.0
    assert list(system.iterdir()) == [] and list(own.iterdir()) == []  # and nothing left
