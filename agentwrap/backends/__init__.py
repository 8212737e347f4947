"""Upstream targets behind one seam (`base.Backend.send`): `http` (h11 client,
pooled), `scripted` (turns from a file), `replay` (a recorded run).

`http.py` does socket I/O; `scripted.py` and `replay.py` are pure (request in,
bytes out) and answer with in-memory responses, so the same turns serve the
in-process scripted backend and the tests' loopback upstream.
"""
