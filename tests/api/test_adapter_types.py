"""Every adapter type as a job, end to end through the API and the worker: submitted with the
openai client, trained on the builtin tiny Llama, its artifact loads back (peft adapter or full
model), it serves chat completions that are the artifact's own greedy answer, and it has learned
the capitals: its loss is clearly below the untuned base's.

The builtin tiny Llama is random-init, so adapters that leave every weight frozen and only steer
activations (IA3, soft prompts) cannot memorise four answers the way LoRA or full fine-tuning
do; their bar is lower, but each is far below the base's loss. Settings were chosen on the CPU.
"""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import pytest

from tests.utils.flows import CAPITALS, capitals_jsonl, wait_job

pytestmark = pytest.mark.slow

# adapter block, hyperparameters, bar: tuned loss < bar * base loss
CASES: dict[str, tuple[dict, dict, float]] = {
    "lora": ({"r": 16, "alpha": 32}, {"n_epochs": 20, "learning_rate": 3e-3}, 0.1),
    "qlora": ({"r": 16, "alpha": 32}, {"n_epochs": 30, "learning_rate": 3e-3}, 0.2),
    "full": ({}, {"n_epochs": 20, "learning_rate": 1e-3}, 0.1),
    "ia3": ({}, {"n_epochs": 30, "learning_rate": 1.0}, 0.5),
    # Soft prompts train one example per row: batch 1 gives four steps per epoch.
    "prompt_tuning": (
        {"num_virtual_tokens": 20},
        {"n_epochs": 30, "learning_rate": 0.3, "batch_size": 1},
        0.8,
    ),
    "prefix_tuning": (
        {"num_virtual_tokens": 8},
        {"n_epochs": 30, "learning_rate": 0.3, "batch_size": 1},
        0.2,
    ),
}
QUESTION = "What is the capital of {}?"


@pytest.fixture(scope="module")
def jobs(stack, tmp_path_factory):
    """All six jobs are submitted at once; the one worker runs them in turn."""
    client = stack.client()
    path = capitals_jsonl(tmp_path_factory.mktemp("adapters") / "capitals.jsonl")
    file = client.files.create(file=path.open("rb"), purpose="fine-tune")
    submitted = {}
    for adapter_type, (adapter, hp, _) in CASES.items():
        job = client.fine_tuning.jobs.create(
            model="tiny-llama",
            training_file=file.id,
            validation_file=file.id,
            suffix=adapter_type.replace("_", "-"),
            seed=7,
            extra_body={
                "adapter": {"type": adapter_type, "dropout": 0.0, **adapter},
                "method": {
                    "type": "supervised",
                    "supervised": {
                        "hyperparameters": {
                            "batch_size": 4,
                            **hp,
                            "checkpoint_interval": 1000,
                        }
                    },
                },
            },
        )
        submitted[adapter_type] = (job.id, time.monotonic())
    return submitted


def _download_artifact(stack, job, dest: Path) -> set[str]:
    s3 = boto3.client(
        "s3", endpoint_url=stack.env["LATHE_S3_ENDPOINT_URL"], region_name="us-east-1"
    )
    bucket = stack.env["LATHE_STORAGE_URL"].split("/")[2]
    prefix = f"lathe/orgs/{job.organization_id}/models/{job.id}/artifact/"
    names = {
        o["Key"][len(prefix) :]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    }
    for name in names:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, prefix + name, str(dest / name))
    return names


def _examples(tokenizer):
    from core.data.examples import Conversation, Message
    from core.training.tokenize import tokenize_example

    return [
        tokenize_example(
            tokenizer,
            Conversation((Message("user", QUESTION.format(country)), Message("assistant", city))),
            512,
        )
        for country, city in CAPITALS
    ]


def _mean_loss(model, examples) -> float:
    import torch

    with torch.no_grad():
        losses = [
            model(
                input_ids=torch.tensor([t.input_ids]), labels=torch.tensor([t.labels])
            ).loss.item()
            for t in examples
        ]
    return sum(losses) / len(losses)


def _greedy(model, tokenizer, question: str, max_tokens: int) -> str:
    """Greedy decoding with a full forward pass per token: no KV cache, no `generate()`, so it
    is what the weights say, whatever generation does with soft prompts."""
    import torch

    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_tokens):
            token = int(model(input_ids=ids).logits[0, -1].argmax())
            if token == tokenizer.eos_token_id:
                break
            new.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return tokenizer.decode(new, skip_special_tokens=True)


@pytest.mark.parametrize("adapter_type", list(CASES))
def test_adapter_type_trains_loads_back_and_serves(adapter_type, stack, jobs, tmp_path, tiny_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    client = stack.client()
    job_id, submitted_at = jobs[adapter_type]
    job, _ = wait_job(client, job_id, timeout=600)
    assert job.status == "succeeded", (job.error, stack.worker.tail())
    elapsed = time.monotonic() - submitted_at
    assert job.adapter["type"] == adapter_type
    assert client.models.retrieve(job.fine_tuned_model).adapter_type == adapter_type

    names = _download_artifact(stack, job, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    examples = _examples(tokenizer)
    base_loss = _mean_loss(base, examples)
    if adapter_type == "full":
        assert "model.safetensors" in names and "adapter_config.json" not in names
        tuned = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    else:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= names
        assert "model.safetensors" not in names  # only the adapter's weights ship
        tuned = PeftModel.from_pretrained(base, tmp_path).eval()
    tuned_loss = _mean_loss(tuned, examples)
    print(
        f"\n{adapter_type}: base loss {base_loss:.3f} → tuned {tuned_loss:.3f} "
        f"(job done {elapsed:.0f}s after submission)"
    )
    assert tuned_loss < CASES[adapter_type][2] * base_loss, (base_loss, tuned_loss)
    # The job's own before/after evaluation (on the validation file, averaged per token or per
    # batch rather than per example) tells the client the same.
    evaluation = job.evaluation
    assert evaluation["base"]["valid_loss"] == pytest.approx(base_loss, rel=0.1)
    assert evaluation["tuned"]["valid_loss"] < CASES[adapter_type][2] * base_loss

    for country, _ in CAPITALS[:2]:
        question = QUESTION.format(country)
        reply = client.chat.completions.create(
            model=job.fine_tuned_model,
            temperature=0,
            max_tokens=6,
            messages=[{"role": "user", "content": question}],
        )
        assert reply.choices[0].message.content == _greedy(tuned, tokenizer, question, 6)
