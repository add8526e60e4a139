"""The job spec: what a client asks for, validated once, stored as JSON on the job row.

Field names follow OpenAI's fine-tuning API (`method.supervised.hyperparameters.n_epochs`, ...);
Lathe's additions (`adapter`, absolute `learning_rate`, ...) sit beside them. Every tunable is
`"auto"` by default and resolved by `core.training.auto` against the dataset at run time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.jobspec import bounds as mx
from core.jobspec.bounds import auto_float, auto_int, bounded_int
from core.jobspec.distill import DistillationMethod
from core.jobspec.rft import ReinforcementMethod
from core.jobspec.rlhf import (
    RLHF_BLOCKS,
    DpoMethod,
    GrpoMethod,
    PpoMethod,
    RewardModelMethod,
)

Auto = Literal["auto"]


# text_similarity metrics a job may evaluate with (core.graders.similarity computes them)
SimilarityMetric = Literal[
    "fuzzy_match",
    "bleu",
    "gleu",
    "meteor",
    "rouge_1",
    "rouge_2",
    "rouge_3",
    "rouge_4",
    "rouge_5",
    "rouge_l",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdapterSpec(_Strict):
    """How the base model's weights are adapted: a choice every method shares."""

    type: Literal["lora", "qlora", "full", "prompt_tuning", "prefix_tuning", "ia3"] = "lora"
    # Defaults that learn a small dataset: rank 8 with dropout 0.05 left the README's quick
    # start unlearned (issue 25); rank 16, alpha 2r and no dropout (PEFT's and torchtune's
    # dropout default) learned it. Dropout regularises long runs on big sets, which set it.
    r: int = Field(16, ge=1, le=1024, description="LoRA rank.")
    alpha: float = Field(
        32,
        gt=0,
        le=100_000,
        allow_inf_nan=False,
        description="LoRA scaling numerator (scale = alpha / r).",
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
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
    n_epochs: auto_int(1, mx.MAX_EPOCHS) = Field(
        "auto", description="Passes over the training data."
    )
    batch_size: auto_int(1, mx.MAX_BATCH_SIZE) = Field(
        "auto", description="Examples (packed rows when packing) per optimizer step."
    )
    learning_rate_multiplier: auto_float(0, mx.MAX_FACTOR, open_low=True) = Field(
        "auto", description="Scales the method's default learning rate (OpenAI's knob)."
    )
    learning_rate: auto_float(0, mx.MAX_LEARNING_RATE, open_low=True) = Field(
        "auto", description="Absolute learning rate; overrides the multiplier."
    )
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] | Auto = Field(
        "auto", description="Fraction of the steps over which the rate warms up from 0."
    )
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] | Auto = "auto"
    weight_decay: auto_float(0, mx.MAX_FACTOR) = "auto"
    gradient_accumulation_steps: auto_int(1, mx.MAX_BATCH_SIZE) = "auto"
    max_seq_length: auto_int(8, mx.MAX_SEQ_LENGTH) = Field(
        "auto", description="Tokens per sequence; at most the base model's context."
    )
    packing: bool | Auto = "auto"
    seed: auto_int(0, mx.MAX_SEED) = "auto"
    eval_interval: auto_int(1, mx.MAX_STEPS) = Field(
        "auto", description="Steps between validation runs; 'auto': once per epoch."
    )
    early_stopping: bounded_int(1, mx.MAX_PATIENCE) | EarlyStopping | Auto = Field(
        "auto",
        description="Stop once the validation loss has not improved for this many "
        "evaluations (or {patience, min_delta}); 'auto': off.",
    )
    gradient_checkpointing: bool | Auto = Field(
        "auto",
        description="Recompute activations in the backward pass: less memory, slower; 'auto': off.",
    )
    mixed_precision: Literal["bf16", "fp16", "no"] | Auto = Field(
        "auto",
        description="'auto': bf16 on a CUDA GPU that supports it, else no; bf16 and fp16 "
        "need a GPU (the job fails on a CPU worker rather than train differently).",
    )
    checkpoint_interval: bounded_int(1, mx.MAX_STEPS) | Literal["epoch"] | Auto = Field(
        "auto",
        description="Steps between checkpoints, or 'epoch'; 'auto': every epoch. "
        "The latest few are kept (LATHE_MAX_CHECKPOINTS).",
    )
    evaluation_metrics: list[SimilarityMetric] = Field(
        default_factory=list,
        description="Lathe: text-similarity metrics (e.g. rouge_l, bleu) "
        "of greedy generations on validation examples, for the base and the tuned model.",
    )


class EarlyStopping(_Strict):
    patience: int = Field(
        ge=1, le=mx.MAX_PATIENCE, description="Evaluations without improvement before stopping."
    )
    min_delta: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="Smallest validation-loss drop that counts."
    )


class SupervisedMethod(_Strict):
    hyperparameters: SupervisedHyperparameters = SupervisedHyperparameters()


class ClassificationMethod(_Strict):
    """Lathe: sequence classification of `{"text", "label"}` rows with an encoder model (e.g.
    a BERT); reports accuracy and macro-F1. The supervised knobs, less packing and generation
    metrics (one text per row; nothing is generated)."""

    hyperparameters: SupervisedHyperparameters = SupervisedHyperparameters()

    @model_validator(mode="after")
    def _no_generation_options(self) -> ClassificationMethod:
        if self.hyperparameters.packing is True or self.hyperparameters.evaluation_metrics:
            raise ValueError("packing and evaluation_metrics do not apply to classification")
        return self


class EvalMethod(_Strict):
    """Lathe: `method.type: "eval"` trains nothing: it scores `model` (a base, an `ft:` model
    or a checkpoint) and, for a fine-tuned one, its base on task files through lm-eval
    (core.evaluation.benchmarks). `training_file` is a task file (purpose 'evals'), scored
    with any `evaluation.benchmark_files`."""


class Method(_Strict):
    type: Literal[
        "supervised",
        "dpo",
        "reward_model",
        "ppo",
        "grpo",
        "classification",
        "distillation",
        "reinforcement",
        "eval",
    ] = "supervised"
    supervised: SupervisedMethod | None = None
    classification: ClassificationMethod | None = None
    eval: EvalMethod | None = Field(None, description="Type 'eval': benchmarks, no training.")
    dpo: DpoMethod | None = None
    reward_model: RewardModelMethod | None = None
    ppo: PpoMethod | None = Field(None, description="Required for type 'ppo': its reward.")
    grpo: GrpoMethod | None = Field(None, description="Required for type 'grpo': its reward.")
    reinforcement: ReinforcementMethod | None = Field(
        None, description="OpenAI's RFT, run on GRPO (core.jobspec.rft): its grader."
    )
    distillation: DistillationMethod | None = Field(
        None, description="Required for type 'distillation': its teacher and mode."
    )

    @model_validator(mode="after")
    def _fill_block(self) -> Method:
        others = [n for n in METHOD_BLOCKS if n != self.type and getattr(self, n) is not None]
        if others:  # refused, not silently ignored
            raise ValueError(f"method.{others[0]} does not apply to method.type '{self.type}'")
        if getattr(self, self.type) is None:
            if self.type == "distillation":
                raise ValueError("method.distillation is required: it names the teacher")
            if self.type in ("ppo", "grpo", "reinforcement"):
                raise ValueError(
                    f"method.{self.type} is required: it names the reward "
                    f"(a 'grader' or a 'reward_model')"
                )
            setattr(
                self,
                self.type,
                {
                    "supervised": SupervisedMethod,
                    "classification": ClassificationMethod,
                    "eval": EvalMethod,
                    **RLHF_BLOCKS,
                }[self.type](),
            )
        return self


METHOD_BLOCKS = tuple(n for n in Method.model_fields if n != "type")
"""Each method type's own block, named as the type."""


class DataOptions(_Strict):
    """Lathe: how the training file is cleaned and split before training, for every method.
    Each change to the data is reported as a job event (see core.data.prepare)."""

    validation_split: Annotated[float, Field(ge=0, lt=1)] | Auto = Field(
        "auto",
        description="Fraction of the training examples held out (seeded) for "
        "validation when there is no validation_file; 'auto': 10%, at most 200, none under 20 "
        "examples; 0: none.",
    )
    test_split: Annotated[float, Field(ge=0, le=0.5)] = Field(
        0,
        description="Fraction of the training examples held out (seeded by the job seed, "
        "before the validation split) as a test set: never trained or validated on, it "
        "scores the starting and the tuned model once at the end (supervised and "
        "classification jobs); 0: none.",
    )
    dedupe: bool = Field(False, description="Remove exact duplicate examples (keep the first).")
    reweight_groups: bool | None = Field(
        None,
        description="Classification: resample the training rows so that their `group` and "
        "label are independent (reweighing), up-weighting under-represented groups; "
        "null/false: off.",
    )
    drop_empty: bool = Field(
        False,
        description="Drop rows with empty content or no trained turn instead of failing "
        "the job (a file rejected at upload only for such rows may then be used).",
    )


class ResourcesSpec(_Strict):
    """Lathe: the devices one job trains on (core.runs.launch). On a CPU worker started with
    `lathe worker --gpus N`, N means N training processes (gloo backend), for testing."""

    gpus: bounded_int(1, mx.MAX_GPUS) | Auto = Field(
        1,
        description="Devices the job trains on at once, one process each (torch.distributed); "
        "'auto': all the worker has. A job goes to the queue of workers of that size.",
    )
    nodes: bounded_int(1, mx.MAX_NODES) = Field(
        1,
        description="Hosts the job spans. Above 1 the job runs on the Ray cluster the "
        "deployment is configured with (LATHE_RAY_ADDRESS) as a Ray Train gang of "
        "nodes × gpus_per_node ranks, one placement-group bundle per rank spread over the "
        "nodes; it is refused (400) where no Ray cluster is configured.",
    )
    gpus_per_node: bounded_int(1, mx.MAX_GPUS) | None = Field(
        None,
        description="With nodes above 1: devices (ranks) on each host; default 1. On a CPU "
        "cluster a rank takes one CPU (gloo backend). Use `gpus` for one host.",
    )


class DistributedSpec(_Strict):
    """Lathe: how a job spread over several devices splits its work (core.training.distributed)."""

    strategy: Literal["ddp", "fsdp", "zero3"] | Auto = Field(
        "auto",
        description="ddp: each device holds the whole model, gradients are averaged; fsdp: "
        "parameters, gradients and optimizer state are sharded (FSDP2; full fine-tuning "
        "only); zero3: DeepSpeed ZeRO-3, where DeepSpeed is installed. 'auto': ddp for "
        "adapters and small models, fsdp for full fine-tuning of models of at least "
        "LATHE_FSDP_MIN_PARAMS parameters.",
    )


class SelectBest(_Strict):
    """`evaluation.select_best`: which benchmark score picks the weights the job publishes."""

    task: str = Field(
        description="One of evaluation.benchmark_files (a task file id), or the eval_id of "
        "one of evaluation.evals."
    )
    metric: str = Field(
        description="A metric of that task's kind: acc or acc_norm (multiple choice), "
        "exact_match, or word_perplexity, byte_perplexity, bits_per_byte (perplexity); "
        "pass_rate for an eval (the share of its rows that passed every testing criterion)."
    )
    mode: Literal["max", "min"] = Field("max", description="Whether higher or lower is better.")


class JobEval(_Strict):
    """One of `evaluation.evals`: an eval (the Evals API's) run on the job's weights."""

    eval_id: str = Field(max_length=64, description="An eval of the organization's.")
    data_source: dict[str, Any] = Field(
        description="A completions data source without `model` (source, input_messages, "
        "sampling_params): each candidate's weights answer it."
    )

    @field_validator("data_source", mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return mx.check_json_depth(value)


class EvaluationOptions(_Strict):
    """Lathe: evaluation beyond the job's own validation split (core.evaluation)."""

    forgetting_check: bool | Auto = Field(
        "auto",
        description="Score a general set on the starting and the tuned model after training "
        "(methods that produce a causal LM) and report the change as the job's `forgetting`; "
        "'auto': on, except for random-init builtin bases without a general_file.",
    )
    general_file: str | None = Field(
        None,
        description="A fine-tune file (chat, prompt/completion or text) the forgetting check "
        "scores; default Lathe's built-in general set.",
    )
    forgetting_threshold: Annotated[float, Field(gt=0, le=100)] = Field(
        0.5,
        description="The rise in general loss (nats per token) above which the job warns "
        "that the tuned model forgot what the base knew.",
    )
    benchmark_files: list[str] | None = Field(
        None,
        max_length=8,
        description="Task files (purpose 'evals': multiple choice, exact match or perplexity "
        "rows) that lm-eval scores on the starting and the tuned model after training "
        "(methods that produce a causal LM); the job reports them as `benchmarks`.",
    )
    benchmark_checkpoints: bool = Field(
        False,
        description="With benchmark_files: also score every checkpoint the job still keeps "
        "(the latest LATHE_MAX_CHECKPOINTS), reported as `benchmarks.checkpoints`.",
    )
    evals: list[JobEval] | None = Field(
        None,
        max_length=4,
        description="Evals run after training on the final weights and, with "
        "benchmark_checkpoints, on every kept checkpoint: each an eval run (listed under its "
        "eval), its pass rate reported in `benchmarks` and selectable by select_best.",
    )
    select_best: SelectBest | None = Field(
        None,
        description="With benchmark_checkpoints: the job's fine_tuned_model gets the weights "
        "that score best on this task and metric, among the final model and the kept "
        "checkpoints (a checkpoint's weights replace the final ones before publishing).",
    )


class Integration(BaseModel):
    type: str
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return mx.check_json_depth(value)


class JobCreate(_Strict):
    """Body of `POST /v1/fine_tuning/jobs`. A field it does not know is refused (400 naming
    it), not ignored: a misspelt `validaton_file` would otherwise train without validation."""

    model: str = Field(
        description="A base model name from /v1/models, an ft: model to continue, or a job id: "
        "the model that job produces (this job waits for it, see depends_on)."
    )
    training_file: str
    validation_file: str | None = None
    suffix: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")] | None = None
    seed: bounded_int(0, mx.MAX_SEED) | None = None
    metadata: mx.metadata() | None = None
    hyperparameters: SupervisedHyperparameters | None = Field(
        None, description="Deprecated by OpenAI in favour of method; still honoured."
    )
    method: Method = Method()
    adapter: AdapterSpec = AdapterSpec()
    data: DataOptions = DataOptions()
    evaluation: EvaluationOptions = EvaluationOptions()
    integrations: list[Integration] | None = None
    resources: ResourcesSpec = ResourcesSpec()
    distributed: DistributedSpec = DistributedSpec()

    def integrations_json(self) -> list[dict[str, Any]] | None:
        """The `integrations` entries as given (core.integrations.spec checks them)."""
        return [i.model_dump(mode="json") for i in self.integrations or []] or None

    def resolved_method(self) -> Method:
        """Fold the legacy top-level `hyperparameters` into `method`, as OpenAI does."""
        if self.hyperparameters is not None and self.method.type == "supervised":
            return Method(
                type="supervised", supervised=SupervisedMethod(hyperparameters=self.hyperparameters)
            )
        return self.method
