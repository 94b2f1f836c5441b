"""callscreen: call screening for Asterisk, as a FastAGI server."""

__version__ = "0.1.0"
