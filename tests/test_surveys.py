"""Tests for survey files: the shipped survey, validation messages, registry, versioning."""

from __future__ import annotations

import pickle
from pathlib import Path

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
    SCALE_MAX,
    SCALE_MIN,
    Item,
    Survey,
    SurveyError,
    SurveyRegistry,
    check_survey_file,
    default_surveys_dir,
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

    assert {"de", "en"} <= set(survey.languages)
    for item in survey.rating_items:
        assert item.scale == (SCALE_MIN, 2, 3, 4, SCALE_MAX)
        assert set(item.labels) == {"de", "en"}
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


def test_published_added_language_is_compatible() -> None:
    published = shipped()
    items = tuple(
        msgspec.structs.replace(
            item,
            text={**item.text, "tr": f"{item.id} (tr)"},
            labels={**item.labels, "tr": ["1", "2", "3", "4", "5"]} if item.is_rating else {},
        )
        for item in published.items
    )
    current = msgspec.structs.replace(
        published,
        title={**published.title, "tr": "Ziyaretiniz nasıldı?"},
        intro={**published.intro, "tr": "Anonim."},
        items=items,
    )
    assert "tr" in current.languages
    assert published_changes(published, current) == []


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
)


@settings(max_examples=50, deadline=None)
@given(_surveys)
def test_json_round_trip(survey: Survey) -> None:
    data = survey_to_json(survey)
    assert survey_from_json(data) == survey
    assert survey_to_json(survey_from_json(data)) == data
