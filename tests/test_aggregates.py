"""Aggregates: the numbers against numpy, and no small group revealed by any filter combination."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from officepulse.aggregates import Filters, aggregate, suppress_small_cells, weekday_hour
from officepulse.responses import StoredResponse, commit_responses
from officepulse.storage import Store
from officepulse.surveys import Survey, default_surveys_dir, load_surveys

ITEMS = ("stress_now", "respect", "rooms")
LANGS = ("de", "ar", "en")
PLACEMENTS = ("entrance", "waiting")


@pytest.fixture(scope="module")
def survey() -> Survey:
    found = load_surveys(default_surveys_dir()).latest("atmosphere")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store.open(tmp_path_factory.mktemp("agg") / "db.duckdb") as opened:
        yield opened


def row(
    office: str,
    when: dt.datetime,
    answers: dict[str, int],
    lang: str = "de",
    placement: str = "waiting",
    flags: tuple[str, ...] = (),
) -> StoredResponse:
    return StoredResponse(
        id=uuid.uuid4(),
        office_id=office,
        survey_id="atmosphere",
        survey_version=1,
        channel="qr",
        placement=placement,
        kiosk_id=None,
        lang=lang,
        received_at=when,
        answers=answers,
        comment=None,
        flags=flags,
    )


def load(store: Store, rows: list[StoredResponse]) -> None:
    def replace(cur: Any) -> None:
        cur.execute("DELETE FROM responses")
        if rows:
            commit_responses(cur, rows)

    store.write(replace).result()


def test_cells_match_numpy_and_flags_are_excluded(store: Store, survey: Survey) -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(1, 6, size=40)
    march = dt.datetime(2026, 3, 2, 10)
    rows = [row("a", march, {"stress_now": int(v)}) for v in values]
    rows += [row("a", march, {"stress_now": 5}, flags=("burst",)) for _ in range(3)]
    load(store, rows)
    result = store.read(lambda cur: aggregate(cur, Filters(), survey, k=5, period="month"))
    (cell,) = [c for c in result.cells if c.item == "stress_now"]
    assert cell.n == 40
    assert cell.mean == pytest.approx(values.mean())
    assert cell.sd == pytest.approx(values.std(ddof=1))
    assert cell.top2_share == pytest.approx(np.mean(values <= 2))  # lower is better for stress
    assert cell.distribution == [int((values == v).sum()) for v in range(1, 6)]
    assert result.excluded_flagged == 3
    with_flagged = store.read(
        lambda cur: aggregate(cur, Filters(include_flagged=True), survey, k=5, period="month")
    )
    assert with_flagged.cells[0].n == 43
    assert with_flagged.excluded_flagged == 0


def test_small_cells_and_their_complements_are_suppressed(store: Store, survey: Survey) -> None:
    jan, feb, mar = (dt.datetime(2026, m, 5, 9) for m in (1, 2, 3))
    rows = [row("a", jan, {"respect": 4}) for _ in range(10)]
    rows += [row("a", feb, {"respect": 4}) for _ in range(2)]  # too small
    rows += [row("a", mar, {"respect": 5}) for _ in range(6)]
    load(store, rows)
    result = store.read(lambda cur: aggregate(cur, Filters(), survey, k=5, period="month"))
    by_period = {c.period: c for c in result.cells}
    assert by_period["2026-02"].suppressed
    assert by_period["2026-02"].n is None
    assert by_period["2026-02"].mean is None
    # the total (18) is shown, so March (the smallest visible) is hidden too
    assert by_period["2026-03"].suppressed
    assert by_period["2026-01"].n == 10
    assert result.totals[0].n == 18


def test_breakdown_cells_whose_complement_is_small_are_hidden(store: Store, survey: Survey) -> None:
    when = dt.datetime(2026, 4, 6, 9)
    rows = [row("a", when, {"rooms": 3}, lang="de") for _ in range(8)]
    rows += [row("a", when, {"rooms": 1}, lang="ar") for _ in range(2)]
    load(store, rows)
    result = store.read(
        lambda cur: aggregate(cur, Filters(), survey, k=5, period="all", breakdown="lang")
    )
    by_lang = {c.breakdown: c for c in result.cells}
    assert by_lang["ar"].suppressed
    # 10 in all minus 8 in German would reveal the two Arabic answers
    assert by_lang["de"].suppressed


def test_weekday_hour_heatmap(store: Store) -> None:
    monday_9 = dt.datetime(2026, 3, 2, 9)
    rows = [row("a", monday_9, {"stress_now": 4}) for _ in range(6)]
    rows += [row("a", monday_9 + dt.timedelta(days=1), {"stress_now": 2}) for _ in range(2)]
    load(store, rows)
    cells = store.read(lambda cur: weekday_hour(cur, Filters(), "stress_now", k=5))
    assert cells[0] == {"weekday": 1, "hour": 9, "n": 6, "mean": 4.0, "suppressed": False}
    assert cells[1]["suppressed"] is True
    assert cells[1]["n"] is None
    assert cells[1]["mean"] is None


def test_suppression_without_totals_hides_only_small_cells() -> None:
    rows = [("a", "2026-01", None, "x", 3, 2.0, 1.0, 0.5, [1, 1, 1, 0, 0])]
    (cell,) = suppress_small_cells(rows, 5, totals_shown=False)
    assert cell.suppressed


response_rows = st.lists(
    st.tuples(
        st.sampled_from(("a", "b")),
        st.integers(1, 3),  # month
        st.sampled_from(LANGS),
        st.sampled_from(PLACEMENTS),
        st.dictionaries(st.sampled_from(ITEMS), st.integers(1, 5), min_size=1),
        st.booleans(),  # flagged burst
    ),
    max_size=40,
)
filter_choices = st.fixed_dictionaries(
    {
        "offices": st.sampled_from([(), ("a",), ("b",), ("a", "b")]),
        "lang": st.none() | st.sampled_from(LANGS),
        "placement": st.none() | st.sampled_from(PLACEMENTS),
        "include_flagged": st.booleans(),
    }
)


@settings(max_examples=120, deadline=None)
@given(
    data=response_rows,
    chosen=filter_choices,
    period=st.sampled_from(("day", "week", "month", "all")),
    breakdown=st.none() | st.sampled_from(("lang", "placement", "channel")),
    k=st.sampled_from((3, 5)),
)
def test_no_output_reveals_a_group_below_k(
    store: Store,
    survey: Survey,
    data: list[tuple[Any, ...]],
    chosen: dict[str, Any],
    period: Any,
    breakdown: Any,
    k: int,
) -> None:
    rows = [
        row(
            office,
            dt.datetime(2026, month, 10, 9),
            answers,
            lang=lang,
            placement=placement,
            flags=("burst",) if flagged else (),
        )
        for office, month, lang, placement, answers, flagged in data
    ]
    load(store, rows)
    filters = Filters(**chosen)
    result = store.read(
        lambda cur: aggregate(cur, filters, survey, k=k, period=period, breakdown=breakdown)
    )
    for cell in [*result.cells, *result.totals]:
        if cell.suppressed:
            assert cell.n is None
            assert cell.mean is None
            assert cell.distribution is None
        else:
            assert cell.n is not None
            assert cell.n >= k
            assert cell.distribution is not None
            assert sum(cell.distribution) == cell.n
    # total minus visible cells is never an aggregate of 1..k-1 responses
    totals = {(t.office, t.item, t.breakdown): t for t in result.totals}
    groups: dict[tuple[str, str, str | None], list[Any]] = {}
    for cell in result.cells:
        groups.setdefault((cell.office, cell.item, cell.breakdown), []).append(cell)
    for key, members in groups.items():
        hidden = [c for c in members if c.suppressed]
        total = totals.get(key)
        if total is not None and not total.suppressed:
            assert total.n is not None
            hidden_n = total.n - sum(c.n or 0 for c in members if not c.suppressed)
            assert hidden_n == 0 or hidden_n >= k, (key, hidden_n, len(hidden))
    if breakdown is not None:
        # a shown breakdown cell never leaves a small remainder of its unfiltered cell
        plain = store.read(lambda cur: aggregate(cur, filters, survey, k=1, period=period))
        parent_n = {(c.office, c.period, c.item): c.n or 0 for c in plain.cells}
        for cell in result.cells:
            if not cell.suppressed:
                rest = parent_n[(cell.office, cell.period, cell.item)] - (cell.n or 0)
                assert rest == 0 or rest >= k
