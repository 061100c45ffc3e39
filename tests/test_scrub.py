"""scrub_comment: personal data is removed from comments, ordinary feedback is left alone."""

from __future__ import annotations

import random
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from officepulse.scrub import REDACTED, scrub_comment

EMAIL_LIKE = re.compile(r"[@＠][\w-]+\.[\w-]+")
SIX_DIGITS = re.compile(r"\d{6,}")

# (comment, the identifier that must disappear, words that must survive)
POSITIVE: list[tuple[str, str, tuple[str, ...]]] = [
    # --- phone numbers ---
    (
        "Rufen Sie mich an: 0176 123 456 78 danke",
        "0176 123 456 78",
        ("Rufen Sie mich an:", "danke"),
    ),
    ("Tel. +49 176 12345678 bitte zurückrufen", "+49 176 12345678", ("Tel.", "bitte zurückrufen")),
    (
        "Erreichbar unter +49 (0)208 1234567 ab Montag",
        "+49 (0)208 1234567",
        ("Erreichbar unter", "ab Montag"),
    ),
    ("Meine Nummer ist 0208 455-1234, danke", "0208 455-1234", ("Meine Nummer ist", ", danke")),
    ("Festnetz 0208/4551234 geht immer", "0208/4551234", ("Festnetz", "geht immer")),
    ("Handy 0176-123 456 78 oder Mail", "0176-123 456 78", ("Handy", "oder Mail")),
    ("Aus Berlin: 0049 30 1234567 bitte", "0049 30 1234567", ("Aus Berlin:", "bitte")),
    ("Die Nummer 030 12 34 56 78 ist privat", "030 12 34 56 78", ("Die Nummer", "ist privat")),
    ("Bitte unter (0208) 455 1234 melden", "(0208) 455 1234", ("Bitte unter", "melden")),
    ("Tel +49-30-1234567 tagsüber", "+49-30-1234567", ("Tel", "tagsüber")),
    ("Rückruf an 01761234567 erwünscht", "01761234567", ("Rückruf an", "erwünscht")),
    ("Telefon 0208.4551234 ab 9", "0208.4551234", ("Telefon", "ab 9")),
    (
        "Mein Bruder in den USA: +1 212 555 1234 hilft",
        "+1 212 555 1234",
        ("Mein Bruder in den USA:",),
    ),
    (
        "Meine Schwester 0033 1 23 45 67 89 in Paris",
        "0033 1 23 45 67 89",
        ("Meine Schwester", "in Paris"),
    ),
    ("Türkische Nummer +90 532 123 45 67 geht auch", "+90 532 123 45 67", ("Türkische Nummer",)),
    ("Mobil 0176 / 123 456 78 bitte", "0176 / 123 456 78", ("Mobil", "bitte")),
    ("رقمي ٠١٧٦١٢٣٤٥٦٧٨ شكرا", "٠١٧٦١٢٣٤٥٦٧٨", ("رقمي", "شكرا")),
    ("Мой номер +7 912 345-67-89 спасибо", "+7 912 345-67-89", ("Мой номер", "спасибо")),
    ("Tel:01761234567,ich warte", "01761234567", ("Tel:", ",ich warte")),
    (
        "Nach 3 Stunden habe ich 0176 12345678 2 Mal angerufen",
        "0176 12345678",
        ("Nach 3 Stunden", "2 Mal angerufen"),
    ),
    ("Ruf mich an 4551234 danke", "4551234", ("Ruf mich an", "danke")),
    (
        "Am 12.03.2024 um 10:30 Uhr war ich da, Tel. 0201 8765432",
        "0201 8765432",
        ("Am 12.03.2024 um 10:30 Uhr",),
    ),
    ("Raum 204, Tel. 0208 4551234", "0208 4551234", ("Raum 204, Tel.",)),
    # --- e-mail addresses ---
    (
        "Schreiben Sie an max.mustermann@example.de bitte",
        "max.mustermann@example.de",
        ("Schreiben Sie an", "bitte"),
    ),
    ("Mail: anna+jobcenter@mail.example.co.uk.", "anna+jobcenter@mail.example.co.uk", ("Mail:",)),
    (
        "Kontakt jürgen.müller@müller-bäckerei.de gern",
        "jürgen.müller@müller-bäckerei.de",
        ("Kontakt", "gern"),
    ),
    (
        "Adresse info@xn--mller-kva.de ist richtig",
        "info@xn--mller-kva.de",
        ("Adresse", "ist richtig"),
    ),
    (
        "Bitte an name (at) example (dot) de schreiben",
        "example (dot) de",
        ("Bitte an", "schreiben"),
    ),
    ("Bitte an name[at]example.de schreiben", "name[at]example.de", ("Bitte an", "schreiben")),
    (
        "Bitte an name {at} example [punkt] de schreiben",
        "example [punkt] de",
        ("Bitte an", "schreiben"),
    ),
    ("Bitte an name at example dot de schreiben", "example dot de", ("Bitte an", "schreiben")),
    ("GROSS: MAX@EXAMPLE.DE danke", "MAX@EXAMPLE.DE", ("GROSS:", "danke")),
    (
        "Mit Leerzeichen max @ example.de geschrieben",
        "example.de",
        ("Mit Leerzeichen", "geschrieben"),
    ),
    ("Breit max＠example.de geschrieben", "example.de", ("Breit", "geschrieben")),
    ("In Klammern <max@example.de> am Ende", "max@example.de", ("In Klammern <", "> am Ende")),
    ("Почта иван@пример.рф спасибо", "иван@пример.рф", ("Почта", "спасибо")),
    # --- IBANs ---
    (
        "Meine IBAN DE89 3704 0044 0532 0130 00 und kein Geld",
        "3704 0044 0532",
        ("Meine IBAN", "und kein Geld"),
    ),
    (
        "IBAN: DE89370400440532013000, bitte prüfen",
        "370400440532013000",
        ("IBAN:", ", bitte prüfen"),
    ),
    (
        "klein geschrieben de89 3704 0044 0532 0130 00 auch",
        "3704 0044 0532",
        ("klein geschrieben", "auch"),
    ),
    (
        "Vertippt DE12 3704 0044 0532 0130 00 ist auch privat",
        "3704 0044 0532",
        ("Vertippt", "ist auch privat"),
    ),
    (
        "Eine Ziffer zu viel DE893704004405320130001 bitte",
        "370400440532013000",
        ("Eine Ziffer zu viel", "bitte"),
    ),
    ("Britisch GB29 NWBK 6016 1331 9268 19 ok", "NWBK 6016 1331 9268 19", ("Britisch", "ok")),
    ("Niederlande NL91ABNA0417164300 ok", "NL91ABNA0417164300", ("Niederlande", "ok")),
    ("Österreich AT61 1904 3002 3457 3201 ok", "1904 3002 3457 3201", ("Österreich", "ok")),
    ("Schweiz CH93 0076 2011 6238 5295 7 ok", "0076 2011 6238 5295 7", ("Schweiz", "ok")),
    ("Frankreich FR14 2004 1010 0505 0001 3M02 606 ok", "3M02 606", ("Frankreich", "ok")),
    ("Ukraine UA21 3223 1300 0002 6007 2335 6600 1 ok", "6600 1", ("Ukraine", "ok")),
    # --- Kundennummer ---
    ("Meine Kundennummer ist 123A456789 danke", "123A456789", ("Meine Kundennummer ist", "danke")),
    ("Kd-Nr. 123 A 456789 steht im Brief", "123 A 456789", ("Kd-Nr.", "steht im Brief")),
    ("Kundennr 123-a-456789.", "123-a-456789", ("Kundennr",)),
    ("Nummer 987 B 654 321 im Bescheid", "987 B 654 321", ("Nummer", "im Bescheid")),
    # --- BG-Nummer ---
    ("BG-Nummer 12345BG1234567 bitte löschen", "12345BG1234567", ("BG-Nummer", "bitte löschen")),
    ("Unsere BG 12345 BG 1234567 wartet", "12345 BG 1234567", ("Unsere BG", "wartet")),
    ("bg klein 12345-bg-1234567 geht auch", "12345-bg-1234567", ("bg klein", "geht auch")),
    # --- several identifiers, adjacent or overlapping ---
    ("Zwei Nummern 0176 1234567/0208 4551234 fertig", "4551234", ("Zwei Nummern", "fertig")),
    ("Beides 123A456789,12345BG1234567 fertig", "1234567", ("Beides", "fertig")),
    ("Konto DE89370400440532013000 0176 1234567 fertig", "1234567", ("Konto", "fertig")),
    ("Geklebt max@example.de0176 1234567 fertig", "1234567", ("Geklebt", "fertig")),
    ("Datum dann Nummer 01.03.2024 0176 1234567 fertig", "0176", ("01.03.2024", "fertig")),
]

NEGATIVE: list[str] = [
    "Ich habe am 12.03.2024 um 10:30 Uhr 3 Stunden gewartet.",
    "Termin war am 01.03.2024, Wartezeit 45 Minuten.",
    "Der Bescheid vom 05.02.2024 kam erst am 07.02.2024 an.",
    "Am 12.3. hatte ich einen Termin, am 02.05. den nächsten.",
    "Seit 2019 bin ich Kunde, im Jahr 2024 wurde es besser.",
    "Die Beratung in Raum 204 war sehr gut.",
    "Zimmer 3.12 ist schwer zu finden, im 2. OG Zimmer 2.041 auch.",
    "Ich bekomme 500 Euro und musste 1.200,50 € nachzahlen.",
    "Kopien kosten 0,50 € pro Seite.",
    "Öffnungszeiten 08:00-12:00 Uhr sind zu kurz.",
    "Von 08.30-09.15 Uhr gewartet, dann um 09.30 Uhr dran.",
    "Um 8 Uhr geöffnet, 20 Leute vor mir.",
    "Nummer 17 wurde nach 90 Minuten aufgerufen.",
    "Das U25-Team war freundlich.",
    "Leistungen nach SGB II und Förderung nach § 16 SGB II.",
    "Maßnahme von 07/2024 bis 12/2024, danach 07/2024-08/2024 Praktikum.",
    "Zeitraum 01.01.2024–31.12.2024 war viel zu lang.",
    "Ich bin 35 Jahre alt und seit 2021 arbeitslos.",
    "Wartemarke 0815, nach 1 h 20 min dran.",
    "Bewertung: 5 von 5 Sternen, 100 % zufrieden.",
    "Meine Beraterin (Frau K.) war super, ich gebe 10/10.",
    "Ich habe 2 Kinder und warte seit 3 Wochen auf 0 Antwort.",
    "PLZ 45127 Essen, Filiale 01067 Dresden.",
    "Hotline 0800 war besetzt.",
    "Mitarbeiter:innen waren nett, E-Mail-Adresse habe ich nicht.",
    "Es waren 1.500 Leute da, bei 38,5 Grad.",
    "Termin 10.30 Uhr, 2x verschoben.",
    "I was at the office at 9 and it was fine.",
    "شكرا جزيلا على المساعدة",
    "Спасибо за помощь, всё хорошо.",
    "Çok teşekkürler, 3 saat bekledim.",
    "👍 super 🙂",
]


def _without(text: str, parts: tuple[str, ...]) -> str:
    for part in parts:
        text = text.replace(part, " ")
    return text


@pytest.mark.parametrize(("comment", "secret", "kept"), POSITIVE)
def test_identifiers_are_removed(comment: str, secret: str, kept: tuple[str, ...]) -> None:
    scrubbed = scrub_comment(comment)
    assert REDACTED in scrubbed
    assert secret not in scrubbed
    for word in kept:
        assert word in scrubbed
    rest = _without(scrubbed, kept)
    assert not any(char.isdigit() for char in rest), scrubbed
    assert "@" not in rest
    assert "＠" not in rest


@pytest.mark.parametrize("comment", NEGATIVE)
def test_ordinary_feedback_is_unchanged(comment: str) -> None:
    assert scrub_comment(comment) == comment


def test_public_constant() -> None:
    assert REDACTED == "[entfernt]"


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("", ""),
        ("   \n\t ", ""),
        ("  gut  ", "gut"),
        ("Cafe\u0301", "Café"),
        ("  0176 1234567  ", REDACTED),
        ("0176 12345678 3 Stunden gewartet", f"{REDACTED} 3 Stunden gewartet"),
        ("Nummer: 0176 1234567.", f"Nummer: {REDACTED}."),
        ("a@b.de c@d.de", f"{REDACTED} {REDACTED}"),
        ("0176 1234567 0208 4551234", REDACTED),
    ],
)
def test_exact_output(comment: str, expected: str) -> None:
    assert scrub_comment(comment) == expected


@pytest.mark.parametrize(
    "comment",
    [
        "\x00\x01\x02\x1b[31m",
        "\ud800\udfff",
        "\u202e0176 1234567\u202c",
        "0176\u200b1234567",
        "🙂" * 50,
        "e\u0301\u0301\u0301",
        "\uffff\U0010ffff",
        "[entfernt]" * 3,
        "name (at) (dot)",
        "@@@...(at)(dot)",
    ],
)
def test_total_on_odd_strings(comment: str) -> None:
    once = scrub_comment(comment)
    assert scrub_comment(once) == once


def test_control_characters_are_dropped_but_line_breaks_stay() -> None:
    assert scrub_comment("Zu\x00 laut\x1b[31m!\x7f") == "Zu laut[31m!"
    assert scrub_comment("Zeile 1\r\nZeile 2\tEnde\x85") == "Zeile 1\r\nZeile 2\tEnde"
    # A number split by control characters is still a number.
    assert scrub_comment("Tel 0176\x001234\x08567") == f"Tel {REDACTED}"


def test_numbers_hidden_by_invisible_characters_are_removed() -> None:
    assert scrub_comment("Tel 0176\u200b1234567 ok") == f"Tel {REDACTED} ok"
    assert scrub_comment("Tel \u20660176 1234567\u2069 ok") == f"Tel \u2066{REDACTED}\u2069 ok"


# --- adversarial input ------------------------------------------------------------------------


def _random_noise(seed: int, alphabet: str, size: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(size))


ADVERSARIAL = [
    _random_noise(1, "0123456789 -/+", 2000),
    _random_noise(2, "0123456789 -/+", 2000),
    _random_noise(3, "00000011 -/+", 2000),
    "0" * 2000,
    "0 " * 1000,
    "0-" * 1000,
    "+0 /" * 500,
    "0 1 2-3/4+" * 200,
    "1" * 1999 + "x",
    "12.03." * 333,
]


@pytest.mark.parametrize("comment", ADVERSARIAL)
def test_adversarial_digit_soup_is_scrubbed(comment: str) -> None:
    scrubbed = scrub_comment(comment)
    assert SIX_DIGITS.search(scrubbed) is None
    assert scrub_comment(scrubbed) == scrubbed


@pytest.mark.parametrize(
    "comment",
    [
        "a" * 2000,
        "a@" * 1000,
        "a." * 1000 + "@",
        "a{at}" * 400,
        "a (at) b (dot) " * 140,
        "x at y dot " * 200,
        "DE89 " * 400,
        "DE89" + " 0" * 998,
        "123 A " * 333,
        "12345 BG " * 222,
        "(" * 2000,
        "+" * 2000,
    ],
)
def test_pathological_text_completes(comment: str) -> None:
    scrubbed = scrub_comment(comment)
    assert scrub_comment(scrubbed) == scrubbed


# --- property tests ---------------------------------------------------------------------------

SURROUNDING = st.text(alphabet=string.ascii_letters + "äöüÄÖÜß ", max_size=40)
DIGIT = st.sampled_from(string.digits)
NONZERO = st.sampled_from("123456789")


def _digits(count: int) -> st.SearchStrategy[str]:
    return st.lists(DIGIT, min_size=count, max_size=count).map("".join)


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    prefix = draw(
        st.sampled_from(["0", "+49 ", "+49", "+49 (0)", "+49(0)", "0049 ", "+43 ", "0090 ", "+1 "])
    )
    area = draw(NONZERO) + draw(_digits(draw(st.integers(1, 3))))
    subscriber = draw(NONZERO) + draw(_digits(draw(st.integers(4, 7))))
    if draw(st.booleans()):
        cut = draw(st.integers(3, len(subscriber) - 1))
        subscriber = subscriber[:cut] + draw(st.sampled_from([" ", "-"])) + subscriber[cut:]
    separator = draw(st.sampled_from([" ", "-", "/", " / ", " - ", "", "."]))
    return f"{prefix}{area}{separator}{subscriber}"


def _iban_check_digits(country: str, bban: str) -> str:
    remainder = int("".join(str(int(char, 36)) for char in bban + country + "00")) % 97
    return f"{98 - remainder:02d}"


IBAN_LENGTHS = {"DE": 22, "AT": 20, "CH": 21, "NL": 18, "GB": 22, "FR": 27, "PL": 28, "TR": 26}


@st.composite
def ibans(draw: st.DrawFn) -> str:
    alnum = st.sampled_from(string.ascii_uppercase + string.digits)
    kind = draw(st.sampled_from(["known", "unknown", "german-typo"]))
    if kind == "known":
        country, length = draw(st.sampled_from(sorted(IBAN_LENGTHS.items())))
    else:
        country, length = ("DE", 22) if kind == "german-typo" else ("ZZ", draw(st.integers(15, 34)))
    if country == "DE":
        bban = draw(_digits(18))
    else:
        bban = "".join(draw(st.lists(alnum, min_size=length - 4, max_size=length - 4)))
    check = draw(_digits(2)) if kind == "german-typo" else _iban_check_digits(country, bban)
    iban = country + check + bban
    if draw(st.booleans()):
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban.lower() if draw(st.booleans()) else iban


@st.composite
def customer_numbers(draw: st.DrawFn) -> str:
    separator = draw(st.sampled_from(["", " ", "-"]))
    letter = draw(st.sampled_from(string.ascii_letters))
    return f"{draw(_digits(3))}{separator}{letter}{separator}{draw(_digits(6))}"


@st.composite
def bg_numbers(draw: st.DrawFn) -> str:
    separator = draw(st.sampled_from(["", " ", "-"]))
    bg = draw(st.sampled_from(["BG", "bg", "Bg"]))
    return f"{draw(_digits(5))}{separator}{bg}{separator}{draw(_digits(7))}"


@st.composite
def obfuscated_emails(draw: st.DrawFn) -> str:
    word = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12)
    at = draw(st.sampled_from(["@", " (at) ", "[at]", " [at] ", "{at}", " at ", "(ät)"]))
    dot = draw(st.sampled_from([".", " (dot) ", "[punkt]", " dot ", " punkt "]))
    return f"{draw(word)}{at}{draw(word)}{dot}{draw(st.sampled_from(['de', 'com', 'org']))}"


IDENTIFIERS = st.one_of(
    st.emails(),
    obfuscated_emails(),
    phone_numbers(),
    ibans(),
    customer_numbers(),
    bg_numbers(),
)


@settings(max_examples=200, deadline=None)
@given(before=SURROUNDING, identifier=IDENTIFIERS, after=SURROUNDING)
def test_generated_identifiers_are_removed(before: str, identifier: str, after: str) -> None:
    scrubbed = scrub_comment(f"{before} {identifier} {after}")
    assert identifier not in scrubbed
    assert REDACTED in scrubbed
    assert EMAIL_LIKE.search(scrubbed) is None


@settings(max_examples=200, deadline=None)
@given(before=SURROUNDING, phone=phone_numbers(), after=SURROUNDING)
def test_no_long_digit_run_of_a_phone_number_survives(before: str, phone: str, after: str) -> None:
    scrubbed = scrub_comment(f"{before} {phone} {after}")
    phone_digits = re.sub(r"\D", "", phone)
    assert phone not in scrubbed
    for run in SIX_DIGITS.findall(scrubbed):
        assert run not in phone_digits


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_total_and_idempotent_on_any_text(text: str) -> None:
    once = scrub_comment(text)
    assert isinstance(once, str)
    assert scrub_comment(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789  +-/.,:()@[]{}aBDEGtx٣\u00a0\u200b", max_size=80))
def test_total_and_idempotent_on_identifier_like_text(text: str) -> None:
    once = scrub_comment(text)
    assert scrub_comment(once) == once
    assert SIX_DIGITS.search(once) is None
