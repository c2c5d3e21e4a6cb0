"""Client tokens: which client id an update may carry, signed by the aggregator's operator.

With `--client-secret FILE`, an update must carry `"token": "CLIENT.EXPIRES.SIGNATURE"`: the client
id it sends under, the expiry (Unix seconds) and the unpadded URL-safe base64 of
HMAC-SHA256(secret, "CLIENT.EXPIRES"). Anyone may read a token; only the holder of the secret can
make one, so a page cannot send as another client, nor under a new name per update to get past
"one update per client per round". Issue tokens with `issue` (or `edgecloud federated token`)
from the operator's own login: `pseudonym(secret, login)` gives a login one stable client id that
does not reveal it.

Python's hmac, not a JWT library: the aggregator both issues and checks, with one algorithm and
no header to negotiate (no `alg` to confuse), so the format is three fields and a constant-time
compare (`hmac.compare_digest`). Stdlib only: every package may import this one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from pathlib import Path

CLIENT_PATTERN = re.compile(r"[A-Za-z0-9_\-]{8,128}")
MIN_SECRET_BYTES = 32


class TokenError(ValueError):
    """A token the aggregator does not take: a stable code and one line naming why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def read_secret(path: str | Path) -> bytes:
    """The secret in FILE (surrounding whitespace dropped); ValueError naming the problem."""
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as error:
        raise ValueError(f"cannot read the client secret {path}: {error.strerror or error}") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the client secret in {path} has {len(secret)} bytes; use at least {MIN_SECRET_BYTES} random ones, "
            "e.g. `head -c 48 /dev/urandom | base64 > FILE`"
        )
    return secret


def _signature(secret: bytes, client: str, expires: int) -> str:
    digest = hmac.new(secret, f"{client}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(secret: bytes, client: str, expires: int) -> str:
    """A token letting `client` send updates until `expires` (Unix seconds)."""
    if not CLIENT_PATTERN.fullmatch(client):
        raise ValueError(f"client {client!r}: 8-128 letters, digits, '-' or '_', as the aggregator takes")
    return f"{client}.{int(expires)}.{_signature(secret, client, int(expires))}"


def pseudonym(secret: bytes, login: str) -> str:
    """A stable client id for an operator's login that does not reveal it (HMAC under the same secret)."""
    return "u-" + hmac.new(secret, f"client:{login}".encode(), hashlib.sha256).hexdigest()[:32]


class TokenVerifier:
    """Checks that a token was signed with the secret, is not expired, and names the update's client."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret, self._clock = secret, clock

    def verify(self, token: object, client: str) -> None:
        """Return if `token` lets `client` send now; TokenError otherwise."""
        if token is None:
            raise TokenError("token-required", 'this aggregator takes updates only with a client token ("token": ...)')
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3 or not parts[1].isdigit():
            raise TokenError("bad-token", "the token is not CLIENT.EXPIRES.SIGNATURE")
        holder, expires, signature = parts[0], int(parts[1]), parts[2]
        if not hmac.compare_digest(signature.encode(), _signature(self._secret, holder, expires).encode()):
            raise TokenError("bad-token", "the token's signature does not match: it was not issued by this aggregator")
        if expires <= self._clock():
            raise TokenError("token-expired", f"the token expired at {expires} (Unix time); ask for a new one")
        if holder != client:
            raise TokenError("token-client", f"the token was issued to client {holder!r}, not {client!r}")
