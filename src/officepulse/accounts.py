"""Staff accounts and API tokens: who may log in, with which role and for which offices.

Passwords are hashed with argon2id (argon2-cffi's defaults); API tokens and session ids are
kept only as keyed hashes. Clients never have accounts, and nothing here is ever joined with a
response.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from typing import Any, Final, Literal

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from officepulse.kiosk import keyed_hash
from officepulse.storage import Cursor

Role = Literal["admin", "evaluator", "manager"]
ROLES: Final[tuple[Role, ...]] = ("admin", "evaluator", "manager")
USER_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024
TOKEN_PREFIX: Final = "opt_"  # noqa: S105 - a prefix, not a secret

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so that a wrong name costs as long as
    a wrong password and the timing does not tell which names exist. Made on first use: one
    hash costs about 0.1 s, which every command would otherwise pay at import."""
    return _hasher.hash(secrets.token_urlsafe(24))


def prepare_login() -> None:
    """Make the stand-in hash before a login can arrive (the login form calls this: a login
    needs the form's token, so the form always comes first), so that even the first login
    with an unknown name costs as long as a wrong password."""
    _dummy_hash()


class AccountError(ValueError):
    """A refused account change; the message names the field at fault."""


class User(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: Role
    offices: list[str] = []
    disabled: bool = False
    created_at: dt.datetime | None = None


class ApiToken(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    user: str
    label: str
    created_at: dt.datetime
    last_used_on: dt.date | None = None
    revoked: bool = False


class NewToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token as created: the secret is in here once and never again."""

    id: str
    user: str
    label: str
    token: str


def normalise_name(name: str) -> str:
    return name.strip().lower()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: shorter than {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"password: longer than {MAX_PASSWORD} characters")
    if not password.strip():
        raise AccountError("password: only white space")


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; a missing account costs as much time as a wrong password."""
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# -- users -------------------------------------------------------------------------------------

_USER_COLUMNS = "name, role, offices, disabled_at IS NOT NULL, created_at"


def _row_to_user(row: tuple[Any, ...]) -> User:
    return User(
        name=row[0], role=row[1], offices=list(row[2] or []), disabled=row[3], created_at=row[4]
    )


def add_user(
    cur: Cursor, name: str, role: str, offices: list[str], password: str, now: dt.datetime
) -> User:
    """Create an account; every refusal is one line naming the field."""
    name = normalise_name(name)
    if not USER_NAME_RE.match(name):
        raise AccountError(
            f"name: {name!r} must be 2-64 characters of a-z, 0-9, '.', '_', '@' or '-'"
        )
    if role not in ROLES:
        raise AccountError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    offices = sorted(set(offices))
    if role == "manager" and not offices:
        raise AccountError("office: a manager needs at least one office (--office ID)")
    if role != "manager" and offices:
        raise AccountError(f"office: only managers are tied to offices; a {role} sees all")
    known = {row[0] for row in cur.execute("SELECT id FROM offices").fetchall()}
    for office in offices:
        if office not in known:
            raise AccountError(f"office: no office with id {office!r}")
    password_hash = hash_password(password)
    if cur.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
        raise AccountError(f"name: an account {name!r} exists already")
    cur.execute(
        "INSERT INTO users (name, password_hash, role, offices, created_at) VALUES (?, ?, ?, ?, ?)",
        [name, password_hash, role, offices, now],
    )
    return User(name=name, role=role, offices=offices, created_at=now)


def list_users(cur: Cursor) -> list[User]:
    rows = cur.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name").fetchall()  # noqa: S608
    return [_row_to_user(row) for row in rows]


def get_user(cur: Cursor, name: str) -> User | None:
    row = cur.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?",  # noqa: S608
        [normalise_name(name)],
    ).fetchone()
    return _row_to_user(row) if row else None


def password_hash_of(cur: Cursor, name: str) -> str | None:
    """The stored hash of an enabled account, or None."""
    row = cur.execute(
        "SELECT password_hash FROM users WHERE name = ? AND disabled_at IS NULL",
        [normalise_name(name)],
    ).fetchone()
    return str(row[0]) if row else None


def disable_user(cur: Cursor, name: str, now: dt.datetime) -> User:
    """Disable an account: its sessions end and its API tokens are revoked at once."""
    name = normalise_name(name)
    user = get_user(cur, name)
    if user is None:
        raise AccountError(f"name: no account {name!r}")
    if user.role == "admin" and not user.disabled and admin_count(cur) <= 1:
        raise AccountError(f"name: {name!r} is the last active admin; add another admin first")
    cur.execute(
        "UPDATE users SET disabled_at = coalesce(disabled_at, ?) WHERE name = ?", [now, name]
    )
    cur.execute("DELETE FROM sessions WHERE user_name = ?", [name])
    cur.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
        [now, name],
    )
    return msgspec.structs.replace(user, disabled=True)


def admin_count(cur: Cursor) -> int:
    row = cur.execute(
        "SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL"
    ).fetchone()
    return int(row[0]) if row else 0


# -- API tokens --------------------------------------------------------------------------------


def create_token(cur: Cursor, secret_key: str, user: str, label: str, now: dt.datetime) -> NewToken:
    user = normalise_name(user)
    found = get_user(cur, user)
    if found is None:
        raise AccountError(f"user: no account {user!r}")
    if found.disabled:
        raise AccountError(f"user: the account {user!r} is disabled")
    label = label.strip()
    if not label or len(label) > 100:
        raise AccountError("label: 1 to 100 characters")
    # Short ids are shown in lists and typed to revoke; draw again on the rare clash.
    for _ in range(100):
        token_id = secrets.token_hex(4)
        if cur.execute("SELECT 1 FROM api_tokens WHERE id = ?", [token_id]).fetchone() is None:
            break
    else:  # pragma: no cover - 100 clashes in a row would need billions of tokens
        raise RuntimeError("no free token id after 100 tries")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    cur.execute(
        "INSERT INTO api_tokens (id, user_name, label, token_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [token_id, user, label, keyed_hash(secret_key, "api-token", token), now],
    )
    return NewToken(id=token_id, user=user, label=label, token=token)


def list_tokens(cur: Cursor, user: str | None = None) -> list[ApiToken]:
    rows = cur.execute(
        "SELECT id, user_name, label, created_at, last_used_on, revoked_at IS NOT NULL"
        " FROM api_tokens WHERE ? IS NULL OR user_name = ? ORDER BY created_at, id",
        [user, user],
    ).fetchall()
    return [
        ApiToken(id=r[0], user=r[1], label=r[2], created_at=r[3], last_used_on=r[4], revoked=r[5])
        for r in rows
    ]


def revoke_token(cur: Cursor, token_id: str, now: dt.datetime, user: str | None = None) -> bool:
    """Revoke a token (only ``user``'s own when given); False when there is no such token."""
    row = cur.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?)"
        " WHERE id = ? AND (? IS NULL OR user_name = ?) RETURNING id",
        [now, token_id, user, user],
    ).fetchone()
    return row is not None


def user_for_token(cur: Cursor, secret_key: str, token: str) -> tuple[User, str] | None:
    """The enabled account behind a live token, with the token's id."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = cur.execute(
        f"SELECT t.id, {', '.join('u.' + c for c in ('name', 'role', 'offices'))},"  # noqa: S608
        " u.disabled_at IS NOT NULL, u.created_at"
        " FROM api_tokens t JOIN users u ON u.name = t.user_name"
        " WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
        [keyed_hash(secret_key, "api-token", token)],
    ).fetchone()
    if row is None:
        return None
    return _row_to_user(row[1:]), str(row[0])


def mark_token_used(cur: Cursor, token_id: str, today: dt.date) -> None:
    cur.execute(
        "UPDATE api_tokens SET last_used_on = ? WHERE id = ? AND last_used_on IS DISTINCT FROM ?",
        [today, token_id, today],
    )
