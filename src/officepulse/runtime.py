"""The runtime of one data directory: settings, the open store, surveys and office ids.

The server builds one in its lifespan; a CLI command with no server running builds its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from officepulse.offices import UNKNOWN_PLACEMENT, office_ids, office_placements
from officepulse.settings import Settings, ensure_secret_key
from officepulse.storage import Cursor, Store
from officepulse.surveys import (
    Survey,
    SurveyError,
    SurveyRegistry,
    default_surveys_dir,
    load_surveys,
    published_changes,
    survey_from_json,
    survey_to_json,
)


class PublishedSurveyChangedError(RuntimeError):
    """A survey version that already has responses was edited in its file."""


@dataclass
class Runtime:
    """Everything a request or a CLI command needs to work on one data directory."""

    settings: Settings
    store: Store
    surveys: SurveyRegistry
    _office_ids: frozenset[str] = frozenset()
    _placements: dict[str, frozenset[str]] = field(default_factory=dict)
    _listeners: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        """Prepare the data directory (secret key, migrations) and open everything."""
        settings = ensure_secret_key(settings)
        surveys = load_surveys(surveys_dir(settings))
        if surveys.latest(settings.default_survey) is None:
            raise SurveyError(
                surveys_dir(settings),
                f"no survey with id {settings.default_survey!r} (OFFICEPULSE_DEFAULT_SURVEY)",
            )
        store = Store.open(
            settings.database_path,
            min_free_bytes=settings.min_free_mb * 1024 * 1024,
            memory_limit_mb=settings.memory_limit_mb,
        )
        try:
            # Read first, write only what changed: a server must start even on a full disk
            # (it then answers submissions with 503 until space is freed).
            changed = store.read(lambda cur: survey_versions_to_register(cur, surveys))
            if changed:
                store.write(lambda cur: register_survey_versions(cur, changed)).result()
            runtime = cls(settings=settings, store=store, surveys=surveys)
            runtime.refresh_offices()
        except BaseException:
            store.close()
            raise
        return runtime

    def close(self) -> None:
        self.store.close()

    @property
    def office_ids(self) -> frozenset[str]:
        """Ids of the known offices (cached; refreshed after every office change)."""
        return self._office_ids

    def refresh_offices(self) -> None:
        """Reload the cached office ids and placements (after a change to either)."""
        ids = self.store.read(office_ids)
        placements = self.store.read(office_placements)
        with self._lock:
            self._office_ids = ids
            self._placements = placements

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every administrative change (offices, kiosks, ...)."""
        self._listeners.append(listener)

    def changed(self) -> None:
        """Refresh every cache after an administrative change."""
        self.refresh_offices()
        for listener in self._listeners:
            listener()

    def placement_for(self, office_id: str, placement: str | None) -> str | None:
        """The placement to store: a registered one, ``unknown``, or None when none was given.

        A placement that is not registered for the office is stored as ``unknown`` and never
        as the string that arrived, which could be anything a URL can carry.
        """
        if placement is None:
            return None
        if placement in self._placements.get(office_id, frozenset()):
            return placement
        return UNKNOWN_PLACEMENT


def surveys_dir(settings: Settings) -> Path:
    """The folder of survey definitions in force."""
    return settings.surveys_dir if settings.surveys_dir is not None else default_surveys_dir()


def survey_versions_to_register(cur: Cursor, surveys: SurveyRegistry) -> list[Survey]:
    """The survey versions whose stored definition is missing or differs from the file."""
    stored = {
        (str(row[0]), int(row[1])): str(row[2])
        for row in cur.execute(
            "SELECT survey_id, version, definition FROM survey_versions"
        ).fetchall()
    }
    return [
        survey
        for survey in surveys
        if stored.get((survey.id, survey.version)) != survey_to_json(survey).decode()
    ]


def register_survey_versions(cur: Cursor, surveys: Iterable[Survey]) -> None:
    """Record each survey version's definition; refuse edits to versions that have responses.

    A version with responses is published: its texts and scales are what clients answered, so
    changing them would silently change the meaning of stored answers.
    """
    for survey in surveys:
        row = cur.execute(
            "SELECT definition FROM survey_versions WHERE survey_id = ? AND version = ?",
            [survey.id, survey.version],
        ).fetchone()
        if row is None:
            cur.execute(
                "INSERT INTO survey_versions (survey_id, version, definition) VALUES (?, ?, ?)",
                [survey.id, survey.version, survey_to_json(survey).decode()],
            )
            continue
        published: Survey = survey_from_json(str(row[0]).encode())
        answered = cur.execute(
            "SELECT count(*) FROM responses WHERE survey_id = ? AND survey_version = ?",
            [survey.id, survey.version],
        ).fetchone()
        if answered and answered[0] > 0:
            changes = published_changes(published, survey)
            if changes:
                raise PublishedSurveyChangedError(
                    f"survey {survey.id!r} version {survey.version} already has responses and"
                    f" cannot change; publish a new version instead: {'; '.join(changes)}"
                )
            if survey_to_json(published) == survey_to_json(survey):
                continue
        cur.execute(
            "UPDATE survey_versions SET definition = ? WHERE survey_id = ? AND version = ?",
            [survey_to_json(survey).decode(), survey.id, survey.version],
        )
