"""Upstream targets: `http` (h11 client, pooled), `scripted` (turns from a file).

`http.py` does socket I/O; `scripted.py` is pure (request in, bytes out) so the
same turns serve the in-process scripted backend and the tests' loopback upstream.
"""
