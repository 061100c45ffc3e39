"""The runtime of one data directory: settings, the open store, surveys and office ids.

The server builds one in its lifespan; a CLI command with no server running builds its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from officepulse.offices import office_ids
from officepulse.settings import Settings, ensure_secret_key
from officepulse.storage import Cursor, Store
from officepulse.surveys import (
    Survey,
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
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        """Prepare the data directory (secret key, migrations) and open everything."""
        settings = ensure_secret_key(settings)
        surveys = load_surveys(surveys_dir(settings))
        store = Store.open(settings.database_path)
        try:
            store.write(lambda cur: register_survey_versions(cur, surveys)).result()
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
        ids = self.store.read(office_ids)
        with self._lock:
            self._office_ids = ids


def surveys_dir(settings: Settings) -> Path:
    """The folder of survey definitions in force."""
    return settings.surveys_dir if settings.surveys_dir is not None else default_surveys_dir()


def register_survey_versions(cur: Cursor, surveys: SurveyRegistry) -> None:
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
