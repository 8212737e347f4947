"""agentwrap: run a coding agent behind a private, short-lived proxy."""

__version__ = "0.1.0"
