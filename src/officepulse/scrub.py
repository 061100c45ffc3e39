"""Remove personal data from free-text feedback before it is stored.

officepulse promises clients that their feedback is anonymous. The free-text comment is the one
field where that promise can break: people helpfully add "rufen Sie mich an: 0176 …", their
e-mail address, their IBAN ("das Geld ist nie angekommen") or their Jobcenter customer number.
:func:`scrub_comment` replaces such identifiers with :data:`REDACTED` so they never reach storage.

Design choices:

* Recall beats precision. A redacted "2 Kinder" next to a phone number costs a little context; a
  stored phone number breaks the anonymity promise. Where the two conflict the rules lean towards
  redacting. Ordinary numbers in feedback (dates, times, years, amounts, room numbers, waiting
  times, paragraph numbers) are deliberately left alone because the analysis needs them.
* The input is untrusted (public kiosks, QR codes), so every pattern is precompiled and built to
  backtrack only a bounded amount (anchored starts, possessive quantifiers, bounded repeats):
  scrubbing runs in linear time even on hostile input.
* Detection runs on a "shadow" of the text in which look-alikes are folded to ASCII one character
  at a time (Arabic-Indic and full-width digits, full-width "@", no-break spaces). Clients write
  in many scripts, and a phone number typed on an Arabic or Persian keyboard is just as personal.
  Because the folding is one-to-one, offsets found in the shadow apply to the original text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Final

__all__ = ["REDACTED", "scrub_comment"]

REDACTED: Final = "[entfernt]"
"""What every removed identifier is replaced with (German: "removed")."""

_Span = tuple[int, int]

# Redacting can change the context of what is left (a date-like neighbour that blocked a phone
# number may be gone), so the text is scrubbed again until nothing changes. One pass almost
# always suffices; the cap keeps the worst case linear.
_MAX_PASSES: Final = 8

_DIGITS: Final = frozenset("0123456789")

# --- look-alike folding ---------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if char.isdecimal():
        value = unicodedata.decimal(char, None)
        return char if value is None else str(value)
    # Invisible format characters (zero-width spaces, bidi marks) are what copy-and-paste leaves
    # inside numbers; seen as separators, they cannot hide a number from the patterns.
    if unicodedata.category(char) == "Cf":
        return " "
    folded = unicodedata.normalize("NFKC", char)
    return folded if len(folded) == 1 else char


def _fold(text: str) -> str:
    if text.isascii():
        return text
    return "".join(map(_fold_char, text))


# --- e-mail addresses -----------------------------------------------------------------------

# RFC 5322 "atext" plus the dot. Real addresses rarely use the exotic characters, but matching
# them costs nothing and keeps a stray "{" or "=" from leaving half a local part behind.
_LOCAL_CHARS: Final = r"\w.!#$%&'*+/=?^`{|}~-"
_OPEN: Final = r"[(\[{<]"
_CLOSE: Final = r"[)\]}>]"
_GAP: Final = r"[ ]{0,3}"
# "(at)", "[at]", "{ät}" and " @ " are obfuscations people use precisely because they think
# they are hiding an address from machines; they still identify the client. The bare words
# " at " and " dot "/" punkt " only count in the full "word at word dot word" shape, which
# ordinary (German) prose does not produce.
_AT: Final = (
    rf"(?:{_GAP}@{_GAP}"
    rf"|{_GAP}{_OPEN}[ ]?(?i:at|ät|@)[ ]?{_CLOSE}{_GAP}"
    r"|[ ]{1,3}(?i:at|ät)[ ]{1,3})"
)
_DOT: Final = (
    rf"(?:\.|{_GAP}{_OPEN}[ ]?(?i:dot|punkt)[ ]?{_CLOSE}{_GAP}|[ ]{{1,3}}(?i:dot|punkt)[ ]{{1,3}})"
)
# \w covers umlaut and other IDN labels as well as their punycode form. A domain needs at least
# one dot: "name@gmail" without a top-level domain is accepted as a miss, because "@" alone is
# also used in ordinary text ("Mitarbeiter@innen", "@Jobcenter").
_LABEL: Final = r"[\w-]++"
_EMAIL: Final = re.compile(
    # Starting only where a run of local-part characters starts keeps the search linear: a
    # failed attempt is never retried from the middle of the same run.
    rf"(?<![{_LOCAL_CHARS}])[{_LOCAL_CHARS}]+{_AT}{_LABEL}(?:{_DOT}{_LABEL})+"
)

# --- phone numbers --------------------------------------------------------------------------

_DASH_CHARS: Final = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_DASHES: Final = re.escape(_DASH_CHARS)
# Between digit groups: one dash, slash or parenthesis with optional spaces around it, or a
# single space or dot. A dot followed by a space is a sentence end, not part of a number.
_PHONE_SEP: Final = rf"(?:[ ]?[{_DASHES}/()][ ]?|[ .])"
# Number shapes that start with 0 but are not phone numbers: dates ("01.03.2024", "05.02."),
# month/year ("07/2024") and dotted times ("08.30"). Checked where a candidate would start.
_NOT_A_PHONE: Final = (
    rf"[0-9]{{1,2}}[./{_DASHES}][0-9]{{1,2}}[./{_DASHES}]"
    rf"|0[1-9][./{_DASHES}](?:19|20)[0-9]{{2}}(?![0-9])"
    r"|0[0-9][.:][0-5][0-9](?![0-9])"
)
_PHONE: Final = re.compile(
    # Never start inside a number, nor right after "12." or "2024-": that is the tail of a date,
    # a range or a decimal, not the start of a dialling prefix.
    rf"(?<![0-9])(?<![0-9][./,{_DASHES}])"
    # International numbers start with "+"; national and "00" ones with 0. Numbers that start
    # with another digit are never taken for phone numbers (years, amounts, rooms); long ones
    # are still caught by the long-digit-run rule below.
    rf"(?:\+(?=[1-9])|\(?(?=0)(?!{_NOT_A_PHONE}))"
    rf"[0-9]++(?:{_PHONE_SEP}[0-9]++)*+"
)
# A German subscriber number has at least about six digits after the prefix; fewer are almost
# always something else ("0800", "08:15", "030 12").
_MIN_PHONE_DIGITS: Final = 7  # "0" or "+" and a country code digit, plus six
_MIN_PHONE_DIGITS_00: Final = 8  # "00" and a country code digit, plus six
# "0176 12345678 3 Stunden": a count right before a unit word belongs to the sentence, not to
# the number. Only one or two trailing digits are given back, so at most two digits of a real
# number can survive, which identify nobody.
_UNIT_AFTER: Final = re.compile(
    r" (?:Uhr|Min(?:uten|\.)?|Std\.?|Stunden?|Tag(?:e|en)?|Wochen?|Monat(?:e|en)?|Jahr(?:e|en)?"
    r"|Euro|EUR|€|Kind(?:er)?|Person(?:en)?|Leute|Mal)(?!\w)"
)
_TRAILING_COUNT: Final = re.compile(r" [0-9]{1,2}\Z")


def _phone_spans(shadow: str) -> Iterator[_Span]:
    for match in _PHONE.finditer(shadow):
        start, end = match.span()
        candidate = match.group()
        if _UNIT_AFTER.match(shadow, end) and (trailing := _TRAILING_COUNT.search(candidate)):
            candidate = candidate[: trailing.start()].rstrip(" ./()" + _DASH_CHARS)
            end = start + len(candidate)
        needed = (
            _MIN_PHONE_DIGITS_00 if candidate.lstrip("(").startswith("00") else _MIN_PHONE_DIGITS
        )
        if sum(char in _DIGITS for char in candidate) >= needed:
            yield start, end


# --- long digit runs ------------------------------------------------------------------------

# Six or more digits in a row are an identifier in feedback, not an everyday number: a local
# phone number without area code, a file number (Aktenzeichen), a tax ID. Everyday numbers
# (years, postcodes, amounts, rooms, times) have at most five digits or are grouped.
_LONG_DIGIT_RUN: Final = re.compile(r"(?<![0-9])[0-9]{6,}")

# --- Bundesagentur für Arbeit numbers ---------------------------------------------------------

# Kundennummer: 3 digits, a letter, 6 digits ("123A456789"), often written with spaces or
# dashes. No boundary is required on either side: digits glued to it are swallowed by the span
# growth in _redact_once rather than letting the whole number through.
_CUSTOMER_NUMBER: Final = re.compile(
    rf"[0-9]{{3}}[ ./{_DASHES}]?[A-Za-z][ ./{_DASHES}]?[0-9]{{3}}[ ]?[0-9]{{3}}"
)
# BG-Nummer (Bedarfsgemeinschaft): 5 digits, "BG", 7 digits ("12345BG1234567").
_BG_NUMBER: Final = re.compile(
    rf"[0-9]{{5}}[ ./{_DASHES}]?[Bb][Gg][ ./{_DASHES}]?[0-9](?:[ ]?[0-9]){{6}}"
)

# --- IBANs ----------------------------------------------------------------------------------

# Country code, check digits, then 11-30 alphanumerics with optional single separators (printed
# IBANs are grouped in fours, typed ones are grouped any which way). The lookahead makes every
# word start a candidate of its own, so an IBAN directly after another one is not swallowed by
# the first candidate; each candidate is bounded, so the scan stays linear.
_IBAN_CANDIDATE: Final = re.compile(
    r"(?<![0-9A-Za-z])(?=([A-Za-z]{2})[ ]?([0-9]{2})((?:[ -]?[0-9A-Za-z]){11,30}))"
)
_MIN_BBAN: Final = 11
# ISO 13616 registry lengths for countries whose IBANs clients are likely to write. They only
# decide between several checksum-valid readings of a candidate ("... 00 und" could be read with
# or without "und"); countries not listed fall back to the longest valid reading.
_IBAN_LENGTHS: Final[dict[str, int]] = {
    "AT": 20, "BA": 20, "BE": 16, "BG": 22, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24,
    "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IT": 27, "LU": 20, "NL": 18, "NO": 15,
    "PL": 28, "PT": 25, "RO": 24, "RS": 22, "SE": 24, "SK": 24, "TR": 26, "UA": 29, "XK": 20,
}  # fmt: skip
# A German IBAN is "DE", 2 check digits and an 18-digit BBAN. A client mistyping one digit of
# their IBAN has still written down their bank account, so German-looking numbers are redacted
# even when the mod-97 checksum fails, including with one digit dropped or doubled. Other
# countries need a valid checksum: without it, "XX" + digits is too generic a shape.
_DE_BBAN_LENGTHS: Final = (18, 19, 17)


def _is_ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _iban_end(shadow: str, match: re.Match[str]) -> int | None:
    """Where the IBAN starting at ``match`` ends, or None if the candidate is not one."""
    country = match.group(1).upper()
    # ISO 13616 mod 97: the country code (letters as 10..35) and the check digits move behind
    # the BBAN; they always make six digits, so they can be appended arithmetically to the
    # running remainder of every BBAN prefix.
    moved = int(f"{int(country[0], 36)}{int(country[1], 36)}{match.group(2)}")
    remainder = 0
    length = 0
    all_digits = True
    # BBAN length -> (end offset, checksum valid, all digits), only for prefixes that end at a
    # word boundary, so a match never cuts a word or a number in half.
    readings: dict[int, tuple[int, bool, bool]] = {}
    tail_start, tail_end = match.span(3)
    for index in range(tail_start, tail_end):
        char = shadow[index]
        if not _is_ascii_alnum(char):
            continue
        value = int(char, 36)
        remainder = (remainder * (100 if value > 9 else 10) + value) % 97
        all_digits = all_digits and value <= 9
        length += 1
        at_boundary = index + 1 == len(shadow) or not _is_ascii_alnum(shadow[index + 1])
        if length >= _MIN_BBAN and at_boundary:
            valid = (remainder * 1_000_000 + moved) % 97 == 1
            readings[length] = (index + 1, valid, all_digits)
    expected = _IBAN_LENGTHS.get(country)
    if expected is not None and (reading := readings.get(expected - 4)) and reading[1]:
        return reading[0]
    if country == "DE":
        for bban_length in _DE_BBAN_LENGTHS:
            if (reading := readings.get(bban_length)) and reading[2]:
                return reading[0]
    valid_lengths = [bban for bban, (_, valid, _) in readings.items() if valid]
    return readings[max(valid_lengths)][0] if valid_lengths else None


def _iban_spans(shadow: str) -> Iterator[_Span]:
    for match in _IBAN_CANDIDATE.finditer(shadow):
        end = _iban_end(shadow, match)
        if end is not None:
            yield match.start(), end


# --- putting it together --------------------------------------------------------------------


def _regex_spans(pattern: re.Pattern[str]) -> Callable[[str], Iterator[_Span]]:
    def spans(shadow: str) -> Iterator[_Span]:
        return (match.span() for match in pattern.finditer(shadow))

    return spans


_DETECTORS: Final[tuple[Callable[[str], Iterator[_Span]], ...]] = (
    _regex_spans(_EMAIL),
    _iban_spans,
    _regex_spans(_BG_NUMBER),
    _regex_spans(_CUSTOMER_NUMBER),
    _phone_spans,
    _regex_spans(_LONG_DIGIT_RUN),
)


def _redact_once(text: str) -> str:
    shadow = _fold(text)
    grown: list[list[int]] = []
    for start, end in (span for detect in _DETECTORS for span in detect(shadow)):
        # All detectors see the same text and their findings are merged, so overlapping or
        # touching identifiers become one redaction. Digits glued to a finding are taken along:
        # a leftover "7" or "0044" is a fragment of the identifier, not of the sentence.
        while start > 0 and shadow[start - 1] in _DIGITS:
            start -= 1
        while end < len(shadow) and shadow[end] in _DIGITS:
            end += 1
        grown.append([start, end])
    if not grown:
        return text
    grown.sort()
    merged: list[list[int]] = [grown[0]]
    for start, end in grown[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces: list[str] = []
    position = 0
    for start, end in merged:
        pieces += (text[position:start], REDACTED)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


# C0 and C1 control characters but tab, line feed and carriage return: a NUL or an escape in a
# comment only breaks the CSV exports and terminals that show it later.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def scrub_comment(text: str) -> str:
    """Return ``text`` with personal identifiers replaced by :data:`REDACTED`.

    Removed are e-mail addresses (including "(at)"/"(dot)" obfuscations), phone numbers
    (German and international), IBANs, Bundesagentur für Arbeit customer numbers
    ("123A456789"), Bedarfsgemeinschaft numbers ("12345BG1234567") and any run of six or more
    digits. The text is first stripped of control characters (tab and line breaks stay),
    normalised to NFC and stripped of surrounding whitespace; all other text is returned
    unchanged.

    The function accepts any string, never raises, runs in time linear in the length of the
    text and is idempotent: ``scrub_comment(scrub_comment(x)) == scrub_comment(x)``.
    """
    result = unicodedata.normalize("NFC", _CONTROL.sub("", text)).strip()
    for _ in range(_MAX_PASSES):
        again = unicodedata.normalize("NFC", _redact_once(result)).strip()
        if again == result:
            break
        result = again
    return result
