"""The printed texts of QR posters and stickers, in every client language.

Two sentences per language: the invitation and the privacy promise. They stay short because a
poster with several languages must still leave room for a code that scans from 1.5 m.

The right-to-left texts (Arabic, Dari/Persian, Pashto) deliberately contain no Latin letters:
"IP address" is said in words ("the internet address of your device"). A Latin run inside an
Arabic line would need a second font in the middle of the line, and the SVG-to-PDF renderer
then picks an arbitrary system font for it; a single script per line keeps the output
identical on every machine. Persian and Pashto use Eastern Arabic-Indic digits (۳۰), Arabic the
Western digits usual on Arabic signage in Germany. A number and its unit are joined by a
no-break space, so a line never ends on a bare "30".

Translations other than German and English should be checked by native speakers before
printing in quantity. The tests check that every language of :mod:`officepulse.languages` has
both texts here.
"""

from __future__ import annotations

from typing import Final

import msgspec


class PosterText(msgspec.Struct, frozen=True):
    """The two printed sentences of one language."""

    invitation: str
    """In English: "How was your visit today? Anonymous, 30 seconds"."""
    privacy: str
    """In English: "Anonymous: we store no IP address; times are rounded to the hour"."""


POSTER_TEXTS: Final[dict[str, PosterText]] = {
    "de": PosterText(
        "Wie war Ihr Besuch heute? Anonym, 30\u00a0Sekunden",
        "Anonym: Wir speichern keine IP-Adresse; Zeiten werden auf die Stunde gerundet.",
    ),
    # Leichte Sprache: short sentences, no foreign words such as "anonym".
    "de-x-ls": PosterText(
        "Wie war Ihr Besuch heute? Sagen Sie es uns. Ohne Namen. Es dauert 30\u00a0Sekunden.",
        "Wir wissen nicht, wer Sie sind. Wir speichern keine IP-Adresse. "
        "Wir speichern nur die Stunde, nicht die genaue Zeit.",
    ),
    "en": PosterText(
        "How was your visit today? Anonymous, 30\u00a0seconds",
        "Anonymous: we store no IP address; times are rounded to the hour.",
    ),
    "uk": PosterText(
        "Як пройшов ваш візит сьогодні? Анонімно, 30\u00a0секунд",
        "Анонімно: ми не зберігаємо IP-адресу; час округлюється до години.",
    ),
    "ru": PosterText(
        "Как прошёл ваш визит сегодня? Анонимно, 30\u00a0секунд",
        "Анонимно: мы не сохраняем IP-адрес; время округляется до часа.",
    ),
    "ar": PosterText(
        "كيف كانت زيارتك اليوم؟ مجهول الهوية، 30\u00a0ثانية",
        "مجهول الهوية: لا نحفظ عنوان جهازك على الإنترنت، ونسجل الوقت بالساعة فقط.",
    ),
    "fa": PosterText(
        "مراجعه امروز شما چگونه بود؟ بدون نام، ۳۰\u00a0ثانیه",
        "بدون نام: آدرس اینترنتی دستگاه شما را ذخیره نمی‌کنیم؛ زمان‌ها به ساعت گرد می‌شوند.",
    ),
    "ps": PosterText(
        "نن ستاسو مراجعه څنګه وه؟ بې نومه، ۳۰\u00a0ثانیې",
        "بې نومه: موږ ستاسو د وسیلې انټرنیټي پته نه ساتو؛ وخت یوازې د ساعت په کچه ثبتوو.",
    ),
    "tr": PosterText(
        "Bugünkü ziyaretiniz nasıldı? Anonim, 30\u00a0saniye",
        "Anonim: IP adresi kaydetmiyoruz; saatler tam saate yuvarlanır.",
    ),
    "kmr": PosterText(
        "Serdana we ya îro çawa bû? Bênav, 30\u00a0çirke",
        "Bênav: em navnîşana IP tomar nakin; dem tenê bi saetê tê tomarkirin.",
    ),
    "ro": PosterText(
        "Cum a fost vizita dumneavoastră de azi? Anonim, 30\u00a0de\u00a0secunde",
        "Anonim: nu stocăm adresa IP; ora este rotunjită la ora întreagă.",
    ),
    "bg": PosterText(
        "Как мина посещението ви днес? Анонимно, 30\u00a0секунди",
        "Анонимно: не съхраняваме IP адрес; часът се закръгля до цял час.",
    ),
    "pl": PosterText(
        "Jak minęła dzisiejsza wizyta? Anonimowo, 30\u00a0sekund",
        "Anonimowo: nie zapisujemy adresu IP; czas zaokrąglamy do pełnej godziny.",
    ),
}
