"""OpenAI's Evals API driven by the official `openai` client against the production stack:
an eval created, run over a completions data source (a Lathe model answers through the
inference service; a Lathe model judges), its output items read back; a jsonl run from an
uploaded file; cancelling, deleting, the dashboard's report page, and another organization
seeing none of it. Bad input is a 400 naming the field or row."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

QUESTIONS = [
    {"question": "What is the capital of France?", "answer": "Paris"},
    {"question": "What is the capital of Italy?", "answer": "Rome"},
    {"question": "What is the capital of Spain?", "answer": "Madrid"},
]
CONFIG = {
    "type": "custom",
    "item_schema": {
        "type": "object",
        "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["question", "answer"],
    },
    "include_sample_schema": True,
}
EXACT = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "ilike",
}
JUDGE = {
    "type": "score_model",
    "name": "judge",
    "model": "tiny-llama",
    "input": [
        {"role": "system", "content": "Score from 0 to 1 how well it answers."},
        {"role": "user", "content": "{{item.question}} {{sample.output_text}}"},
    ],
    "range": [0, 1],
    "pass_threshold": 0.3,
    "sampling_params": {"max_completions_tokens": 12, "seed": 3},
}
TEMPLATE = {
    "type": "template",
    "template": [
        {"role": "system", "content": "Answer with the city only."},
        {"role": "user", "content": "{{item.question}}"},
    ],
}


def wait_run(client: openai.OpenAI, eval_id: str, run_id: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.evals.runs.retrieve(run_id, eval_id=eval_id)
        if run.status in ("completed", "failed", "canceled"):
            return run
        time.sleep(0.3)
    raise TimeoutError(f"run {run_id} still {run.status} after {timeout}s")


def completions_source(rows: list[dict], model: str = "tiny-llama-pretrained") -> dict:
    return {
        "type": "completions",
        "model": model,
        "input_messages": TEMPLATE,
        "sampling_params": {"temperature": 0, "max_completion_tokens": 8, "seed": 1},
        "source": {"type": "file_content", "content": [{"item": r} for r in rows]},
    }


@pytest.fixture(scope="module")
def created(stack):
    client = stack.client()
    return client.evals.create(
        name="capitals",
        metadata={"team": "geo"},
        data_source_config=CONFIG,
        testing_criteria=[EXACT, JUDGE],
    )


def test_an_eval_runs_over_a_completions_data_source_on_a_worker(stack, created):
    client = stack.client()
    assert created.object == "eval" and created.data_source_config.type == "custom"
    schema = created.data_source_config.schema_
    assert set(schema["properties"]) == {"item", "sample"}
    assert [c.name for c in created.testing_criteria] == ["exact", "judge"]
    run = client.evals.runs.create(
        created.id, name="pretrained", data_source=completions_source(QUESTIONS)
    )
    assert run.status == "queued" and run.model == "tiny-llama-pretrained"
    # cancelled before the worker reaches it: it never runs (the worker takes runs in order)
    doomed = client.evals.runs.create(created.id, data_source=completions_source(QUESTIONS * 5))
    assert client.evals.runs.cancel(doomed.id, eval_id=created.id).status == "canceled"
    run = wait_run(client, created.id, run.id)
    assert run.status == "completed", (run.error, stack.worker.tail())
    counts = run.result_counts
    assert counts.total == 3 == counts.passed + counts.failed + counts.errored
    assert counts.errored == 0, stack.worker.tail()
    assert {r.testing_criteria for r in run.per_testing_criteria_results} == {"exact", "judge"}
    usage = {u.run_model_name: u for u in run.per_model_usage}
    assert usage["tiny-llama-pretrained"].invocation_count == 3  # one sample per row
    assert usage["tiny-llama"].invocation_count == 3  # one judgement per row
    assert usage["tiny-llama-pretrained"].completion_tokens > 0

    items = list(client.evals.runs.output_items.list(run.id, eval_id=created.id))
    assert sorted(i.datasource_item_id for i in items) == [0, 1, 2]
    exact_passes = 0
    for item in items:
        row = QUESTIONS[item.datasource_item_id]
        assert item.datasource_item == row
        assert item.sample.input[-1].content == row["question"]  # the template, rendered
        text = item.sample.output[0].content
        results = {r.name: r for r in item.results}
        assert results["exact"].passed == (text.lower() == row["answer"].lower()), text
        assert results["judge"].passed == (results["judge"].score >= 0.3)
        exact_passes += results["exact"].passed
        expected = "pass" if all(r.passed for r in item.results) else "fail"
        assert item.status == expected
    by_name = {r.testing_criteria: r for r in run.per_testing_criteria_results}
    assert by_name["exact"].passed == exact_passes
    passed = list(client.evals.runs.output_items.list(run.id, eval_id=created.id, status="pass"))
    assert len(passed) == counts.passed and all(i.status == "pass" for i in passed)
    one = client.evals.runs.output_items.retrieve(items[0].id, eval_id=created.id, run_id=run.id)
    assert one.id == items[0].id
    assert [r.model_dump() for r in one.results] == [r.model_dump() for r in items[0].results]

    doomed = client.evals.runs.retrieve(doomed.id, eval_id=created.id)
    assert doomed.status == "canceled" and doomed.result_counts.total == 0
    assert not list(client.evals.runs.output_items.list(doomed.id, eval_id=created.id))
    page = httpx.get(run.report_url, timeout=30)
    assert page.status_code == 200 and f'data-eval-id="{created.id}"' in page.text


def test_a_jsonl_run_grades_the_samples_a_file_brings(stack, created, tmp_path):
    client = stack.client()
    lines = [
        {"item": QUESTIONS[0], "sample": {"output_text": "paris"}},
        {"item": QUESTIONS[1], "sample": {"output_text": "Milan"}},
    ]
    path = tmp_path / "samples.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    uploaded = client.files.create(file=path.open("rb"), purpose="evals")
    exact_only = client.evals.create(data_source_config=CONFIG, testing_criteria=[EXACT])
    run = client.evals.runs.create(
        exact_only.id,
        data_source={"type": "jsonl", "source": {"type": "file_id", "id": uploaded.id}},
    )
    run = wait_run(client, exact_only.id, run.id)
    assert run.status == "completed", run.error
    assert (run.result_counts.passed, run.result_counts.failed) == (1, 1)
    assert [r.model_dump() for r in run.per_testing_criteria_results] == [
        {"testing_criteria": "exact", "passed": 1, "failed": 1}
    ]
    runs = client.evals.runs.list(exact_only.id)
    assert [r.id for r in runs] == [run.id]
    renamed = client.evals.update(exact_only.id, name="renamed", metadata={"v": "2"})
    assert renamed.name == "renamed" and renamed.metadata == {"v": "2"}
    assert exact_only.id in {e.id for e in client.evals.list(limit=100)}

    other = stack.client(stack.other_key)  # another organization sees none of it
    with pytest.raises(openai.NotFoundError):
        other.evals.retrieve(exact_only.id)
    with pytest.raises(openai.NotFoundError):
        other.evals.runs.retrieve(run.id, eval_id=exact_only.id)
    assert exact_only.id not in {e.id for e in other.evals.list(limit=100)}

    assert client.evals.runs.delete(run.id, eval_id=exact_only.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.evals.runs.retrieve(run.id, eval_id=exact_only.id)
    assert client.evals.delete(exact_only.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.evals.retrieve(exact_only.id)


def _refused(call, param: str, status=openai.BadRequestError) -> str:
    with pytest.raises(status) as exc:
        call()
    assert exc.value.body["param"] == param, exc.value.body
    return exc.value.body["message"]


def test_bad_evals_and_runs_are_400s_naming_the_field(stack, created):
    client = stack.client()
    missing = {**EXACT, "reference": "{{item.capital}}"}
    message = _refused(
        lambda: client.evals.create(data_source_config=CONFIG, testing_criteria=[missing]),
        "testing_criteria[0]",
    )
    assert "item.capital" in message
    huge = {**EXACT, "input": "x" * 100_001}  # a template over the graders' limit
    _refused(
        lambda: client.evals.create(data_source_config=CONFIG, testing_criteria=[huge]),
        "testing_criteria[0]",
    )
    _refused(
        lambda: client.evals.create(data_source_config=CONFIG, testing_criteria=[EXACT] * 33),
        "testing_criteria",
    )
    similar = {"type": "text_similarity", "name": "s", "input": "{{sample.output_text}}",
               "reference": "{{item.answer}}", "evaluation_metric": "bleu"}  # fmt: skip
    _refused(
        lambda: client.evals.create(data_source_config=CONFIG, testing_criteria=[similar]),
        "testing_criteria[0].pass_threshold",
    )
    _refused(
        lambda: client.evals.create(data_source_config={"type": "logs"}, testing_criteria=[EXACT]),
        "data_source_config.type",
    )
    _refused(
        lambda: client.evals.create(
            data_source_config=CONFIG, testing_criteria=[{**JUDGE, "model": "no-such-model"}]
        ),
        "testing_criteria[0].model",
        openai.NotFoundError,
    )
    bad_template = completions_source(QUESTIONS)
    bad_template["input_messages"] = {
        "type": "template",
        "template": [{"role": "user", "content": "{{item.country}}"}],
    }
    _refused(
        lambda: client.evals.runs.create(created.id, data_source=bad_template),
        "data_source.input_messages.template[0].content",
    )
    short_row = completions_source([QUESTIONS[0], {"question": "Capital of Peru?"}])
    message = _refused(
        lambda: client.evals.runs.create(created.id, data_source=short_row),
        "data_source.source.content[1]",
    )
    assert "row 1" in message
    effort = completions_source(QUESTIONS)
    effort["sampling_params"] = {"reasoning_effort": "high"}
    _refused(
        lambda: client.evals.runs.create(created.id, data_source=effort),
        "data_source.sampling_params.reasoning_effort",
    )
