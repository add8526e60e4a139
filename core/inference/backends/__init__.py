"""Inference backends behind one interface: the in-process engine and vLLM servers."""
