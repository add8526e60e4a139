"""Text-similarity metrics of OpenAI's `text_similarity` grader, each scaled to [0, 1].

`meteor` is nltk's METEOR (Banerjee & Lavie 2005): exact, Porter-stem and WordNet-synonym
matches. WordNet's data is a separate download that Lathe cannot ship (no maintained wheel
carries it), so the synonym stage runs only where the operator has installed nltk's `wordnet`
corpus (`python -m nltk.downloader wordnet`); without it METEOR matches exact words and stems,
and never downloads anything at run time. `cosine` needs an embedding model: it lives in
core.graders.embedding, not here, because it loads one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import cache

MAX_SIMILARITY_INPUT = 20_000
"""Characters of each text a metric compares (the rest is cut): the metrics are linear or
close to it, and this keeps each well under the grading row budget."""
MAX_LCS_INPUT = 2_000
"""The same for rouge_l, whose longest common subsequence is quadratic (pure Python): 2,000
characters take ~0.2 s, 10,000 took 5 s."""


def fuzzy_match(hypothesis: str, reference: str) -> float:
    """rapidfuzz WRatio with default preprocessing, as in OpenAI's grader examples."""
    from rapidfuzz import fuzz, utils

    return fuzz.WRatio(hypothesis, reference, processor=utils.default_process) / 100.0


def bleu(hypothesis: str, reference: str) -> float:
    """sacrebleu sentence BLEU (exp-smoothed, 13a tokenizer) / 100."""
    import sacrebleu

    return sacrebleu.sentence_bleu(hypothesis, [reference]).score / 100.0


def _ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def gleu(hypothesis: str, reference: str, max_n: int = 4) -> float:
    """Google-BLEU (Wu et al. 2016, https://arxiv.org/abs/1609.08144): min(precision, recall)
    over all 1..4-gram matches; unlike BLEU it is well defined for a single sentence."""
    hyp, ref = hypothesis.split(), reference.split()
    matches = hyp_total = ref_total = 0
    for n in range(1, max_n + 1):
        h, r = _ngrams(hyp, n), _ngrams(ref, n)
        matches += sum((h & r).values())
        hyp_total += sum(h.values())
        ref_total += sum(r.values())
    if hyp_total == 0 or ref_total == 0:
        return 0.0
    return min(matches / hyp_total, matches / ref_total)


class _NoSynonyms:
    """Stands in for nltk's WordNet reader when its corpus is not installed: no synonyms."""

    def synsets(self, word: str) -> list:
        return []


@cache
def _wordnet():
    """nltk's WordNet if its corpus is installed locally, else no synonym stage."""
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        return _NoSynonyms()
    from nltk.corpus import wordnet

    return wordnet


def meteor(hypothesis: str, reference: str) -> float:
    """nltk METEOR on whitespace tokens, lower-cased (nltk's default preprocessing)."""
    from nltk.translate.meteor_score import single_meteor_score

    hyp, ref = hypothesis.split(), reference.split()
    if not hyp or not ref:
        return 1.0 if hyp == ref else 0.0
    return float(single_meteor_score(ref, hyp, wordnet=_wordnet()))


@cache
def _rouge_scorer(rouge_type: str):  # rouge_score ships no type hints
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([rouge_type], use_stemmer=False)


def rouge(rouge_type: str) -> Callable[[str, str], float]:
    """ROUGE F-measure (rouge-score): rouge1..rouge5 n-gram overlap, rougeL longest common
    subsequence."""

    def score(hypothesis: str, reference: str) -> float:
        result = _rouge_scorer(rouge_type).score(reference, hypothesis)
        return float(result[rouge_type].fmeasure)

    return score


METRICS: dict[str, Callable[[str, str], float]] = {
    "fuzzy_match": fuzzy_match,
    "bleu": bleu,
    "gleu": gleu,
    "meteor": meteor,
    **{f"rouge_{n}": rouge(f"rouge{n}") for n in range(1, 6)},
    "rouge_l": rouge("rougeL"),
}


def similarity(metric: str, hypothesis: str, reference: str) -> float:
    """Score `hypothesis` against `reference` (each cut to the metric's input cap), clamped
    to [0, 1]."""
    cap = MAX_LCS_INPUT if metric == "rouge_l" else MAX_SIMILARITY_INPUT
    return min(1.0, max(0.0, METRICS[metric](hypothesis[:cap], reference[:cap])))
