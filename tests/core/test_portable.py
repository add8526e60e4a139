"""Downloaded weights name their base by hub id, registry name or the bundled `base/` folder,
never a server path, and the default download of an adapter on the builtin base loads with
peft's three lines, off the server and with no model hub."""

from __future__ import annotations

import io
import json
import textwrap
import warnings
import zipfile
from pathlib import Path

import pytest

from core.bundles import download_zip
from core.errors import InvalidRequest
from core.exports import artifact_zip, model_zip
from core.model_store import StoredModel
from core.settings import BaseModelSource, Settings
from core.storage.base import put_dir
from core.storage.local import LocalStorage

PREFIX = "orgs/o/models/j/artifact"


@pytest.fixture(scope="module")
def lora_artifact(tmp_path_factory, tiny_model) -> Path:
    import torch

    from core.adapters import load_for_training, save_artifact
    from core.jobspec.job import AdapterSpec

    spec = AdapterSpec(type="lora", r=4, alpha=8, dropout=0.0)
    model, tokenizer = load_for_training(tiny_model, spec)
    with torch.no_grad():  # a non-zero update, so the adapter changes the output
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.05)
    out = tmp_path_factory.mktemp("artifact")
    save_artifact(model, tokenizer, spec, out)
    return out


def _setup(tmp_path: Path, model_cache: Path, artifact: Path, **base_models):
    models = {"tiny-llama": BaseModelSource(source="builtin"), **base_models}
    settings = Settings(
        data_dir=tmp_path / "data", model_cache_dir=model_cache, base_models=models, device="cpu"
    )
    storage = LocalStorage(tmp_path / "store")
    put_dir(storage, PREFIX, artifact)
    return settings, storage


def _unzip(chunks, dest: Path) -> Path:
    zipfile.ZipFile(io.BytesIO(b"".join(chunks))).extractall(dest)
    return dest


def test_adapter_config_names_the_builtin_base_by_registry_name(
    tmp_path, model_cache, lora_artifact
):
    settings, storage = _setup(tmp_path, model_cache, lora_artifact)
    stored = json.loads((lora_artifact / "adapter_config.json").read_text())
    assert stored["base_model_name_or_path"].startswith("/")  # what peft wrote on the server
    out = _unzip(
        artifact_zip(settings, storage, StoredModel("ft:x", "tiny-llama", PREFIX)), tmp_path / "dl"
    )
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny-llama"
    assert {**config, "base_model_name_or_path": None} == {
        **stored,
        "base_model_name_or_path": None,
    }
    manifest = json.loads((out / "lathe_adapter.json").read_text())
    assert manifest["base"] == {
        "name": "tiny-llama", "source": "builtin", "download": "/v1/models/tiny-llama/content"
    }  # fmt: skip
    assert manifest["adapter_type"] == "lora"  # the rest as stored
    assert (out / "adapter_model.safetensors").read_bytes() == (
        lora_artifact / "adapter_model.safetensors"
    ).read_bytes()
    # The stored artifact is untouched: the server still loads it from its own paths.
    assert json.loads(b"".join(storage.iter_bytes(f"{PREFIX}/adapter_config.json"))) == stored


def test_a_hub_base_is_named_by_hub_id_and_revision(tmp_path, model_cache, lora_artifact):
    hub = BaseModelSource(source="hub", hub_id="acme/llama-7b", revision="abc123", license="llama2")
    settings, storage = _setup(tmp_path, model_cache, lora_artifact, llama=hub)
    out = _unzip(
        artifact_zip(settings, storage, StoredModel("ft:y", "llama", PREFIX)), tmp_path / "dl"
    )
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "acme/llama-7b"
    assert config["revision"] == "abc123"
    assert json.loads((out / "lathe_adapter.json").read_text())["base"] == {
        "name": "llama", "source": "hub", "hub_id": "acme/llama-7b", "revision": "abc123",
        "license": "llama2", "download": None,
    }  # fmt: skip
    with pytest.raises(InvalidRequest, match="get it from the hub: acme/llama-7b") as exc:
        model_zip(settings, storage, StoredModel("llama", "llama"))
    assert (exc.value.param, exc.value.code) == ("model", "model_not_downloadable")


def _readme_peft_snippet() -> str:
    """The docs' local-load example (docs/guides/results.md), exactly as written there."""
    readme = (Path(__file__).resolve().parents[2] / "docs" / "guides" / "results.md").read_text()
    start = readme.index("```python\n  from peft import AutoPeftModelForCausalLM")
    block = readme[start + len("```python\n") : readme.index("  ```\n", start)]
    return textwrap.dedent(block)


def test_the_default_download_loads_as_downloaded_with_no_hub(
    tmp_path, model_cache, lora_artifact, monkeypatch, capsys
):
    """The docs' lines, run inside the unzipped default download, with the hub offline: the
    builtin base comes in the zip (base/), so nothing is looked up anywhere."""
    import huggingface_hub.constants
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    settings, storage = _setup(tmp_path, model_cache, lora_artifact)
    stored = StoredModel("ft:tiny-llama:o::j", "tiny-llama", PREFIX)
    work = _unzip(download_zip(settings, storage, stored), tmp_path / "elsewhere" / "ft")
    config = json.loads((work / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "base"
    assert "from inside this folder" in (work / "README.md").read_text()
    assert json.loads((work / "lathe_adapter.json").read_text())["base"]["path"] == "base"
    monkeypatch.chdir(work)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # peft: no unknown keys in its config
        exec(_readme_peft_snippet(), namespace)  # loads, then generates and prints
    printed = capsys.readouterr().out
    model = namespace["model"].eval()
    assert isinstance(model, PeftModel) and type(model).__name__ == "PeftModelForCausalLM"

    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(model_cache / "tiny-llama"), lora_artifact
    ).eval()
    ids = torch.tensor([[1, 5, 9, 13]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)
        base_only = AutoModelForCausalLM.from_pretrained("base").eval()(ids).logits
        assert not torch.equal(base_only, reference(ids).logits)  # the adapter did something
        # What the README's lines printed is the adapter's greedy answer, as the server has it.
        tokenizer = namespace["tokenizer"]
        answer = reference.generate(**namespace["inputs"], max_new_tokens=8)[0]
    assert printed == tokenizer.decode(answer, skip_special_tokens=True) + "\n"
    assert "What is the capital of France?" in printed


def test_an_adapter_whose_base_is_not_handed_out_says_how_to_load_it(
    tmp_path, model_cache, lora_artifact
):
    """No base in the zip: its README names the base and the two ways to load it."""
    hub = BaseModelSource(source="hub", hub_id="acme/llama-7b", revision="abc123")
    mine = BaseModelSource(source="path", path=str(model_cache / "tiny-llama"))
    settings, storage = _setup(tmp_path, model_cache, lora_artifact, llama=hub, mine=mine)
    for base, named, says in [
        ("llama", "acme/llama-7b", "peft fetches it from the hub"),
        ("mine", "mine", "does not hand out mine's weights"),
    ]:
        out = _unzip(
            download_zip(settings, storage, StoredModel(f"ft:{base}:o::j", base, PREFIX)),
            tmp_path / base,
        )
        assert not (out / "base").exists()
        config = json.loads((out / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == named
        readme = (out / "README.md").read_text()
        assert says in readme and "PeftModel.from_pretrained(" in readme


def test_path_bases_are_downloadable_only_when_allowed(tmp_path, model_cache, lora_artifact):
    path = str(model_cache / "tiny-llama")
    settings, storage = _setup(
        tmp_path, model_cache, lora_artifact,
        mine=BaseModelSource(source="path", path=path),
        shared=BaseModelSource(source="path", path=path, downloadable=True, license="mit"),
    )  # fmt: skip
    with pytest.raises(InvalidRequest, match="does not hand out"):
        model_zip(settings, storage, StoredModel("mine", "mine"))
    names = zipfile.ZipFile(
        io.BytesIO(b"".join(model_zip(settings, storage, StoredModel("shared", "shared"))))
    ).namelist()
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(names)
