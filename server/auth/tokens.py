"""`--auth jwt`: bearer JWTs verified with PyJWT, against one of three key sources.

The accepted algorithms follow from the key, never from the token's header: an HS256
secret accepts HS256 only, an RSA key RS256, an EC key the ES algorithm of its curve, an
Ed25519/Ed448 key EdDSA. So `alg: none` and HS/RS confusion (an HS256 token "signed" with
the RSA public key as its secret) are refused by construction, and PyJWT refuses them too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ..settings import Settings
from . import errors
from .principal import Principal, principal_from_claims

LEEWAY = 30.0  # seconds of clock skew between the token's issuer and spigot
JWKS_TIMEOUT = 5.0
JWKS_COOLDOWN = 30.0  # the least time between two refetches for unknown kids
_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_REASONS: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token is for another audience"),
    (jwt.InvalidIssuerError, "the token is from another issuer"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim (exp, sub)"),
    (jwt.InvalidAlgorithmError, "the token's algorithm is not accepted"),
    (jwt.InvalidSignatureError, "the token's signature does not match"),
    (jwt.DecodeError, "the token is malformed"),
]


def algorithms_for(key: object) -> list[str]:
    """The one algorithm family a public key can verify."""
    if isinstance(key, rsa.RSAPublicKey):
        return ["RS256", "RS384", "RS512"]
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _CURVES:
        return [_CURVES[key.curve.name]]
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return ["EdDSA"]
    raise ValueError("the key is not an RSA, EC (P-256/384/521) or Ed25519/Ed448 public key")


def load_public_key(path: str) -> tuple[Any, list[str]]:
    try:
        key = load_pem_public_key(Path(path).read_bytes())
        return key, algorithms_for(key)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def reason(exc: jwt.InvalidTokenError) -> str:
    for kind, why in _REASONS:
        if isinstance(exc, kind):
            return why
    return "the token is not valid"


class JwtVerifier:
    def __init__(self, settings: Settings) -> None:
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        self._algorithms: list[str] = []
        if settings.jwt_key is not None:
            self._key, self._algorithms = settings.jwt_key, ["HS256"]
        elif settings.jwt_public_key is not None:
            self._key, self._algorithms = load_public_key(settings.jwt_public_key)
        elif settings.jwt_jwks_url is not None:
            # Keys are cached for five minutes; a token naming an unknown kid refetches
            # (rotation), at most once per cooldown, so random kids cannot flood the IdP.
            self._jwks = jwt.PyJWKClient(
                settings.jwt_jwks_url,
                cache_keys=True,
                lifespan=300,
                timeout=JWKS_TIMEOUT,
                cooldown_duration=JWKS_COOLDOWN,
            )
        else:  # Settings.check() makes this unreachable
            raise ValueError("--auth jwt needs a key")

    async def _key_for(self, token: str) -> tuple[Any, list[str]]:
        if self._jwks is None:
            return self._key, self._algorithms
        try:
            # PyJWKClient fetches with urllib, which blocks: a worker thread does it.
            async with asyncio.timeout(JWKS_TIMEOUT * 2):
                found = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except (jwt.PyJWKClientConnectionError, TimeoutError):
            raise errors.unavailable("the JWKS endpoint did not answer") from None
        except (jwt.PyJWKClientError, jwt.PyJWKError, jwt.DecodeError):
            raise errors.invalid_token("the token's key is not in the JWKS") from None
        if found.key_type == "oct":  # a shared secret has no business in a public JWKS
            raise errors.invalid_token("the token's key is not in the JWKS")
        return found.key, [found.algorithm_name]

    async def verify(self, token: str) -> Principal:
        key, algorithms = await self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.InvalidTokenError as exc:
            raise errors.invalid_token(reason(exc)) from None
        return principal_from_claims(claims)
