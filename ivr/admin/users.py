"""People who may use the staff console: adding, disabling, checking passwords, and the login throttle.

Passwords are kept only as argon2id hashes (argon2-cffi). A login name that gets `web.login_attempts` wrong
passwords in a row is blocked for `web.login_block_minutes`, whether or not such a user exists (so the block
says nothing about who exists). Every change made by a person is written to the audit log by the caller's
actor (the CLI's `cli:<unix user>` or a console user).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ivr.errors import IvrError
from ivr.ledger import audit
from ivr.ledger.models import LoginThrottle, WebUser, utcnow

ROLES = ("admin", "manager", "operator")
MIN_PASSWORD = 10
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs the same time as a wrong password
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(IvrError):
    """A user name, role or password that cannot be accepted; the message says which and why."""

    exit_code = 2


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME_RE.match(name):
        raise UserError(f"user name {name!r}: 2 to 64 characters, letters, digits, '_', '.', '@', '-', "
                        "starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role {role!r} is not allowed; allowed: {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password: at least {MIN_PASSWORD} characters, please")
    if "\n" in password or "\r" in password:
        raise UserError("password: a single line")
    return password


def add_user(name: str, role: str, password: str, actor: str) -> WebUser:
    """Create a console user (or re-enable and reset a disabled one of that name), audited."""
    name, role, password = check_name(name), check_role(role), check_password(password)
    existing = WebUser.get_or_none(WebUser.name == name)
    if existing is not None and existing.active:
        raise UserError(f"user {name!r} exists already (disable it first to replace it)")
    digest = _hasher.hash(password)
    if existing is not None:
        existing.role, existing.password_hash, existing.active, existing.disabled_at = role, digest, True, None
        existing.save()
        user = existing
    else:
        user = WebUser.create(name=name, role=role, password_hash=digest)
    LoginThrottle.delete().where(LoginThrottle.name == name.lower()).execute()
    audit.record(actor, "user.add", name, {"role": role})
    return user


def disable_user(name: str, actor: str) -> WebUser:
    """Disable a user: they cannot log in and their open sessions end at their next request. Audited."""
    user = WebUser.get_or_none(WebUser.name == name.strip())
    if user is None:
        raise UserError(f"no user {name!r}")
    if user.active:
        user.active, user.disabled_at = False, utcnow()
        user.save()
        audit.record(actor, "user.disable", user.name, {"role": user.role})
    return user


def set_password(name: str, password: str, actor: str) -> None:
    user = WebUser.get_or_none(WebUser.name == name.strip())
    if user is None:
        raise UserError(f"no user {name!r}")
    user.password_hash = _hasher.hash(check_password(password))
    user.save()
    audit.record(actor, "user.password", user.name, {})


def list_users() -> list[WebUser]:
    return list(WebUser.select().order_by(WebUser.active.desc(), WebUser.name))


def active_user(name: str) -> WebUser | None:
    """The active user of that name (what every console request checks), else None."""
    return WebUser.get_or_none((WebUser.name == name) & WebUser.active)


@dataclass(frozen=True)
class LoginResult:
    user: WebUser | None
    blocked_until: datetime | None = None  # naive UTC, when the name is blocked

    @property
    def ok(self) -> bool:
        return self.user is not None


def authenticate(name: str, password: str, attempts: int, block_minutes: int,
                 now: datetime | None = None) -> LoginResult:
    """Check a login. A blocked name is refused without looking at the password; the `attempts`-th wrong
    password in a row blocks it for `block_minutes`; a right one clears the count."""
    now = now or utcnow()
    key = name.strip().lower()[:64]
    throttle = LoginThrottle.get_or_none(LoginThrottle.name == key)
    if throttle is not None and throttle.blocked_until is not None and throttle.blocked_until > now:
        return LoginResult(None, throttle.blocked_until)
    user = WebUser.get_or_none((WebUser.name == name.strip()) & WebUser.active)
    good = False
    try:
        good = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        good = False
    if good:
        if throttle is not None:
            throttle.delete_instance()
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        user.last_login_at = now
        user.save()
        return LoginResult(user)
    if throttle is None:
        throttle = LoginThrottle.create(name=key, failures=0)
    if throttle.blocked_until is not None and throttle.blocked_until <= now:
        throttle.failures = 0  # the block is over: a fresh count
        throttle.blocked_until = None
    throttle.failures += 1
    throttle.last_failure_at = now
    if throttle.failures >= attempts:
        throttle.blocked_until = now + timedelta(minutes=block_minutes)
    throttle.save()
    return LoginResult(None, throttle.blocked_until)
