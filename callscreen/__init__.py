"""callscreen: call screening for Asterisk, as a FastAGI server."""

__version__ = "0.1.0"


def compiled() -> bool:
    """True when the call path runs as C extensions built by mypyc (setup.py: an installed
    wheel with a C compiler at build time), False for the interpreted modules (an editable
    checkout, or a build without a compiler). Both behave the same; the compiled one costs
    less CPU per call."""
    from . import screening

    return not (screening.__file__ or "").endswith(".py")
