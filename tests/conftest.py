"""Shared fixtures: every test builds its own app on its own data directory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from officepulse.app import create_app
from officepulse.offices import Office, insert_offices, insert_placement
from officepulse.runtime import Runtime
from officepulse.settings import Settings

SECRET = "test-secret-key-that-is-long-enough-0123456789"

OFFICES = (
    Office(id="mh-u25", name="U-25 Haus Mülheim", kind="pilot", type_label="U-25 Haus"),
    Office(id="mh-main", name="Jobcenter Mülheim", kind="conventional"),
)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, secret_key=SECRET, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app=app) as test_client:
        runtime: Runtime = app.state.runtime

        def setup(cur: Any) -> None:
            insert_offices(cur, OFFICES)
            insert_placement(cur, "mh-u25", "waiting")

        runtime.store.write(setup).result()
        runtime.refresh_offices()
        yield test_client


def valid_response(**changes: Any) -> dict[str, Any]:
    """A complete, valid submission of the default survey; ``changes`` replace fields."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "office": "mh-u25",
        "survey": "atmosphere",
        "version": 1,
        "channel": "qr",
        "placement": "waiting",
        "lang": "de",
        "answers": {"stress_now": 2, "respect": 5, "rooms": 4, "effort": 4, "overall": 5},
        "comment": "Sehr freundlich.",
    }
    body.update(changes)
    return body


def stored_rows(
    app: Litestar, sql: str = "SELECT * FROM responses", params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    runtime: Runtime = app.state.runtime
    return runtime.store.read(lambda cur: cur.execute(sql, params or []).fetchall())
