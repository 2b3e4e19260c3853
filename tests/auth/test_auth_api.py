from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import jwt
import pytest
from fastapi import FastAPI
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy import select

from catalog.auth.service import Auth
from catalog.models import Role, User
from tests.auth.helpers import (
    AUTH,
    USERS,
    access_claims,
    assert_problem,
    assert_unauthorized,
    bearer,
    login,
    login_ok,
    register,
    sign,
)
from tests.conftest import ACCOUNT_PASSWORD, TEST_SECRET, Account, make_account, make_client
from tests.factories import API

STRONG = "a-long-enough-passphrase"


async def stored_hash(app: FastAPI, email: str) -> str:
    async with app.state.sessionmaker() as session:
        user = (await session.execute(select(User).where(User.email == email))).scalar_one()
        password_hash: str = user.password_hash
        return password_hash


async def insert_user(app: FastAPI, email: str, password_hash: str) -> None:
    async with app.state.sessionmaker() as session:
        session.add(
            User(
                email=email,
                password_hash=password_hash,
                full_name="Imported",
                role=Role.buyer.value,
                is_active=True,
            )
        )
        await session.commit()


class TestRegister:
    async def test_creates_a_buyer(self, anon: httpx.AsyncClient) -> None:
        r = await anon.post(
            f"{AUTH}/register",
            json={"email": "New.User@Example.com", "password": STRONG, "full_name": "  New  "},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["email"] == "new.user@example.com"
        assert body["full_name"] == "New"
        assert body["role"] == "buyer"
        assert body["is_active"] is True
        assert r.headers["location"] == f"{USERS}/{body['id']}"
        assert set(body) == {
            "id",
            "email",
            "full_name",
            "role",
            "is_active",
            "created_at",
            "updated_at",
        }
        assert STRONG not in r.text
        # the new account can log in
        pair = await login_ok(anon, "new.user@example.com", STRONG)
        me = await anon.get(f"{AUTH}/me", headers=bearer(pair["access_token"]))
        assert me.json()["role"] == "buyer"

    async def test_role_in_body_is_refused(self, anon: httpx.AsyncClient) -> None:
        for role in ("admin", "seller", "buyer"):
            r = await anon.post(
                f"{AUTH}/register",
                json={"email": "sneaky@example.com", "password": STRONG, "full_name": "S"}
                | {"role": role},
            )
            problem = assert_problem(r, 422)
            assert problem["errors"][0]["loc"] == ["body", "role"], role
            assert STRONG not in r.text
        assert_unauthorized(await login(anon, "sneaky@example.com", STRONG))

    async def test_email_is_unique_case_insensitively(self, anon: httpx.AsyncClient) -> None:
        await register(anon, "Alice@Example.com")
        r = await anon.post(
            f"{AUTH}/register",
            json={"email": "ALICE@example.COM", "password": STRONG, "full_name": "Other"},
        )
        problem = assert_problem(r, 409)
        assert problem["errors"][0]["loc"] == ["body", "email"]
        assert STRONG not in r.text

    async def test_weak_passwords_are_422_on_password(self, anon: httpx.AsyncClient) -> None:
        cases = [
            ("short-1", "at least"),
            ("password123", "common"),
            ("PassWord123", "common"),
            ("aaaaaaaaaaaabbbbbb", "common"),
            ("x" * 129, "at most"),
            ("pat@example.com", "email"),
            ("PAT@EXAMPLE.COM", "email"),
            ("y" * 300, "at most 256"),  # refused by the schema already
        ]
        for password, reason in cases:
            r = await anon.post(
                f"{AUTH}/register",
                json={"email": "pat@example.com", "password": password, "full_name": "Pat"},
            )
            problem = assert_problem(r, 422)
            assert problem["errors"][0]["loc"] == ["body", "password"], password
            assert reason in problem["detail"], (password, problem["detail"])
            assert password not in r.text
        # none of them created the account
        assert_unauthorized(await login(anon, "pat@example.com", "short-1"))

    async def test_invalid_email_is_422(self, anon: httpx.AsyncClient) -> None:
        r = await anon.post(
            f"{AUTH}/register",
            json={"email": "not-an-email", "password": STRONG, "full_name": "Pat"},
        )
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "email"]


class TestToken:
    async def test_returns_a_token_pair_not_cached(self, app: FastAPI) -> None:
        account = await make_account(app, Role.seller)
        async with make_client(app) as c:
            r = await login(c, account.email, account.password)
            assert r.status_code == 200, r.text
            assert r.headers["cache-control"] == "no-store"
            assert r.headers["content-type"] == "application/json"
            pair = r.json()
            assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
            assert pair["token_type"] == "bearer"
            assert pair["expires_in"] == 900
            assert pair["refresh_token"].startswith("rt_")
            assert account.password not in r.text
            me = await c.get(f"{AUTH}/me", headers=bearer(pair["access_token"]))
            assert me.status_code == 200
            assert me.json()["id"] == str(account.id)
            # the email is matched case-insensitively
            await login_ok(c, f"  {account.email.upper()} ", account.password)

    async def test_wrong_password_and_unknown_email_answer_alike(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        account = await make_account(app, Role.buyer)
        wrong = await login(anon, account.email, "not-the-password-at-all")
        unknown = await login(anon, "nobody@example.com", "not-the-password-at-all")
        assert_unauthorized(wrong)
        assert_unauthorized(unknown)
        assert wrong.json() == unknown.json()
        assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]
        assert "access_token" not in wrong.text

    async def test_json_body_instead_of_form_is_422(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        account = await make_account(app, Role.buyer)
        r = await anon.post(
            f"{AUTH}/token", json={"username": account.email, "password": account.password}
        )
        assert_problem(r, 422)
        assert account.password not in r.text


class TestAccessTokenClaims:
    async def test_claims(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        account = await make_account(app, Role.seller)
        before = int(time.time())
        pair = await login_ok(anon, account.email, account.password)
        token = pair["access_token"]
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["sub"] == str(account.id)
        assert claims["role"] == "seller"
        assert claims["iss"] == "catalog"
        assert claims["aud"] == "catalog-api"
        assert claims["typ"] == "access"
        assert len(claims["jti"]) >= 16
        assert before - 1 <= claims["iat"] <= int(time.time()) + 1
        assert claims["exp"] - claims["iat"] == pair["expires_in"]
        assert "password" not in claims
        assert "email" not in claims
        # every token is distinct
        other = await login_ok(anon, account.email, account.password)
        other_claims = jwt.decode(other["access_token"], options={"verify_signature": False})
        assert other_claims["jti"] != claims["jti"]


class TestMe:
    async def test_get(
        self, admin: Account, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        r = await client.get(f"{AUTH}/me")
        assert r.status_code == 200
        assert r.json()["id"] == str(admin.id)
        assert r.json()["email"] == admin.email
        assert r.json()["role"] == "admin"
        assert r.headers["cache-control"] == "private, no-cache"
        assert "password" not in r.text
        assert_unauthorized(await anon.get(f"{AUTH}/me"))
        assert_unauthorized(await anon.patch(f"{AUTH}/me", json={"full_name": "x"}))

    async def test_change_name(self, client: httpx.AsyncClient) -> None:
        r = await client.patch(f"{AUTH}/me", json={"full_name": "  Renamed  "})
        assert r.status_code == 200, r.text
        assert r.json()["full_name"] == "Renamed"
        assert (await client.get(f"{AUTH}/me")).json()["full_name"] == "Renamed"
        assert_problem(await client.patch(f"{AUTH}/me", json={"full_name": None}), 422)
        r = await client.patch(f"{AUTH}/me", json={"role": "buyer"})
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "role"]
        assert (await client.get(f"{AUTH}/me")).json()["role"] == "admin"

    async def test_change_password(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        account = await make_account(app, Role.buyer)
        headers = account.headers
        new = "a-brand-new-passphrase"
        r = await anon.patch(f"{AUTH}/me", json={"password": new}, headers=headers)
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "old_password"]
        r = await anon.patch(
            f"{AUTH}/me",
            json={"password": new, "old_password": "wrong-old-password"},
            headers=headers,
        )
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "old_password"]
        r = await anon.patch(
            f"{AUTH}/me",
            json={"password": "password123", "old_password": account.password},
            headers=headers,
        )
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "password"]
        assert "password123" not in r.text
        # nothing changed so far
        await login_ok(anon, account.email, account.password)

        r = await anon.patch(
            f"{AUTH}/me", json={"password": new, "old_password": account.password}, headers=headers
        )
        assert r.status_code == 200, r.text
        assert new not in r.text
        assert account.password not in r.text
        assert_unauthorized(await login(anon, account.email, account.password))
        await login_ok(anon, account.email, new)


class TestRefresh:
    async def test_rotation_and_reuse_detection(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        account = await make_account(app, Role.buyer)
        first = await login_ok(anon, account.email, account.password)
        other_session = await login_ok(anon, account.email, account.password)

        r = await anon.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        second = r.json()
        assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        first_claims = jwt.decode(first["access_token"], options={"verify_signature": False})
        second_claims = jwt.decode(second["access_token"], options={"verify_signature": False})
        assert second_claims["fam"] == first_claims["fam"]
        assert second_claims["sub"] == str(account.id)
        r = await anon.get(f"{AUTH}/me", headers=bearer(second["access_token"]))
        assert r.status_code == 200

        # The used token is refused -- and presenting it again revokes the whole family.
        assert_unauthorized(
            await anon.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
        )
        assert_unauthorized(
            await anon.post(f"{AUTH}/refresh", json={"refresh_token": second["refresh_token"]})
        )
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(second["access_token"])))
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(first["access_token"])))

        # Another login session of the same user is untouched.
        r = await anon.get(f"{AUTH}/me", headers=bearer(other_session["access_token"]))
        assert r.status_code == 200
        r = await anon.post(
            f"{AUTH}/refresh", json={"refresh_token": other_session["refresh_token"]}
        )
        assert r.status_code == 200

    async def test_invalid_refresh_tokens(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        account = await make_account(app, Role.buyer)
        for token in ["rt_" + "x" * 40, account.token]:  # unknown; an access token
            assert_unauthorized(await anon.post(f"{AUTH}/refresh", json={"refresh_token": token}))
        assert_problem(await anon.post(f"{AUTH}/refresh", json={"refresh_token": ""}), 422)


class TestLogout:
    async def test_logout_revokes_access_and_refresh(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        account = await make_account(app, Role.buyer)
        pair = await login_ok(anon, account.email, account.password)
        headers = bearer(pair["access_token"])
        r = await anon.post(
            f"{AUTH}/logout", json={"refresh_token": pair["refresh_token"]}, headers=headers
        )
        assert r.status_code == 204
        assert r.content == b""
        r = await anon.get(f"{AUTH}/me", headers=headers)
        assert_unauthorized(r)
        assert "revoked" in r.json()["detail"]
        assert_unauthorized(
            await anon.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
        )
        # other sessions of the user still work
        assert (await anon.get(f"{AUTH}/me", headers=account.headers)).status_code == 200

    async def test_logout_without_body_ends_the_session(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        account = await make_account(app, Role.buyer)
        pair = await login_ok(anon, account.email, account.password)
        r = await anon.post(f"{AUTH}/logout", headers=bearer(pair["access_token"]))
        assert r.status_code == 204
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(pair["access_token"])))
        assert_unauthorized(
            await anon.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
        )
        assert_unauthorized(await anon.post(f"{AUTH}/logout"))

    async def test_cannot_revoke_someone_elses_refresh_token(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        victim = await make_account(app, Role.buyer)
        attacker = await make_account(app, Role.buyer)
        pair = await login_ok(anon, victim.email, victim.password)
        r = await anon.post(
            f"{AUTH}/logout",
            json={"refresh_token": pair["refresh_token"]},
            headers=attacker.headers,
        )
        assert r.status_code == 204
        r = await anon.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 200


class TestTokenValidation:
    async def test_expiry(
        self,
        app: FastAPI,
        admin: Account,
        anon: httpx.AsyncClient,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The control: the hand-made claims are otherwise valid.
        token = sign(access_claims(sub=str(admin.id)))
        r = await anon.get(f"{AUTH}/me", headers=bearer(token))
        assert r.status_code == 200, r.text

        now = int(time.time())
        token = sign(access_claims(sub=str(admin.id), iat=now - 1000, nbf=now - 1000, exp=now - 60))
        r = await anon.get(f"{AUTH}/me", headers=bearer(token))
        assert_unauthorized(r)
        assert r.json()["detail"] == "Invalid or expired access token"

        # and a token of the app's own token service, issued an hour ago
        auth: Auth = app.state.auth
        real, real_ns = time.time(), time.time_ns()
        with monkeypatch.context() as m:
            m.setattr("catalog.auth.tokens.time.time", lambda: real - 3600)
            m.setattr("catalog.auth.tokens.time.time_ns", lambda: real_ns - 3600 * 10**9)
            token, claims = auth.tokens.issue(admin.id, Role.admin.value, None)
        assert claims.expires_at < real
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(token)))

    async def test_forged_signature_is_401(self, admin: Account, anon: httpx.AsyncClient) -> None:
        header, payload, signature = admin.token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["sub"] = str(uuid.uuid4())
        forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
        forged = f"{header}.{forged_payload.decode()}.{signature}"
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(forged)))
        flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
        tampered = f"{header}.{payload}.{flipped}"
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(tampered)))
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(f"{header}.{payload}.")))

    async def test_alg_none_is_401(self, admin: Account, anon: httpx.AsyncClient) -> None:
        token = jwt.encode(access_claims(sub=str(admin.id)), "", algorithm="none")
        assert jwt.get_unverified_header(token)["alg"] == "none"
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(token)))
        # "None" spelt differently, signed with the real secret appended
        header = base64.urlsafe_b64encode(b'{"alg":"NONE","typ":"JWT"}').rstrip(b"=").decode()
        body = token.split(".")[1]
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(f"{header}.{body}.")))

    async def test_wrong_key_or_algorithm_is_401(
        self, admin: Account, anon: httpx.AsyncClient
    ) -> None:
        claims = access_claims(sub=str(admin.id))
        wrong_key = sign(claims, key="another-secret-" + "z" * 40)
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(wrong_key)))
        other_alg = sign(claims, key=TEST_SECRET * 2, algorithm="HS512")
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(other_alg)))

    async def test_bad_or_missing_claims_are_401(
        self, admin: Account, anon: httpx.AsyncClient
    ) -> None:
        overrides: list[dict[str, object]] = [
            {"aud": "another-api"},
            {"iss": "someone-else"},
            {"typ": "refresh"},
            {"role": "superuser"},
            {"sub": "not-a-uuid"},
            {"fam": "not-a-uuid"},
            {"nbf": int(time.time()) + 3600},
        ]
        for override in overrides:
            claims = access_claims(sub=str(admin.id)) | override
            r = await anon.get(f"{AUTH}/me", headers=bearer(sign(claims)))
            assert r.status_code == 401, override
            assert_unauthorized(r)
        for missing in ["exp", "iat", "sub", "jti", "iss", "aud"]:
            claims = access_claims(sub=str(admin.id))
            del claims[missing]
            r = await anon.get(f"{AUTH}/me", headers=bearer(sign(claims)))
            assert r.status_code == 401, missing
            assert_unauthorized(r)

    async def test_garbage_is_401_even_on_public_reads(self, anon: httpx.AsyncClient) -> None:
        for token in ["garbage", "a.b.c", "x" * 5000]:
            assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(token)))
        # a broken credential is an error, not a silent fallback to anonymous
        assert_unauthorized(await anon.get(f"{API}/products", headers=bearer("garbage")))


class TestDeactivation:
    async def test_deactivation_ends_every_session(
        self, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        seller = await make_account(app, Role.seller)
        pair = await login_ok(anon, seller.email, seller.password)
        r = await anon.post(
            f"{API}/api-keys",
            json={"name": "integration", "scopes": ["catalog:read"]},
            headers=seller.headers,
        )
        assert r.status_code == 201, r.text
        api_key = r.json()["key"]
        assert (await anon.get(f"{AUTH}/me", headers={"X-API-Key": api_key})).status_code == 200

        r = await client.patch(f"{USERS}/{seller.id}", json={"is_active": False})
        assert r.status_code == 200, r.text
        assert r.json()["is_active"] is False

        for token in (seller.token, pair["access_token"]):
            assert_unauthorized(await anon.get(f"{AUTH}/me", headers=bearer(token)))
            assert_unauthorized(await anon.get(f"{API}/products", headers=bearer(token)))
        assert_unauthorized(
            await anon.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
        )
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers={"X-API-Key": api_key}))
        refused = await login(anon, seller.email, seller.password)
        assert_unauthorized(refused)
        unknown = await login(anon, "nobody@example.com", seller.password)
        assert refused.json() == unknown.json()  # no hint that the account exists

    async def test_reactivated_user_logs_in_but_old_tokens_stay_dead(
        self, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        buyer = await make_account(app, Role.buyer)
        r = await client.patch(f"{USERS}/{buyer.id}", json={"is_active": False})
        assert r.status_code == 200
        r = await client.patch(f"{USERS}/{buyer.id}", json={"is_active": True})
        assert r.status_code == 200
        assert r.json()["is_active"] is True
        pair = await login_ok(anon, buyer.email, buyer.password)
        r = await anon.get(f"{AUTH}/me", headers=bearer(pair["access_token"]))
        assert r.status_code == 200, r.text
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=buyer.headers))


class TestPasswordHashes:
    async def test_bcrypt_hash_verifies_and_is_rehashed(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        await register(anon, "argon@example.com", STRONG)
        assert (await stored_hash(app, "argon@example.com")).startswith("$argon2id$")

        email = "legacy@example.com"
        password = "imported-legacy-pass"
        await insert_user(app, email, BcryptHasher(rounds=4).hash(password))
        assert_unauthorized(await login(anon, email, "wrong-legacy-password"))
        assert (await stored_hash(app, email)).startswith("$2b$")

        await login_ok(anon, email, password)
        assert (await stored_hash(app, email)).startswith("$argon2id$")
        await login_ok(anon, email, password)
        assert_unauthorized(await login(anon, email, "wrong-legacy-password"))

    async def test_overlong_password_against_bcrypt_is_401(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        """bcrypt >= 5 raises for input over 72 bytes; that must not become a 500."""
        email = "legacy-long@example.com"
        await insert_user(app, email, BcryptHasher(rounds=4).hash("imported-legacy-pass"))
        assert_unauthorized(await login(anon, email, "z" * 100))

    async def test_legacy_bcrypt_password_over_72_bytes_still_logs_in(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        """Older bcrypt libraries hashed only the first 72 bytes and their users type the whole
        password. After the login the argon2id hash covers every character."""
        email = "legacy-80@example.com"
        password = "correct-horse-battery-staple-" * 3
        assert len(password.encode()) > 72
        await insert_user(app, email, BcryptHasher(rounds=4).hash(password.encode()[:72]))
        await login_ok(anon, email, password)
        assert (await stored_hash(app, email)).startswith("$argon2id$")
        await login_ok(anon, email, password)
        assert_unauthorized(await login(anon, email, password[:72]))

    async def test_unusable_hash_is_401(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        await insert_user(app, "disabled@example.com", "!")
        assert_unauthorized(await login(anon, "disabled@example.com", ACCOUNT_PASSWORD))
