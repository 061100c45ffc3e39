"""A synthetic data directory of any size, generated inside DuckDB with a fixed seed.

    .venv/bin/python benchmarks/synth.py --responses 10000000 --out benchmarks/.work/synth-10m

Several hundred offices (by default 400: 60 pilots, 340 conventional centres) over two years of
working days, 08-16 h, in time order as a live system would have stored them. Every value is a
hash of the row number and a salt, so the same arguments give the same database on any machine
and at any thread count (DuckDB's ``random()`` is not reproducible across threads). The planted
effects match the demo's: pilots about 0.8 points less stressed and 0.7 more respected; ten
conventional offices get a ``redesign`` event half-way, after which their ``rooms`` score rises
by about 1.2. Everything is marked ``synthetic``.

The folder is an ordinary officepulse data directory: ``officepulse serve --data-dir`` and
``officepulse report --data-dir`` work on it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from pathlib import Path
from typing import Final

from officepulse.storage import Store

OFFICES: Final = 400
PILOTS: Final = 60
EVENTS: Final = 10
# A Monday two years (104 weeks) before the Monday of the week the benchmarks were written.
START: Final = dt.date(2024, 11, 25)
WEEKS: Final = 104
ITEMS: Final = ("stress_now", "respect", "rooms", "effort", "overall")
EXTRA: Final = ("heard", "next_steps", "wayfinding")


def office_id(index: int) -> str:
    return f"synth-{index:03d}"


def _offices_sql() -> str:
    return f"""
    INSERT INTO offices (id, name, kind, type_label, city, district, default_lang, synthetic)
    SELECT printf('synth-%03d', i), printf('Synthetic office %03d', i),
           CASE WHEN i < {PILOTS} THEN 'pilot' ELSE 'conventional' END,
           CASE WHEN i < {PILOTS} THEN (CASE WHEN i % 4 = 0 THEN 'U-25 Haus' ELSE 'Stadtteilbüro'
                                        END)
                ELSE (CASE WHEN i % 3 = 0 THEN 'Hauptstelle' ELSE 'Geschäftsstelle' END) END,
           printf('City %02d', i % 40), printf('District %03d', i), 'de', true
    FROM range({OFFICES}) t(i)
    """  # noqa: S608 - constants only


def _rating(mean: str, salt: str) -> str:
    # The mean of two uniform draws is triangular on [0, 1); shifted and scaled it is a cheap,
    # bell-like noise with sd about 0.9 that needs no random() and no thread-dependent state.
    noise = f"((hash(i, '{salt}a') % 1000 + hash(i, '{salt}b') % 1000) / 1000.0 - 1.0) * 2.2"
    return f"greatest(1, least(5, round({mean} + {noise})))::UTINYINT"


def _responses_sql(count: int) -> str:
    workdays = WEEKS * 5
    # Row i falls on working day i * workdays // count: rows arrive in time order, as they would.
    day = f"(i * {workdays} // {count})"
    date = f"(DATE '{START.isoformat()}' + (({day} // 5) * 7 + {day} % 5)::INTEGER)"
    hour = "(8 + hash(i, 'h') % 8)::BIGINT"
    office = f"(hash(i, 'o') % {OFFICES})::BIGINT"
    pilot = f"({office} < {PILOTS})"
    redesigned = f"({office} >= {OFFICES - EVENTS} AND {day} >= {workdays // 2})"
    mood = "((hash(i, 'm') % 1000) / 1000.0 - 0.5)"
    stress = f"(3.3 - CASE WHEN {pilot} THEN 0.8 ELSE 0 END - {mood})"
    respect = f"(3.4 + CASE WHEN {pilot} THEN 0.7 ELSE 0 END + {mood})"
    rooms = (
        f"(CASE WHEN {pilot} THEN 3.9 ELSE 2.8 END + CASE WHEN {redesigned} THEN 1.2 ELSE 0 END"
        f" + 0.5 * {mood})"
    )
    effort = f"(3.2 + CASE WHEN {pilot} THEN 0.4 ELSE 0 END + {mood})"
    overall = f"(({respect} + {effort} + 6 - {stress}) / 3)"
    base = [
        _rating(stress, "s"),
        _rating(respect, "r"),
        _rating(rooms, "o"),
        _rating(effort, "e"),
        _rating(overall, "v"),
    ]
    extra = [
        _rating(f"({respect} - 0.1)", "h"),
        _rating(f"(3.3 + CASE WHEN {pilot} THEN 0.3 ELSE 0 END + {mood})", "n"),
        _rating(f"({rooms} + 0.2)", "w"),
    ]
    short = f"map({list(ITEMS)!r}, [{', '.join(base)}])"
    full = f"map({list(ITEMS + EXTRA)!r}, [{', '.join(base + extra)}])"
    kiosk = "(hash(i, 'c') % 10 < 4)"
    return f"""
    INSERT INTO responses (id, office_id, survey_id, survey_version, channel, placement,
                           kiosk_id, lang, received_at, answers, comment, flags, content_digest,
                           synthetic)
    SELECT uuid(), printf('synth-%03d', {office}), 'atmosphere', 1,
           CASE WHEN {kiosk} THEN 'kiosk' ELSE 'qr' END,
           ['entrance', 'waiting', 'waiting', 'counselling'][1 + (hash(i, 'p') % 4)::BIGINT],
           CASE WHEN {kiosk} THEN printf('synth-%03d-kiosk-1', {office}) END,
           ['de', 'de', 'de', 'de', 'de', 'de', 'de', 'tr', 'ar', 'uk']
               [1 + (hash(i, 'l') % 10)::BIGINT],
           {date} + to_hours({hour}),
           CASE WHEN hash(i, 'x') % 10 < 6 THEN {full} ELSE {short} END,
           CASE WHEN hash(i, 'k') % 100 < 3
                THEN ['Die Wartezeit war zu lang.', 'Sehr freundlich, danke!',
                      'Im Wartebereich ist es zu laut.'][1 + (hash(i, 'q') % 3)::BIGINT] END,
           CASE WHEN NOT {kiosk} AND hash(i, 'f') % 10 < 3 THEN ['verified_onsite']
                ELSE []::VARCHAR[] END,
           md5(i::VARCHAR), true
    FROM range({count}) t(i)
    """  # noqa: S608 - constants only


def _events_sql() -> str:
    middle = START + dt.timedelta(weeks=WEEKS // 2)
    return f"""
    INSERT INTO events (office_id, happened_on, kind, note, synthetic)
    SELECT printf('synth-%03d', i), DATE '{middle.isoformat()}', 'redesign',
           'Synthetic event: waiting area redesigned', true
    FROM range({OFFICES - EVENTS}, {OFFICES}) t(i)
    """  # noqa: S608 - constants only


def generate(out: Path, responses: int) -> float:
    """Create ``out`` as a data directory holding the synthetic data; return the seconds taken."""
    if out.exists():
        shutil.rmtree(out)  # only ever the folder the caller names for this scratch data
    out.mkdir(parents=True)
    started = time.monotonic()
    store = Store.open(out / "officepulse.duckdb")
    try:
        store.write(lambda cur: cur.execute(_offices_sql())).result()
        store.write(lambda cur: cur.execute(_events_sql())).result()
        store.write(lambda cur: cur.execute(_responses_sql(responses))).result()
    finally:
        store.close()
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.responses < 1:
        parser.error("--responses must be at least 1")
    seconds = generate(args.out, args.responses)
    print(f"{args.responses:,} responses, {OFFICES} offices: {args.out} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
