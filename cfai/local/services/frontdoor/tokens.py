"""Binding tokens: how the emulator knows a binding call came from workerd, for which Worker,
which binding type and (for Vectorize) which index.

workerd's `external` service for each binding injects one header, `BINDING_HEADER`, whose
value is ``v1.<scope>.<mac>``: the scope (worker, binding type, index) as base64url JSON and
an HMAC-SHA256 over it with a per-run key (`BindingKey`) that only the emulator and the
workerd config writer hold. The emulator takes the scope from a token that verifies and
from nowhere else, so:

- a Worker cannot name another index: the index is inside the MAC, written from the
  platform's config when the workerd config was rendered;
- a Worker with only an ``ai`` binding gets only an ``ai`` token (its ``env.AI.fetch`` can
  reach the emulator, but a ``vectorize`` or REST route refuses that token);
- a process or web page without the token is refused.

workerd *replaces* a header of the same name that the Worker set (``HeaderInjector::apply``
calls ``setPtr``; ``injectRequestHeaders`` in ``src/workerd/server/workerd.capnp``: "Any
existing header with the same name is removed"). The front door does not rely on it: a
request with more than one such header is refused, so a Worker-set header can only break
its own call, never choose a scope.

Why an HMAC and not a registered random token per binding: the emulator stays stateless
about bindings. A workerd started later (``cfai dev`` reloads, versions) carries tokens
minted from the same key without telling the emulator anything, and a token cannot outlive
the run: every emulator start writes a new key.

Example::

    key = BindingKey.generate()
    token = key.mint(BindingScope("vectorize", "qa", "acme-docs"))
    assert key.verify(token) == BindingScope("vectorize", "qa", "acme-docs")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BINDING_HEADER", "KEY_FILE", "BindingKey", "BindingScope"]

BINDING_HEADER = "cf-cfai-binding"
# In the emulator's state directory, mode 600: written by the emulator at start, read by
# the workerd config writer.
KEY_FILE = "binding.key"
_VERSION = "v1"
# Verified tokens a key remembers (`BindingKey.verify`): one a binding of each Worker
# version, far fewer than this.
_REMEMBERED = 4096


@dataclass(frozen=True)
class BindingScope:
    """What one binding of one Worker may do: its `type` (``ai``, ``vectorize``), the `worker`
    key, and for Vectorize the physical `index` name."""

    type: str
    worker: str
    index: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class BindingKey:
    """The per-run HMAC key binding tokens are minted and verified with."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("a binding key has at least 32 bytes")
        self._secret = secret
        # Tokens that verified, and their scopes: a Worker sends the same token on every
        # call, and only tokens minted with this key get in (one a binding), so the MAC and
        # the JSON are worked out once per token, not once per call.
        self._verified: dict[str, BindingScope] = {}

    @classmethod
    def generate(cls) -> BindingKey:
        return cls(secrets.token_bytes(32))

    @classmethod
    def write_new(cls, state_dir: Path) -> BindingKey:
        """A fresh key, written to ``state_dir/KEY_FILE`` with mode 600 (replacing any older
        one atomically, so a reader never sees half a key)."""
        key = cls.generate()
        tmp = state_dir / f".{KEY_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key._secret.hex())
        os.replace(tmp, state_dir / KEY_FILE)
        return key

    @classmethod
    def read(cls, state_dir: Path) -> BindingKey:
        """The key the running emulator wrote; FileNotFoundError when it has not started."""
        return cls(bytes.fromhex((state_dir / KEY_FILE).read_text().strip()))

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._secret, f"{_VERSION}.{payload}".encode(), hashlib.sha256)
        return _b64(digest.digest())

    def mint(self, scope: BindingScope) -> str:
        """The header value that grants `scope`."""
        doc = {"type": scope.type, "worker": scope.worker, "index": scope.index}
        payload = _b64(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
        return f"{_VERSION}.{payload}.{self._mac(payload)}"

    def verify(self, token: str) -> BindingScope | None:
        """The scope `token` grants, or None when it was not minted with this key."""
        known = self._verified.get(token)
        if known is not None:
            return known
        scope = self._check(token)
        if scope is not None and len(self._verified) < _REMEMBERED:
            self._verified[token] = scope
        return scope

    def _check(self, token: str) -> BindingScope | None:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            return None
        payload, mac = parts[1], parts[2]
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            doc = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(doc, dict):
            return None
        kind, worker, index = doc.get("type"), doc.get("worker"), doc.get("index")
        if not isinstance(kind, str) or not isinstance(worker, str):
            return None
        if index is not None and not isinstance(index, str):
            return None
        return BindingScope(kind, worker, index)
