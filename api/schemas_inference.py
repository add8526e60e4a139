"""The generation endpoints' shared wire shapes, now in core.inference.wire.sampling (the
Batch API's worker validates batch lines with them too); imported from here as before."""

from core.inference.wire.sampling import (  # noqa: F401
    IGNORABLE,
    SEED_MAX,
    SEED_MIN,
    SamplingRequest,
    StreamOptions,
    Usage,
)
