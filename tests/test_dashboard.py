"""The office dashboard and the summary API, through the test client, against numpy/scipy.

Responses are written with ``commit_responses`` (the writer's own insert) at fixed past weeks,
and the page is asked for that week with ``?week=``, so nothing depends on today's date except
the test of the running week.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from scipy import stats as sps

from officepulse import spc
from officepulse.aggregates import cells_to_hide
from officepulse.offices import Office
from officepulse.operations import OPERATIONS, KioskAdd, TokenCreate
from officepulse.responses import StoredResponse, commit_responses
from officepulse.runtime import Runtime
from officepulse.summary import current_monday, week_comments, week_label

from .conftest import add_user, app_with_offices, login, make_settings

Client = TestClient[Litestar]
K: Final = 5  # the default minimum group size
OFFICES: Final = [
    Office(id="mh-u25", name="U-25 Haus Mülheim", kind="pilot", type_label="U-25 Haus"),
    Office(id="es-u25", name="U-25 Haus Essen", kind="pilot", type_label="U-25 Haus"),
    Office(id="mh-main", name="Jobcenter Mülheim", kind="conventional"),
]
WEEK: Final = "2025-W10"
MONDAY: Final = dt.date(2025, 3, 3)  # Monday of 2025-W10
ITEMS: Final = ("stress_now", "respect", "rooms", "effort", "overall")


def response(
    office: str,
    when: dt.datetime,
    stress: int,
    respect: int = 4,
    comment: str | None = None,
    flags: tuple[str, ...] = (),
) -> StoredResponse:
    return StoredResponse(
        id=uuid.uuid4(),
        office_id=office,
        survey_id="atmosphere",
        survey_version=1,
        channel="qr",
        placement="waiting",
        kiosk_id=None,
        lang="de",
        received_at=when,
        answers={"stress_now": stress, "respect": respect, "rooms": 4, "effort": 3, "overall": 4},
        comment=comment,
        flags=flags,
    )


def at(monday: dt.date, day: int = 0, hour: int = 10) -> dt.datetime:
    """A stored (hour-coarsened, local) time in the week of ``monday``."""
    return dt.datetime.combine(monday + dt.timedelta(days=day), dt.time(hour))


def store(app: Litestar, rows: Sequence[StoredResponse]) -> None:
    runtime: Runtime = app.state.runtime
    runtime.store.write(partial(commit_responses, rows=list(rows))).result()


def audit_rows(app: Litestar, action: str) -> list[tuple[Any, ...]]:
    runtime: Runtime = app.state.runtime
    return runtime.store.read(
        lambda cur: cur.execute(
            "SELECT actor, target FROM audit_log WHERE action = ? ORDER BY id", [action]
        ).fetchall()
    )


@pytest.fixture
def staff(tmp_path: Path) -> Iterator[tuple[Litestar, Client]]:
    """Three offices; a manager of mh-u25, an evaluator and an administrator."""
    placements = [("mh-u25", "waiting")]
    with app_with_offices(make_settings(tmp_path / "data"), OFFICES, placements) as (app, client):
        add_user(app, "mara", "manager", ("mh-u25",))
        add_user(app, "eva", "evaluator")
        add_user(app, "adam", "admin")
        yield app, client


def german(value: float) -> str:
    return f"{value:.2f}".replace(".", ",")


def interval_text(values: Sequence[int]) -> str:
    """How the page words a mean: computed here with scipy, independently of the app."""
    x = np.asarray(values, dtype=float)
    low, high = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    return f"{german(x.mean())} ({german(low)}–{german(high)}), n = {len(x)}"


def section(html: str, heading_id: str) -> str:
    """The HTML of one dashboard section, by its heading's id."""
    found = re.search(rf'<h2 id="{heading_id}">.*?</section>', html, re.S)
    assert found, heading_id
    return found.group(0)


# -- access --------------------------------------------------------------------------------------


def test_manager_sees_own_office_with_its_numbers(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    stress = [1, 2, 2, 3, 3, 4, 5]
    store(app, [response("mh-u25", at(MONDAY, i % 5), v) for i, v in enumerate(stress)])
    # Peers of the same type (es-u25): their week is pooled into the comparison column.
    peer_stress = [2, 2, 3, 3, 3, 4]
    store(app, [response("es-u25", at(MONDAY), v) for v in peer_stress])
    login(client, "mara")
    page = client.get(f"/dashboard/office/mh-u25?week={WEEK}")
    assert page.status_code == 200, page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "U-25 Haus Mülheim" in page.text
    week = section(page.text, "h-week")
    assert interval_text(stress) in week
    assert interval_text(peer_stress) in week
    assert "Demodaten" not in page.text
    # no inline script or style anywhere (the CSP would block them)
    assert "<script" not in page.text
    assert "style=" not in page.text
    assert "<style" not in page.text
    assert audit_rows(app, "view.dashboard") == [("mara", "mh-u25")]


def test_other_office_is_forbidden_for_a_manager(staff: tuple[Litestar, Client]) -> None:
    _, client = staff
    login(client, "mara")
    page = client.get("/dashboard/office/mh-main")
    assert page.status_code == 403
    assert "Kein Zugriff" in page.text
    assert "Jobcenter Mülheim" not in page.text


def test_anonymous_is_sent_to_the_login(staff: tuple[Litestar, Client]) -> None:
    _, client = staff
    page = client.get(f"/dashboard/office/mh-u25?week={WEEK}", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=/dashboard/office/mh-u25")


@pytest.mark.parametrize("name", ["eva", "adam"])
def test_evaluator_and_admin_see_every_office(staff: tuple[Litestar, Client], name: str) -> None:
    app, client = staff
    login(client, name)
    for office in ("mh-main", "es-u25"):
        assert client.get(f"/dashboard/office/{office}?week={WEEK}").status_code == 200
    assert client.get("/dashboard/office/no-such-office").status_code == 404
    assert audit_rows(app, "view.dashboard") == [(name, "mh-main"), (name, "es-u25")]


@pytest.mark.parametrize("week", ["2025-13", "2025-W60", "W10", "1999-W10", "2999-W01"])
def test_bad_week_is_a_german_message(staff: tuple[Litestar, Client], week: str) -> None:
    _, client = staff
    login(client, "mara")
    page = client.get(f"/dashboard/office/mh-u25?week={week}")
    assert page.status_code == 400
    assert "Ungültige Woche" in page.text


def test_kiosks_of_the_office_with_silent_ones_marked(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    runtime: Runtime = app.state.runtime
    add = OPERATIONS["kiosk.add"]
    entrance = add.run(runtime, KioskAdd(office="mh-u25", name="Eingang", placement="waiting"))
    hall = add.run(runtime, KioskAdd(office="mh-u25", name="Flur", placement="waiting"))
    add.run(runtime, KioskAdd(office="mh-main", name="Anderes Haus"))
    for kiosk in (entrance, hall):
        paired = client.post("/api/v1/kiosk/pair", json={"code": kiosk.pairing_code})
        assert paired.status_code == 201, paired.text
        if kiosk is hall:  # the hall tablet reports in, the entrance one never does
            beat = client.post(
                "/api/v1/kiosk/heartbeat",
                json={"app_version": "1", "queue_length": 3},
                headers={"Authorization": f"Bearer {paired.json()['token']}"},
            )
            assert beat.status_code == 204, beat.text
    login(client, "mara")
    kiosks = section(client.get("/dashboard/office/mh-u25").text, "h-kiosks")
    rows = {
        name: (marked, cells)
        for marked, name, cells in re.findall(
            r'<tr( class="silent")?><th scope="row">(.*?)</th>(.*?)</tr>', kiosks
        )
    }
    assert set(rows) == {"Eingang", "Flur"}
    assert rows["Eingang"][0]
    assert "still: seit über 10 Minuten kein Lebenszeichen" in rows["Eingang"][1]
    assert "noch nie" in rows["Eingang"][1]
    assert not rows["Flur"][0]
    assert "in Betrieb" in rows["Flur"][1]
    assert '<td class="num">3</td>' in rows["Flur"][1]


# -- suppression ---------------------------------------------------------------------------------


def test_week_below_k_shows_no_numbers_and_no_comments(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    # k - 1 responses, a mean of 4,75 that must not appear
    hidden = [5, 5, 4, 5]
    assert len(hidden) == K - 1
    store(
        app,
        [response("mh-u25", at(MONDAY), v, comment=f"Notiz {i}") for i, v in enumerate(hidden)],
    )
    login(client, "mara")
    page = client.get(f"/dashboard/office/mh-u25?week={WEEK}")
    assert page.status_code == 200
    week = section(page.text, "h-week")
    assert "unterdrückt (weniger als 5 Antworten)" in week
    assert "n = 4" not in page.text
    assert "4,75" not in page.text
    comments = section(page.text, "h-comments")
    assert "Notiz" not in comments
    assert "sobald die Woche mindestens 5 Antworten hat" in comments

    summary = client.get(f"/api/v1/offices/mh-u25/summary?week={WEEK}").json()
    (cell,) = summary["items"][0]["cells"]
    assert cell == {"week": WEEK, "suppressed": True}
    assert summary["comparison"][0]["this_week"] == {"suppressed": True}
    assert summary["distribution"][0] == {"item": "stress_now", "suppressed": True}
    assert summary["heatmap"]["cells"] == []

    # one more response reaches k: numbers and comments appear
    store(app, [response("mh-u25", at(MONDAY, 2, 15), 5, comment="Notiz 4")])
    page = client.get(f"/dashboard/office/mh-u25?week={WEEK}")
    assert interval_text([*hidden, 5]) in section(page.text, "h-week")
    comments = section(page.text, "h-comments")
    shown = re.findall(r'<li dir="auto">(.*?)</li>', comments)
    assert sorted(shown) == [f"Notiz {i}" for i in range(K)]
    # dated by the week only: no weekday, hour, rating, placement or channel next to them
    outside_list = re.sub(r"<ul class=\"comments\">.*?</ul>", "", comments, flags=re.S)
    words = re.sub(r"<[^>]+>", " ", outside_list).replace(WEEK, "")
    assert re.findall(r"\d", words) == []
    assert re.search(r"\d{1,2}(:\d{2}| Uhr)", comments) is None
    for leak in ("waiting", "qr", "Montag", "Mittwoch"):
        assert leak not in comments


def test_flagged_responses_count_nowhere(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    rows = [response("mh-u25", at(MONDAY), 3) for _ in range(K - 1)]
    rows += [response("mh-u25", at(MONDAY), 5, flags=("burst",)) for _ in range(3)]
    store(app, rows)
    login(client, "eva")
    summary = client.get(f"/api/v1/offices/mh-u25/summary?week={WEEK}").json()
    assert summary["comparison"][0]["this_week"] == {"suppressed": True}


def test_comments_come_in_random_order(staff: tuple[Litestar, Client]) -> None:
    app, _ = staff
    texts = [f"Kommentar {i}" for i in range(8)]
    store(
        app, [response("mh-u25", at(MONDAY, 0, 8 + i), 3, comment=t) for i, t in enumerate(texts)]
    )
    runtime: Runtime = app.state.runtime
    orders = {
        tuple(
            runtime.store.read(lambda cur: week_comments(cur, "mh-u25", MONDAY, K, True)).comments
        )
        for _ in range(20)
    }
    assert all(sorted(order) == texts for order in orders)
    # 8! orders: twenty identical draws would mean the order is not random
    assert len(orders) > 1


def test_comments_of_the_running_week_wait_until_it_is_over(
    staff: tuple[Litestar, Client],
) -> None:
    app, client = staff
    monday = current_monday(app.state.runtime.settings.zone)
    values = [2, 3, 3, 4, 3]
    store(app, [response("mh-u25", at(monday), v, comment="Heute sehr voll") for v in values])
    login(client, "mara")
    page = client.get("/dashboard/office/mh-u25")
    assert page.status_code == 200
    comments = section(page.text, "h-comments")
    assert "Heute sehr voll" not in comments
    assert "wenn die Woche vorbei ist" in comments
    # the numbers of the running week are there
    assert interval_text(values) in section(page.text, "h-week")


def test_weekday_hour_cells_below_k_are_hidden_with_a_complement(
    staff: tuple[Litestar, Client],
) -> None:
    app, client = staff
    monday_8 = [response("mh-u25", at(MONDAY, 0, 8), v) for v in (4, 4, 5, 5, 4, 4)]  # n = 6
    wednesday_10 = [response("mh-u25", at(MONDAY, 2, 10), v) for v in (1, 2, 2, 1, 2, 1, 2)]
    tuesday_9 = [response("mh-u25", at(MONDAY, 1, 9), 5) for _ in range(2)]  # n = 2 < k
    # an earlier week with k - 1 responses: suppressed, so it must not feed the map either
    earlier = [response("mh-u25", at(MONDAY - dt.timedelta(weeks=1), 3, 11), 5) for _ in range(4)]
    store(app, monday_8 + wednesday_10 + tuesday_9 + earlier)
    login(client, "mara")
    heatmap = client.get(f"/api/v1/offices/mh-u25/summary?week={WEEK}").json()["heatmap"]
    assert heatmap["weeks"] == [WEEK]
    cells = {(c["weekday"], c["hour"]): c for c in heatmap["cells"]}
    assert set(cells) == {(1, 8), (2, 9), (3, 10)}  # nothing from the suppressed week
    assert cells[(2, 9)] == {"weekday": 2, "hour": 9, "suppressed": True}
    # The visible cells add up to the week's n (15), so Tuesday alone would be 15 - 6 - 7:
    # the smallest visible cell is hidden as well.
    assert cells[(1, 8)] == {"weekday": 1, "hour": 8, "suppressed": True}
    assert cells[(3, 10)]["n"] == 7
    assert cells[(3, 10)]["mean"] == pytest.approx(np.mean([1, 2, 2, 1, 2, 1, 2]))
    page = client.get(f"/dashboard/office/mh-u25?week={WEEK}")
    heat = section(page.text, "h-heat")
    assert "1,6 (n = 7)" in heat
    assert "n = 6" not in heat
    assert "n = 2" not in heat


@pytest.mark.parametrize(
    ("sizes", "total", "hidden"),
    [
        ([6, None, 7], 15, {0}),  # 2 hidden: add the smallest visible cell
        ([6, None, 7], 19, set()),  # 6 hidden already: nothing to add
        ([6, 7, 9], 22, set()),  # nothing hidden
        ([None, None, 5, 30], 38, {2}),  # 3 hidden -> 8
        ([None, 3, 3, 30], 37, {1, 2}),  # 1 hidden -> 4 -> 7
    ],
)
def test_cells_to_hide(sizes: list[int | None], total: int, hidden: set[int]) -> None:
    assert cells_to_hide(sizes, total, K) == hidden


# -- the control chart ---------------------------------------------------------------------------

BASELINE_STRESS: Final = (2, 3, 2, 3, 2, 3, 2, 3, 1, 4)
BASELINE_RESPECT: Final = (4, 3, 4, 5, 4, 3, 4, 4, 5, 4)


def plant_history(app: Litestar, weeks: int) -> None:
    """``weeks`` stable weeks of 10 responses before 2025-W10."""
    rows = [
        response("mh-u25", at(MONDAY - dt.timedelta(weeks=back), i % 5, 9), s, r)
        for back in range(1, weeks + 1)
        for i, (s, r) in enumerate(zip(BASELINE_STRESS, BASELINE_RESPECT, strict=True))
    ]
    store(app, rows)


def test_a_planted_shift_raises_an_alert(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    plant_history(app, 10)
    shifted_stress = (4, 5, 4, 5, 4, 5, 4, 5, 4, 5)  # much more tense: worse
    shifted_respect = (5, 5, 5, 5, 5, 5, 5, 5, 5, 4)  # more respect: better
    store(
        app,
        [
            response("mh-u25", at(MONDAY, 1), s, r)
            for s, r in zip(shifted_stress, shifted_respect, strict=True)
        ],
    )
    login(client, "mara")
    alerts = {
        a["item"]: a
        for a in client.get(f"/api/v1/offices/mh-u25/summary?week={WEEK}").json()["alerts"]
    }
    stress = alerts["stress_now"]
    assert stress["status"] == "alert"
    assert stress["verdict"] == "worse"
    assert stress["week"] == WEEK
    assert stress["baseline_weeks"] == 10
    # centre and limits, recomputed with numpy from the planted values
    baseline = np.asarray(BASELINE_STRESS, dtype=float)
    sigma = baseline.std(ddof=1)  # every week is identical: the pooled SD is the week's SD
    assert stress["centre"] == pytest.approx(baseline.mean())
    assert stress["upper"] == pytest.approx(baseline.mean() + 3 * sigma / np.sqrt(10))
    assert stress["mean"] == pytest.approx(np.mean(shifted_stress))
    assert alerts["respect"]["status"] == "alert"
    assert alerts["respect"]["verdict"] == "better"
    # rooms, effort and overall did not change
    assert {alerts[i]["status"] for i in ("rooms", "effort", "overall")} == {"in_control"}

    page = client.get(f"/dashboard/office/mh-u25?week={WEEK}")
    panel = section(page.text, "h-alerts")
    assert "2 Fragen liegen außerhalb der Kontrollgrenzen" in panel
    assert "Schlechter als üblich:</strong> Anspannung" in panel
    assert "über der oberen Kontrollgrenze" in panel
    assert "Besser als üblich:</strong> Freundlichkeit" in panel


def test_stable_weeks_raise_no_alert(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    plant_history(app, 12)
    store(
        app,
        [
            response("mh-u25", at(MONDAY, 1), s, r)
            for s, r in zip(BASELINE_STRESS, BASELINE_RESPECT, strict=True)
        ],
    )
    login(client, "mara")
    summary = client.get(f"/api/v1/offices/mh-u25/summary?week={WEEK}").json()
    assert {a["status"] for a in summary["alerts"]} == {"in_control"}
    page = client.get(f"/dashboard/office/mh-u25?week={WEEK}")
    assert "außerhalb der Kontrollgrenzen" not in section(page.text, "h-alerts")


def test_short_history_says_so(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    plant_history(app, spc.MIN_BASELINE_WEEKS - 1)
    store(app, [response("mh-u25", at(MONDAY), 5) for _ in range(10)])
    login(client, "mara")
    summary = client.get(f"/api/v1/offices/mh-u25/summary?week={WEEK}").json()
    assert {a["status"] for a in summary["alerts"]} == {"not_enough_history"}
    page = client.get(f"/dashboard/office/mh-u25?week={WEEK}")
    assert "noch nicht genug Verlauf" in section(page.text, "h-alerts")


def test_pooling_weekly_aggregates_matches_pooling_responses() -> None:
    rng = np.random.default_rng(3)
    weeks = [rng.integers(1, 6, size=int(n)).astype(float) for n in rng.integers(5, 30, size=9)]
    cells = [
        spc.WeekStat(label=str(i), n=len(w), mean=float(w.mean()), sd=float(w.std(ddof=1)))
        for i, w in enumerate(weeks)
    ]
    pooled = spc.pool(cells)
    assert pooled is not None
    everything = np.concatenate(weeks)
    assert pooled.n == everything.size
    assert pooled.mean == pytest.approx(everything.mean())
    assert pooled.sd == pytest.approx(everything.std(ddof=1))
    low, high = sps.t.interval(
        0.95, everything.size - 1, loc=everything.mean(), scale=sps.sem(everything)
    )
    assert (pooled.ci_low, pooled.ci_high) == pytest.approx((low, high))
    limits = spc.control_limits(cells)
    assert limits is not None
    within = np.sqrt(
        sum((len(w) - 1) * w.var(ddof=1) for w in weeks) / sum(len(w) - 1 for w in weeks)
    )
    assert limits.sigma == pytest.approx(within)
    assert spc.control_limits(cells[: spc.MIN_BASELINE_WEEKS - 1]) is None


# -- the summary API -----------------------------------------------------------------------------


def no_numbers_in_suppressed(value: Any) -> None:
    """Every object marked suppressed anywhere in the summary carries no number at all."""
    if isinstance(value, dict):
        if value.get("suppressed") is True:
            numbers = {k for k, v in value.items() if isinstance(v, int | float | list)}
            assert numbers - {"suppressed", "weekday", "hour"} == set(), value
        for child in value.values():
            no_numbers_in_suppressed(child)
    elif isinstance(value, list):
        for child in value:
            no_numbers_in_suppressed(child)


def test_summary_api_with_session_and_token(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    stress = [1, 2, 2, 3, 3, 4, 5]
    store(app, [response("mh-u25", at(MONDAY, i % 5), v) for i, v in enumerate(stress)])
    store(app, [response("mh-u25", at(MONDAY - dt.timedelta(weeks=2)), 4) for _ in range(K - 1)])
    login(client, "mara")
    answer = client.get(f"/api/v1/offices/mh-u25/summary?week={WEEK}&weeks=3")
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert summary["office"]["id"] == "mh-u25"
    assert summary["week"] == WEEK
    assert summary["weeks"] == ["2025-W08", "2025-W09", WEEK]
    assert summary["peer_group"] == {"basis": "type_label", "label": "U-25 Haus", "offices": 1}
    stress_cells = summary["items"][0]["cells"]
    assert stress_cells[0] == {"week": "2025-W08", "suppressed": True}
    visible = stress_cells[1]
    assert visible["week"] == WEEK
    assert visible["n"] == len(stress)
    assert visible["mean"] == pytest.approx(np.mean(stress))
    low, high = sps.t.interval(0.95, len(stress) - 1, loc=np.mean(stress), scale=sps.sem(stress))
    assert (visible["ci_low"], visible["ci_high"]) == pytest.approx((low, high))
    assert summary["distribution"][0]["counts"] == [1, 2, 2, 1, 1]
    no_numbers_in_suppressed(summary)

    # the same with an API token and no session
    runtime: Runtime = app.state.runtime
    token = OPERATIONS["token.create"].run(runtime, TokenCreate(user="mara", label="test")).token
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    by_token = client.get(f"/api/v1/offices/mh-u25/summary?week={WEEK}&weeks=3", headers=bearer)
    assert by_token.status_code == 200
    assert by_token.json() == summary
    other = client.get("/api/v1/offices/mh-main/summary", headers=bearer)
    assert other.status_code == 403
    assert other.headers["content-type"].startswith("application/problem+json")
    anonymous = client.get("/api/v1/offices/mh-u25/summary")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert audit_rows(app, "view.summary") == [("mara", "mh-u25"), ("mara", "mh-u25")]


@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ("weeks=0", "#/weeks"),
        ("weeks=105", "#/weeks"),
        ("weeks=acht", "#/weeks"),
        ("week=2025-W99", "#/week"),
        ("week=2025W10", "#/week"),
        ("week=1990-W01", "#/week"),
        (f"week={week_label(dt.date.today() + dt.timedelta(weeks=2))}", "#/week"),
    ],
)
def test_bad_parameters_are_problem_details(
    staff: tuple[Litestar, Client], query: str, pointer: str
) -> None:
    _, client = staff
    login(client, "eva")
    answer = client.get(f"/api/v1/offices/mh-u25/summary?{query}")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == 400
    assert [error["pointer"] for error in problem["errors"]] == [pointer]


def test_unknown_office_is_404_for_an_evaluator(staff: tuple[Litestar, Client]) -> None:
    _, client = staff
    login(client, "eva")
    answer = client.get("/api/v1/offices/no-such-office/summary")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    # a manager hears only "not yours": whether the office exists is not told
    client.cookies.clear()
    login(client, "mara")
    assert client.get("/api/v1/offices/no-such-office/summary").status_code == 403


def test_summary_is_documented(staff: tuple[Litestar, Client]) -> None:
    _, client = staff
    document = client.get("/schema/openapi.json").json()
    operation = document["paths"]["/api/v1/offices/{office_id}/summary"]["get"]
    assert operation["tags"] == ["offices"]
    assert {p["name"] for p in operation["parameters"]} == {"office_id", "weeks", "week"}


def test_running_week_moves_only_in_steps_of_at_least_k(staff: tuple[Litestar, Client]) -> None:
    """A reload after one client left must not show that client's answers as a difference."""
    from officepulse.summary import office_summary

    app, _ = staff
    runtime: Runtime = app.state.runtime
    survey = runtime.surveys.latest("atmosphere")
    assert survey is not None
    # Seven responses at 08:00, three at 09:00, four at 10:00 (stress 1, then 5, then 3).
    store(
        app,
        [response("mh-u25", at(MONDAY, hour=8), 1) for _ in range(7)]
        + [response("mh-u25", at(MONDAY, hour=9), 5) for _ in range(3)]
        + [response("mh-u25", at(MONDAY, hour=10), 3) for _ in range(4)],
    )

    def this_week(open_from: dt.datetime) -> tuple[int | None, float | None]:
        summary = runtime.store.read(
            lambda cur: office_summary(
                cur,
                office_id="mh-u25",
                survey=survey,
                k=K,
                selected=MONDAY,
                weeks=4,
                today=MONDAY,
                open_from=open_from,
            )
        )
        assert summary is not None
        assert summary.complete is False
        stress = next(c for c in summary.comparison if c.item == "stress_now")
        return stress.this_week.n, stress.this_week.mean

    # 08:00 is still filling up: nothing of the week counts yet.
    assert this_week(at(MONDAY, hour=8)) == (0, None)
    # 08:00 closed with 7 >= k responses: a step.
    assert this_week(at(MONDAY, hour=9)) == (7, 1.0)
    # 09:00 closed with only 3 more: the figures stay where they were.
    assert this_week(at(MONDAY, hour=10)) == (7, 1.0)
    # 10:00 closed: 3 + 4 >= k since the last step, so the next step shows all 14.
    n, mean = this_week(at(MONDAY, hour=11))
    assert n == 14
    assert mean == pytest.approx((7 * 1 + 3 * 5 + 4 * 3) / 14)


def test_heatmap_adds_up_the_visible_weeks_only(staff: tuple[Litestar, Client]) -> None:
    """Each weekday × hour cell is the responses of all visible weeks at that hour together."""
    app, client = staff
    earlier = MONDAY - dt.timedelta(weeks=1)
    hidden_week = MONDAY - dt.timedelta(weeks=2)
    monday_8 = {MONDAY: [4, 4, 5, 5, 4, 4], earlier: [3, 3, 3, 3, 2]}
    wednesday_10 = {MONDAY: [1, 2, 2, 1, 2], earlier: [5, 5]}
    rows = [response("mh-u25", at(m, 0, 8), v) for m, values in monday_8.items() for v in values]
    rows += [
        response("mh-u25", at(m, 2, 10), v) for m, values in wednesday_10.items() for v in values
    ]
    # A week with k - 1 responses (suppressed) and a flagged response: neither may count.
    rows += [response("mh-u25", at(hidden_week, 0, 8), 5) for _ in range(K - 1)]
    rows.append(response("mh-u25", at(MONDAY, 0, 8), 1, flags=("burst",)))
    store(app, rows)
    login(client, "mara")
    heatmap = client.get(f"/api/v1/offices/mh-u25/summary?week={WEEK}").json()["heatmap"]
    assert heatmap["weeks"] == [week_label(earlier), WEEK]
    cells = {(c["weekday"], c["hour"]): c for c in heatmap["cells"]}
    assert list(cells) == [(1, 8), (3, 10)]
    for key, values in (((1, 8), monday_8), ((3, 10), wednesday_10)):
        together = [v for week in values.values() for v in week]
        assert cells[key]["n"] == len(together)
        assert cells[key]["mean"] == pytest.approx(np.mean(together))


def test_a_peer_that_never_answered_an_item_has_no_cell_for_it(
    staff: tuple[Litestar, Client],
) -> None:
    app, client = staff
    store(app, [response("mh-u25", at(MONDAY), v) for v in (2, 3, 3, 4, 4)])
    only_stress = [
        StoredResponse(
            id=uuid.uuid4(),
            office_id="es-u25",
            survey_id="atmosphere",
            survey_version=1,
            channel="qr",
            placement="waiting",
            kiosk_id=None,
            lang="de",
            received_at=at(MONDAY, 1),
            answers={"stress_now": value},
            comment=None,
            flags=(),
        )
        for value in (1, 2, 2, 3, 3, 3)
    ]
    store(app, only_stress)
    login(client, "eva")
    comparison = {
        row["item"]: row
        for row in client.get(f"/api/v1/offices/mh-u25/summary?week={WEEK}").json()["comparison"]
    }
    assert comparison["stress_now"]["peers"]["n"] == 6
    assert comparison["stress_now"]["peers"]["mean"] == pytest.approx(14 / 6)
    assert comparison["respect"]["peers"] == {"suppressed": False, "n": 0}


def test_peers_count_their_running_week_in_their_own_steps(
    staff: tuple[Litestar, Client],
) -> None:
    """The peer column moves with the peer's own steps of at least k, like the office's."""
    from officepulse.summary import office_summary

    app, _ = staff
    runtime: Runtime = app.state.runtime
    survey = runtime.surveys.latest("atmosphere")
    assert survey is not None
    # es-u25 (a peer of mh-u25): three responses at 08:00, four at 09:00, and a flagged one.
    store(
        app,
        [response("es-u25", at(MONDAY, hour=8), 1) for _ in range(3)]
        + [response("es-u25", at(MONDAY, hour=8), 5, flags=("repeat",))]
        + [response("es-u25", at(MONDAY, hour=9), 5) for _ in range(4)]
        + [response("mh-u25", at(MONDAY, hour=8), 3) for _ in range(K)],
    )

    def peers(open_from: dt.datetime) -> tuple[int | None, float | None]:
        summary = runtime.store.read(
            lambda cur: office_summary(
                cur,
                office_id="mh-u25",
                survey=survey,
                k=K,
                selected=MONDAY,
                weeks=2,
                today=MONDAY,
                open_from=open_from,
            )
        )
        assert summary is not None
        stress = next(c for c in summary.comparison if c.item == "stress_now")
        return stress.peers.n, stress.peers.mean

    # 08:00 closed with three (unflagged) responses: below k, no step, so nothing counts yet.
    assert peers(at(MONDAY, hour=9)) == (0, None)
    # 09:00 closed: 3 + 4 >= k since the start, a step that takes in both hours.
    n, mean = peers(at(MONDAY, hour=10))
    assert n == 7
    assert mean == pytest.approx((3 * 1 + 4 * 5) / 7)
