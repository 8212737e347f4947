"""The forms a secret can take in bytes someone might read: `secret_forms(value)`.

A leak check that looks only for the secret as written misses it base64'd in a
header, percent-encoded in a URL, `\\u`-escaped in JSON or UTF-16 in a blob.
These are the 11 encodings the hardening attack run scanned answers and
bundles for (base64 in each of its three alignments, as the secret inside a
longer encoded string shows up).
"""

from __future__ import annotations

import base64

__all__ = ["secret_forms", "find_secret"]


def _b64_cores(raw: bytes, alphabet) -> list[bytes]:
    """Base64 of `raw` at each offset within a longer string, without the edge characters that
    depend on the neighbours."""
    cores = []
    for pad in range(3):
        encoded = alphabet(b"\0" * pad + raw)
        skip = (pad * 4 + 2) // 3  # characters touched by the padding bytes before
        cores.append(encoded[skip:-4] if len(encoded) > skip + 8 else encoded)
    return cores


def secret_forms(value: str) -> list[bytes]:
    raw = value.encode()
    forms = [
        raw,                                                       # 1 as written
        raw.hex().encode(),                                        # 2 hex
        raw.hex().upper().encode(),                                # 3 HEX
        *_b64_cores(raw, base64.b64encode),                        # 4-6 base64, three alignments
        *_b64_cores(raw, base64.urlsafe_b64encode),                # 7-9 base64url, three alignments
        "".join(f"%{b:02X}" for b in raw).encode(),                # 10 every byte percent-encoded
        "".join(f"\\u{b:04x}" for b in raw).encode(),              # 11 JSON \u escapes
        value.encode("utf-16-le"),                                 # 12 UTF-16
    ]
    return list(dict.fromkeys(forms))  # (base64 and base64url agree for most keys)


def find_secret(data: bytes, value: str) -> bytes | None:
    """The first form of `value` found in `data`, or None."""
    for form in secret_forms(value):
        if form in data:
            return form
    return None
