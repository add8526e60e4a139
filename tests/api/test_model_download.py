"""`GET /v1/models/{model}/content`: a fine-tuned model's weights, as stored or merged, run
outside Lathe with plain peft / transformers and compared with what the API serves."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import boto3
import httpx
import pytest

from tests.utils.flows import (
    LEARN_ADAPTER,
    LEARN_HYPERPARAMETERS,
    capitals_jsonl,
    wait_job,
)
from tests.utils.stack import base_models

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def trained(stack, tmp_path_factory):
    client = stack.client()
    tmp = tmp_path_factory.mktemp("download")
    f = client.files.create(
        file=capitals_jsonl(tmp / "train.jsonl").open("rb"), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=f.id,
        suffix="dl",
        seed=7,
        extra_body={
            "adapter": LEARN_ADAPTER,
            "method": {
                "type": "supervised",
                "supervised": {
                    "hyperparameters": {**LEARN_HYPERPARAMETERS, "checkpoint_interval": 20}
                },
            },
        },
    )
    done, _ = wait_job(client, job.id)
    assert done.status == "succeeded", (done.error, stack.worker.tail())
    return done


def download(stack, model: str, key: str | None = None, **params) -> httpx.Response:
    return httpx.get(
        f"{stack.url}/models/{model}/content",
        params=params,
        headers={"Authorization": f"Bearer {key or stack.key}"},
        timeout=300,
    )


def unzip(response: httpx.Response, dest: Path) -> Path:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(response.content)).extractall(dest)
    return dest


def s3_objects(stack, prefix: str) -> dict[str, object]:
    """Key → LastModified of the stored objects under `prefix` (keys without the store's own
    `lathe/` prefix)."""
    s3 = boto3.client(
        "s3", endpoint_url=stack.env["LATHE_S3_ENDPOINT_URL"], region_name="us-east-1"
    )
    bucket = stack.env["LATHE_STORAGE_URL"].split("/")[2]
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"lathe/{prefix}")
    return {o["Key"][len("lathe/") :]: o["LastModified"] for o in listing.get("Contents", [])}


def s3_keys(stack, prefix: str) -> list[str]:
    return sorted(s3_objects(stack, prefix))


def chat_ids(tokenizer):
    import torch

    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], add_generation_prompt=True, return_dict=False
    )
    return torch.tensor([ids])


def test_adapter_download_runs_in_peft_like_the_api(stack, trained, tmp_path, tiny_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    response = download(stack, trained.fine_tuned_model)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="ft_tiny-llama_acme_dl_{trained.id[-8:]}.zip"'
    )
    out = unzip(response, tmp_path)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    prefix = f"orgs/{trained.organization_id}/models/{trained.id}/artifact/"
    stored = {k.split(prefix, 1)[1] for k in s3_keys(stack, prefix)}
    # as stored, with the builtin base it loads onto offline (README.md: ours, not peft's card)
    assert {n for n in names if not n.startswith("base/")} == stored
    assert {"adapter_config.json", "adapter_model.safetensors", "lathe_adapter.json"} <= names
    assert "base/config.json" in names
    assert "tokenizer_config.json" in names

    tokenizer = AutoTokenizer.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    model = PeftModel.from_pretrained(base, out).eval()
    prompt = chat_ids(tokenizer)
    with torch.no_grad():
        generated = model.generate(input_ids=prompt, max_new_tokens=8, do_sample=False)
    text = tokenizer.decode(generated[0, prompt.shape[1] :], skip_special_tokens=True)
    reply = stack.client().chat.completions.create(
        model=trained.fine_tuned_model,
        temperature=0,
        max_tokens=8,
        messages=[{"role": "user", "content": QUESTION}],
    )
    assert text.strip() == reply.choices[0].message.content == "Paris"


LOAD_OFFLINE = (
    f"QUESTION = {QUESTION!r}\n"
    + """
import torch
from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer

model = AutoPeftModelForCausalLM.from_pretrained(".").eval()
tokenizer = AutoTokenizer.from_pretrained(".")
ids = tokenizer.apply_chat_template(
    [{"role": "user", "content": QUESTION}], add_generation_prompt=True, return_dict=False
)
prompt = torch.tensor([ids])
with torch.no_grad():
    out = model.generate(input_ids=prompt, max_new_tokens=8, do_sample=False)
print(tokenizer.decode(out[0, prompt.shape[1]:], skip_special_tokens=True).strip())
"""
)


def test_default_download_loads_offline_with_auto_peft(stack, trained, tmp_path):
    """The default download of an adapter on the builtin base (adapter + base under base/)
    loads with AutoPeftModelForCausalLM with no model hub (its README says: from inside the
    folder) and answers as the API does; `format=bundle` asks for the same files."""
    import os
    import subprocess
    import sys

    bundle = download(stack, trained.fine_tuned_model, format="bundle")
    assert bundle.headers["content-disposition"].endswith('-bundle.zip"')
    response = download(stack, trained.fine_tuned_model)
    assert zipfile.ZipFile(io.BytesIO(response.content)).namelist() == (
        zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
    )
    out = unzip(response, tmp_path / "bundle")
    assert (out / "base" / "config.json").exists() and "from inside" in (
        out / "README.md"
    ).read_text()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }
    run = subprocess.run(
        [sys.executable, "-c", LOAD_OFFLINE],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "Paris"
    assert download(stack, "tiny-llama", format="bundle").status_code == 400  # a base: no adapter


def test_checkpoint_downloads_its_own_adapter(stack, trained, tmp_path):
    from safetensors.torch import load_file

    ckpt = f"{trained.fine_tuned_model}:ckpt-step-20"
    early = unzip(download(stack, ckpt), tmp_path / "early")
    final = unzip(download(stack, trained.fine_tuned_model), tmp_path / "final")
    assert (early / "adapter_config.json").exists()
    a = load_file(early / "adapter_model.safetensors")
    b = load_file(final / "adapter_model.safetensors")
    assert a.keys() == b.keys() and any(not a[k].equal(b[k]) for k in a)


def test_merged_download_matches_base_plus_adapter_and_is_cached(
    stack, trained, tmp_path, tiny_model
):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = f"orgs/{trained.organization_id}/models/{trained.id}/merged/"
    assert s3_keys(stack, cache) == []
    response = download(stack, trained.fine_tuned_model, format="merged")
    assert response.headers["content-disposition"].endswith(f'{trained.id[-8:]}-merged.zip"')
    out = unzip(response, tmp_path / "merged")
    assert not (out / "adapter_config.json").exists() and (out / "config.json").exists()
    cached = s3_keys(stack, cache)
    assert any(k.endswith("/model.safetensors") for k in cached)
    assert any(k.endswith("/lathe_adapter.json") for k in cached)

    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    prompt = chat_ids(AutoTokenizer.from_pretrained(out))
    adapter_dir = unzip(download(stack, trained.fine_tuned_model), tmp_path / "adapter")
    with torch.no_grad():
        base_logits = base(prompt).logits  # before peft injects the adapter into `base`
        expected = PeftModel.from_pretrained(base, adapter_dir).eval()(prompt).logits
        got = merged(prompt).logits
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert not torch.allclose(got, base_logits, atol=1e-2)  # the adapter is really in there

    # A second download streams the cached copy: nothing in storage is written again.
    before = s3_objects(stack, cache)
    time.sleep(1.1)  # S3 LastModified has one-second resolution
    again = download(stack, trained.fine_tuned_model, format="merged")
    assert again.status_code == 200
    assert s3_objects(stack, cache) == before
    first = zipfile.ZipFile(io.BytesIO(response.content))
    second = zipfile.ZipFile(io.BytesIO(again.content))
    assert {i.filename: i.CRC for i in first.infolist()} == {
        i.filename: i.CRC for i in second.infolist()
    }


def test_other_org_unknown_and_base_models_are_refused(stack, trained):
    other = download(stack, trained.fine_tuned_model, key=stack.other_key)
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "model_not_found"
    assert download(stack, "ft:tiny-llama:acme:dl:nosuchid").status_code == 404
    assert download(stack, f"{trained.fine_tuned_model}:ckpt-step-999").status_code == 404
    # The builtin base is Lathe's own and downloadable; a path base only where allowed.
    base = download(stack, "tiny-llama")
    assert base.status_code == 200, base.text
    assert "config.json" in zipfile.ZipFile(io.BytesIO(base.content)).namelist()
    if "minilm" in base_models():
        refused = download(stack, "minilm")
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "model"
        assert refused.json()["error"]["code"] == "model_not_downloadable"
    bad = download(stack, trained.fine_tuned_model, format="gguf")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "format"
    # The plain retrieve route still answers for ids with ':' next to the /content route.
    assert stack.client().models.retrieve(trained.fine_tuned_model).id == (trained.fine_tuned_model)


def test_deleting_the_model_deletes_its_merged_copy(stack, trained):
    """Runs last among the stack tests: it deletes the model the others download."""
    cache = f"orgs/{trained.organization_id}/models/{trained.id}/merged/"
    assert s3_keys(stack, cache)  # left by the merged-download test
    assert stack.client().models.delete(trained.fine_tuned_model).deleted
    assert s3_keys(stack, cache) == []
    assert download(stack, trained.fine_tuned_model).status_code == 404


# In process (local storage, no stack): the two export cases that need no trained job.


def _stored(tmp_path, model_cache, artifact: Path):
    from core.model_store import StoredModel
    from core.settings import Settings
    from core.storage.base import put_dir
    from core.storage.local import LocalStorage

    settings = Settings(data_dir=tmp_path / "data", model_cache_dir=model_cache, device="cpu")
    storage = LocalStorage(tmp_path / "store")
    put_dir(storage, "orgs/o/models/j/artifact", artifact)
    return (
        settings,
        storage,
        StoredModel("ft:tiny-llama:o::j", "tiny-llama", "orgs/o/models/j/artifact"),
    )


def test_soft_prompts_cannot_be_merged(tmp_path, model_cache, tiny_model):
    from core.adapters import load_for_training, save_artifact
    from core.errors import InvalidRequest
    from core.exports import merged_zip
    from core.jobspec.job import AdapterSpec

    spec = AdapterSpec(type="prompt_tuning", num_virtual_tokens=4)
    model, tokenizer = load_for_training(tiny_model, spec)
    save_artifact(model, tokenizer, spec, tmp_path / "artifact")
    settings, storage, stored = _stored(tmp_path, model_cache, tmp_path / "artifact")
    with pytest.raises(InvalidRequest, match="prompt_tuning adapters cannot be merged") as exc:
        merged_zip(settings, storage, stored)
    assert exc.value.param == "format"
    assert storage.list_keys("orgs/o/models/j/merged") == []


def test_full_models_come_back_as_stored_when_merged(tmp_path, model_cache):
    from core.exports import artifact_zip, merged_zip

    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (tmp_path / "artifact" / "model.safetensors").write_bytes(b"weights" * 1000)
    settings, storage, stored = _stored(tmp_path, model_cache, tmp_path / "artifact")
    merged = zipfile.ZipFile(io.BytesIO(b"".join(merged_zip(settings, storage, stored))))
    plain = zipfile.ZipFile(io.BytesIO(b"".join(artifact_zip(settings, storage, stored))))
    assert (
        sorted(merged.namelist())
        == sorted(plain.namelist())
        == [
            "config.json",
            "model.safetensors",
        ]
    )
    assert merged.read("model.safetensors") == b"weights" * 1000
    assert storage.list_keys("orgs/o/models/j/merged") == []
