"""The role × route table: every route of the app, who may use it, and proof by request.

A new route makes ``test_every_route_is_in_the_table`` fail until its access is written down
here, so nothing becomes reachable by accident.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from officepulse.app import create_app
from officepulse.auth import access_of
from officepulse.settings import Settings
from tests.conftest import OFFICES, add_user, app_with_offices, login, make_settings

Client = TestClient[Litestar]

# (method, path as Litestar declares it) -> access level; the levels are explained in auth.py.
EXPECTED: dict[tuple[str, str], str] = {
    # clients, kiosks and machines
    ("GET", "/healthz"): "public",
    ("POST", "/api/v1/responses"): "public",
    ("GET", "/s/{office_id:str}"): "public",
    ("POST", "/s/{office_id:str}"): "public",
    ("GET", "/s"): "public",
    ("POST", "/s"): "public",
    ("GET", "/s/{office_id:str}/{rest:path}"): "public",
    ("POST", "/s/{office_id:str}/{rest:path}"): "public",
    ("GET", "/accessibility"): "public",
    ("GET", "/static/{file_path:path}"): "public",
    ("GET", "/kiosk/{file_path:path}"): "public",
    ("GET", "/kiosk"): "public",
    ("POST", "/api/v1/kiosk/pair"): "public",
    ("GET", "/api/v1/kiosk/config"): "public",
    ("POST", "/api/v1/kiosk/heartbeat"): "public",
    ("GET", "/api/v1/kiosk/phone-code"): "public",
    ("POST", "/api/v1/kiosk/responses"): "public",
    ("GET", "/schema"): "public",
    ("GET", "/schema/openapi.json"): "public",
    ("GET", "/schema/{path:str}"): "public",
    ("POST", "/api/v1/admin/ops/{operation:str}"): "server",
    # staff
    ("GET", "/login"): "public",
    ("POST", "/login"): "public",
    ("POST", "/logout"): "login",
    ("GET", "/dashboard"): "login",
    ("GET", "/dashboard/{rest:path}"): "login",
    ("GET", "/admin/{rest:path}"): "login",
    ("GET", "/api/v1/offices"): "login",
    ("GET", "/api/v1/offices/{office_id:str}/summary"): "office",
    ("GET", "/dashboard/office/{office_id:str}"): "office",
    ("GET", "/dashboard/offices"): "login",
    ("GET", "/dashboard/reports"): "evaluator",
    ("GET", "/dashboard/reports/{name:str}"): "evaluator",
    ("GET", "/dashboard/reports/{name:str}/view"): "evaluator",
    ("GET", "/dashboard/reports/{name:str}/download"): "evaluator",
    ("GET", "/dashboard/tokens"): "login",
    ("POST", "/dashboard/tokens"): "login",
    ("POST", "/dashboard/tokens/{token_id:str}/revoke"): "login",
    ("GET", "/admin"): "admin",
    ("GET", "/admin/offices"): "admin",
    ("POST", "/admin/offices"): "admin",
    ("POST", "/admin/offices/import"): "admin",
    ("GET", "/admin/offices/{office_id:str}"): "admin",
    ("POST", "/admin/offices/{office_id:str}/placements"): "admin",
    ("GET", "/admin/offices/{office_id:str}/poster"): "admin",
    ("GET", "/admin/events"): "admin",
    ("POST", "/admin/events"): "admin",
    ("GET", "/admin/districts"): "admin",
    ("POST", "/admin/districts/import"): "admin",
    ("POST", "/admin/districts/map"): "admin",
    ("GET", "/admin/kiosks"): "admin",
    ("POST", "/admin/kiosks"): "admin",
    ("POST", "/admin/kiosks/{kiosk_id:str}/revoke"): "admin",
    ("GET", "/admin/users"): "admin",
    ("POST", "/admin/users"): "admin",
    ("POST", "/admin/users/{name:str}/disable"): "admin",
    ("GET", "/admin/audit"): "admin",
}

# Routes whose request with an empty form would change the very sessions the table test uses.
NOT_PROBED: frozenset[tuple[str, str]] = frozenset({("POST", "/logout")})

OWN_OFFICE = "mh-u25"
OTHER_OFFICE = "mh-main"
SAMPLES = {
    "office_id": OWN_OFFICE,
    "file_path": "staff.css",
    "name": "pilot-vs-conventional",
    "token_id": "no-such-token",
    "kiosk_id": "no-such-kiosk",
    "operation": "office.list",
    "rest": "no-such-page",
    "path": "openapi.json",
}


def declared_routes(app: Litestar) -> dict[tuple[str, str], str | None]:
    """Every (method, path) the app serves, with the access its handler declares.

    Litestar's automatic OPTIONS answers and HEAD (served by GET handlers) are left out.
    """
    found: dict[tuple[str, str], str | None] = {}
    for route in app.routes:
        assert isinstance(route, HTTPRoute), route.path  # no websockets, no mounted apps
        for handler in route.route_handlers:
            methods: set[str] = set(handler.http_methods)
            if methods == {"OPTIONS"} and handler.handler_name.endswith("options_handler"):
                continue
            for method in methods - {"HEAD", "OPTIONS"}:
                found[(method, route.path)] = access_of(handler)
    return found


def test_every_route_is_in_the_table(tmp_path: Any) -> None:
    app = create_app(make_settings(tmp_path / "data"))
    declared = declared_routes(app)
    missing = sorted(set(declared) - set(EXPECTED))
    gone = sorted(set(EXPECTED) - set(declared))
    assert not missing, f"routes missing from the role × route table: {missing}"
    assert not gone, f"routes in the table that the app no longer has: {gone}"
    wrong = {
        key: (declared[key], EXPECTED[key]) for key in EXPECTED if declared[key] != EXPECTED[key]
    }
    assert not wrong, f"declared access differs from the table: {wrong}"


def test_a_route_without_access_is_refused(tmp_path: Any) -> None:
    from litestar import get

    @get("/undeclared", sync_to_thread=False)
    def undeclared() -> str:
        return "secret"

    app = create_app(make_settings(tmp_path / "data"))
    app.register(undeclared)
    with TestClient(app=app) as client:
        answer = client.get("/undeclared")
        assert answer.status_code == 403
        assert "secret" not in answer.text


# -- the table, proved by requests -------------------------------------------------------------

ROLES = ("anonymous", "manager", "evaluator", "admin")


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Client, str]]]:
    """A client per role (anonymous, manager of mh-u25, evaluator, admin) with its CSRF token."""
    settings: Settings = make_settings(tmp_path_factory.mktemp("access") / "data")
    with app_with_offices(settings, list(OFFICES), []) as (app, anonymous):
        add_user(app, "mara", "manager", (OWN_OFFICE,))
        add_user(app, "eva", "evaluator")
        add_user(app, "adam", "admin")
        result: dict[str, tuple[Client, str]] = {"anonymous": (anonymous, "")}
        others = []
        for role, name in (("manager", "mara"), ("evaluator", "eva"), ("admin", "adam")):
            client = TestClient(app=app)
            others.append(client)
            result[role] = (client, login(client, name))
        yield result


def concrete(path: str, **override: str) -> str:
    values = {**SAMPLES, **override}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], path)


def request(client: Client, csrf: str, method: str, path: str) -> httpx.Response:
    if method == "GET":
        return client.get(path, follow_redirects=False)
    data = {"csrf_token": csrf} if csrf else {}
    return client.post(path, data=data, follow_redirects=False)


def refused_as_anonymous(answer: httpx.Response, path: str) -> bool:
    if path.startswith("/api/"):
        return answer.status_code == 401
    return answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


def let_in(answer: httpx.Response) -> bool:
    if answer.status_code in (401, 403):
        return False
    return not (
        answer.status_code == 303 and answer.headers.get("location", "").startswith("/login")
    )


def allowed_roles(access: str) -> set[str]:
    return {
        "public": set(ROLES),
        "login": {"manager", "evaluator", "admin"},
        "office": {"manager", "evaluator", "admin"},
        "evaluator": {"evaluator", "admin"},
        "admin": {"admin"},
    }[access]


PROBED = sorted(
    (key, access)
    for key, access in EXPECTED.items()
    if key not in NOT_PROBED and access != "server"
)


@pytest.mark.parametrize(("route", "access"), PROBED, ids=[f"{m} {p}" for (m, p), _ in PROBED])
def test_route_answers_each_role_as_the_table_says(
    clients: dict[str, tuple[Client, str]], route: tuple[str, str], access: str
) -> None:
    method, declared = route
    path = concrete(declared)
    allowed = allowed_roles(access)
    for role in ROLES:
        client, csrf = clients[role]
        answer = request(client, csrf, method, path)
        content_type = answer.headers.get("content-type", "")
        assert content_type.count("charset=") <= 1, (method, path, content_type)
        if access == "public":
            # The guard lets everyone through; the route's own checks (a kiosk's device token,
            # the login form's token) may still refuse, the same for every role.
            assert answer.status_code < 500, (role, method, path, answer.text[:300])
            assert "Log in, or send an API token" not in answer.text, (role, method, path)
            assert not answer.headers.get("location", "").startswith("/login?next="), path
        elif role in allowed:
            assert let_in(answer), (role, method, path, answer.status_code)
            assert answer.status_code < 500, (role, method, path, answer.text[:300])
        elif role == "anonymous":
            assert refused_as_anonymous(answer, path), (method, path, answer.status_code)
        else:
            assert answer.status_code == 403, (role, method, path, answer.status_code)
    if access == "office":
        # a manager is refused every office but its own
        client, csrf = clients["manager"]
        other = request(client, csrf, method, concrete(declared, office_id=OTHER_OFFICE))
        assert other.status_code == 403


def test_server_route_refuses_everyone_without_the_server_token(
    clients: dict[str, tuple[Client, str]],
) -> None:
    for role in ROLES:
        client, _ = clients[role]
        answer = client.post("/api/v1/admin/ops/office.list", json={})
        assert answer.status_code == 403, role


def test_session_posts_without_csrf_token_are_refused(
    clients: dict[str, tuple[Client, str]],
) -> None:
    client, _ = clients["admin"]
    for (method, declared), access in EXPECTED.items():
        if method != "POST" or access in ("public", "server"):
            continue
        answer = client.post(concrete(declared), data={}, follow_redirects=False)
        assert answer.status_code == 403, declared


def test_every_answer_carries_the_security_headers(
    clients: dict[str, tuple[Client, str]],
) -> None:
    client, _ = clients["manager"]
    for path in ("/healthz", "/api/v1/offices", "/api/v1/offices/mh-main/summary", "/nope"):
        answer = client.get(path)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "no-referrer", path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], path
    page = client.get("/dashboard/office/mh-u25")
    policy = page.headers["content-security-policy"]
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert policy.count("content-security-policy") == 0
    assert len(page.headers.get_list("content-security-policy")) == 1  # the page's own only


def test_staff_pages_are_never_compressed_but_client_pages_are(
    clients: dict[str, tuple[Client, str]],
) -> None:
    # A compressed page whose size depends on a secret (the CSRF token) and on text an attacker
    # chooses (a query value echoed into a form) leaks the secret byte by byte (BREACH).
    client, _ = clients["admin"]
    gzip = {"accept-encoding": "gzip"}
    for path in ("/dashboard/office/mh-u25", "/dashboard/reports", "/admin/users", "/login"):
        answer = client.get(path, headers=gzip, follow_redirects=False)
        assert answer.status_code in (200, 303), path
        assert "content-encoding" not in answer.headers, path
    survey = client.get("/s/mh-u25", headers=gzip)
    assert survey.status_code == 200
    assert survey.headers["content-encoding"] == "gzip"
    assert survey.headers["content-type"] == "text/html; charset=utf-8"
    style = client.get("/static/survey.css", headers=gzip)
    assert style.headers["cache-control"] == "max-age=86400, public"
