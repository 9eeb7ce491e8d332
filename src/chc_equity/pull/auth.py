"""SMART Backend Services authorization: a signed JWT client assertion exchanged for an access token.

Why this shape: the EHR registers our public key (JWKS) once; each token request carries a short-lived
JWT signed with the private key (RS384 or ES384, the two the SMART spec requires servers to support),
so no shared secret ever travels. Tokens are cached until shortly before ``expires_in`` and fetched
again on expiry or when the server answers 401.

Credentials come from a JSON file (``--credentials FILE`` or ``$CHC_EQUITY_PULL_CREDENTIALS`` naming
one) or from the JSON itself in ``$CHC_EQUITY_PULL_CREDENTIALS_JSON`` (for secret stores that inject
environment variables). Keys::

    {"client_id": "...", "private_key": <JWK object or PEM string>, "kid": "...",
     "alg": "RS384" | "ES384", "token_url": "... (optional: discovered)", "scope": "system/*.read"}

The private key and tokens never reach a log or an exception message: ``Credentials`` and
``TokenSource`` have redacting reprs, and errors quote only the server's OAuth error code and text.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

CREDENTIALS_ENV = "CHC_EQUITY_PULL_CREDENTIALS"
CREDENTIALS_JSON_ENV = "CHC_EQUITY_PULL_CREDENTIALS_JSON"
ALGORITHMS = ("RS384", "ES384")
DEFAULT_SCOPE = "system/*.read"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Client assertions live 5 minutes (the SMART spec's maximum); tokens are renewed this early.
ASSERTION_LIFETIME_S = 300
REFRESH_MARGIN_S = 30


class AuthError(Exception):
    """Authorization failed; the message names the step and the server's OAuth error, never a secret."""


@dataclass(frozen=True)
class Credentials:
    client_id: str
    private_key: Any = field(repr=False)  # PEM str or JWK dict; never printed
    kid: str
    alg: str = "RS384"
    token_url: str | None = None
    scope: str = DEFAULT_SCOPE

    def __post_init__(self) -> None:
        if self.alg not in ALGORITHMS:
            raise AuthError(f"credentials: alg must be one of {', '.join(ALGORITHMS)}, got {self.alg!r}")
        if not self.client_id or not self.kid:
            raise AuthError("credentials: client_id and kid are required")

    def signing_key(self) -> Any:
        """The private key in the form PyJWT signs with (JWK dicts are converted)."""
        key = self.private_key
        if isinstance(key, dict):
            return jwt.PyJWK(key, algorithm=self.alg).key
        return key


def parse_credentials(data: dict[str, Any], origin: str) -> Credentials:
    """Credentials from their JSON object; ``origin`` (a file name or env var) names them in errors."""
    missing = [k for k in ("client_id", "private_key") if not data.get(k)]
    if missing:
        raise AuthError(f"{origin}: missing {', '.join(missing)}")
    key = data["private_key"]
    kid = data.get("kid") or (key.get("kid") if isinstance(key, dict) else None)
    alg = data.get("alg") or (key.get("alg") if isinstance(key, dict) else None) or "RS384"
    try:
        return Credentials(
            client_id=str(data["client_id"]),
            private_key=key,
            kid=str(kid or ""),
            alg=str(alg),
            token_url=data.get("token_url") or None,
            scope=str(data.get("scope") or DEFAULT_SCOPE),
        )
    except AuthError as exc:
        raise AuthError(f"{origin}: {exc}") from None


def load_credentials(path: str | os.PathLike[str] | None = None) -> Credentials | None:
    """Credentials from ``path``, else the environment, else None (the server needs no authorization)."""
    if path is None and os.environ.get(CREDENTIALS_JSON_ENV):
        try:
            return parse_credentials(json.loads(os.environ[CREDENTIALS_JSON_ENV]), f"${CREDENTIALS_JSON_ENV}")
        except json.JSONDecodeError:
            raise AuthError(f"${CREDENTIALS_JSON_ENV} is not valid JSON") from None
    if path is None:
        path = os.environ.get(CREDENTIALS_ENV) or None
    if path is None:
        return None
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise AuthError(f"credentials file not found: {file}") from None
    except json.JSONDecodeError as exc:
        raise AuthError(f"{file}: not valid JSON (line {exc.lineno})") from None
    return parse_credentials(data, str(file))


def client_assertion(creds: Credentials, token_url: str, now: float) -> str:
    """The signed JWT that authenticates us at ``token_url`` (SMART Backend Services, section 'JWT')."""
    claims = {
        "iss": creds.client_id,
        "sub": creds.client_id,
        "aud": token_url,
        "exp": int(now) + ASSERTION_LIFETIME_S,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, creds.signing_key(), algorithm=creds.alg, headers={"kid": creds.kid})


class TokenSource:
    """Hands out a valid bearer token, fetching a new one when the cached one is about to expire."""

    def __init__(
        self,
        creds: Credentials,
        client: httpx.Client,
        fhir_base: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._creds = creds
        self._client = client
        self._base = fhir_base.rstrip("/")
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetched = 0  # how many tokens were obtained (tests and the status output read it)

    def __repr__(self) -> str:
        return f"TokenSource(client_id={self._creds.client_id!r}, token=<redacted>)"

    def token_url(self) -> str:
        """The configured token URL, else the one in the server's .well-known/smart-configuration."""
        if self._creds.token_url:
            return self._creds.token_url
        url = f"{self._base}/.well-known/smart-configuration"
        try:
            response = self._client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            endpoint = response.json().get("token_endpoint")
        except (httpx.HTTPError, ValueError) as exc:
            raise AuthError(f"cannot discover the token endpoint at {url}: {type(exc).__name__}") from None
        if not endpoint:
            raise AuthError(f"{url} names no token_endpoint; set token_url in the credentials")
        return str(endpoint)

    def header(self) -> dict[str, str]:
        """``Authorization`` header with a token valid for at least REFRESH_MARGIN_S more seconds."""
        if self._token is None or self._clock() >= self._expires_at - REFRESH_MARGIN_S:
            self._fetch()
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        """Forget the token (the server answered 401): the next ``header()`` fetches a new one."""
        self._token = None

    def _fetch(self) -> None:
        url = self.token_url()
        now = self._clock()
        form = {
            "scope": self._creds.scope,
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(self._creds, url, now),
        }
        try:
            response = self._client.post(url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise AuthError(f"token request to {url} failed: {type(exc).__name__}") from None
        body = _json_or_empty(response)
        if response.status_code != 200 or "access_token" not in body:
            error = body.get("error") or f"HTTP {response.status_code}"
            detail = body.get("error_description") or ""
            raise AuthError(f"token request to {url} refused: {error} {detail}".strip())
        self._token = str(body["access_token"])
        self._expires_at = now + float(body.get("expires_in") or 300)
        self.fetched += 1


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
