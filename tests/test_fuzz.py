"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis).

Every operation the document lists is called with generated requests, valid and invalid by the
document's schemas, through the Litestar test client on a fresh app with offices, a paired kiosk
and API tokens of two staff accounts. Whatever is sent:

- the server never answers 5xx;
- every status, media type and body is the one the document declares for the operation;
- every 4xx is RFC 9457 problem details whose ``status`` is the HTTP status;
- the responses table holds exactly the ids that were acknowledged (201/200 for
  ``/api/v1/responses``, "created"/"duplicate" in a kiosk batch): a rejected request stores
  nothing.

Generation is derandomized and bounded, so a run is reproducible and takes well under a minute.
"""

from __future__ import annotations

import inspect
import json
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis import APIOperation, GenerationMode
from schemathesis import Case as AnyCase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from officepulse.app import create_app
from officepulse.kiosk import Heartbeat, KioskBatch, KioskResponseIn, PairRequest
from officepulse.languages import LANGUAGES
from officepulse.offices import Office
from officepulse.operations import OPERATIONS, KioskAdd, TokenCreate
from officepulse.responses import ResponseIn
from officepulse.runtime import Runtime

from .conftest import add_user, app_with_offices, make_settings

OFFICES: Final = [
    Office(id="mh-u25", name="U-25 Haus Mülheim", kind="pilot", type_label="U-25 Haus"),
    Office(id="mh-main", name="Jobcenter Mülheim", kind="conventional"),
]
OFFICE_IDS: Final = tuple(office.id for office in OFFICES)
SURVEY: Final = "atmosphere"
MAX_EXAMPLES: Final = 60
PROBLEM_JSON: Final = "application/problem+json"
BASE_URL: Final = "http://testserver.local"

Operation = APIOperation[Any, Any, Any, Any]
Case = AnyCase[Operation]


def app_without_database() -> Litestar:
    """An app that is never started: enough for what needs no database (its data directory
    is never created, as building an app has no side effects)."""
    unused = Path(tempfile.gettempdir()) / f"officepulse-fuzz-{uuid.uuid4().hex}"
    return create_app(make_settings(unused))


def served_document() -> dict[str, Any]:
    """The OpenAPI document as the server serves it."""
    answer = TestClient(app=app_without_database()).get("/schema/openapi.json")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


DOCUMENT: Final = served_document()
SCHEMA: Final = schemathesis.openapi.from_dict(DOCUMENT)
HTTP_METHODS: Final = ("get", "put", "post", "delete", "patch", "head", "options")
API_OPERATIONS: Final[list[Operation]] = [
    SCHEMA[path][method]
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if method in HTTP_METHODS
]


# -- the app under test ------------------------------------------------------------------------


@dataclass
class FuzzedApi:
    """The running app, the credentials to use, and every id the server acknowledged."""

    app: Litestar
    client: TestClient[Litestar]
    api_tokens: tuple[str, ...]
    device_token: str
    core_items: tuple[str, ...]
    acknowledged: set[str] = field(default_factory=set)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def stored_ids(self) -> set[str]:
        runtime: Runtime = self.app.state.runtime
        rows = runtime.store.read(
            lambda cur: cur.execute("SELECT id::VARCHAR FROM responses").fetchall()
        )
        return {row[0] for row in rows}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzedApi]:
    settings = make_settings(tmp_path_factory.mktemp("fuzz") / "data")
    with app_with_offices(settings, OFFICES, [("mh-u25", "waiting")]) as (app, client):
        runtime: Runtime = app.state.runtime
        # A manager of one office (403 for the other) and an evaluator (sees every office).
        add_user(app, "fuzz-manager", "manager", ("mh-u25",))
        add_user(app, "fuzz-evaluator", "evaluator")
        tokens = tuple(
            OPERATIONS["token.create"].run(runtime, TokenCreate(user=user, label="fuzzing")).token
            for user in ("fuzz-manager", "fuzz-evaluator")
        )
        kiosk = OPERATIONS["kiosk.add"].run(
            runtime, KioskAdd(office="mh-u25", name="Eingang", placement="waiting")
        )
        # Paired before the fuzzer sends wrong codes: those lock pairing for this client.
        paired = client.post("/api/v1/kiosk/pair", json={"code": kiosk.pairing_code})
        assert paired.status_code == 201, paired.text
        survey = runtime.surveys.latest(SURVEY)
        assert survey is not None
        yield FuzzedApi(
            app=app,
            client=client,
            api_tokens=tokens,
            device_token=paired.json()["token"],
            core_items=tuple(survey.core_items),
        )


# -- steering generated requests toward the interesting paths ----------------------------------

# Random strings almost never name a real office, survey or language, and a request without
# credentials never gets past the guard: part of the cases are completed with real values so
# that the fuzzer also reaches storing, duplicates and the authenticated answers.


def valid_answers(api: FuzzedApi) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries(dict.fromkeys(api.core_items, st.integers(1, 5)))


def steer_response(body: dict[str, Any], api: FuzzedApi, data: st.DataObject) -> dict[str, Any]:
    """A generated body with office, survey, language and answers that the server knows."""
    steered = {
        **body,
        "survey": SURVEY,
        "version": 1,
        "lang": data.draw(st.sampled_from(sorted(LANGUAGES))),
        "answers": data.draw(valid_answers(api)),
    }
    if "office" in body:
        steered["office"] = data.draw(st.sampled_from(OFFICE_IDS))
    if "placement" in body:
        steered["placement"] = data.draw(st.sampled_from([body["placement"], None, "waiting"]))
    return steered


def steer(case: Case, api: FuzzedApi, data: st.DataObject) -> None:
    """Complete part of the positive cases with known values (the rest stays as generated)."""
    if case.path_parameters and "office_id" in case.path_parameters and data.draw(st.booleans()):
        case.path_parameters["office_id"] = data.draw(st.sampled_from(OFFICE_IDS))
    body = case.body
    if not isinstance(body, dict) or not data.draw(st.booleans()):
        return
    if case.path == "/api/v1/responses":
        case.body = steer_response(body, api, data)
    elif case.path == "/api/v1/kiosk/responses":
        items = body.get("responses")
        assert isinstance(items, list)  # a positive case has the documented shape
        case.body = {
            **body,
            "responses": [
                steer_response(item, api, data)
                if isinstance(item, dict) and data.draw(st.booleans())
                else item
                for item in items
            ],
        }


def credentials(case: Case, api: FuzzedApi, data: st.DataObject) -> dict[str, str]:
    """Mostly a right Bearer token for the operation, sometimes none or a wrong one."""
    right = (api.device_token,) if case.path.startswith("/api/v1/kiosk/") else api.api_tokens
    chosen = data.draw(st.sampled_from([*right, None, "not-a-token"]))
    return {} if chosen is None else {"Authorization": f"Bearer {chosen}"}


# -- sending a case through the Litestar test client -------------------------------------------


def send(client: TestClient[Litestar], case: Case, headers: dict[str, str]) -> httpx.Response:
    """Send a generated case as schemathesis would, but inside the app's own lifespan."""
    request = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    unexpected = set(request) - {"method", "url", "headers", "params", "cookies", "json", "data"}
    assert not unexpected, f"cannot send {unexpected} through the test client"
    assert not request.get("cookies"), "no operation declares cookies"
    content: bytes | None = None
    if "json" in request:
        content = json.dumps(request["json"]).encode()
    elif isinstance(request.get("data"), str | bytes):
        data = request["data"]
        content = data.encode() if isinstance(data, str) else data
    else:
        assert request.get("data") is None, f"unexpected body {request['data']!r}"
    return client.request(
        request["method"],
        request["url"],
        headers=request["headers"],
        params=request.get("params") or None,
        content=content,
    )


def acknowledged_ids(case: Case, answer: httpx.Response) -> set[str]:
    """The response ids this answer says are durably stored."""
    if case.path == "/api/v1/responses" and answer.status_code in (200, 201):
        return {answer.json()["id"]}
    if case.path == "/api/v1/kiosk/responses" and answer.status_code == 200:
        return {
            result["id"]
            for result in answer.json()["results"]
            if result["status"] in ("created", "duplicate")
        }
    return set()


def assert_problem(answer: httpx.Response) -> None:
    """A 4xx (or 5xx) answer is RFC 9457 problem details for exactly this status."""
    media_type = answer.headers.get("content-type", "").split(";")[0].strip()
    assert media_type == PROBLEM_JSON, f"{answer.status_code} as {media_type!r}: {answer.text}"
    problem = answer.json()
    assert isinstance(problem.get("type"), str), problem
    assert isinstance(problem.get("title"), str), problem
    assert problem.get("status") == answer.status_code, problem


def operation_id(operation: Operation) -> str:
    return f"{operation.method.upper()} {operation.path}"


CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# A kiosk batch is answered 200 with a verdict per response: an invalid response inside it is
# "rejected" in the body, not a 4xx for the whole batch (a tablet must not lose the valid ones).
BATCH_CHECKS: Final = [check for check in CHECKS if check is not negative_data_rejection]


def has_input(operation: Operation) -> bool:
    """Whether the operation declares anything a request could get wrong (body, parameters)."""
    declared = DOCUMENT["paths"][operation.path][operation.method.lower()]
    return "requestBody" in declared or bool(declared.get("parameters"))


# Litestar's own routes for the schema document are not part of the API (and should not be in
# the document at all: see test_schema_router_is_not_documented_and_answers_problems).
SCHEMA_ROUTER: Final = "/schema"
# Negative cases break the declared input; an operation that declares none has none to break.
FUZZ_CASES: Final = [
    pytest.param(operation, mode, id=f"{operation_id(operation)} {mode.value}")
    for operation in API_OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not operation.path.startswith(SCHEMA_ROUTER)
    and (mode is GenerationMode.POSITIVE or has_input(operation))
]


@pytest.mark.parametrize(("operation", "mode"), FUZZ_CASES)
def test_fuzz_operation(api: FuzzedApi, operation: Operation, mode: GenerationMode) -> None:
    checks = BATCH_CHECKS if operation.path == "/api/v1/kiosk/responses" else CHECKS

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        # Generating from a JSON Schema is slow and filters a lot; the limit is max_examples.
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def fuzz(case: Case, data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE:
            steer(case, api, data)
        headers = credentials(case, api, data)
        answer = send(api.client, case, headers)
        api.statuses[operation_id(operation)][answer.status_code] += 1
        case.validate_response(answer, checks=checks, headers=headers)
        if answer.status_code >= 400:
            assert_problem(answer)
        api.acknowledged |= acknowledged_ids(case, answer)
        # Rejected requests store nothing; acknowledged ones are all there, once.
        assert api.stored_ids() == api.acknowledged

    fuzz()


def test_fuzzing_got_past_the_checks(api: FuzzedApi) -> None:
    """The steering works: the fuzz run reached the answers behind the validation and the guard.

    (Runs after test_fuzz_operation, on the same app; alone it has nothing to look at.)
    """
    if not api.statuses:
        pytest.skip("runs after test_fuzz_operation")
    reached = {operation: set(counts) for operation, counts in api.statuses.items()}
    assert {200, 201, 409, 422} <= reached["POST /api/v1/responses"]
    assert {200, 401} <= reached["POST /api/v1/kiosk/responses"]
    assert {204, 401, 422} <= reached["POST /api/v1/kiosk/heartbeat"]
    assert {200, 401} <= reached["GET /api/v1/offices"]
    assert {200, 400, 401, 403, 404} <= reached["GET /api/v1/offices/{office_id}/summary"]
    rows = api.app.state.runtime.store.read(
        lambda cur: cur.execute("SELECT channel, count(*) FROM responses GROUP BY 1").fetchall()
    )
    assert dict(rows).get("kiosk", 0) > 0, rows
    assert sum(count for _, count in rows) == len(api.acknowledged)


# -- the document itself -----------------------------------------------------------------------


def served_routes(app: Litestar) -> set[tuple[str, str]]:
    """(method, path) of every HTTP route the app serves, paths in OpenAPI's {name} form."""
    served = set()
    for route in app.routes:
        path = route.path_format
        for method in getattr(route, "methods", ()):
            served.add((method.upper(), path))
    return served


def test_document_lists_only_served_api_operations() -> None:
    served = served_routes(app_without_database())
    documented = {
        (method.upper(), path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert documented, "the document lists no operations"
    assert documented <= served, documented - served
    # The API is documented ...
    for expected in [
        ("POST", "/api/v1/responses"),
        ("GET", "/api/v1/offices"),
        ("POST", "/api/v1/kiosk/pair"),
        ("POST", "/api/v1/kiosk/responses"),
        ("POST", "/api/v1/kiosk/heartbeat"),
        ("GET", "/healthz"),
    ]:
        assert expected in documented
    # ... but neither the CLI's loopback admin API nor the staff and survey pages.
    assert ("POST", "/api/v1/admin/ops/{operation}") in served
    hidden_prefixes = (
        "/api/v1/admin",
        "/dashboard",
        "/login",
        "/logout",
        "/admin",
        "/s/",
        "/kiosk",
        "/static",
        "/accessibility",
    )
    assert not [path for _, path in documented if path.startswith(hidden_prefixes)]
    assert ("GET", "/dashboard") in served
    assert ("GET", "/login") in served


def test_every_error_is_declared_as_problem_details() -> None:
    """Each documented 4xx/5xx of the API is application/problem+json with the Problem schema."""
    for path, item in DOCUMENT["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                content = response.get("content", {})
                assert list(content) == [PROBLEM_JSON], (method, path, status)
                schema = content[PROBLEM_JSON]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)


def msgspec_schema(body_type: type[msgspec.Struct]) -> dict[str, Any]:
    """msgspec's own JSON Schema of a struct, as the document should show it.

    The document leaves out ``"default": null`` (Litestar drops None values) and shows
    docstrings dedented.
    """

    def tidy(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: inspect.cleandoc(value) if key == "description" else tidy(value)
                for key, value in node.items()
                if not (key == "default" and value is None)
            }
        if isinstance(node, list):
            return [tidy(value) for value in node]
        return node

    generated = msgspec.json.schema(body_type)
    return dict(tidy(generated["$defs"][body_type.__name__]))


@pytest.mark.parametrize(
    ("path", "body_type"),
    [
        ("/api/v1/responses", ResponseIn),
        ("/api/v1/kiosk/pair", PairRequest),
        ("/api/v1/kiosk/heartbeat", Heartbeat),
        ("/api/v1/kiosk/responses", KioskBatch),
    ],
)
def test_request_bodies_are_documented(path: str, body_type: type[msgspec.Struct]) -> None:
    """The handlers decode their bodies themselves; the document still describes them."""
    body = DOCUMENT["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    documented = body["content"]["application/json"]["schema"]
    expected = msgspec_schema(body_type)
    if body_type is KioskBatch:
        # the items are inlined where msgspec refers to its definition
        items = documented["properties"]["responses"].pop("items")
        assert items == msgspec_schema(KioskResponseIn)
        assert expected["properties"]["responses"].pop("items") == {
            "$ref": "#/$defs/KioskResponseIn"
        }
    assert documented == expected


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/no-such-thing", 404),
        ("GET", "/api/v1/responses", 405),
        ("DELETE", "/api/v1/kiosk/heartbeat", 405),
        ("POST", "/healthz", 405),
    ],
)
def test_unknown_paths_and_methods_are_problems(method: str, path: str, status: int) -> None:
    """What the document does not list is answered with problem details too."""
    answer = TestClient(app=app_without_database()).request(method, path)
    assert answer.status_code == status
    assert_problem(answer)


def test_schema_router_is_not_documented_and_answers_problems() -> None:
    """Only the API is documented, and /schema/<unknown> is a problem, not an HTML page."""
    client = TestClient(app=app_without_database())
    assert client.get("/schema/openapi.json").status_code == 200
    assert not [path for path in DOCUMENT["paths"] if path.startswith(SCHEMA_ROUTER)]
    answer = client.get("/schema/no-such-document")
    assert answer.status_code == 404
    assert_problem(answer)
