from __future__ import annotations

from core.inference.cache import ModelCache
from core.inference.engine import _cut, _stop_aware


def test_lru_evicts_unpinned_least_recent():
    cache, loads = ModelCache(2), []

    def loader(name):
        return lambda: loads.append(name) or name

    cache.get_or_load("base", loader("base"), pin=True)
    cache.get_or_load("a", loader("a"))
    cache.get_or_load("b", loader("b"))  # over capacity: "a" goes, the pinned base stays
    assert "base" in cache and "b" in cache and "a" not in cache
    cache.get_or_load("b", loader("b"))
    assert loads == ["base", "a", "b"]


def test_stop_sequences_are_cut_and_never_streamed():
    assert _cut("Paris<end>more", ["<end>"]) == "Paris"
    pieces = ["Pa", "ri", "s<e", "nd>", "more"]
    assert "".join(_stop_aware(iter(pieces), ["<end>"])) == "Paris"
    assert "".join(_stop_aware(iter(pieces), None)) == "Paris<end>more"
