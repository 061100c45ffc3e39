"""QR codes, posters and stickers that lead clients to the anonymous survey.

A client scans the code on a poster in the waiting room and lands on ``{base}/s/{office}``,
optionally with the poster's placement (``p=``) and, for a single-language poster, its
language (``lang=``). This module builds that URL, the code as SVG or PNG (``qrcode``, with the
pure-Python PNG writer, so no Pillow) and printable PDFs: an A4 poster and a 5 × 5 cm sticker.

The PDFs are drawn as SVG and converted by ``vl_convert.svg_to_pdf``, which the project
already ships for report charts: it shapes Arabic script and lays it out right to left
(HarfBuzz-compatible shaping plus the Unicode bidi algorithm), embeds font subsets with a
ToUnicode map, and needs neither Pillow nor a second PDF library. SVG has no line breaking, so
the layout measures text with the advance widths read from the bundled fonts (Noto Sans and
Noto Sans Arabic, SIL OFL, in ``fonts/``) and wraps and scales it itself.

The code is sized for scanning distance: about a tenth of the distance, so the symbol is at
least 15 cm on the A4 poster (read from 1.5 m), and as large as the texts leave room for on
the sticker. Every code keeps a quiet zone of four modules with nothing printed in it.
"""

from __future__ import annotations

import functools
import io
import os
import re
import secrets
import struct
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape, quoteattr

import click
import qrcode
import qrcode.constants
from qrcode.image.pure import PyPNGImage
from qrcode.image.svg import SvgPathImage

from officepulse.languages import LANGUAGES
from officepulse.poster_texts import POSTER_TEXTS
from officepulse.settings import env_name

QUIET_ZONE: Final = 4
"""Light modules around the symbol, as ISO/IEC 18004 requires; scanners need it to find it."""

# Q restores up to 25 % of damaged modules: posters in waiting rooms get scuffed, written on
# and partly covered. The URLs are short, so the symbol stays at version 4 to 6 (33-41
# modules) and the modules of a 15 cm code are still about 4 mm wide.
ERROR_CORRECTION: Final = qrcode.constants.ERROR_CORRECT_Q

PLACEMENT_RE: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")
DEFAULT_LANGS: Final = "de,en"

PosterSize = Literal["a4", "sticker"]
OutputFormat = Literal["svg", "png", "pdf"]
Anchor = Literal["start", "middle", "end"]

FONTS_DIR: Final = Path(__file__).parent / "fonts"
LATIN_FAMILY: Final = "Noto Sans"
ARABIC_FAMILY: Final = "Noto Sans Arabic"
_FONT_FILES: Final = {
    (LATIN_FAMILY, False): "NotoSans-Regular.ttf",
    (LATIN_FAMILY, True): "NotoSans-Bold.ttf",
    (ARABIC_FAMILY, False): "NotoSansArabic-Regular.ttf",
    (ARABIC_FAMILY, True): "NotoSansArabic-Bold.ttf",
}
PT_PER_MM: Final = 72 / 25.4


class PosterError(ValueError):
    """The poster cannot be laid out as asked; the message is one line saying what to change."""


# -- the survey URL ----------------------------------------------------------------------------


def survey_url(base_url: str, office_id: str, placement: str | None, lang: str | None) -> str:
    """The survey link a code encodes: ``{base}/s/{office}?p=…&lang=…``.

    Only the given parameters appear, always ``p`` before ``lang``, so the same poster options
    give byte-identical codes. Every part is percent-encoded (spaces as ``%20``, never ``+``),
    so an odd office or placement value can never change the URL's structure.
    """
    url = f"{base_url.rstrip('/')}/s/{quote(office_id, safe='')}"
    query = [(key, value) for key, value in (("p", placement), ("lang", lang)) if value is not None]
    if query:
        url += "?" + urlencode(query, quote_via=quote, safe="")
    return url


# -- the code as SVG and PNG -------------------------------------------------------------------


def _qr(url: str, box_size: int = 10) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, box_size=box_size, border=QUIET_ZONE)
    code.add_data(url)
    code.make(fit=True)
    return code


@dataclass(frozen=True)
class _Symbol:
    """A code as one SVG path in module units; ``side`` counts the quiet zone too."""

    path: str
    side: int

    @property
    def modules(self) -> int:
        return self.side - 2 * QUIET_ZONE


def _symbol(url: str) -> _Symbol:
    code = _qr(url)
    # With qrcode's default box size of 10, SvgPathImage's unit is exactly one module, so
    # its path can be scaled to any size by a transform, on a poster as in a plain SVG.
    image = code.make_image(image_factory=SvgPathImage)
    return _Symbol(path=str(image.path.get("d")), side=code.modules_count + 2 * QUIET_ZONE)


def qr_svg(url: str) -> bytes:
    """The code for ``url`` as a standalone SVG (one module = 1 mm), the URL printed below it.

    The background is painted white so the quiet zone survives dark page backgrounds.
    """
    symbol = _symbol(url)
    width = float(symbol.side)
    latin = _face(LATIN_FAMILY, bold=False)
    # The URL line spans at most the code's full width (the side quiet zones are blank paper
    # anyway), capped so a short URL does not print huge. The SVG may be shown with any
    # font, so textLength pins the line to the width measured in Noto Sans: a wider fallback
    # font is squeezed to it instead of running off the edge.
    size = min(2.4, 0.92 * width / max(latin.width(url), 1.0))
    length = latin.width(url) * size
    text_top = width
    height = text_top + size * 1.6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{_num(width)}mm"'
        f' height="{_num(height)}mm" viewBox="0 0 {_num(width)} {_num(height)}"'
        f' role="img" aria-label={quoteattr("QR code: " + url)}>',
        f'<rect width="{_num(width)}" height="{_num(height)}" fill="#ffffff"/>',
        f'<path d="{symbol.path}" fill="#000000"/>',
        f'<text x="{_num(width / 2)}" y="{_num(text_top + size * 1.05)}" text-anchor="middle"'
        f' font-family="{LATIN_FAMILY}, DejaVu Sans, Arial, sans-serif"'
        f' font-size="{_num(size)}" textLength="{_num(length)}"'
        f' lengthAdjust="spacingAndGlyphs" fill="#000000">{escape(url)}</text>',
        "</svg>",
    ]
    return ("\n".join(parts) + "\n").encode()


def qr_png(url: str, box_size: int = 10) -> bytes:
    """The code for ``url`` as a 1-bit greyscale PNG, ``box_size`` pixels per module."""
    if box_size < 1:
        raise ValueError(f"box_size must be at least 1, not {box_size}")
    image = _qr(url, box_size).make_image(image_factory=PyPNGImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


# -- font metrics ------------------------------------------------------------------------------


class _FontMetrics:
    """Advance widths of one TrueType font, read from its ``cmap``, ``hhea`` and ``hmtx``.

    Enough to measure a line for wrapping. For Latin and Cyrillic the result matches the
    renderer to within 1 % (kerning is ignored, which only overestimates). Arabic script is
    measured with the isolated letter forms, which are wider than the joined ones: the shipped
    Arabic, Dari and Pashto lines come out 17-27 % wider than rendered, so they wrap a little
    early but never run past their margin.
    """

    def __init__(self, data: bytes) -> None:
        (count,) = struct.unpack_from(">H", data, 4)
        tables = {
            data[12 + 16 * i : 16 + 16 * i].decode("latin-1"): struct.unpack_from(
                ">I", data, 12 + 16 * i + 8
            )[0]
            for i in range(count)
        }
        (self.units_per_em,) = struct.unpack_from(">H", data, tables["head"] + 18)
        (metric_count,) = struct.unpack_from(">H", data, tables["hhea"] + 34)
        advances = struct.unpack_from(f">{2 * metric_count}H", data, tables["hmtx"])[::2]
        self._advance: dict[int, int] = {}
        for char, glyph in _read_cmap(data, tables["cmap"]):
            # Glyphs past the last full metric share its advance (a monospaced tail).
            self._advance[char] = advances[min(glyph, metric_count - 1)]

    def advance(self, char: str) -> float | None:
        """The advance of ``char`` in em, or None when the font has no glyph for it."""
        units = self._advance.get(ord(char))
        return None if units is None else units / self.units_per_em


def _read_cmap(data: bytes, offset: int) -> Iterator[tuple[int, int]]:
    """(code point, glyph id) pairs of the font's Unicode cmap (format 12 or 4)."""
    (count,) = struct.unpack_from(">H", data, offset + 2)
    subtables: dict[tuple[int, int], int] = {}
    for i in range(count):
        platform, encoding, sub = struct.unpack_from(">HHI", data, offset + 4 + 8 * i)
        subtables[platform, encoding] = offset + sub
    for key in ((3, 10), (0, 4), (3, 1), (0, 3)):
        if key not in subtables:
            continue
        start = subtables[key]
        (fmt,) = struct.unpack_from(">H", data, start)
        if fmt == 12:
            (groups,) = struct.unpack_from(">I", data, start + 12)
            for g in range(groups):
                first, last, glyph = struct.unpack_from(">III", data, start + 16 + 12 * g)
                for char in range(first, last + 1):
                    yield char, glyph + char - first
            return
        if fmt == 4:
            yield from _read_cmap4(data, start)
            return
    raise ValueError("font has no Unicode cmap of format 4 or 12")


def _read_cmap4(data: bytes, start: int) -> Iterator[tuple[int, int]]:
    (seg_x2,) = struct.unpack_from(">H", data, start + 6)
    segs = seg_x2 // 2
    ends = struct.unpack_from(f">{segs}H", data, start + 14)
    starts = struct.unpack_from(f">{segs}H", data, start + 16 + seg_x2)
    deltas = struct.unpack_from(f">{segs}h", data, start + 16 + 2 * seg_x2)
    range_pos = start + 16 + 3 * seg_x2
    range_offsets = struct.unpack_from(f">{segs}H", data, range_pos)
    for i in range(segs):
        for char in range(starts[i], ends[i] + 1):
            if char == 0xFFFF:
                continue
            if range_offsets[i] == 0:
                glyph = (char + deltas[i]) & 0xFFFF
            else:
                # idRangeOffset counts bytes from its own position to the glyph id array entry.
                at = range_pos + 2 * i + range_offsets[i] + 2 * (char - starts[i])
                (glyph,) = struct.unpack_from(">H", data, at)
                if glyph:
                    glyph = (glyph + deltas[i]) & 0xFFFF
            if glyph:
                yield char, glyph


@dataclass(frozen=True)
class _Face:
    """A font family and weight as the SVG names it, with the metrics of its bundled file."""

    family: str
    bold: bool
    metrics: _FontMetrics
    fallback: _FontMetrics | None
    ascent: float
    """Line top to baseline, in em."""
    line_height: float
    """Baseline to baseline, in em. Arabic needs more room for its marks and descenders."""

    def width(self, text: str) -> float:
        """The width of ``text`` set on one line, in em (an upper bound for Arabic)."""
        total = 0.0
        for char in text:
            advance = self.metrics.advance(char)
            if advance is None and self.fallback is not None:
                advance = self.fallback.advance(char)
            if advance is None:
                # Marks and format characters (ZWNJ in Persian) take no room; anything else
                # missing from the fonts is drawn by a system font at about one em.
                advance = 0.0 if unicodedata.category(char) in ("Mn", "Me", "Cf") else 1.0
            total += advance
        return total


@functools.cache
def _metrics(file_name: str) -> _FontMetrics:
    return _FontMetrics((FONTS_DIR / file_name).read_bytes())


@functools.cache
def _face(family: str, *, bold: bool) -> _Face:
    arabic = family == ARABIC_FAMILY
    return _Face(
        family=family,
        bold=bold,
        metrics=_metrics(_FONT_FILES[family, bold]),
        fallback=_metrics(_FONT_FILES[LATIN_FAMILY, bold]) if arabic else None,
        ascent=1.15 if arabic else 1.0,
        line_height=1.7 if arabic else 1.3,
    )


@functools.cache
def _register_fonts() -> None:
    """Make the bundled fonts known to vl-convert's renderer (once per process)."""
    import vl_convert

    vl_convert.register_font_directory(str(FONTS_DIR))


def _is_rtl(text: str) -> bool:
    """Whether the first strongly directional character of ``text`` is right-to-left."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def _printable(text: str) -> str:
    # XML 1.0 cannot carry control characters, and line breaks are the layout's job.
    return " ".join("".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cs")).split())


# -- poster layout -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    """A printed format; lengths in millimetres, font sizes as the em in millimetres."""

    width: float
    height: float
    margin: float
    name_size: tuple[float, float]
    """Largest and smallest size of the office name, which may take two lines."""
    text_size: tuple[float, float]
    """Largest and smallest size of the invitations; the largest that fits is used."""
    privacy_scale: float
    privacy_min: float
    url_size: tuple[float, float]
    symbol: tuple[float, float]
    """Smallest and largest side of the symbol without its quiet zone."""
    gap: float
    columns: tuple[int, ...]
    column_gap: float


FORMATS: Final[dict[PosterSize, _Format]] = {
    # Read from 1.5 m: a symbol of 15 to 16.5 cm; invitations from 23 pt down to 11 pt, the
    # privacy line at least 8 pt, the office name up to 28 pt.
    "a4": _Format(
        width=210.0,
        height=297.0,
        margin=10.0,
        name_size=(10.0, 6.0),
        text_size=(8.0, 3.9),
        privacy_scale=0.62,
        privacy_min=2.8,
        url_size=(5.0, 3.0),
        symbol=(150.0, 165.0),
        gap=5.0,
        columns=(1, 2),
        column_gap=8.0,
    ),
    # Read from arm's length: invitations of 5 to 6 pt, fine print down to 3.7 pt, and a code
    # of at least 2 cm (phones read it from 20 cm); what the texts leave goes to the code.
    "sticker": _Format(
        width=50.0,
        height=50.0,
        margin=2.0,
        name_size=(2.6, 2.0),
        text_size=(2.2, 1.7),
        privacy_scale=0.75,
        privacy_min=1.3,
        url_size=(1.6, 1.2),
        symbol=(20.0, 42.0),
        gap=0.6,
        columns=(1,),
        column_gap=0.0,
    ),
}


@dataclass(frozen=True)
class _Line:
    """One line of text as SVG draws it: ``x`` is where ``anchor`` sits, ``y`` the baseline."""

    text: str
    x: float
    y: float
    anchor: Anchor
    face: _Face
    size: float


@dataclass(frozen=True)
class _Block:
    """Lines laid out from y = 0 downwards, and the height they take."""

    lines: tuple[_Line, ...]
    height: float

    def at(self, top: float) -> tuple[_Line, ...]:
        return tuple(replace(line, y=line.y + top) for line in self.lines)


@dataclass(frozen=True)
class _Paragraph:
    text: str
    bold: bool

    @property
    def rtl(self) -> bool:
        return _is_rtl(self.text)

    def face(self) -> _Face:
        # One font per line: a second font inside an RTL line breaks the renderer's shaping.
        # Characters the chosen font lacks (Latin letters in an Arabic office name, say) are
        # drawn by whatever font the system has for them.
        return _face(ARABIC_FAMILY if self.rtl else LATIN_FAMILY, bold=self.bold)


def _wrap(text: str, face: _Face, size: float, width: float) -> list[str] | None:
    """Word wrap in logical order; None when a single word is wider than ``width``.

    When the text needs several lines anyway, it is broken after its sentences if that takes
    no more lines ("How was your visit today?" / "Anonymous, 30 seconds" rather than a break
    after "Anonymous,"). Each line is drawn as its own text element, so the renderer's bidi
    algorithm orders every RTL line on its own, as a browser would after breaking it.
    """
    greedy = _wrap_greedy(text, face, size, width)
    if greedy is None or len(greedy) == 1:
        return greedy
    by_sentence: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        lines = _wrap_greedy(sentence, face, size, width)
        if lines is None:
            return greedy
        by_sentence += lines
    return by_sentence if len(by_sentence) <= len(greedy) else greedy


# A sentence ends at . ? ! or the Arabic question mark, followed by a plain space.
_SENTENCE_END: Final = re.compile(r"(?<=[.?!\u061f]) +")


def _wrap_greedy(text: str, face: _Face, size: float, width: float) -> list[str] | None:
    lines: list[str] = []
    current = ""
    # Only plain spaces break: the texts glue numbers to their units with no-break spaces.
    for word in filter(None, text.split(" ")):
        if face.width(word) * size > width:
            return None
        candidate = f"{current} {word}" if current else word
        if current and face.width(candidate) * size > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _paragraph_block(
    paragraph: _Paragraph, size: float, left: float, width: float, anchor: Anchor | None = None
) -> _Block | None:
    face = paragraph.face()
    lines = _wrap(paragraph.text, face, size, width)
    if lines is None:
        return None
    if anchor is None:
        anchor = "end" if paragraph.rtl else "start"
    # SVG anchors are physical in the renderer: "end" puts the line's right edge at x, which
    # right-aligns an RTL line whatever its content.
    x = {"start": left, "middle": left + width / 2, "end": left + width}[anchor]
    step = face.line_height * size
    placed = tuple(
        _Line(text, x, face.ascent * size + i * step, anchor, face, size)
        for i, text in enumerate(lines)
    )
    return _Block(placed, step * len(lines))


def _grid(
    paragraphs: Sequence[_Paragraph],
    size: float,
    columns: int,
    left: float,
    width: float,
    gap: float,
) -> _Block | None:
    """Paragraphs in rows of ``columns`` cells, each aligned to its own reading direction."""
    cell_width = (width - gap * (columns - 1)) / columns
    lines: list[_Line] = []
    top = 0.0
    row_gap = 0.35 * size
    for row_start in range(0, len(paragraphs), columns):
        row_height = 0.0
        for col, paragraph in enumerate(paragraphs[row_start : row_start + columns]):
            cell = _paragraph_block(paragraph, size, left + col * (cell_width + gap), cell_width)
            if cell is None:
                return None
            lines.extend(cell.at(top))
            row_height = max(row_height, cell.height)
        top += row_height + row_gap
    return _Block(tuple(lines), max(top - row_gap, 0.0))


def _lowest(blocks: Iterable[_Block | None]) -> _Block | None:
    """The block that takes the least height (the fine print may use more columns)."""
    return min((b for b in blocks if b is not None), key=lambda b: b.height, default=None)


def _name_block(name: str, fmt: _Format) -> _Block:
    """The office name, centred: one line if it fits in the size range, else two, else more."""
    paragraph = _Paragraph(name, bold=True)
    width = fmt.width - 2 * fmt.margin
    largest, smallest = fmt.name_size
    for max_lines in (1, 2):
        for size in _sizes(largest, smallest):
            block = _paragraph_block(paragraph, size, fmt.margin, width, "middle")
            if block is not None and len(block.lines) <= max_lines:
                return block
    block = _paragraph_block(paragraph, smallest, fmt.margin, width, "middle")
    if block is None:
        # A single word too long even at the smallest size: shrink it until it fits.
        size = width / paragraph.face().width(name)
        block = _paragraph_block(paragraph, size, fmt.margin, width, "middle")
    assert block is not None
    return block


def _url_block(url: str, fmt: _Format) -> _Block:
    """The URL, centred on one line as large as fits; broken after '/', '?' or '&' if too long."""
    face = _face(LATIN_FAMILY, bold=True)
    width = fmt.width - 2 * fmt.margin
    largest, smallest = fmt.url_size
    size = max(smallest, min(largest, width / face.width(url)))
    lines: list[str] = []
    rest = url
    while face.width(rest) * size > width:
        cut = _url_cut(rest, lambda part: face.width(part) * size <= width)
        lines.append(rest[:cut])
        rest = rest[cut:]
    lines.append(rest)
    step = face.line_height * size
    placed = tuple(
        _Line(text, fmt.width / 2, face.ascent * size + i * step, "middle", face, size)
        for i, text in enumerate(lines)
    )
    return _Block(placed, step * len(lines))


def _url_cut(text: str, fits: Callable[[str], bool]) -> int:
    """Where to break ``text``: after the last '/', '?', '&' or '=' that fits, else anywhere."""
    longest = max((n for n in range(1, len(text) + 1) if fits(text[:n])), default=1)
    for n in range(longest, 0, -1):
        if text[n - 1] in "/?&=":
            return n
    return longest


def _sizes(largest: float, smallest: float) -> Iterator[float]:
    """Font sizes from ``largest`` down to ``smallest`` in steps of about 4 %."""
    size = largest
    while size > smallest:
        yield size
        size *= 0.96
    yield smallest


@dataclass(frozen=True)
class _Layout:
    lines: tuple[_Line, ...]
    symbol_x: float
    symbol_y: float
    module: float
    """Side of one module in mm; the symbol group is scaled by it."""


def _layout(
    symbol: _Symbol, url: str, office_name: str, langs: Sequence[str], size: PosterSize
) -> _Layout:
    """Place the texts and the code, the invitations as large as the code's minimum allows."""
    fmt = FORMATS[size]
    symbol_side = symbol.side
    name = _name_block(_printable(office_name), fmt)
    url_block = _url_block(url, fmt)
    texts = [POSTER_TEXTS[lang] for lang in langs]
    invitations = [_Paragraph(text.invitation, bold=True) for text in texts]
    privacy = [_Paragraph(text.privacy, bold=False) for text in texts]
    width = fmt.width - 2 * fmt.margin
    modules = symbol.modules
    # The quiet zone may reach into the page margin (it is blank paper) but not past the edge.
    widest = fmt.width * modules / symbol_side
    # One column reads best, so two are tried only when one does not fit at any size; within
    # that, the invitations get the largest size that leaves the code its minimum side.
    for columns in fmt.columns:
        if columns > len(langs):
            break
        for text_size in _sizes(*fmt.text_size):
            invite = _grid(invitations, text_size, columns, fmt.margin, width, fmt.column_gap)
            small = max(fmt.privacy_min, text_size * fmt.privacy_scale)
            promise = _lowest(
                _grid(privacy, small, n, fmt.margin, width, fmt.column_gap)
                for n in fmt.columns
                if n <= len(langs)
            )
            if invite is None or promise is None:
                continue
            fixed = name.height + invite.height + url_block.height + promise.height
            # Gaps: margin, name, invitations, [code with quiet zones], url, privacy, margin.
            room = fmt.height - 2 * fmt.margin - fixed - 3 * fmt.gap
            side = min(fmt.symbol[1], widest, room * modules / symbol_side)
            if side < fmt.symbol[0]:
                continue
            module = side / modules
            # What is left is shared by the three gaps, so the page looks composed, not empty
            # at the bottom.
            gap = fmt.gap + (room - module * symbol_side) / 3
            top = fmt.margin
            lines = list(name.at(top))
            top += name.height + gap
            lines.extend(invite.at(top))
            top += invite.height + gap
            code_top = top
            top += module * symbol_side
            lines.extend(url_block.at(top))
            top += url_block.height + gap
            lines.extend(promise.at(top))
            return _Layout(
                tuple(lines),
                symbol_x=(fmt.width - module * symbol_side) / 2,
                symbol_y=code_top,
                module=module,
            )
    raise PosterError(f"{len(langs)} languages do not fit on the {size} format")


def _fits(
    symbol: _Symbol, url: str, office_name: str, langs: Sequence[str], size: PosterSize
) -> bool:
    try:
        _layout(symbol, url, office_name, langs, size)
    except PosterError:
        return False
    return True


def poster_svg(url: str, office_name: str, langs: Sequence[str], size: PosterSize = "a4") -> str:
    """The poster as SVG, sized for ``vl_convert.svg_to_pdf`` (one SVG unit = 1 pt).

    Inside, everything is drawn in millimetres (the view box). Raises :class:`PosterError`
    when the texts leave too little room for a code that scans from the intended distance.
    """
    unknown = [lang for lang in langs if lang not in POSTER_TEXTS]
    if unknown:
        raise PosterError(f"no poster text for language {unknown[0]!r}")
    if not langs:
        raise PosterError("choose at least one language")
    fmt = FORMATS[size]
    symbol = _symbol(url)
    try:
        layout = _layout(symbol, url, office_name, langs, size)
    except PosterError:
        fitting = next(
            (
                n
                for n in range(len(langs) - 1, 0, -1)
                if _fits(symbol, url, office_name, langs[:n], size)
            ),
            0,
        )
        first = "only the first fits" if fitting == 1 else f"the first {fitting} fit"
        hint = f"; {first} ({','.join(langs[:fitting])})" if fitting else ""
        raise PosterError(
            f"{len(langs)} languages leave no room for a code of at least"
            f" {FORMATS[size].symbol[0] / 10:g} cm on the {size} format; choose fewer with --lang"
            + hint
        ) from None
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1"'
        f' width="{_num(fmt.width * PT_PER_MM)}" height="{_num(fmt.height * PT_PER_MM)}"'
        f' viewBox="0 0 {_num(fmt.width)} {_num(fmt.height)}">',
        f'<rect width="{_num(fmt.width)}" height="{_num(fmt.height)}" fill="#ffffff"/>',
        f'<g transform="translate({_num(layout.symbol_x)} {_num(layout.symbol_y)})'
        f' scale({_num(layout.module)})"><path d="{symbol.path}" fill="#000000"/></g>',
    ]
    for line in layout.lines:
        weight = ' font-weight="bold"' if line.face.bold else ""
        parts.append(
            f'<text x="{_num(line.x)}" y="{_num(line.y)}" text-anchor="{line.anchor}"'
            f' font-family="{line.face.family}"{weight} font-size="{_num(line.size)}"'
            f' fill="#000000">{escape(line.text)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def poster_pdf(url: str, office_name: str, langs: Sequence[str], size: PosterSize = "a4") -> bytes:
    """The poster (A4 portrait) or sticker (50 × 50 mm) as a one-page PDF with font subsets."""
    import vl_convert

    svg = poster_svg(url, office_name, langs, size)
    _register_fonts()
    return bytes(vl_convert.svg_to_pdf(svg))


def _num(value: float) -> str:
    """A coordinate for SVG: three decimals are a micrometre, plenty for print."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


# -- writing files -----------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it holds the old content or all of the new.

    The temporary file is a sibling (same file system, so the rename is atomic) and is removed
    on any error; it is created with mode 0666 minus the umask, like a plain ``open``.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# -- the command -------------------------------------------------------------------------------


def parse_langs(value: str) -> list[str]:
    """Language tags from ``de,en,ar``: known tags, in order, without repeats.

    Raises ValueError naming the first unknown tag.
    """
    tags = [tag.strip() for tag in value.split(",") if tag.strip()]
    if not tags:
        raise ValueError("--lang: name at least one language")
    for tag in tags:
        if tag not in LANGUAGES:
            raise ValueError(f"--lang: unknown language {tag!r} (known: {', '.join(LANGUAGES)})")
        if tag not in POSTER_TEXTS:
            raise ValueError(f"--lang: no poster text for {tag!r} yet (see poster_texts.py)")
    return list(dict.fromkeys(tags))


@click.command("qr")
@click.argument("office_id", metavar="OFFICE")
@click.option(
    "--placement",
    default=None,
    metavar="P",
    help="Where the code hangs, e.g. waiting (a slug: a-z, 0-9, '_' and '-').",
)
@click.option(
    "--lang",
    "langs",
    default=DEFAULT_LANGS,
    show_default=True,
    metavar="TAGS",
    help="Comma-separated languages of the poster texts; a single one also goes into the URL.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["svg", "png", "pdf"]), required=True, help="Output."
)
@click.option(
    "--size",
    type=click.Choice(["a4", "sticker"]),
    default=None,
    help="PDF format: A4 poster (default) or 5 × 5 cm sticker.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Data directory (default: ${env_name('data_dir')} or ./officepulse-data).",
)
def qr_command(
    office_id: str,
    placement: str | None,
    langs: str,
    fmt: OutputFormat,
    size: PosterSize | None,
    out: Path,
    data_dir: Path | None,
) -> None:
    """Write the survey QR code of an office as SVG, PNG or a printable PDF poster."""
    # Imported here: cli.py imports this module to register the command.
    from officepulse.cli import fail, make_settings, run_operation
    from officepulse.offices import Office
    from officepulse.operations import NoParams

    try:
        tags = parse_langs(langs)
    except ValueError as exc:
        fail(str(exc))
    if placement is not None and not PLACEMENT_RE.fullmatch(placement):
        fail(
            f"--placement: {placement!r} is not a placement slug"
            " (a lowercase letter, then up to 31 of a-z, 0-9, '_' and '-')"
        )
    if size is not None and fmt != "pdf":
        fail("--size: applies to --format pdf only")
    settings = make_settings(data_dir=data_dir)
    offices: list[Office] = run_operation(settings, "office.list", NoParams())
    office = next((o for o in offices if o.id == office_id), None)
    if office is None:
        fail(f"unknown office {office_id!r} (see `officepulse office list`)")
    url = survey_url(settings.base_url, office.id, placement, tags[0] if len(tags) == 1 else None)
    if fmt == "svg":
        data = qr_svg(url)
    elif fmt == "png":
        data = qr_png(url)
    else:
        try:
            data = poster_pdf(url, office.name, tags, size or "a4")
        except PosterError as exc:
            fail(str(exc))
    try:
        write_atomic(out, data)
    except OSError as exc:
        fail(f"{out}: cannot write: {exc.strerror or exc}")
    click.echo(f"wrote {out}")
    click.echo(f"encodes {url}")
    if settings.public_url is None:
        # Printed posters outlive test setups: a code pointing at the default address
        # (http://HOST:PORT) is rarely reachable from a client's phone.
        click.echo(
            f"officepulse: warning: {env_name('public_url')} is not set, so the code points to"
            f" {settings.base_url}",
            err=True,
        )
