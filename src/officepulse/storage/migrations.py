"""Named, ordered schema migrations, recorded in ``schema_migrations``.

A migration is never edited once released: a change to the schema is a new entry at the end.
No table has a column for an IP address, user agent, cookie or exact time — by design.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class Migration(NamedTuple):
    name: str
    sql: str


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        "0001_offices",
        """
        CREATE TABLE offices (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL CHECK (kind IN ('pilot', 'conventional')),
            type_label VARCHAR,
            city VARCHAR,
            district VARCHAR,
            opened_on DATE,
            default_lang VARCHAR NOT NULL DEFAULT 'de',
            synthetic BOOLEAN NOT NULL DEFAULT false
        );
        """,
    ),
    Migration(
        "0002_responses",
        """
        CREATE TABLE responses (
            id UUID PRIMARY KEY,
            office_id VARCHAR NOT NULL,
            survey_id VARCHAR NOT NULL,
            survey_version INTEGER NOT NULL,
            channel VARCHAR NOT NULL CHECK (channel IN ('qr', 'kiosk', 'web')),
            placement VARCHAR,
            kiosk_id VARCHAR,
            lang VARCHAR NOT NULL,
            -- local wall-clock time truncated to the configured granularity (hour or day)
            received_at TIMESTAMP NOT NULL,
            answers MAP(VARCHAR, UTINYINT) NOT NULL,
            comment VARCHAR,
            flags VARCHAR[] NOT NULL DEFAULT [],
            -- digest of the submitted content: tells an identical retry from a conflicting one
            content_digest VARCHAR NOT NULL,
            synthetic BOOLEAN NOT NULL DEFAULT false
        );
        """,
    ),
    Migration(
        "0003_events",
        """
        CREATE SEQUENCE events_id_seq;
        CREATE TABLE events (
            id BIGINT PRIMARY KEY DEFAULT nextval('events_id_seq'),
            office_id VARCHAR NOT NULL,
            happened_on DATE NOT NULL,
            kind VARCHAR NOT NULL
                CHECK (kind IN ('redesign', 'move', 'staff_training', 'opening_hours', 'other')),
            note VARCHAR,
            synthetic BOOLEAN NOT NULL DEFAULT false
        );
        """,
    ),
    Migration(
        "0004_survey_versions",
        """
        CREATE TABLE survey_versions (
            survey_id VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            -- the definition as first seen, kept so that a published version stays immutable
            definition JSON NOT NULL,
            PRIMARY KEY (survey_id, version)
        );
        """,
    ),
    Migration(
        "0005_placements",
        """
        CREATE TABLE office_placements (
            office_id VARCHAR NOT NULL,
            placement VARCHAR NOT NULL,
            PRIMARY KEY (office_id, placement)
        );
        """,
    ),
    Migration(
        "0006_kiosks",
        """
        CREATE TABLE kiosks (
            id VARCHAR PRIMARY KEY,
            office_id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            placement VARCHAR,
            -- only keyed hashes of the one-time code and of the device token are kept
            pairing_code_hash VARCHAR,
            pairing_expires TIMESTAMPTZ,
            token_hash VARCHAR UNIQUE,
            created_at TIMESTAMPTZ NOT NULL,
            paired_at TIMESTAMPTZ,
            revoked_at TIMESTAMPTZ,
            -- the tablet's own health, never anything about a client
            last_heartbeat TIMESTAMPTZ,
            queue_length INTEGER,
            app_version VARCHAR
        );
        """,
    ),
    Migration(
        "0007_districts",
        """
        -- Official statistics per district ("Stadtteil"), one value per indicator and year.
        CREATE TABLE district_indicators (
            city VARCHAR NOT NULL,
            district_id VARCHAR NOT NULL,
            district_name VARCHAR,
            year INTEGER NOT NULL CHECK (year BETWEEN 1990 AND 2100),
            indicator VARCHAR NOT NULL,
            value DOUBLE NOT NULL,
            unit VARCHAR,
            source VARCHAR,
            PRIMARY KEY (city, district_id, year, indicator)
        );
        -- Which district an office serves; the district's indicators may be imported later.
        CREATE TABLE office_districts (
            office_id VARCHAR PRIMARY KEY,
            city VARCHAR NOT NULL,
            district_id VARCHAR NOT NULL
        );
        """,
    ),
    Migration(
        "0008_accounts",
        """
        -- Staff accounts. Clients never have one: nothing here is ever joined with responses.
        CREATE TABLE users (
            name VARCHAR PRIMARY KEY,
            password_hash VARCHAR NOT NULL,
            role VARCHAR NOT NULL CHECK (role IN ('admin', 'evaluator', 'manager')),
            offices VARCHAR[] NOT NULL DEFAULT [],
            disabled_at TIMESTAMPTZ,
            created_at TIMESTAMPTZ NOT NULL
        );
        -- Server-side sessions: only a keyed hash of the cookie's value is kept.
        CREATE TABLE sessions (
            id_hash VARCHAR PRIMARY KEY,
            user_name VARCHAR NOT NULL,
            csrf_token VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            last_seen TIMESTAMPTZ NOT NULL
        );
        -- API tokens for scripted downloads, shown once and stored as keyed hashes.
        CREATE TABLE api_tokens (
            id VARCHAR PRIMARY KEY,
            user_name VARCHAR NOT NULL,
            label VARCHAR NOT NULL,
            token_hash VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMPTZ NOT NULL,
            last_used_on DATE,
            revoked_at TIMESTAMPTZ
        );
        -- Who viewed, exported or changed what: accounts only, never a client.
        CREATE SEQUENCE audit_log_id_seq;
        CREATE TABLE audit_log (
            id BIGINT PRIMARY KEY DEFAULT nextval('audit_log_id_seq'),
            happened_at TIMESTAMPTZ NOT NULL,
            actor VARCHAR NOT NULL,
            action VARCHAR NOT NULL,
            target VARCHAR,
            detail VARCHAR
        );
        """,
    ),
    Migration(
        "0009_kiosk_pairing_retry",
        """
        -- A pairing whose answer was lost on the way: the tablet may ask again with the same
        -- code and its own attempt id for a few minutes (keyed hash; the code is used up).
        ALTER TABLE kiosks ADD COLUMN pairing_retry_hash VARCHAR;
        ALTER TABLE kiosks ADD COLUMN pairing_retry_expires TIMESTAMPTZ;
        """,
    ),
)
