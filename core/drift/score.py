"""Comparing recent traffic with the training reference.

* Lengths: mean / p50 / p90 / max of characters (and words) of prompts and completions, on
  both sides, with scipy's two-sample Kolmogorov-Smirnov test on prompt lengths.
* Token distribution: the Jensen-Shannon distance (base 2, in [0, 1]) between the word
  frequencies of traffic and training prompts, and the share of traffic words never seen in
  the training prompts.
* Embeddings (the drift score): both sides' prompts are embedded with the configured encoder
  (mean-pooled last hidden states); the reference embeddings are centred and projected on
  their top principal components (fitted on the reference alone, so traffic cannot shape the
  projection), and each component is compared with `scipy.stats.ks_2samp`. The score is the
  largest KS statistic (0: same distribution, 1: disjoint); the p-value is the smallest one
  times the number of components (Bonferroni), and `drifted` is p < 0.05. This is the
  univariate-KS-on-reduced-dimensions detector of Rabanser et al., "Failing Loudly" (2019).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

ALPHA = 0.05
COMPONENTS = 8
_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distribution(values: list[int | float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, dtype=float)
    return {
        "mean": round(float(a.mean()), 2),
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "max": float(a.max()),
    }


def ks(a: list[float], b: list[float]) -> dict[str, float] | None:
    from scipy.stats import ks_2samp

    if len(a) < 2 or len(b) < 2:
        return None
    result = ks_2samp(a, b)
    return {"statistic": round(float(result.statistic), 4), "p_value": float(result.pvalue)}


def token_distribution(traffic: list[str], reference: list[str]) -> dict[str, float]:
    """How far the traffic's word frequencies are from the training prompts'."""
    from scipy.spatial.distance import jensenshannon

    seen, new = (
        Counter(w for t in reference for w in words(t)),
        Counter(w for t in traffic for w in words(t)),
    )
    vocab = sorted(seen.keys() | new.keys())
    if not vocab or not new or not seen:
        return {"js_distance": 0.0, "unseen_word_rate": 0.0}
    p = np.array([seen[w] for w in vocab], dtype=float)
    q = np.array([new[w] for w in vocab], dtype=float)
    unseen = sum(c for w, c in new.items() if w not in seen) / sum(new.values())
    return {
        "js_distance": round(float(jensenshannon(p, q, base=2)), 4),
        "unseen_word_rate": round(unseen, 4),
    }


def embedding_drift(reference: np.ndarray, traffic: np.ndarray) -> dict[str, Any]:
    """KS per principal component of the reference; see the module docstring."""
    from scipy.stats import ks_2samp

    mean = reference.mean(axis=0)
    _, _, vt = np.linalg.svd(reference - mean, full_matrices=False)
    k = max(1, min(COMPONENTS, len(reference) - 1, vt.shape[0]))
    ref, new = (reference - mean) @ vt[:k].T, (traffic - mean) @ vt[:k].T
    tests = [ks_2samp(ref[:, i], new[:, i]) for i in range(k)]
    p_value = min(1.0, min(float(t.pvalue) for t in tests) * k)
    return {
        "score": round(max(float(t.statistic) for t in tests), 4),
        "p_value": p_value,
        "drifted": p_value < ALPHA,
        "method": "ks_2samp_pca_bonferroni",
        "components": k,
    }
