"""Questionnaires: strict loading, validation and versioning of ``surveys/*.toml``.

A survey file is plain TOML, edited by people who are not programmers, so every problem is
reported as one line naming the file, the item and the field (:class:`SurveyError`). Loading
happens in two steps:

1. *shape*: ``tomllib`` parses the file and :func:`msgspec.convert` turns it into the strict
   :class:`Survey` / :class:`Item` structs (unknown fields and wrong types are rejected; this step
   stops at the first problem);
2. *meaning*: :func:`check_survey_file` then collects **all** semantic problems (slugs, allowed
   dimensions, five labels per language, languages, core items, no staff-related items,
   review statuses, ...).

Minimal example::

    id = "atmosphere"
    version = 1
    default_lang = "de"
    title = { de = "Wie war Ihr Besuch heute?", en = "How was your visit today?" }
    intro = { de = "...", en = "..." }
    review = { de = "source", en = "draft" }   # optional, see below

    [[items]]
    id = "stress_now"
    dimension = "stress"           # one of DIMENSIONS
    kind = "rating"                # "rating" (values 1..5) or "text"
    polarity = "lower_is_better"   # rating items only
    core = true                    # part of the 30-second core
    text = { de = "...", en = "..." }
    labels = { de = ["...", "...", "...", "...", "..."], en = [...] }  # value 1 first

    [[items]]
    id = "comment"
    dimension = "comment"
    kind = "text"
    max_length = 500
    text = { de = "...", en = "..." }
    hint = { de = "Bitte keine Namen oder persönlichen Daten.", en = "..." }

Every answer is optional for the client; ``core`` only decides which items a short (about
30 seconds) kiosk round shows.

Translations
------------
Only the default language must be complete. Any other language may lack texts: the lookups
(:meth:`Survey.title_for`, :meth:`Item.text_for`, ...) then fall back to the default language
and say so (:class:`Localized`), and :func:`coverage` / :func:`format_coverage` show what is
missing. The optional ``review`` table records who checked which translation
(:data:`REVIEW_STATUSES`): ``"source"`` is the language the survey was written in (only the
default language may be it), ``"reviewed"`` means a native speaker checked the texts,
``"draft"`` means nobody has yet. A language with texts but no ``review`` entry counts as
``"draft"``, except the default language, which counts as ``"source"``.

A published ``(id, version)`` is immutable once responses exist: :func:`published_changes`
lists what would break that promise (review statuses and new translations do not).
:func:`survey_to_json` / :func:`survey_from_json` store a snapshot of the exact survey next to
the responses.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, TypeGuard

import msgspec

from officepulse.content import content_dir
from officepulse.languages import DEFAULT_LANGUAGE, LANGUAGES

__all__ = [
    "DIMENSIONS",
    "ID_PATTERN",
    "KINDS",
    "MAX_TEXT_LENGTH",
    "POLARITIES",
    "REVIEW_STATUSES",
    "SCALE_MAX",
    "SCALE_MIN",
    "SCALE_POINTS",
    "STAFF_TERMS",
    "CoverageRow",
    "Item",
    "Localized",
    "LocalizedLabels",
    "ReviewStatus",
    "Survey",
    "SurveyError",
    "SurveyRegistry",
    "check_survey_file",
    "coverage",
    "default_surveys_dir",
    "format_coverage",
    "load_survey_file",
    "load_surveys",
    "published_changes",
    "survey_from_json",
    "survey_to_json",
]

DIMENSIONS: Final[tuple[str, ...]] = (
    "stress",
    "friendliness",
    "clarity",
    "room",
    "effort",
    "overall",
    "comment",
)
"""The only dimensions an item may measure. There is deliberately no staff dimension."""

KINDS: Final[tuple[str, ...]] = ("rating", "text")
"""``rating``: the 5-point smiley scale; ``text``: an optional free-text answer."""

POLARITIES: Final[tuple[str, ...]] = ("higher_is_better", "lower_is_better")

SCALE_MIN: Final = 1
"""Lowest value of a rating item (the first label)."""
SCALE_MAX: Final = 5
"""Highest value of a rating item (the last label)."""
SCALE_POINTS: Final = SCALE_MAX - SCALE_MIN + 1

MAX_TEXT_LENGTH: Final = 2000
"""Upper bound for ``max_length`` of text items; long free text invites personal details."""

ReviewStatus = Literal["source", "reviewed", "draft", "missing"]
"""How far a language of a survey can be trusted (:meth:`Survey.review_status`).

``"missing"`` is never written in a file: it means the survey has no text at all in that
language, so clients choosing it see the default language.
"""

REVIEW_STATUSES: Final[tuple[ReviewStatus, ...]] = ("source", "reviewed", "draft")
"""The values allowed in a survey file's ``review`` table."""

ID_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
"""Survey and item ids: lowercase slugs, safe in URLs, column names and file names."""
_SLUG_RULE: Final = f"({ID_PATTERN.pattern})"

STAFF_TERMS: Final[tuple[str, ...]] = (
    "mitarbeiter",
    "sachbearbeiter",
    "berater",
    "vermittler",
    "fallmanager",
    "integrationsfachkraft",
    "ansprechpartner",
    "staff member",
    "caseworker",
    "case worker",
    "case manager",
    "advisor",
    "adviser",
    "employee",
)
"""Words that suggest an item rates individual staff (lowercase, matched as substrings).

The product promises that feedback can never be attributed to a staff member, so items, their
ids, labels and hints must not mention them. (The intro may, e.g. to say exactly that.)"""


# --------------------------------------------------------------------------------------------
# Errors


class SurveyError(Exception):
    """One problem in a survey file.

    ``str()`` is a single line naming the file, the item (if any) and the field (if any)::

        surveys/atmosphere.toml: item 'respect': field 'polarity': expected one of
        'higher_is_better', 'lower_is_better', got 'up'

    (shown wrapped here; the real message has no line breaks).
    """

    path: Path
    item: str | None
    field: str | None
    message: str

    def __init__(
        self, path: Path, message: str, item: str | None = None, field: str | None = None
    ) -> None:
        self.path = path
        self.item = item
        self.field = field
        # Newlines would break the one-line promise (logs, CLI output, CI annotations).
        self.message = " ".join(message.split())
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [str(self.path)]
        if self.item is not None:
            parts.append(f"item '{self.item}'")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        parts.append(self.message)
        return ": ".join(parts)

    def __str__(self) -> str:
        return self._format()

    def __reduce__(self) -> tuple[type[SurveyError], tuple[Path, str, str | None, str | None]]:
        # Keeps the exception picklable (multiprocessing, pytest-xdist) despite the custom init.
        return (type(self), (self.path, self.message, self.item, self.field))


# --------------------------------------------------------------------------------------------
# Localized texts


class Localized(NamedTuple):
    """A text chosen for a client's language, and whether it had to fall back."""

    text: str
    """Never blank."""
    lang: str
    """The language the text is actually in (e.g. to set ``lang`` and ``dir`` in HTML)."""
    fallback: bool
    """``True`` when the requested language lacked the text and the default language was used."""


class LocalizedLabels(NamedTuple):
    """The five labels of a rating item chosen for a client's language (value 1 first)."""

    labels: tuple[str, ...]
    """Exactly :data:`SCALE_POINTS` labels, none blank."""
    lang: str
    """The language the labels are actually in."""
    fallback: bool
    """``True`` when the requested language lacked them and the default language was used."""


def _is_text(value: object) -> TypeGuard[str]:
    # A blank string is as useless to a client as a missing one.
    return isinstance(value, str) and bool(value.strip())


def _is_label_set(value: object) -> TypeGuard[list[str]]:
    # A partial set would misalign labels with scale values, so it counts as missing.
    return (
        isinstance(value, list)
        and len(value) == SCALE_POINTS
        and all(_is_text(label) for label in value)
    )


def _pick_text(texts: Mapping[str, str], lang: str, default_lang: str) -> Localized | None:
    """``texts[lang]``, else ``texts[default_lang]``, else ``None`` (blank counts as absent)."""
    text = texts.get(lang)
    if _is_text(text):
        return Localized(text, lang, fallback=False)
    text = texts.get(default_lang)
    if _is_text(text):
        return Localized(text, default_lang, fallback=lang != default_lang)
    return None


def _no_text(what: str, lang: str, default_lang: str) -> LookupError:
    # Only reachable for surveys that skipped validation (hand-built or decoded snapshots).
    return LookupError(f"{what}: no text in {lang!r} nor in the default language {default_lang!r}")


# --------------------------------------------------------------------------------------------
# Structs


class Item(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One question of a survey."""

    id: str
    """Stable slug; once published it keeps its meaning forever (responses refer to it)."""
    dimension: str
    """One of :data:`DIMENSIONS`."""
    kind: str
    """One of :data:`KINDS`."""
    polarity: str | None = None
    """Required for rating items: ``higher_is_better`` or ``lower_is_better``; else absent."""
    core: bool = False
    """Whether the item belongs to the short (30-second) core; only rating items can."""
    text: dict[str, str]
    """The question, by language tag."""
    labels: dict[str, list[str]] = {}
    """Rating items: exactly five short labels per language, for values 1..5 in order."""
    hint: dict[str, str] = {}
    """Optional help text shown with the question, by language tag."""
    max_length: int | None = None
    """Text items: maximum number of characters (1..:data:`MAX_TEXT_LENGTH`)."""

    @property
    def is_rating(self) -> bool:
        """Whether the item is answered on the 5-point scale."""
        return self.kind == "rating"

    @property
    def scale(self) -> tuple[int, ...]:
        """The allowed answer values of a rating item (``()`` for text items)."""
        return tuple(range(SCALE_MIN, SCALE_MAX + 1)) if self.is_rating else ()

    def text_for(self, lang: str, default_lang: str) -> Localized:
        """The question in ``lang``, or in ``default_lang`` if ``lang`` lacks it (or it is blank).

        Pass the survey's :attr:`Survey.default_lang`; an item does not know its survey.
        Raises :class:`LookupError` if neither language has it (impossible for a validated
        survey, whose default language is complete).
        """
        found = _pick_text(self.text, lang, default_lang)
        if found is None:
            raise _no_text(f"item {self.id!r}: text", lang, default_lang)
        return found

    def labels_for(self, lang: str, default_lang: str) -> LocalizedLabels:
        """The five labels in ``lang``, or in ``default_lang`` if ``lang`` lacks a full set.

        A set with a blank label or the wrong number of labels counts as missing. Raises
        :class:`ValueError` for a text item (it has no labels) and :class:`LookupError` if
        neither language has a usable set.
        """
        if not self.is_rating:
            raise ValueError(f"item {self.id!r} is a {self.kind} item and has no labels")
        labels = self.labels.get(lang)
        if _is_label_set(labels):
            return LocalizedLabels(tuple(labels), lang, fallback=False)
        labels = self.labels.get(default_lang)
        if _is_label_set(labels):
            return LocalizedLabels(tuple(labels), default_lang, fallback=lang != default_lang)
        raise _no_text(f"item {self.id!r}: labels", lang, default_lang)

    def hint_for(self, lang: str, default_lang: str) -> Localized | None:
        """The hint in ``lang``, else in ``default_lang``; ``None`` if the item has no hint."""
        return _pick_text(self.hint, lang, default_lang)


class Survey(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A questionnaire in one immutable version."""

    id: str
    version: int
    default_lang: str = DEFAULT_LANGUAGE
    """Language that must be complete; used when a text is missing in the chosen language."""
    title: dict[str, str]
    intro: dict[str, str]
    """Shown before the questions: says the survey is anonymous, announces the comment."""
    items: tuple[Item, ...]
    review: dict[str, str] = {}
    """Review status by language tag, one of :data:`REVIEW_STATUSES`.

    Optional; read it through :meth:`review_status`, which fills in the statuses that are not
    written down. Not part of what a published version promises (see
    :func:`published_changes`).
    """

    def title_for(self, lang: str) -> Localized:
        """The title in ``lang``, or in :attr:`default_lang` if ``lang`` lacks it.

        Raises :class:`LookupError` only for an unvalidated survey without a default title.
        """
        found = _pick_text(self.title, lang, self.default_lang)
        if found is None:
            raise _no_text("title", lang, self.default_lang)
        return found

    def intro_for(self, lang: str) -> Localized:
        """The intro in ``lang``, or in :attr:`default_lang` if ``lang`` lacks it.

        Raises :class:`LookupError` only for an unvalidated survey without a default intro.
        """
        found = _pick_text(self.intro, lang, self.default_lang)
        if found is None:
            raise _no_text("intro", lang, self.default_lang)
        return found

    def review_status(self, lang: str) -> ReviewStatus:
        """How far the texts in ``lang`` can be trusted.

        * ``"missing"``: the survey has no (non-blank) text at all in ``lang``;
        * otherwise the entry of the ``review`` table;
        * without an entry: ``"source"`` for :attr:`default_lang` (the texts everything else
          falls back to are by definition the original), ``"draft"`` for any other language,
          so an unchecked translation is never mistaken for a checked one.
        """
        if lang not in self.text_languages:
            return "missing"
        # Matching against the allowed values (rather than returning the entry) keeps an
        # unvalidated value, e.g. from an old snapshot, from leaking out as a status.
        for status in REVIEW_STATUSES:
            if self.review.get(lang) == status:
                return status
        return "source" if lang == self.default_lang else "draft"

    @property
    def text_languages(self) -> frozenset[str]:
        """Every language tag with at least one non-blank text (title, intro, item, label, hint).

        Unlike :attr:`languages` this includes incomplete translations.
        """
        tags: set[str] = set()
        tables: list[Mapping[str, object]] = [self.title, self.intro]
        for item in self.items:
            tables.extend((item.text, item.labels, item.hint))
        for table in tables:
            for tag, value in table.items():
                if _is_text(value) or (isinstance(value, list) and any(map(_is_text, value))):
                    tags.add(tag)
        return frozenset(tags)

    def item(self, item_id: str) -> Item | None:
        """The item with id ``item_id``, or ``None``."""
        for candidate in self.items:
            if candidate.id == item_id:
                return candidate
        return None

    @property
    def rating_items(self) -> tuple[Item, ...]:
        """The rating items, in survey order."""
        return tuple(item for item in self.items if item.is_rating)

    @property
    def core_items(self) -> tuple[str, ...]:
        """The *ids* of the core items, in survey order."""
        return tuple(item.id for item in self.items if item.core)

    @property
    def comment_item(self) -> Item | None:
        """The free-text item (a valid survey has at most one), or ``None``."""
        for candidate in self.items:
            if candidate.kind == "text":
                return candidate
        return None

    @property
    def languages(self) -> tuple[str, ...]:
        """Language tags in which the whole survey can be shown, in registry order.

        A language counts when the title, the intro and every item's text (and, for rating
        items, its labels) exist in it. Hints are optional and not required.
        """
        complete = []
        for tag in LANGUAGES:
            if tag not in self.title or tag not in self.intro:
                continue
            if all(
                tag in item.text and (not item.is_rating or tag in item.labels)
                for item in self.items
            ):
                complete.append(tag)
        return tuple(complete)


# --------------------------------------------------------------------------------------------
# Loading and checking


# A problem before it is bound to a file: (item, field, message).
_Problem = tuple[str | None, str | None, str]

_MSGSPEC_AT: Final = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<where>[^`]*)`)?$", re.DOTALL)
_ITEM_AT: Final = re.compile(r"^\.items\[(?P<index>\d+)\](?P<rest>.*)$")
_FIELD_NAMED: Final = re.compile(
    r"^Object (?P<what>contains unknown|missing required) field `(?P<name>[^`]+)`"
)


def load_survey_file(path: Path) -> Survey:
    """Load and validate one survey file; raise the first :class:`SurveyError` found."""
    survey, problems = _load(path)
    if problems:
        raise problems[0]
    assert survey is not None  # _load returns a survey whenever it reports no problem
    return survey


def check_survey_file(path: Path) -> list[SurveyError]:
    """Return all problems of one survey file (empty if it is valid).

    Syntax and shape problems (TOML errors, unknown fields, wrong types) stop at the first one,
    because nothing after them can be trusted; semantic problems are all collected.
    """
    return _load(path)[1]


def _load(path: Path) -> tuple[Survey | None, list[SurveyError]]:
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [
            SurveyError(path, f"file is not valid UTF-8 ({exc.reason} at byte {exc.start})")
        ]
    except OSError as exc:
        return None, [SurveyError(path, f"cannot read file: {exc.strerror or exc}")]
    try:
        raw = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line L, column C)".
        return None, [SurveyError(path, f"invalid TOML: {exc}")]
    try:
        survey = msgspec.convert(raw, Survey)
    except msgspec.ValidationError as exc:
        return None, [_shape_error(path, raw, exc)]
    problems = [
        SurveyError(path, message, item=item, field=field)
        for item, field, message in _semantic_problems(survey)
    ]
    return survey, problems


def _shape_error(path: Path, raw: Mapping[str, Any], exc: msgspec.ValidationError) -> SurveyError:
    """Translate msgspec's ``... - at `$.items[2].labels``` into item and field names."""
    match = _MSGSPEC_AT.match(str(exc))
    assert match is not None  # the pattern matches any string
    message, where = match["message"], match["where"] or ""
    item: str | None = None
    struct: type[msgspec.Struct] = Survey
    if item_match := _ITEM_AT.match(where):
        item = _raw_item_name(raw, int(item_match["index"]))
        where = item_match["rest"]
        struct = Item
    where = where.removeprefix(".")
    # The first path segment is the field the author wrote; deeper parts go into the message.
    field_name = re.split(r"[.\[]", where, maxsplit=1)[0]
    deeper = where[len(field_name) :]
    if named := _FIELD_NAMED.match(message):
        # A named key below a field (e.g. inside a table we did not model as a struct) keeps
        # its full path so the author can find it.
        field = f"{field_name}{deeper}.{named['name']}" if field_name else named["name"]
        if named["what"] == "contains unknown":
            allowed = ", ".join(struct.__struct_fields__) if not field_name else ""
            message = f"unknown field (allowed: {allowed})" if allowed else "unknown field"
        else:
            message = "required field is missing"
        return SurveyError(path, message, item=item, field=field)
    # "int | null" means "an int, or leave the field out"; TOML has no null, so say "int".
    message = message.replace("`", "").replace(" | null", "")
    message = message[:1].lower() + message[1:]
    if deeper:
        message = f"{message} (at {field_name}{deeper})"
    return SurveyError(path, message, item=item, field=field_name or None)


def _raw_item_name(raw: Mapping[str, Any], index: int) -> str:
    """The id of ``items[index]`` in the raw TOML data, or ``#<n>`` if it has no usable id."""
    items = raw.get("items")
    if isinstance(items, list) and index < len(items):
        entry = items[index]
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
            return str(entry["id"])
    return f"#{index + 1}"


def _one_of(allowed: Sequence[str], got: object) -> str:
    choices = ", ".join(f"'{value}'" for value in allowed)
    return f"expected one of {choices}, got {got!r}"


def _unknown_language(tag: str) -> str:
    return f"unknown language {tag!r} (known: {', '.join(LANGUAGES)})"


def _staff_term(value: str) -> str | None:
    folded = value.casefold().replace("_", " ")
    for term in STAFF_TERMS:
        if term in folded:
            return term
    return None


def _staff_message(term: str) -> str:
    return (
        f"mentions staff ({term!r}); items must never be about individual staff members, "
        "feedback is about the visit, never a person"
    )


def _check_texts(
    item: str | None, field: str, texts: Mapping[str, str], default_lang: str, *, required: bool
) -> Iterator[_Problem]:
    """Problems of one ``{lang: text}`` table (title, intro, an item's text or hint)."""
    for tag, value in texts.items():
        if tag not in LANGUAGES:
            yield item, field, _unknown_language(tag)
        elif not value.strip():
            yield item, field, f"text for {tag!r} is empty"
    if (required or texts) and default_lang in LANGUAGES and default_lang not in texts:
        yield item, field, f"missing text in the default language {default_lang!r}"


def _semantic_problems(survey: Survey) -> Iterator[_Problem]:
    """All semantic problems of a survey that already has the right shape."""
    if not ID_PATTERN.fullmatch(survey.id):
        yield (
            None,
            "id",
            f"expected a lowercase slug like 'atmosphere' {_SLUG_RULE}, got {survey.id!r}",
        )
    if survey.version < 1:
        yield None, "version", f"must be at least 1, got {survey.version}"
    lang = survey.default_lang
    if lang not in LANGUAGES:
        yield None, "default_lang", _unknown_language(lang)
    yield from _check_texts(None, "title", survey.title, lang, required=True)
    yield from _check_texts(None, "intro", survey.intro, lang, required=True)
    yield from _review_problems(survey)

    if not survey.items:
        yield None, "items", "a survey needs at least one item"
        return

    first_index: dict[str, int] = {}
    for index, item in enumerate(survey.items, start=1):
        name = item.id or f"#{index}"
        if item.id in first_index:
            yield name, "id", f"duplicate item id (items #{first_index[item.id]} and #{index})"
        else:
            first_index[item.id] = index
        yield from _item_problems(item, name, lang)

    if not any(item.core for item in survey.items):
        yield None, "items", "no core item: at least one rating item needs core = true"
    text_items = [item.id for item in survey.items if item.kind == "text"]
    if len(text_items) > 1:
        # The kiosk shows a single optional comment at the end, announced by the intro.
        yield (
            None,
            "items",
            f"at most one text item is allowed, got {len(text_items)}: {', '.join(text_items)}",
        )


def _review_problems(survey: Survey) -> Iterator[_Problem]:
    """Problems of the ``review`` table: values, the one source language, texts to review."""
    with_texts = survey.text_languages
    for tag in _ordered(survey.review):
        status = survey.review[tag]
        if tag not in LANGUAGES:
            yield None, "review", _unknown_language(tag)
        elif status not in REVIEW_STATUSES:
            yield None, "review", f"for {tag!r}: {_one_of(REVIEW_STATUSES, status)}"
        elif tag not in with_texts:
            # Most likely a typo in the tag, or a translation that was never added.
            yield None, "review", f"status for {tag!r} but the survey has no texts in {tag!r}"
    sources = [tag for tag in _ordered(survey.review) if survey.review[tag] == "source"]
    if len(sources) > 1:
        yield (
            None,
            "review",
            f"only one language can be 'source' (the default language {survey.default_lang!r}),"
            f" got {len(sources)}: {', '.join(sources)}",
        )
    elif sources and sources[0] != survey.default_lang:
        # Every other language falls back to the default one, so it must be the original.
        yield (
            None,
            "review",
            f"'source' must be the default language {survey.default_lang!r}, got {sources[0]!r}",
        )


def _item_problems(item: Item, name: str, lang: str) -> Iterator[_Problem]:
    if not ID_PATTERN.fullmatch(item.id):
        yield (
            name,
            "id",
            f"expected a lowercase slug like 'stress_now' {_SLUG_RULE}, got {item.id!r}",
        )
    if term := _staff_term(item.id):
        yield name, "id", _staff_message(term)
    if item.dimension not in DIMENSIONS:
        yield name, "dimension", _one_of(DIMENSIONS, item.dimension)
    if item.kind not in KINDS:
        yield name, "kind", _one_of(KINDS, item.kind)

    yield from _check_texts(name, "text", item.text, lang, required=True)
    yield from _check_texts(name, "hint", item.hint, lang, required=False)
    for tag in _ordered(item.hint.keys() - item.text.keys()):
        if tag in LANGUAGES:
            yield name, "hint", f"hint in {tag!r} but no text in {tag!r}"
    for field, texts in (("text", item.text), ("hint", item.hint)):
        for value in texts.values():
            if term := _staff_term(value):
                yield name, field, _staff_message(term)
                break

    if item.kind == "rating":
        yield from _rating_problems(item, name)
    elif item.kind == "text":
        yield from _text_item_problems(item, name)


def _rating_problems(item: Item, name: str) -> Iterator[_Problem]:
    if item.polarity is None:
        yield name, "polarity", f"required for rating items, {_one_of(POLARITIES, None)}"
    elif item.polarity not in POLARITIES:
        yield name, "polarity", _one_of(POLARITIES, item.polarity)
    if item.max_length is not None:
        yield name, "max_length", "only allowed for text items"
    if item.dimension == "comment":
        yield name, "dimension", "'comment' is only for text items"

    for tag, labels in item.labels.items():
        if tag not in LANGUAGES:
            yield name, "labels", _unknown_language(tag)
            continue
        if len(labels) != SCALE_POINTS:
            yield (
                name,
                "labels",
                f"expected exactly {SCALE_POINTS} labels for {tag!r} "
                f"(values {SCALE_MIN}..{SCALE_MAX}), got {len(labels)}",
            )
        if any(not label.strip() for label in labels):
            yield name, "labels", f"empty label for {tag!r}"
        if term := next(filter(None, map(_staff_term, labels)), None):
            yield name, "labels", _staff_message(term)
    # Labels and question must come in the same languages, or a client sees half a question.
    for tag in _ordered(item.text.keys() - item.labels.keys()):
        if tag in LANGUAGES:
            yield name, "labels", f"missing for {tag!r} (the text has {tag!r})"
    for tag in _ordered(item.labels.keys() - item.text.keys()):
        if tag in LANGUAGES:
            yield name, "labels", f"labels in {tag!r} but no text in {tag!r}"


def _text_item_problems(item: Item, name: str) -> Iterator[_Problem]:
    if item.polarity is not None:
        yield name, "polarity", "not allowed for text items"
    if item.labels:
        yield name, "labels", "not allowed for text items"
    if item.core:
        yield name, "core", "core items must be rating items"
    if item.max_length is None:
        yield name, "max_length", f"required for text items (1..{MAX_TEXT_LENGTH})"
    elif not 1 <= item.max_length <= MAX_TEXT_LENGTH:
        yield name, "max_length", f"expected 1..{MAX_TEXT_LENGTH}, got {item.max_length}"


def _ordered(tags: Iterable[str]) -> list[str]:
    """Language tags in registry order (unknown ones last, sorted), for stable messages."""
    order = {tag: position for position, tag in enumerate(LANGUAGES)}
    return sorted(tags, key=lambda tag: (order.get(tag, len(order)), tag))


# --------------------------------------------------------------------------------------------
# Registry


class SurveyRegistry:
    """All loaded surveys, keyed by ``(id, version)``.

    Iterating yields the surveys sorted by id, then version.
    """

    def __init__(self, surveys: Iterable[Survey] = ()) -> None:
        self._surveys: dict[tuple[str, int], Survey] = {}
        for survey in surveys:
            key = (survey.id, survey.version)
            if key in self._surveys:
                raise ValueError(f"duplicate survey {survey.id!r} version {survey.version}")
            self._surveys[key] = survey

    def get(self, survey_id: str, version: int) -> Survey | None:
        """The survey ``survey_id`` in ``version``, or ``None``."""
        return self._surveys.get((survey_id, version))

    def __getitem__(self, key: tuple[str, int]) -> Survey:
        return self._surveys[key]

    def __contains__(self, key: object) -> bool:
        return key in self._surveys

    def __len__(self) -> int:
        return len(self._surveys)

    def __iter__(self) -> Iterator[Survey]:
        return (self._surveys[key] for key in sorted(self._surveys))

    def ids(self) -> tuple[str, ...]:
        """The distinct survey ids, sorted."""
        return tuple(sorted({survey_id for survey_id, _ in self._surveys}))

    def versions(self, survey_id: str) -> tuple[int, ...]:
        """The versions of ``survey_id``, ascending (empty if unknown)."""
        return tuple(sorted(version for sid, version in self._surveys if sid == survey_id))

    def latest(self, survey_id: str) -> Survey | None:
        """The highest version of ``survey_id``, or ``None``."""
        versions = self.versions(survey_id)
        return self._surveys[(survey_id, versions[-1])] if versions else None

    def __repr__(self) -> str:
        keys = ", ".join(f"{sid}@{version}" for sid, version in sorted(self._surveys))
        return f"SurveyRegistry({keys})"


def load_surveys(directory: Path) -> SurveyRegistry:
    """Load every ``*.toml`` in ``directory`` (not recursive) into a registry.

    Raises :class:`SurveyError` for the first bad file, for a duplicate ``(id, version)`` (the
    message names both files) and if ``directory`` is not a directory.
    """
    if not directory.is_dir():
        raise SurveyError(directory, "survey directory not found")
    seen: dict[tuple[str, int], Path] = {}
    surveys: list[Survey] = []
    for path in sorted(directory.glob("*.toml")):
        # Hidden files are editor leftovers (e.g. Emacs lock files ".#name.toml"), not surveys.
        if path.name.startswith(".") or not path.is_file():
            continue
        survey = load_survey_file(path)
        key = (survey.id, survey.version)
        if key in seen:
            raise SurveyError(
                path,
                f"survey {survey.id!r} version {survey.version} is already defined in {seen[key]}",
            )
        seen[key] = path
        surveys.append(survey)
    return SurveyRegistry(surveys)


def default_surveys_dir() -> Path:
    """The shipped ``surveys/`` folder (inside the wheel, or the repository's top level)."""
    return content_dir("surveys")


# --------------------------------------------------------------------------------------------
# Versioning and snapshots


def published_changes(published: Survey, current: Survey) -> list[str]:
    """Why ``current`` may not replace the already ``published`` survey of the same version.

    Once responses exist, a version is immutable: every item keeps its meaning, and texts,
    labels, hints and scales stay as they were in every language both versions have. Adding a
    new translation is allowed, and so is changing the ``review`` table: a native speaker
    approving a text does not change what clients saw. Returns one-line problems; an empty list
    means compatible.
    Raises :class:`ValueError` if the two surveys are not the same ``(id, version)``.
    """
    if (published.id, published.version) != (current.id, current.version):
        raise ValueError(
            f"can only compare the same survey version, got {published.id!r} v{published.version}"
            f" and {current.id!r} v{current.version}"
        )
    prefix = f"{current.id} v{current.version}"
    problems: list[str] = []

    for field in ("title", "intro"):
        old_texts: dict[str, str] = getattr(published, field)
        new_texts: dict[str, str] = getattr(current, field)
        for tag in _ordered(old_texts.keys() & new_texts.keys()):
            if old_texts[tag] != new_texts[tag]:
                problems.append(
                    f"{prefix}: field '{field}' in {tag!r} changed"
                    f" from {old_texts[tag]!r} to {new_texts[tag]!r}"
                )

    old_items = {item.id: item for item in published.items}
    new_items = {item.id: item for item in current.items}
    for item_id in old_items.keys() - new_items.keys():
        problems.append(f"{prefix}: item '{item_id}' was removed")
    for item_id in new_items.keys() - old_items.keys():
        problems.append(f"{prefix}: item '{item_id}' was added")

    for old in published.items:
        new = new_items.get(old.id)
        if new is None:
            continue
        for attribute in ("kind", "dimension", "polarity", "core", "max_length"):
            before, after = getattr(old, attribute), getattr(new, attribute)
            if before != after:
                problems.append(
                    f"{prefix}: item '{old.id}': field '{attribute}' changed"
                    f" from {before!r} to {after!r}"
                )
        # The languages the item was shown in before and still is; new translations are fine.
        for tag in _ordered(old.text.keys() & new.text.keys()):
            for attribute in ("text", "labels", "hint"):
                before = getattr(old, attribute).get(tag)
                after = getattr(new, attribute).get(tag)
                if before != after:
                    problems.append(
                        f"{prefix}: item '{old.id}': field '{attribute}' in {tag!r} changed"
                        f" from {before!r} to {after!r}"
                    )
    return problems


_JSON_ENCODER: Final = msgspec.json.Encoder()
_JSON_DECODER: Final = msgspec.json.Decoder(Survey)


def survey_to_json(survey: Survey) -> bytes:
    """Serialise a survey as JSON, e.g. to store the exact version next to its responses."""
    return _JSON_ENCODER.encode(survey)


def survey_from_json(data: bytes) -> Survey:
    """Decode a snapshot written by :func:`survey_to_json`.

    Only the shape is validated (raises :class:`msgspec.ValidationError` or
    :class:`msgspec.DecodeError`): a stored snapshot must stay readable even if the semantic
    rules for survey files get stricter later.
    """
    return _JSON_DECODER.decode(data)


# --------------------------------------------------------------------------------------------
# Translation coverage

_ALL_TAGS: Final[tuple[str, ...]] = tuple(LANGUAGES)
_ROW_LABEL_WIDTH: Final = 16
"""Widest item-id column of the matrix; keeps 13 language columns within 100 characters."""
_MISSING_CELL: Final = "—"


class CoverageRow(msgspec.Struct, frozen=True, kw_only=True):
    """How complete and how checked one language of a survey is (see :func:`coverage`)."""

    lang: str
    native_name: str
    """The language's name in its own script, from :data:`~officepulse.languages.LANGUAGES`."""
    status: ReviewStatus
    """:meth:`Survey.review_status` of the language."""
    expected: int
    """Texts a complete translation has: title, intro, every item's text, every rating item's
    label set, and every hint the default language has."""
    present: int
    """How many of them exist (non-blank; a label set only with all five labels)."""
    missing: list[str]
    """The missing texts in survey order, as ``title``, ``intro``, ``<item>.text``,
    ``<item>.labels`` or ``<item>.hint``; clients see the default language for them."""

    @property
    def complete(self) -> bool:
        """Whether nothing falls back to the default language."""
        return not self.missing


def _text_slots(survey: Survey) -> list[tuple[str, str, Mapping[str, object]]]:
    """``(row, key, table)`` for every text a complete translation has, in survey order.

    ``row`` groups the texts for the items x languages matrix; title and intro get
    parenthesised names, which no item id can have.
    """
    slots: list[tuple[str, str, Mapping[str, object]]] = [
        ("(title)", "title", survey.title),
        ("(intro)", "intro", survey.intro),
    ]
    for item in survey.items:
        slots.append((item.id, f"{item.id}.text", item.text))
        if item.is_rating:
            slots.append((item.id, f"{item.id}.labels", item.labels))
        # A hint is only expected where the original has one; hints are optional.
        if _is_text(item.hint.get(survey.default_lang)):
            slots.append((item.id, f"{item.id}.hint", item.hint))
    return slots


def _is_present(value: object) -> bool:
    return _is_text(value) or _is_label_set(value)


def coverage(survey: Survey, languages: Sequence[str] = _ALL_TAGS) -> list[CoverageRow]:
    """One row per language (default: all supported ones, in registry order).

    Raises :class:`ValueError` for a tag that is not a supported language.
    """
    slots = _text_slots(survey)
    rows: list[CoverageRow] = []
    for tag in languages:
        if tag not in LANGUAGES:
            raise ValueError(_unknown_language(tag))
        missing = [key for _, key, table in slots if not _is_present(table.get(tag))]
        rows.append(
            CoverageRow(
                lang=tag,
                native_name=LANGUAGES[tag].native_name,
                status=survey.review_status(tag),
                expected=len(slots),
                present=len(slots) - len(missing),
                missing=missing,
            )
        )
    return rows


def format_coverage(survey: Survey, languages: Sequence[str] = _ALL_TAGS) -> str:
    """A plain-text report of :func:`coverage`, for ``officepulse survey check``.

    Two tables, both at most 100 characters wide for the 13 supported languages:

    1. one row per language: tag, native name, review status, texts present/expected, missing
       count, and "falls back to <default>" when anything is missing; then a summary line;
    2. items x languages: one row per item (plus title and intro), one column per language,
       each cell ``ok`` (source or reviewed), ``draft`` (not yet checked by a native speaker)
       or ``—`` (something is missing, so clients see the default language); a footer counts
       the ``—`` and ``draft`` cells per language.

    Returns the text without a trailing newline; prints nothing.
    """
    rows = coverage(survey, languages)
    default = survey.default_lang
    lines = [f"Translations of {survey.id} v{survey.version} (default language: {default})", ""]

    table = [["lang", "language", "status", "texts", "missing", ""]]
    for row in rows:
        table.append(
            [
                row.lang,
                row.native_name,
                row.status,
                f"{row.present}/{row.expected}",
                str(len(row.missing)),
                "" if row.complete else f"falls back to {default}",
            ]
        )
    lines.extend(_render(table, right={3, 4}, gap="  ", rules=()))
    complete = sum(row.complete for row in rows)
    by_status = {status: sum(row.status == status for row in rows) for status in REVIEW_STATUSES}
    summary = (
        f"{len(rows)} languages: {complete} complete, {len(rows) - complete} incomplete;"
        f" {by_status['source']} source, {by_status['reviewed']} reviewed,"
        f" {by_status['draft']} draft"
    )
    if untranslated := sum(row.status == "missing" for row in rows):
        summary += f", {untranslated} without any text"
    lines += ["", summary, ""]

    lines.append(
        f"Items x languages (ok = source or reviewed, draft = not yet reviewed,"
        f" {_MISSING_CELL} = missing, shown in {default})"
    )
    lines.append("")
    lines.extend(_matrix(survey, rows))
    return "\n".join(lines)


def _matrix(survey: Survey, rows: Sequence[CoverageRow]) -> list[str]:
    """The items x languages table of :func:`format_coverage`."""
    row_names: list[str] = []
    keys_of: dict[str, list[str]] = {}
    for name, key, _ in _text_slots(survey):
        if name not in keys_of:
            row_names.append(name)
            keys_of[name] = []
        keys_of[name].append(key)

    table = [["item", *(row.lang for row in rows)]]
    missing_counts = [0] * len(rows)
    draft_counts = [0] * len(rows)
    for name in row_names:
        cells = [_clip(name, _ROW_LABEL_WIDTH)]
        for column, row in enumerate(rows):
            if any(key in row.missing for key in keys_of[name]):
                cells.append(_MISSING_CELL)
                missing_counts[column] += 1
            elif row.status == "draft":
                cells.append("draft")
                draft_counts[column] += 1
            else:
                cells.append("ok")
        table.append(cells)
    table.append(["missing", *map(str, missing_counts)])
    table.append(["draft", *map(str, draft_counts)])
    # A single space between columns: with "de-x-ls" the widest tag, 13 languages plus the
    # item column stay under 100 characters.
    return _render(table, right=set(), gap=" ", rules=(1, len(table) - 2), min_width=5)


def _render(
    table: Sequence[Sequence[str]],
    *,
    right: set[int],
    gap: str,
    rules: Sequence[int],
    min_width: int = 0,
) -> list[str]:
    """Align ``table`` in columns; a dashed rule goes before each row index in ``rules``."""
    widths = [
        max(min_width, *(_display_width(line[column]) for line in table))
        for column in range(len(table[0]))
    ]
    rendered: list[str] = []
    for index, line in enumerate(table):
        if index in rules:
            rendered.append(gap.join("-" * width for width in widths))
        cells = []
        for column, (cell, width) in enumerate(zip(line, widths, strict=True)):
            padding = " " * (width - _display_width(cell))
            cells.append(padding + cell if column in right else cell + padding)
        rendered.append(gap.join(cells).rstrip())
    return rendered


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _display_width(text: str) -> int:
    """Terminal columns of ``text``: marks and format characters (Arabic vowel signs, the
    zero-width non-joiner of Persian) take none, wide East Asian characters two."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width
