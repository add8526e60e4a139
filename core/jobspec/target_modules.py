"""`adapter.target_modules` checked against the base model's own modules, read from its
safetensors headers (no torch, so the API can check at job creation).

A name no module has used to be accepted and the job then failed in the worker with peft's
exception text; now it is a 400 (or, where the weights are only on the worker, a job failure)
naming `adapter.target_modules` and the linear modules that do exist.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from core.jobspec.recipe import SpecError

HEADS = {"lm_head", "embed_out", "classifier", "score", "embed_tokens", "wte", "wpe"}
"""Output heads and embeddings: never offered as targets."""

PARAM = "adapter.target_modules"


def weight_shapes(model_dir: Path) -> dict[str, list[int]] | None:
    """Tensor name → shape of every safetensors file in `model_dir` (headers only); None when
    the weights are in another format (nothing is checked then)."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        return None
    shapes: dict[str, list[int]] = {}
    for path in files:
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        shapes.update({k: v["shape"] for k, v in header.items() if k != "__metadata__"})
    return shapes


def linear_names(shapes: dict[str, list[int]]) -> tuple[set[str], list[str]]:
    """(every module holding a weight, the leaf names of the 2-D ones but heads)."""
    modules = {name.rsplit(".", 1)[0] for name in shapes}
    leaves = {
        name.rsplit(".", 2)[-2]
        for name, shape in shapes.items()
        if name.endswith(".weight") and len(shape) == 2 and name.count(".") >= 1
    }
    return modules, sorted(leaves - HEADS)


def check_target_modules(targets: list[str] | str, model_dir: Path, param: str = PARAM) -> None:
    """SpecError naming `param` and the existing linear modules when a target matches no
    module (peft's rule: the module's full name is the target or ends with '.' + it)."""
    if isinstance(targets, str):  # "auto" / "all-linear": resolved against the model later
        return
    shapes = weight_shapes(model_dir)
    if shapes is None:
        return
    modules, leaves = linear_names(shapes)
    missing = [t for t in targets if not any(m == t or m.endswith("." + t) for m in modules)]
    if missing:
        raise SpecError(
            f"target_modules {missing} match no module of the base model; its linear "
            f"modules are {leaves}",
            param=param,
        )
