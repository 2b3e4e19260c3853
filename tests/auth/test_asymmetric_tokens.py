"""RS256 and EdDSA key pairs from settings; algorithm confusion is refused."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from catalog.auth.tokens import InvalidToken, TokenService
from tests.conftest import make_settings


def _pems(private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> tuple[str, str]:
    private = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
def test_key_pair_tokens_round_trip_and_refuse_confusion(algorithm: str) -> None:
    import uuid

    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    private, public = _pems(key)
    settings = make_settings(
        jwt_algorithm=algorithm, jwt_private_key=private, jwt_public_key=public
    )
    tokens = TokenService(settings)
    user_id = uuid.uuid4()
    token, _ = tokens.issue(user_id, "seller", None)
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    decoded = tokens.decode(token)
    assert decoded.user_id == user_id
    assert decoded.role == "seller"
    # HS256 signed with the public key (the classic confusion attack) is refused.
    payload = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(payload, "not-the-key-" + public[:20], algorithm="HS256")
    with pytest.raises(InvalidToken):
        tokens.decode(forged)
    unsigned = jwt.encode(payload, None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        tokens.decode(unsigned)


def test_key_pair_settings_require_both_keys() -> None:
    with pytest.raises(ValueError, match="JWT_PRIVATE_KEY"):
        make_settings(jwt_algorithm="RS256")
