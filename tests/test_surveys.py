"""Tests for survey files: the shipped survey, validation messages, registry, versioning."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from officepulse.content import content_dir
from officepulse.languages import LANGUAGES
from officepulse.surveys import (
    DIMENSIONS,
    ID_PATTERN,
    KINDS,
    MAX_TEXT_LENGTH,
    POLARITIES,
    REVIEW_STATUSES,
    SCALE_MAX,
    SCALE_MIN,
    SCALE_POINTS,
    Item,
    Localized,
    LocalizedLabels,
    Survey,
    SurveyError,
    SurveyRegistry,
    check_survey_file,
    coverage,
    default_surveys_dir,
    format_coverage,
    load_survey_file,
    load_surveys,
    published_changes,
    survey_from_json,
    survey_to_json,
)

# A small valid survey; the bad-file table below derives every case from it by replacing
# exactly one snippet, so each case shows precisely what is wrong.
VALID = """\
id = "mini"
version = 1
default_lang = "de"
title = { de = "Kurzbefragung", en = "Short survey" }
intro = { de = "Anonym, am Ende ein Kommentar.", en = "Anonymous, a comment at the end." }

[[items]]
id = "calm"
dimension = "stress"
kind = "rating"
polarity = "lower_is_better"
core = true
text = { de = "Wie angespannt sind Sie?", en = "How tense are you?" }
labels.de = ["gar nicht", "kaum", "etwas", "ziemlich", "sehr"]
labels.en = ["not at all", "slightly", "somewhat", "quite", "very"]

[[items]]
id = "note"
dimension = "comment"
kind = "text"
max_length = 200
text = { de = "Was sollen wir besser machen?", en = "What should we do better?" }
hint = { de = "Keine Namen.", en = "No names." }
"""

DE_LABELS = '["gar nicht", "kaum", "etwas", "ziemlich", "sehr"]'
EN_LABELS = '["not at all", "slightly", "somewhat", "quite", "very"]'
CALM_TEXT = 'text = { de = "Wie angespannt sind Sie?", en = "How tense are you?" }'
NOTE_ITEM = VALID[VALID.index('[[items]]\nid = "note"') :]
INTRO_LINE = 'intro = { de = "Anonym'


def with_review(table: str) -> str:
    """``VALID`` with a ``review`` table written as the inline TOML ``table``."""
    return variant((INTRO_LINE, f"review = {table}\n{INTRO_LINE}"))


def variant(*replacements: tuple[str, str]) -> str:
    """``VALID`` with each ``(old, new)`` applied; ``old`` must occur exactly once."""
    source = VALID
    for old, new in replacements:
        assert source.count(old) == 1, f"test table bug: {old!r} occurs {source.count(old)} times"
        source = source.replace(old, new)
    return source


def write(directory: Path, source: str, name: str = "bad.toml") -> Path:
    path = directory / name
    path.write_text(source, encoding="utf-8")
    return path


def shipped() -> Survey:
    return load_survey_file(default_surveys_dir() / "atmosphere.toml")


# --------------------------------------------------------------------------------------------
# The shipped survey


def test_shipped_atmosphere_survey() -> None:
    survey = shipped()
    assert (survey.id, survey.version, survey.default_lang) == ("atmosphere", 1, "de")
    expected = {
        "stress_now": ("stress", "rating", "lower_is_better", True),
        "respect": ("friendliness", "rating", "higher_is_better", True),
        "heard": ("friendliness", "rating", "higher_is_better", False),
        "next_steps": ("clarity", "rating", "higher_is_better", False),
        "rooms": ("room", "rating", "higher_is_better", True),
        "wayfinding": ("room", "rating", "higher_is_better", False),
        "effort": ("effort", "rating", "higher_is_better", True),
        "overall": ("overall", "rating", "higher_is_better", True),
        "comment": ("comment", "text", None, False),
    }
    assert [item.id for item in survey.items] == list(expected)
    for item in survey.items:
        assert (item.dimension, item.kind, item.polarity, item.core) == expected[item.id]
    assert set(survey.core_items) == {"stress_now", "respect", "rooms", "effort", "overall"}
    assert [item.id for item in survey.rating_items] == list(expected)[:-1]

    comment = survey.comment_item
    assert comment is not None
    assert comment.id == "comment"
    assert comment.max_length == 500
    assert comment.hint["de"] == "Bitte keine Namen oder persönlichen Daten."
    assert comment.labels == {}
    assert comment.scale == ()

    assert survey.languages == tuple(LANGUAGES)
    for item in survey.rating_items:
        assert item.scale == (SCALE_MIN, 2, 3, 4, SCALE_MAX)
        assert set(item.labels) == set(LANGUAGES)
        assert all(len(labels) == 5 for labels in item.labels.values())
    respect = survey.item("respect")
    assert respect is not None
    assert respect.text["de"] == "Ich wurde freundlich und mit Respekt behandelt."
    assert survey.item("nope") is None
    # The intro promises anonymity in both languages.
    assert "anonym" in survey.intro["de"]
    assert "anonymous" in survey.intro["en"]


def test_shipped_surveys_are_all_valid() -> None:
    paths = sorted(default_surveys_dir().glob("*.toml"))
    assert paths
    for path in paths:
        assert check_survey_file(path) == []
    assert load_surveys(default_surveys_dir()).get("atmosphere", 1) == shipped()


def test_content_dir() -> None:
    assert default_surveys_dir() == content_dir("surveys")
    assert (content_dir("surveys") / "atmosphere.toml").is_file()
    for bad in ("", "..", "../etc", "a/b"):
        with pytest.raises(ValueError, match="plain name"):
            content_dir(bad)


def test_valid_fixture_is_valid(tmp_path: Path) -> None:
    # Guards the bad-file table: every failure there must come from its one replacement.
    path = write(tmp_path, VALID)
    assert check_survey_file(path) == []
    survey = load_survey_file(path)
    assert survey.languages == ("de", "en")
    assert survey.core_items == ("calm",)


# --------------------------------------------------------------------------------------------
# Translations of the shipped survey

# Words that must not be translated (none of the shipped texts is only a proper noun today).
PROPER_NOUNS = frozenset({"Jobcenter"})

# How each intro promises anonymity; a translation must never lose that promise.
ANONYMITY = {
    "de": "anonym",
    "de-x-ls": "So weiß niemand",
    "en": "anonymous",
    "uk": "анонімне",
    "ru": "анонимный",
    "ar": "مجهولة الهوية",
    "fa": "بدون نام",
    "ps": "بې نومه",
    "tr": "anonim",
    "kmr": "bênav",
    "ro": "anonim",
    "bg": "анонимна",
    "pl": "anonimowa",
}

MAX_LABEL_LENGTH = 25
"""Labels sit under smiley faces on a phone."""


def texts_by_field(survey: Survey, tag: str) -> dict[str, str]:
    """Every single text of ``survey`` in ``tag`` (labels one by one), keyed by where it is."""
    texts = {"title": survey.title[tag], "intro": survey.intro[tag]}
    for item in survey.items:
        texts[f"{item.id}.text"] = item.text[tag]
        if tag in item.hint:
            texts[f"{item.id}.hint"] = item.hint[tag]
        for value, label in enumerate(item.labels.get(tag, []), start=SCALE_MIN):
            texts[f"{item.id}.labels[{value}]"] = label
    return texts


def test_anonymity_table_covers_all_languages() -> None:
    assert list(ANONYMITY) == list(LANGUAGES)


@pytest.mark.parametrize("tag", list(LANGUAGES))
def test_shipped_survey_is_complete_in(tag: str) -> None:
    survey = shipped()
    assert tag in survey.languages
    for item in survey.items:
        assert item.text[tag].strip()
        if item.is_rating:
            assert len(item.labels[tag]) == SCALE_POINTS
            for label in item.labels[tag]:
                assert label.strip()
                assert len(label) <= MAX_LABEL_LENGTH, f"{item.id} in {tag}: {label!r}"
        if item.hint:
            assert item.hint[tag].strip(), f"{item.id} has no hint in {tag}"
    assert ANONYMITY[tag] in survey.intro[tag]
    expected_status = "source" if tag == "de" else "draft"
    assert survey.review_status(tag) == expected_status


@pytest.mark.parametrize("tag", [tag for tag in LANGUAGES if tag != "de"])
def test_shipped_translation_is_not_german(tag: str) -> None:
    survey = shipped()
    german = texts_by_field(survey, "de")
    translated = texts_by_field(survey, tag)
    assert translated.keys() == german.keys()
    if tag == "de-x-ls":
        # Easy language may share a single label with German (e.g. "sehr zufrieden"), but
        # never a question, a hint or a whole scale.
        german = {key: text for key, text in german.items() if "labels[" not in key}
        for item in survey.rating_items:
            assert item.labels[tag] != item.labels["de"], item.id
    copied = [
        key for key, text in german.items() if translated[key] == text and text not in PROPER_NOUNS
    ]
    assert copied == []


def test_easy_language_rules() -> None:
    survey = shipped()
    subjunctive = re.compile(r"\b(würde|würden|könnte|könnten|sollte|möchte|möchten|hätte|wäre)\b")
    for key, text in texts_by_field(survey, "de-x-ls").items():
        assert not subjunctive.search(text), f"{key}: no Konjunktiv in Leichte Sprache"
        for sentence in re.split(r"[.?!]", text):
            # One statement per sentence keeps sentences short.
            assert len(sentence.split()) <= 10, f"{key}: sentence too long: {sentence!r}"


def test_shipped_coverage_is_complete() -> None:
    survey = shipped()
    rows = coverage(survey)
    assert [row.lang for row in rows] == list(LANGUAGES)
    assert all(row.complete and row.missing == [] for row in rows)
    # title, intro, 9 item texts, 8 label sets, 1 hint
    assert {(row.expected, row.present) for row in rows} == {(20, 20)}
    text = format_coverage(survey)
    for tag in LANGUAGES:
        assert re.search(rf"^{re.escape(tag)} ", text, re.MULTILINE), tag
    assert "draft" in text
    assert "source" in text
    assert "falls back" not in text
    assert text.count("—") == 1  # only in the legend: no cell is missing
    assert "13 languages: 13 complete, 0 incomplete; 1 source, 0 reviewed, 12 draft" in text
    assert max(len(line) for line in text.splitlines()) <= 100


# --------------------------------------------------------------------------------------------
# Review status, text lookup with fallback, coverage of a partial translation

# ``VALID`` plus Turkish for the title and the rating item only: the intro and the comment
# item (text and hint) are missing in Turkish and must fall back to German.
PARTIAL = variant(
    (
        'title = { de = "Kurzbefragung", en = "Short survey" }',
        'title = { de = "Kurzbefragung", en = "Short survey", tr = "Kısa anket" }',
    ),
    (
        CALM_TEXT,
        'text = { de = "Wie angespannt sind Sie?", en = "How tense are you?",'
        ' tr = "Ne kadar gerginsiniz?" }',
    ),
    (
        f"labels.en = {EN_LABELS}",
        f'labels.en = {EN_LABELS}\nlabels.tr = ["hiç", "az", "biraz", "oldukça", "çok"]',
    ),
    (INTRO_LINE, f'review = {{ tr = "reviewed" }}\n{INTRO_LINE}'),
)


def partial(tmp_path: Path) -> Survey:
    return load_survey_file(write(tmp_path, PARTIAL, "partial.toml"))


def items_of(survey: Survey) -> tuple[Item, Item]:
    calm, note = survey.item("calm"), survey.item("note")
    assert calm is not None
    assert note is not None
    return calm, note


def test_review_status(tmp_path: Path) -> None:
    plain = load_survey_file(write(tmp_path, VALID))
    # No review table: the default language is the source, every other language a draft.
    assert [plain.review_status(tag) for tag in ("de", "en", "tr")] == [
        "source",
        "draft",
        "missing",
    ]
    survey = partial(tmp_path)
    assert survey.review == {"tr": "reviewed"}
    assert [survey.review_status(tag) for tag in ("de", "en", "tr", "pl", "xx")] == [
        "source",
        "draft",
        "reviewed",
        "missing",
        "missing",
    ]
    assert survey.text_languages == {"de", "en", "tr"}
    assert "tr" not in survey.languages
    assert set(REVIEW_STATUSES) == {"source", "reviewed", "draft"}


def test_lookup_in_the_requested_language(tmp_path: Path) -> None:
    survey = partial(tmp_path)
    calm, _ = items_of(survey)
    assert survey.title_for("tr") == Localized("Kısa anket", "tr", fallback=False)
    assert calm.text_for("tr", "de") == Localized("Ne kadar gerginsiniz?", "tr", fallback=False)
    assert calm.labels_for("tr", "de") == LocalizedLabels(
        ("hiç", "az", "biraz", "oldukça", "çok"), "tr", fallback=False
    )
    assert survey.title_for("de") == Localized("Kurzbefragung", "de", fallback=False)


def test_lookup_falls_back_to_the_default_language(tmp_path: Path) -> None:
    survey = partial(tmp_path)
    calm, note = items_of(survey)
    german_intro = "Anonym, am Ende ein Kommentar."
    assert survey.intro_for("tr") == Localized(german_intro, "de", fallback=True)
    assert note.text_for("tr", "de") == Localized("Was sollen wir besser machen?", "de", True)
    assert note.hint_for("tr", "de") == Localized("Keine Namen.", "de", fallback=True)
    assert note.hint_for("en", "de") == Localized("No names.", "en", fallback=False)
    assert calm.hint_for("tr", "de") is None  # no hint in any language
    assert calm.labels_for("pl", "de") == LocalizedLabels(
        ("gar nicht", "kaum", "etwas", "ziemlich", "sehr"), "de", fallback=True
    )
    # An unsupported tag is just another language without texts.
    assert survey.title_for("xx") == Localized("Kurzbefragung", "de", fallback=True)


def test_lookup_treats_blank_and_incomplete_as_missing(tmp_path: Path) -> None:
    survey = partial(tmp_path)
    calm, _ = items_of(survey)
    blank = msgspec.structs.replace(
        calm,
        text={**calm.text, "tr": "  "},
        labels={**calm.labels, "tr": ["hiç", "", "biraz", "oldukça", "çok"], "en": ["a"] * 4},
    )
    assert blank.text_for("tr", "de") == Localized("Wie angespannt sind Sie?", "de", True)
    assert blank.labels_for("tr", "de").lang == "de"
    assert blank.labels_for("en", "de").fallback
    blank_title = msgspec.structs.replace(survey, title={**survey.title, "tr": ""})
    assert blank_title.title_for("tr") == Localized("Kurzbefragung", "de", fallback=True)


def test_lookup_errors(tmp_path: Path) -> None:
    survey = partial(tmp_path)
    calm, note = items_of(survey)
    with pytest.raises(ValueError, match="'note' is a text item and has no labels"):
        note.labels_for("de", "de")
    # Only an unvalidated survey can lack the default language; then nothing is invented.
    with pytest.raises(LookupError, match="item 'calm': text: no text in 'pl' nor in"):
        calm.text_for("pl", "ro")
    with pytest.raises(LookupError, match="labels"):
        calm.labels_for("pl", "ro")
    broken = msgspec.structs.replace(survey, title={"de": " "}, intro={})
    with pytest.raises(LookupError, match="title"):
        broken.title_for("de")
    with pytest.raises(LookupError, match="intro"):
        broken.intro_for("en")


@settings(max_examples=100, deadline=None)
@given(
    texts=st.dictionaries(st.sampled_from(sorted(LANGUAGES)), st.text(max_size=4)),
    lang=st.sampled_from([*sorted(LANGUAGES), "xx"]),
    default_lang=st.sampled_from(sorted(LANGUAGES)),
    default_text=st.text(min_size=1, max_size=4).filter(str.strip),
)
def test_lookup_never_returns_blank(
    texts: dict[str, str], lang: str, default_lang: str, default_text: str
) -> None:
    texts = {**texts, default_lang: default_text}
    item = Item(id="q", dimension="comment", kind="text", text=texts, hint=texts)
    for found in (item.text_for(lang, default_lang), item.hint_for(lang, default_lang)):
        assert found is not None
        assert found.text.strip()
        expected = lang if lang == default_lang or texts.get(lang, "").strip() else default_lang
        assert found.lang == expected
        assert found.text == texts[expected]
        assert found.fallback == (expected != lang)


def test_coverage_of_a_partial_translation(tmp_path: Path) -> None:
    survey = partial(tmp_path)
    rows = {row.lang: row for row in coverage(survey, ["de", "en", "tr", "pl"])}
    assert list(rows) == ["de", "en", "tr", "pl"]
    assert rows["tr"].native_name == "Türkçe"
    assert [(row.status, row.expected, row.present) for row in rows.values()] == [
        ("source", 6, 6),
        ("draft", 6, 6),
        ("reviewed", 6, 3),
        ("missing", 6, 0),
    ]
    assert rows["tr"].missing == ["intro", "note.text", "note.hint"]
    assert not rows["tr"].complete
    assert rows["en"].complete
    assert rows["pl"].missing == [
        "title",
        "intro",
        "calm.text",
        "calm.labels",
        "note.text",
        "note.hint",
    ]
    assert len(coverage(survey)) == len(LANGUAGES)
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        coverage(survey, ["de", "xx"])


def test_format_coverage_of_a_partial_translation(tmp_path: Path) -> None:
    text = format_coverage(partial(tmp_path), ["de", "en", "tr", "pl"])
    assert text == (
        "Translations of mini v1 (default language: de)\n"
        "\n"
        "lang  language  status    texts  missing\n"
        "de    Deutsch   source      6/6        0\n"
        "en    English   draft       6/6        0\n"
        "tr    Türkçe    reviewed    3/6        3  falls back to de\n"
        "pl    Polski    missing     0/6        6  falls back to de\n"
        "\n"
        "4 languages: 2 complete, 2 incomplete; 1 source, 1 reviewed, 1 draft,"
        " 1 without any text\n"
        "\n"
        "Items x languages (ok = source or reviewed, draft = not yet reviewed,"
        " — = missing, shown in de)\n"
        "\n"
        "item    de    en    tr    pl\n"
        "------- ----- ----- ----- -----\n"
        "(title) ok    draft ok    —\n"
        "(intro) ok    draft —     —\n"
        "calm    ok    draft ok    —\n"
        "note    ok    draft —     —\n"
        "------- ----- ----- ----- -----\n"
        "missing 0     0     2     4\n"
        "draft   0     4     0     0"
    )
    # The pure function and the full table agree on what falls back.
    full = format_coverage(partial(tmp_path))
    assert full.count("falls back to de") == len(LANGUAGES) - 2
    assert max(len(line) for line in full.splitlines()) <= 100


# --------------------------------------------------------------------------------------------
# Bad files: one replacement each -> expected fragments of the one-line error


BAD_FILES = [
    pytest.param(
        variant(("version = 1", "version = ")), ["invalid TOML", "line 2"], id="syntax-error"
    ),
    pytest.param(
        variant(('id = "calm"\n', 'id = "calm"\nid = "again"\n')),
        ["invalid TOML", "line 9"],
        id="syntax-duplicate-key",
    ),
    pytest.param(
        variant(("version = 1\n", 'version = 1\ncolour = "blue"\n')),
        ["field 'colour'", "unknown field (allowed: id, version"],
        id="unknown-survey-field",
    ),
    pytest.param(
        variant(("core = true", "core = true\nweight = 2")),
        ["item 'calm'", "field 'weight'", "unknown field (allowed: id, dimension"],
        id="unknown-item-field",
    ),
    pytest.param(
        variant(("max_length = 200", 'max_length = "200"')),
        ["item 'note'", "field 'max_length'", "expected int, got str"],
        id="wrong-type",
    ),
    pytest.param(
        variant(("version = 1", "version = true")),
        ["field 'version'", "expected int, got bool"],
        id="version-bool",
    ),
    pytest.param(
        variant((f"de = {DE_LABELS}", 'de = ["gar nicht", 2, "etwas", "ziemlich", "sehr"]')),
        ["item 'calm'", "field 'labels'", "expected str, got int (at labels[...][1])"],
        id="label-wrong-type",
    ),
    pytest.param(
        variant(('dimension = "stress"\n', "")),
        ["item 'calm'", "field 'dimension'", "required field is missing"],
        id="missing-item-field",
    ),
    pytest.param(
        variant(('id = "calm"\n', "")),
        ["item '#1'", "field 'id'", "required field is missing"],
        id="item-without-id",
    ),
    pytest.param(
        variant(('title = { de = "Kurzbefragung", en = "Short survey" }\n', "")),
        ["field 'title'", "required field is missing"],
        id="missing-title",
    ),
    pytest.param(
        variant(('id = "mini"', 'id = "Mini-Survey"')),
        ["field 'id'", "lowercase slug", "got 'Mini-Survey'"],
        id="bad-survey-id",
    ),
    pytest.param(
        variant(('id = "mini"', f'id = "{"a" * 41}"')),
        ["field 'id'", "lowercase slug"],
        id="survey-id-too-long",
    ),
    pytest.param(
        variant(('id = "calm"', 'id = "2calm"')),
        ["item '2calm'", "field 'id'", "lowercase slug", "got '2calm'"],
        id="bad-item-id",
    ),
    pytest.param(
        variant(('id = "note"', 'id = "calm"')),
        ["item 'calm'", "field 'id'", "duplicate item id (items #1 and #2)"],
        id="duplicate-item-id",
    ),
    pytest.param(
        variant(("version = 1", "version = 0")),
        ["field 'version'", "must be at least 1, got 0"],
        id="version-0",
    ),
    pytest.param(
        variant(('dimension = "stress"', 'dimension = "mood"')),
        ["item 'calm'", "field 'dimension'", "expected one of 'stress', 'friendliness'", "'mood'"],
        id="unknown-dimension",
    ),
    pytest.param(
        variant(('dimension = "stress"', 'dimension = "comment"')),
        ["item 'calm'", "field 'dimension'", "'comment' is only for text items"],
        id="comment-dimension-on-rating",
    ),
    pytest.param(
        variant(('kind = "rating"', 'kind = "scale"')),
        ["item 'calm'", "field 'kind'", "expected one of 'rating', 'text', got 'scale'"],
        id="unknown-kind",
    ),
    pytest.param(
        variant(('polarity = "lower_is_better"\n', "")),
        ["item 'calm'", "field 'polarity'", "required for rating items"],
        id="missing-polarity",
    ),
    pytest.param(
        variant(('polarity = "lower_is_better"', 'polarity = "up"')),
        [
            "item 'calm': field 'polarity': "
            "expected one of 'higher_is_better', 'lower_is_better', got 'up'"
        ],
        id="bad-polarity",
    ),
    pytest.param(
        variant((f"de = {DE_LABELS}", 'de = ["gar nicht", "kaum", "etwas", "sehr"]')),
        ["item 'calm'", "field 'labels'", "exactly 5 labels for 'de'", "got 4"],
        id="four-labels",
    ),
    pytest.param(
        variant((f"en = {EN_LABELS}", 'en = ["a", "b", "c", "d", "e", "f"]')),
        ["item 'calm'", "field 'labels'", "exactly 5 labels for 'en'", "got 6"],
        id="six-labels",
    ),
    pytest.param(
        variant((f"de = {DE_LABELS}", 'de = ["gar nicht", "kaum", " ", "ziemlich", "sehr"]')),
        ["item 'calm'", "field 'labels'", "empty label for 'de'"],
        id="empty-label",
    ),
    pytest.param(
        variant((f"labels.en = {EN_LABELS}\n", "")),
        ["item 'calm'", "field 'labels'", "missing for 'en'"],
        id="labels-missing-language",
    ),
    pytest.param(
        variant((f"en = {EN_LABELS}", f"en = {EN_LABELS}\nlabels.tr = {EN_LABELS}")),
        ["item 'calm'", "field 'labels'", "labels in 'tr' but no text in 'tr'"],
        id="labels-without-text",
    ),
    pytest.param(
        variant(('en = "How tense are you?"', 'en = "How tense are you?", fr = "Stressé ?"')),
        ["item 'calm'", "field 'text'", "unknown language 'fr'"],
        id="unknown-language-text",
    ),
    pytest.param(
        variant((f"en = {EN_LABELS}", f"en = {EN_LABELS}\nlabels.xx = {EN_LABELS}")),
        ["item 'calm'", "field 'labels'", "unknown language 'xx'"],
        id="unknown-language-labels",
    ),
    pytest.param(
        variant(('en = "Short survey"', 'en = "Short survey", EN = "Short survey"')),
        ["field 'title'", "unknown language 'EN'"],
        id="unknown-language-title",
    ),
    pytest.param(
        variant(('default_lang = "de"', 'default_lang = "fr"')),
        ["field 'default_lang'", "unknown language 'fr'"],
        id="unknown-default-lang",
    ),
    pytest.param(
        variant((CALM_TEXT, 'text = { en = "How tense are you?" }')),
        ["item 'calm'", "field 'text'", "missing text in the default language 'de'"],
        id="missing-default-text",
    ),
    pytest.param(
        variant(('{ de = "Anonym, am Ende ein Kommentar.", ', "{ ")),
        ["field 'intro'", "missing text in the default language 'de'"],
        id="missing-default-intro",
    ),
    pytest.param(
        variant(('default_lang = "de"', 'default_lang = "tr"')),
        ["field 'title'", "missing text in the default language 'tr'"],
        id="default-lang-without-texts",
    ),
    pytest.param(
        variant(('de = "Kurzbefragung"', 'de = "   "')),
        ["field 'title'", "text for 'de' is empty"],
        id="empty-title",
    ),
    pytest.param(
        variant(('de = "Wie angespannt sind Sie?"', 'de = ""')),
        ["item 'calm'", "field 'text'", "text for 'de' is empty"],
        id="empty-item-text",
    ),
    pytest.param(
        variant(
            ('hint = { de = "Keine Namen.", en = "No names." }', 'hint = { en = "No names." }')
        ),
        ["item 'note'", "field 'hint'", "missing text in the default language 'de'"],
        id="hint-without-default",
    ),
    pytest.param(
        variant(('en = "No names." }', 'en = "No names.", tr = "İsim yok." }')),
        ["item 'note'", "field 'hint'", "hint in 'tr' but no text in 'tr'"],
        id="hint-without-text",
    ),
    pytest.param(
        variant(("max_length = 200", f"max_length = 200\nlabels = {{ de = {DE_LABELS} }}")),
        ["item 'note'", "field 'labels'", "not allowed for text items"],
        id="text-item-with-labels",
    ),
    pytest.param(
        variant(("max_length = 200", 'max_length = 200\npolarity = "higher_is_better"')),
        ["item 'note'", "field 'polarity'", "not allowed for text items"],
        id="text-item-with-polarity",
    ),
    pytest.param(
        variant(("max_length = 200", "max_length = 0")),
        ["item 'note'", "field 'max_length'", "expected 1..2000, got 0"],
        id="max-length-0",
    ),
    pytest.param(
        variant(("max_length = 200", "max_length = 2001")),
        ["item 'note'", "field 'max_length'", "expected 1..2000, got 2001"],
        id="max-length-too-big",
    ),
    pytest.param(
        variant(("max_length = 200\n", "")),
        ["item 'note'", "field 'max_length'", "required for text items"],
        id="text-item-without-max-length",
    ),
    pytest.param(
        variant(("core = true", "core = true\nmax_length = 10")),
        ["item 'calm'", "field 'max_length'", "only allowed for text items"],
        id="rating-item-with-max-length",
    ),
    pytest.param(
        variant(("core = true", "core = false")),
        ["field 'items'", "no core item"],
        id="no-core-item",
    ),
    pytest.param(
        variant(("max_length = 200", "max_length = 200\ncore = true")),
        ["item 'note'", "field 'core'", "core items must be rating items"],
        id="core-text-item",
    ),
    pytest.param(
        variant((NOTE_ITEM, NOTE_ITEM + "\n" + NOTE_ITEM.replace('"note"', '"more"'))),
        ["field 'items'", "at most one text item", "note, more"],
        id="two-text-items",
    ),
    pytest.param(
        variant((VALID[VALID.index("[[items]]") :], "items = []\n")),
        ["field 'items'", "at least one item"],
        id="no-items",
    ),
    pytest.param(
        variant(('de = "Wie angespannt sind Sie?"', 'de = "War Ihr Berater freundlich?"')),
        ["item 'calm'", "field 'text'", "mentions staff ('berater')"],
        id="staff-item-german",
    ),
    pytest.param(
        variant(('en = "How tense are you?"', 'en = "Was the staff member friendly?"')),
        ["item 'calm'", "field 'text'", "mentions staff ('staff member')"],
        id="staff-item-english",
    ),
    pytest.param(
        variant(('id = "calm"', 'id = "caseworker_kind"')),
        ["item 'caseworker_kind'", "field 'id'", "mentions staff ('caseworker')"],
        id="staff-item-id",
    ),
    pytest.param(
        variant(('"ziemlich", "sehr"]', '"ziemlich", "wie Ihr Sachbearbeiter"]')),
        ["item 'calm'", "field 'labels'", "mentions staff ('sachbearbeiter')"],
        id="staff-item-label",
    ),
    pytest.param(
        with_review('{ de = "source", en = "checked" }'),
        [
            "field 'review'",
            "for 'en': expected one of 'source', 'reviewed', 'draft', got 'checked'",
        ],
        id="review-bad-value",
    ),
    pytest.param(
        with_review('{ de = "source", en = "source" }'),
        ["field 'review'", "only one language can be 'source'", "got 2: de, en"],
        id="review-two-sources",
    ),
    pytest.param(
        with_review('{ en = "source" }'),
        ["field 'review'", "'source' must be the default language 'de', got 'en'"],
        id="review-source-not-default",
    ),
    pytest.param(
        with_review('{ de = "source", tr = "draft" }'),
        ["field 'review'", "status for 'tr' but the survey has no texts in 'tr'"],
        id="review-language-without-texts",
    ),
    pytest.param(
        with_review('{ xx = "draft" }'),
        ["field 'review'", "unknown language 'xx'"],
        id="review-unknown-language",
    ),
    pytest.param(
        with_review("{ en = 1 }"),
        ["field 'review'", "expected str, got int"],
        id="review-wrong-type",
    ),
    pytest.param(
        with_review('"draft"'),
        ["field 'review'", "expected object, got str"],
        id="review-not-a-table",
    ),
]


@pytest.mark.parametrize(("source", "fragments"), BAD_FILES)
def test_bad_survey_file(tmp_path: Path, source: str, fragments: list[str]) -> None:
    path = write(tmp_path, source)
    problems = check_survey_file(path)
    assert problems, "expected at least one problem"
    first = str(problems[0])
    assert first.startswith(f"{path}: ")
    assert "\n" not in first
    for fragment in fragments:
        assert fragment in first
    with pytest.raises(SurveyError) as raised:
        load_survey_file(path)
    assert str(raised.value) == first
    assert raised.value.path == path


def test_error_parts_and_exact_message(tmp_path: Path) -> None:
    path = write(tmp_path, variant(('polarity = "lower_is_better"', 'polarity = "up"')))
    with pytest.raises(SurveyError) as raised:
        load_survey_file(path)
    error = raised.value
    assert (error.path, error.item, error.field) == (path, "calm", "polarity")
    assert error.message == "expected one of 'higher_is_better', 'lower_is_better', got 'up'"
    assert str(error) == f"{path}: item 'calm': field 'polarity': {error.message}"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own data
    assert (str(copy), copy.item, copy.field) == (str(error), "calm", "polarity")


def test_survey_level_error_has_no_item_part(tmp_path: Path) -> None:
    path = write(tmp_path, variant(("version = 1", "version = -3")))
    assert [str(problem) for problem in check_survey_file(path)] == [
        f"{path}: field 'version': must be at least 1, got -3"
    ]


def test_check_collects_all_semantic_problems(tmp_path: Path) -> None:
    source = variant(
        ('id = "mini"', 'id = "Mini"'),
        ('dimension = "stress"', 'dimension = "mood"'),
        ('polarity = "lower_is_better"', 'polarity = "up"'),
        ("max_length = 200", "max_length = 0"),
    )
    problems = check_survey_file(write(tmp_path, source))
    assert [(problem.item, problem.field) for problem in problems] == [
        (None, "id"),
        ("calm", "dimension"),
        ("calm", "polarity"),
        ("note", "max_length"),
    ]


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert "cannot read file" in str(check_survey_file(missing)[0])
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(VALID.replace("Was sollen", "Wäre").encode("latin-1"))
    assert f"{latin1}: file is not valid UTF-8" in str(check_survey_file(latin1)[0])


# --------------------------------------------------------------------------------------------
# Directory loading and the registry


def test_load_surveys_duplicate_names_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, VALID, "a.toml")
    second = write(
        tmp_path, VALID.replace('title = { de = "Kurz', 'title = { de = "Lang'), "b.toml"
    )
    with pytest.raises(SurveyError) as raised:
        load_surveys(tmp_path)
    message = str(raised.value)
    assert str(first) in message
    assert str(second) in message
    assert "survey 'mini' version 1 is already defined" in message


def test_load_surveys_stops_at_bad_file(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.toml")
    write(tmp_path, variant(("version = 1", "version = 0")), "b.toml")
    with pytest.raises(SurveyError, match=r"b\.toml: field 'version'"):
        load_surveys(tmp_path)


def test_load_surveys_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SurveyError, match="survey directory not found"):
        load_surveys(tmp_path / "nope")


def test_registry_lookups(tmp_path: Path) -> None:
    write(tmp_path, VALID, "mini.toml")
    write(tmp_path, variant(("version = 1", "version = 3")), "mini_v3.toml")
    write(tmp_path, variant(("version = 1", "version = 2")), "mini_v2.toml")
    write(tmp_path, variant(('id = "mini"', 'id = "alpha"')), "alpha.toml")
    write(tmp_path, "this is not toml", ".#mini.toml")  # editor lock file: ignored
    (tmp_path / "notes.txt").write_text("not a survey", encoding="utf-8")

    registry = load_surveys(tmp_path)
    assert len(registry) == 4
    assert [(survey.id, survey.version) for survey in registry] == [
        ("alpha", 1),
        ("mini", 1),
        ("mini", 2),
        ("mini", 3),
    ]
    assert registry.ids() == ("alpha", "mini")
    assert registry.versions("mini") == (1, 2, 3)
    assert registry.versions("nope") == ()
    latest = registry.latest("mini")
    assert latest is not None
    assert latest.version == 3
    assert registry.latest("nope") is None
    assert registry.get("mini", 2) is registry[("mini", 2)]
    assert registry.get("mini", 4) is None
    assert ("alpha", 1) in registry
    assert ("alpha", 2) not in registry
    with pytest.raises(KeyError):
        registry[("alpha", 2)]
    assert repr(registry) == "SurveyRegistry(alpha@1, mini@1, mini@2, mini@3)"


def test_registry_rejects_duplicates() -> None:
    survey = shipped()
    with pytest.raises(ValueError, match="duplicate survey 'atmosphere' version 1"):
        SurveyRegistry([survey, survey])


# --------------------------------------------------------------------------------------------
# Published versions are immutable


def replace_item(survey: Survey, item_id: str, **changes: object) -> Survey:
    items = tuple(
        msgspec.structs.replace(item, **changes) if item.id == item_id else item
        for item in survey.items
    )
    return msgspec.structs.replace(survey, items=items)


def test_published_unchanged_is_compatible() -> None:
    assert published_changes(shipped(), shipped()) == []


def test_published_changed_german_text() -> None:
    published = shipped()
    respect = published.item("respect")
    assert respect is not None
    current = replace_item(
        published, "respect", text={**respect.text, "de": "Ich wurde höflich behandelt."}
    )
    problems = published_changes(published, current)
    assert len(problems) == 1
    assert "item 'respect'" in problems[0]
    assert "field 'text' in 'de'" in problems[0]
    assert "Ich wurde höflich behandelt." in problems[0]


def without_language(survey: Survey, tag: str, *, only_item: str | None = None) -> Survey:
    """``survey`` as it was before ``tag`` was translated (or only ``only_item`` in ``tag``)."""

    def drop(table: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in table.items() if key != tag}

    items = tuple(
        msgspec.structs.replace(
            item, text=drop(item.text), labels=drop(item.labels), hint=drop(item.hint)
        )
        if only_item in (None, item.id)
        else item
        for item in survey.items
    )
    if only_item is not None:
        return msgspec.structs.replace(survey, items=items)
    return msgspec.structs.replace(
        survey,
        title=drop(survey.title),
        intro=drop(survey.intro),
        review=drop(survey.review),
        items=items,
    )


@pytest.mark.parametrize("tag", ["tr", "de-x-ls", "ar"])
def test_published_added_language_is_compatible(tag: str) -> None:
    current = shipped()
    published = without_language(current, tag)
    assert tag not in published.text_languages
    assert tag in current.languages
    assert published_changes(published, current) == []


def test_published_completed_translation_is_compatible() -> None:
    # A language that was incomplete when published may be completed later.
    current = shipped()
    assert published_changes(without_language(current, "pl", only_item="heard"), current) == []


def test_published_changed_translation_is_not_compatible() -> None:
    published = shipped()
    heard = published.item("heard")
    assert heard is not None
    current = replace_item(published, "heard", text={**heard.text, "tr": "Beni dinlediler."})
    current = msgspec.structs.replace(current, review={**current.review, "tr": "reviewed"})
    problems = published_changes(published, current)
    assert len(problems) == 1
    assert "item 'heard': field 'text' in 'tr' changed" in problems[0]


def test_published_review_changes_are_compatible() -> None:
    published = shipped()
    reviewed = msgspec.structs.replace(
        published, review={**published.review, "tr": "reviewed", "uk": "reviewed"}
    )
    assert reviewed.review_status("tr") == "reviewed"
    assert published_changes(published, reviewed) == []
    assert published_changes(reviewed, published) == []
    # A snapshot stored before the review table existed has none at all.
    no_table = msgspec.structs.replace(published, review={})
    assert published_changes(no_table, reviewed) == []
    assert published_changes(reviewed, no_table) == []


def test_published_removed_and_added_items() -> None:
    published = shipped()
    without_heard = msgspec.structs.replace(
        published, items=tuple(item for item in published.items if item.id != "heard")
    )
    assert published_changes(published, without_heard) == [
        "atmosphere v1: item 'heard' was removed"
    ]
    assert published_changes(without_heard, published) == ["atmosphere v1: item 'heard' was added"]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"polarity": "lower_is_better"}, "field 'polarity' changed from 'higher_is_better'"),
        ({"core": False}, "field 'core' changed from True to False"),
        ({"dimension": "overall"}, "field 'dimension' changed from 'room'"),
        ({"hint": {"de": "Neu"}}, "field 'hint' in 'de' changed from None to 'Neu'"),
    ],
)
def test_published_changed_item_fields(change: dict[str, object], fragment: str) -> None:
    published = shipped()
    problems = published_changes(published, replace_item(published, "rooms", **change))
    assert len(problems) == 1
    assert "item 'rooms'" in problems[0]
    assert fragment in problems[0]


def test_published_changed_labels_title_and_scale() -> None:
    published = shipped()
    overall = published.item("overall")
    comment = published.item("comment")
    assert overall is not None
    assert comment is not None
    current = replace_item(
        published, "overall", labels={**overall.labels, "en": ["1", "2", "3", "4", "5"]}
    )
    current = replace_item(current, "comment", max_length=1000)
    current = msgspec.structs.replace(current, title={**current.title, "en": "Hello"})
    problems = published_changes(published, current)
    assert len(problems) == 3
    assert any("field 'title' in 'en'" in problem for problem in problems)
    assert any("item 'overall': field 'labels' in 'en'" in problem for problem in problems)
    assert any("item 'comment': field 'max_length' changed from 500 to 1000" in p for p in problems)


def test_published_changes_needs_same_version() -> None:
    published = shipped()
    with pytest.raises(ValueError, match="same survey version"):
        published_changes(published, msgspec.structs.replace(published, version=2))


# --------------------------------------------------------------------------------------------
# JSON snapshots


def test_shipped_survey_json_round_trip() -> None:
    survey = shipped()
    assert survey_from_json(survey_to_json(survey)) == survey


def test_survey_from_json_validates_shape() -> None:
    with pytest.raises(msgspec.ValidationError):
        survey_from_json(b'{"id": "x", "version": "1"}')


_tags = st.sampled_from(sorted(LANGUAGES))
_texts = st.text(st.characters(codec="utf-8"), max_size=20)
_localized = st.dictionaries(_tags, _texts, max_size=3)
_items = st.builds(
    Item,
    id=st.from_regex(ID_PATTERN, fullmatch=True),
    dimension=st.sampled_from(DIMENSIONS),
    kind=st.sampled_from(KINDS),
    polarity=st.none() | st.sampled_from(POLARITIES),
    core=st.booleans(),
    text=_localized,
    labels=st.dictionaries(_tags, st.lists(_texts, min_size=5, max_size=5), max_size=3),
    hint=_localized,
    max_length=st.none() | st.integers(1, MAX_TEXT_LENGTH),
)
_surveys = st.builds(
    Survey,
    id=st.from_regex(ID_PATTERN, fullmatch=True),
    version=st.integers(1, 10_000),
    default_lang=_tags,
    title=_localized,
    intro=_localized,
    items=st.lists(_items, max_size=4).map(tuple),
    review=st.dictionaries(_tags, st.sampled_from(REVIEW_STATUSES), max_size=3),
)


@settings(max_examples=50, deadline=None)
@given(_surveys)
def test_json_round_trip(survey: Survey) -> None:
    data = survey_to_json(survey)
    assert survey_from_json(data) == survey
    assert survey_to_json(survey_from_json(data)) == data
