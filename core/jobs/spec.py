"""The job spec: what a client asks for, validated once, stored as JSON on the job row.

Field names follow OpenAI's fine-tuning API (`method.supervised.hyperparameters.n_epochs`, ...);
Lathe's additions (`adapter`, absolute `learning_rate`, ...) sit beside them. Every tunable is
`"auto"` by default and resolved by `core.training.auto` against the dataset at run time.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Auto = Literal["auto"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdapterSpec(_Strict):
    """How the base model's weights are adapted: a choice every method shares."""

    type: Literal["lora", "qlora", "full", "prompt_tuning", "prefix_tuning", "ia3"] = "lora"
    r: int = Field(8, ge=1, le=1024, description="LoRA rank.")
    alpha: float = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["auto", "all-linear"] = Field(
        "auto", description="Module names to adapt; 'auto' picks the attention and MLP projections."
    )
    num_virtual_tokens: int = Field(
        20, ge=1, le=512, description="Prompt/prefix tuning: soft-prompt length."
    )
    prompt_tuning_init_text: str | None = Field(
        None, description="Prompt tuning: initialise the soft prompt from this text."
    )


class SupervisedHyperparameters(_Strict):
    n_epochs: int | Auto = Field("auto", description="Passes over the training data.")
    batch_size: int | Auto = Field("auto", description="Examples per optimizer step.")
    learning_rate_multiplier: float | Auto = Field(
        "auto", description="Scales the method's default learning rate (OpenAI's knob)."
    )
    learning_rate: float | Auto = Field(
        "auto", description="Absolute learning rate; overrides the multiplier."
    )
    warmup_ratio: float | Auto = "auto"
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] | Auto = "auto"
    weight_decay: float | Auto = "auto"
    gradient_accumulation_steps: int | Auto = "auto"
    max_seq_length: int | Auto = "auto"
    packing: bool | Auto = "auto"
    seed: int | Auto = "auto"


class SupervisedMethod(_Strict):
    hyperparameters: SupervisedHyperparameters = SupervisedHyperparameters()


class Method(_Strict):
    type: Literal["supervised"] = "supervised"
    supervised: SupervisedMethod | None = None

    @model_validator(mode="after")
    def _fill_block(self) -> Method:
        if getattr(self, self.type) is None:
            setattr(self, self.type, SupervisedMethod())
        return self


class Integration(BaseModel):
    type: str
    model_config = ConfigDict(extra="allow")


class JobCreate(BaseModel):
    """Body of `POST /v1/fine_tuning/jobs`."""

    model: str = Field(description="A base model name from /v1/models, or an ft: model to continue.")
    training_file: str
    validation_file: str | None = None
    suffix: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")] | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None
    hyperparameters: SupervisedHyperparameters | None = Field(
        None, description="Deprecated by OpenAI in favour of method; still honoured."
    )
    method: Method = Method()
    adapter: AdapterSpec = AdapterSpec()
    integrations: list[Integration] | None = None

    def resolved_method(self) -> Method:
        """Fold the legacy top-level `hyperparameters` into `method`, as OpenAI does."""
        if self.hyperparameters is not None and self.method.type == "supervised":
            return Method(
                type="supervised", supervised=SupervisedMethod(hyperparameters=self.hyperparameters)
            )
        return self.method
