"""The one error this package raises on purpose for 'valid spec, wrong place to run it'."""


class AdapterUnsupported(Exception):
    """The adapter method cannot run on this hardware or model.

    Raised instead of silently falling back (e.g. QLoRA quietly training in full precision
    would blow the memory budget the client chose QLoRA for). The message says what is
    missing so the job fails with a reason a client can act on.
    """
