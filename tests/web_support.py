"""Helpers for console tests: an app on the test database with CSRF on, users of each role, logging in."""

from __future__ import annotations

import re

from ivr.admin import users
from ivr.web.app import create_app

PASSWORD = "correct horse battery"


def make_app(cfg):
    app = create_app(cfg, "k" * 64, testing=True)
    return app


def add_users() -> None:
    for name, role in (("anna", "admin"), ("max", "manager"), ("olga", "operator"), ("petro", "operator")):
        users.add_user(name, role, PASSWORD, "test")


def csrf_token(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


def login(client, name: str, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token})


def post(client, path: str, data: dict, page: str | None = None):
    """A form post with the token a page of the console carries (as a browser would)."""
    token = csrf_token(client, page or path)
    return client.post(path, data={**data, "csrf_token": token})
