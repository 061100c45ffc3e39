"""QR codes, posters and the ``qr`` command, checked with a real decoder.

Codes are decoded by ``zbarimg`` (Debian: zbar-tools) and PDFs are rasterised and read by
poppler (``pdftoppm``, ``pdftotext``, ``pdffonts``, ``pdfinfo``; Debian: poppler-utils). On a
developer machine without them those tests are skipped; under CI (``CI`` set) a missing tool
fails the test, so the checks can never silently stop running.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import click
import png  # type: ignore[import-untyped]
import pytest
import qrcode
import vl_convert
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from officepulse import qr
from officepulse.languages import LANGUAGES
from officepulse.poster_texts import POSTER_TEXTS

from .serverproc import cli_env, run_cli

BASE = "https://feedback.example.org"
URL = f"{BASE}/s/mh-u25?p=waiting"
OFFICE_NAME = "U-25 Haus Mülheim"
MM_PER_PT = 25.4 / 72
ARABIC_INVITATION_START = "كيف كانت زيارتك اليوم"  # no lam-alef ligature: extracts verbatim


# -- external tools ----------------------------------------------------------------------------


def require_tool(name: str) -> str:
    """The path of ``name``; skip the test without it, unless under CI, where it must exist."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed (Debian: apt-get install zbar-tools poppler-utils)"
    if os.environ.get("CI") is None:
        pytest.skip(message)
    pytest.fail(message)


def run_tool(name: str, *args: str | Path) -> str:
    result = subprocess.run(
        [require_tool(name), *map(str, args)], capture_output=True, check=False, timeout=60
    )
    assert result.returncode == 0, (name, result.returncode, result.stderr.decode())
    return result.stdout.decode()


def decode(image: Path) -> list[str]:
    """Every QR code zbarimg finds in ``image``, as raw text."""
    result = subprocess.run(
        [require_tool("zbarimg"), "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    # Status 4 means "no symbol found": report it as an empty list, not an error.
    assert result.returncode in (0, 4), result.stderr.decode()
    return result.stdout.decode().splitlines()


def rasterise(pdf: Path, dpi: int, *, gray: bool = False) -> Path:
    """Page 1 of ``pdf`` as PNG (or PGM with ``gray``), next to it."""
    stem = pdf.with_name(f"{pdf.stem}-{dpi}")
    run_tool("pdftoppm", "-r", str(dpi), "-singlefile", "-gray" if gray else "-png", pdf, stem)
    return stem.with_suffix(".pgm" if gray else ".png")


def pdf_text(pdf: Path) -> str:
    """The PDF's text in reading order, every run of white space (line breaks too) as one."""
    text = run_tool("pdftotext", "-enc", "UTF-8", pdf, "-")
    # pdftotext marks RTL lines with bidi embedding controls; they are not part of the text.
    return " ".join(re.sub("[\u200e\u200f\u202a-\u202e]", "", text).split())


def plain(text: str) -> str:
    """A poster text with its no-break spaces as plain ones, as :func:`pdf_text` gives them."""
    return " ".join(text.split())


def parse_xml(data: str | bytes) -> ET.Element:
    """Parse XML that this test produced itself (an SVG of ours, pdftotext's output)."""
    return ET.fromstring(data)  # noqa: S314 - trusted, locally generated input


def page_size_mm(pdf: Path) -> tuple[float, float]:
    match = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", run_tool("pdfinfo", pdf))
    assert match, "pdfinfo printed no page size"
    return float(match[1]) * MM_PER_PT, float(match[2]) * MM_PER_PT


def words(pdf: Path) -> list[tuple[str, float, float, float, float]]:
    """(word, x_min, y_min, x_max, y_max) in points, from pdftotext's bounding boxes."""
    root = parse_xml(run_tool("pdftotext", "-bbox", pdf, "-"))
    return [
        (
            element.text or "",
            float(element.get("xMin", 0)),
            float(element.get("yMin", 0)),
            float(element.get("xMax", 0)),
            float(element.get("yMax", 0)),
        )
        for element in root.iter("{http://www.w3.org/1999/xhtml}word")
    ]


def read_pgm(path: Path) -> tuple[int, int, bytes]:
    """Width, height and 8-bit pixels of a binary PGM as pdftoppm writes it."""
    data = path.read_bytes()
    match = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", data)
    assert match, "not an 8-bit binary PGM"
    width, height = int(match[1]), int(match[2])
    return width, height, data[match.end() : match.end() + width * height]


def write_pdf(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- the survey URL ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "office", "placement", "lang", "expected"),
    [
        (BASE, "mh-u25", None, None, f"{BASE}/s/mh-u25"),
        (BASE + "/", "mh-u25", None, None, f"{BASE}/s/mh-u25"),
        (BASE, "mh-u25", "waiting", None, f"{BASE}/s/mh-u25?p=waiting"),
        (BASE, "mh-u25", None, "de-x-ls", f"{BASE}/s/mh-u25?lang=de-x-ls"),
        (BASE, "mh-u25", "waiting", "ar", f"{BASE}/s/mh-u25?p=waiting&lang=ar"),
        ("http://127.0.0.1:8000", "a", "b_c-1", "en", "http://127.0.0.1:8000/s/a?p=b_c-1&lang=en"),
        (f"{BASE}/feedback/", "mh-u25", None, None, f"{BASE}/feedback/s/mh-u25"),
        # Odd characters are percent-encoded, so they cannot add a segment or a parameter.
        (BASE, "x/y z", None, None, f"{BASE}/s/x%2Fy%20z"),
        (BASE, "o", "a b&c=d/é", None, f"{BASE}/s/o?p=a%20b%26c%3Dd%2F%C3%A9"),
        (BASE, "o", "#?+", "x&lang=y", f"{BASE}/s/o?p=%23%3F%2B&lang=x%26lang%3Dy"),
    ],
)
def test_survey_url(
    base: str, office: str, placement: str | None, lang: str | None, expected: str
) -> None:
    assert qr.survey_url(base, office, placement, lang) == expected


@given(
    office=st.text(min_size=1, max_size=20),
    placement=st.none() | st.text(max_size=20),
    lang=st.none() | st.text(max_size=20),
)
def test_survey_url_parses_back(office: str, placement: str | None, lang: str | None) -> None:
    url = qr.survey_url(BASE, office, placement, lang)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE
    assert parts.path.count("/") == 2
    assert parts.path.startswith("/s/")
    expected = [(k, v) for k, v in (("p", placement), ("lang", lang)) if v is not None]
    assert parse_qsl(parts.query, keep_blank_values=True) == expected


# -- SVG and PNG -------------------------------------------------------------------------------


def test_svg_decodes_to_the_url_and_prints_it(tmp_path: Path) -> None:
    svg = qr.qr_svg(URL)
    root = parse_xml(svg)
    texts = [el.text for el in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == [URL]
    paths = list(root.iter("{http://www.w3.org/2000/svg}path"))
    assert len(paths) == 1  # SvgPathImage's single path
    image = tmp_path / "code.png"
    image.write_bytes(vl_convert.svg_to_png(svg.decode(), scale=4.0))
    assert decode(image) == [URL]


def test_png_decodes_to_the_url_with_a_quiet_zone(tmp_path: Path) -> None:
    box = 6
    data = qr.qr_png(URL, box_size=box)
    image = tmp_path / "code.png"
    image.write_bytes(data)
    assert decode(image) == [URL]
    width, height, rows, _ = png.Reader(bytes=data).read()
    pixels = [list(row) for row in rows]
    assert width == height
    quiet = qr.QUIET_ZONE * box
    modules = width // box - 2 * qr.QUIET_ZONE
    assert width == (modules + 2 * qr.QUIET_ZONE) * box
    for y, row in enumerate(pixels):
        if y < quiet or y >= height - quiet:
            assert all(row), f"dark pixel in the quiet zone, row {y}"
        else:
            assert all(row[:quiet]), f"dark pixel in the left quiet zone, row {y}"
            assert all(row[-quiet:]), f"dark pixel in the right quiet zone, row {y}"
    # The finder pattern starts right after the quiet zone.
    assert pixels[quiet][quiet] == 0


def test_png_rejects_a_box_size_below_one() -> None:
    with pytest.raises(ValueError, match="box_size"):
        qr.qr_png(URL, box_size=0)


def test_error_correction_is_at_least_m() -> None:
    levels = [qrcode.constants.ERROR_CORRECT_M, qrcode.constants.ERROR_CORRECT_Q]
    assert qr.ERROR_CORRECTION in levels


# -- PDF posters -------------------------------------------------------------------------------


def test_a4_poster_decodes_and_carries_the_texts(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path, "a4.pdf", qr.poster_pdf(URL, OFFICE_NAME, ["de", "en", "ar"]))
    width, height = page_size_mm(pdf)
    assert (round(width), round(height)) == (210, 297)
    assert decode(rasterise(pdf, 60)) == [URL]
    text = pdf_text(pdf)
    assert OFFICE_NAME in text
    assert URL in text
    for lang in ("de", "en"):
        assert plain(POSTER_TEXTS[lang].invitation) in text
        assert plain(POSTER_TEXTS[lang].privacy) in text
    # Logical order: pdftotext gives back the characters as typed, not visually reversed.
    assert ARABIC_INVITATION_START in text
    assert ARABIC_INVITATION_START[::-1] not in text


def test_a4_code_is_at_least_15_cm_as_printed(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path, "a4.pdf", qr.poster_pdf(URL, OFFICE_NAME, ["de", "en"]))
    # Measure the symbol on the rendered page: the dark pixels between the last text line
    # above the middle of the page and the first one below it.
    boxes = words(pdf)
    middle = 297 / 2 / MM_PER_PT
    top = max(w[4] for w in boxes if w[4] < middle)
    bottom = min(w[2] for w in boxes if w[2] > middle)
    dpi = 50
    width, height, pixels = read_pgm(rasterise(pdf, dpi, gray=True))
    px_per_pt = dpi / 72
    xs: list[int] = []
    ys: list[int] = []
    for y in range(int(top * px_per_pt) + 1, min(int(bottom * px_per_pt), height)):
        row = pixels[y * width : (y + 1) * width]
        dark = [x for x, value in enumerate(row) if value < 128]
        if dark:
            xs += (dark[0], dark[-1])
            ys.append(y)
    side_x = (max(xs) - min(xs) + 1) / px_per_pt * MM_PER_PT
    side_y = (max(ys) - min(ys) + 1) / px_per_pt * MM_PER_PT
    assert side_x >= 149, side_x
    assert side_y >= 149, side_y
    assert abs(side_x - side_y) < 2


def test_rtl_lines_are_right_aligned_and_ltr_lines_left_aligned(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path, "rtl.pdf", qr.poster_pdf(URL, OFFICE_NAME, ["en", "fa", "ps"]))
    boxes = words(pdf)
    right_edge = (210 - qr.FORMATS["a4"].margin) / MM_PER_PT
    left_edge = qr.FORMATS["a4"].margin / MM_PER_PT
    rtl = [w for w in boxes if any("\u0600" <= c <= "\u06ff" for c in w[0])]
    assert rtl, "no Arabic-script words extracted"
    by_line: dict[float, list[tuple[str, float, float, float, float]]] = {}
    for word in rtl:
        by_line.setdefault(round(word[4]), []).append(word)
    for line in by_line.values():
        assert abs(max(w[3] for w in line) - right_edge) < 3, line
    english = [w for w in boxes if w[0] == "How"]
    assert english
    assert abs(english[0][1] - left_edge) < 3
    text = pdf_text(pdf)
    for lang in ("fa", "ps"):
        first_words = " ".join(POSTER_TEXTS[lang].invitation.split()[:3])
        assert first_words in text


def test_fonts_are_embedded_subsets_of_the_bundled_noto(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path, "fonts.pdf", qr.poster_pdf(URL, OFFICE_NAME, ["de", "ar"]))
    lines = run_tool("pdffonts", pdf).splitlines()[2:]
    assert lines
    names = set()
    for line in lines:
        name, *_, emb, sub, uni, _obj, _gen = line.split()
        assert (emb, sub, uni) == ("yes", "yes", "yes"), line
        names.add(name.split("+", 1)[1])
    assert names == {
        "NotoSans-Regular",
        "NotoSans-Bold",
        "NotoSansArabic-Regular",
        "NotoSansArabic-Bold",
    }


def test_sticker_decodes_and_is_5_by_5_cm(tmp_path: Path) -> None:
    url = qr.survey_url(BASE, "mh-u25", "counter", "uk")
    pdf = write_pdf(tmp_path, "s.pdf", qr.poster_pdf(url, OFFICE_NAME, ["uk"], "sticker"))
    width, height = page_size_mm(pdf)
    assert (round(width), round(height)) == (50, 50)
    assert decode(rasterise(pdf, 300)) == [url]
    text = pdf_text(pdf)
    assert OFFICE_NAME in text
    assert plain(POSTER_TEXTS["uk"].invitation) in text
    assert url in text


def test_sticker_with_the_default_languages_decodes(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path, "s.pdf", qr.poster_pdf(URL, OFFICE_NAME, ["de", "en"], "sticker"))
    assert decode(rasterise(pdf, 300)) == [URL]


@pytest.mark.parametrize("size", ["a4", "sticker"])
def test_symbol_meets_the_minimum_side(size: qr.PosterSize) -> None:
    svg = qr.poster_svg(URL, OFFICE_NAME, ["de", "en"], size)
    match = re.search(r'<g transform="translate\([\d.]+ [\d.]+\) scale\(([\d.]+)\)"', svg)
    assert match
    code = qrcode.QRCode(error_correction=qr.ERROR_CORRECTION, border=0)
    code.add_data(URL)
    code.make(fit=True)
    assert float(match[1]) * code.modules_count >= qr.FORMATS[size].symbol[0]


def test_too_many_languages_for_the_format_is_refused() -> None:
    langs = ["de", "en", "uk", "ru", "tr"]
    message = (
        "5 languages leave no room for a code of at least 2 cm on the sticker format;"
        " choose fewer with --lang; the first 2 fit (de,en)"
    )
    with pytest.raises(qr.PosterError) as raised:
        qr.poster_svg(URL, OFFICE_NAME, langs, "sticker")
    assert str(raised.value) == message


def test_long_office_names_wrap_inside_the_page() -> None:
    name = "Jobcenter Mülheim an der Ruhr, Standort Innenstadt, " * 3
    svg = qr.poster_svg(URL, name, ["de"], "a4")
    root = parse_xml(svg)
    lines = [
        el for el in root.iter("{http://www.w3.org/2000/svg}text") if "Standort" in (el.text or "")
    ]
    assert len(lines) > 1
    latin = qr._face(qr.LATIN_FAMILY, bold=True)
    for line in lines:
        assert latin.width(line.text or "") * float(line.get("font-size", 0)) <= 190 + 0.01


def test_wrapping_prefers_sentence_ends_and_keeps_numbers_with_units() -> None:
    face = qr._face(qr.LATIN_FAMILY, bold=True)
    text = POSTER_TEXTS["en"].invitation
    width = face.width("How was your visit today? Anonymous,") * 8 + 0.1
    assert qr._wrap(text, face, 8, width) == [
        "How was your visit today?",
        "Anonymous, 30\u00a0seconds",
    ]
    assert qr._wrap("Anonymous, 30\u00a0seconds", face, 8, face.width("Anonymous, 30") * 8) == [
        "Anonymous,",
        "30\u00a0seconds",
    ]
    assert qr._wrap("Unbreakable", face, 8, 10) is None


# -- texts and fonts ---------------------------------------------------------------------------


def test_every_language_has_poster_texts() -> None:
    assert POSTER_TEXTS.keys() == LANGUAGES.keys()
    for tag, text in POSTER_TEXTS.items():
        assert "30" in text.invitation or "۳۰" in text.invitation, tag
        if LANGUAGES[tag].direction == "rtl":
            # One script per line: a Latin run would fall back to an arbitrary system font.
            assert not re.search("[A-Za-z]", text.invitation + text.privacy), tag


def test_bundled_fonts_and_licence_are_present() -> None:
    for name in ("NotoSans-Regular", "NotoSans-Bold", "NotoSansArabic-Regular"):
        assert (qr.FONTS_DIR / f"{name}.ttf").is_file()
    licence = (qr.FONTS_DIR / "OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE" in licence


def test_font_metrics_measure_plausible_widths() -> None:
    latin = qr._face(qr.LATIN_FAMILY, bold=False)
    arabic = qr._face(qr.ARABIC_FAMILY, bold=False)
    assert 0 < latin.width("i") < latin.width("W") < 1.2
    assert latin.width("Mülheim") == pytest.approx(latin.width("Mulheim"))
    assert arabic.metrics.advance("ښ") is not None  # a Pashto letter
    assert arabic.metrics.advance("I") is None
    assert arabic.width("I") == latin.width("I")
    assert arabic.width("نمی\u200cکنیم") == pytest.approx(arabic.width("نمیکنیم"))


# -- writing files -----------------------------------------------------------------------------


def test_write_atomic_leaves_no_file_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "poster.pdf"
    target.write_bytes(b"old")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        qr.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poster.pdf"]


# -- the command -------------------------------------------------------------------------------


@click.group()
def group() -> None:
    """A stand-in for the officepulse command with only ``qr`` registered."""


group.add_command(qr.qr_command, "qr")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with one office, made by the real ``officepulse`` command."""
    path = tmp_path_factory.mktemp("qr") / "data"
    for args in (
        ["init", "--data-dir", str(path)],
        ["office", "add", "mh-u25", "--name", OFFICE_NAME, "--kind", "pilot"],
    ):
        if args[0] == "office":
            args += ["--data-dir", str(path)]
        result = run_cli(args)
        assert result.returncode == 0, result.stderr
    return path


def invoke(data_dir: Path, *args: str, public_url: str | None = BASE + "/") -> Result:
    env: Mapping[str, str | None] = {
        **{key: None for key in os.environ if key.startswith("OFFICEPULSE_")},
        "OFFICEPULSE_SECRET_KEY": cli_env()["OFFICEPULSE_SECRET_KEY"],
        "OFFICEPULSE_PUBLIC_URL": public_url,
    }
    return CliRunner().invoke(group, ["qr", *args, "--data-dir", str(data_dir)], env=env)


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("officepulse: error: ")
    return lines[0]


def test_command_has_help() -> None:
    result = CliRunner().invoke(group, ["qr", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--placement", "--lang", "--format", "--size", "--out", "--data-dir"):
        assert option in result.stdout


def test_command_writes_an_a4_poster(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "poster.pdf"
    result = invoke(
        data_dir, "mh-u25", "--placement", "waiting", "--format", "pdf", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    # Two languages (the default): the URL names no language, the survey page chooses.
    assert result.stdout.splitlines() == [f"wrote {out}", f"encodes {URL}"]
    assert result.stderr == ""
    assert page_size_mm(out)[0] == pytest.approx(210, abs=0.5)
    assert decode(rasterise(out, 60)) == [URL]
    assert OFFICE_NAME in pdf_text(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poster-60.png", "poster.pdf"]


def test_command_writes_a_sticker_with_one_language(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sticker.pdf"
    result = invoke(
        data_dir,
        "mh-u25",
        "--lang",
        "ar",
        "--format",
        "pdf",
        "--size",
        "sticker",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    url = f"{BASE}/s/mh-u25?lang=ar"
    assert f"encodes {url}" in result.stdout
    assert page_size_mm(out)[0] == pytest.approx(50, abs=0.5)
    assert decode(rasterise(out, 300)) == [url]
    assert ARABIC_INVITATION_START in pdf_text(out)


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_command_writes_svg_and_png(data_dir: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"code.{fmt}"
    args = ["mh-u25", "--placement", "entrance-2", "--lang", "de", "--format", fmt]
    result = invoke(data_dir, *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    url = f"{BASE}/s/mh-u25?p=entrance-2&lang=de"
    image = out
    if fmt == "svg":
        image = tmp_path / "code-svg.png"
        image.write_bytes(vl_convert.svg_to_png(out.read_text(encoding="utf-8"), scale=4.0))
    assert decode(image) == [url]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere", "--format", "svg"], "unknown office 'nowhere'"),
        (["mh-u25", "--format", "pdf", "--lang", "de,xx"], "--lang: unknown language 'xx'"),
        (["mh-u25", "--format", "pdf", "--lang", " , "], "--lang: name at least one language"),
        (["mh-u25", "--format", "png", "--placement", "Waiting Room"], "--placement:"),
        (["mh-u25", "--format", "png", "--placement", "1st"], "--placement:"),
        (["mh-u25", "--format", "png", "--placement", "a" * 33], "--placement:"),
        (["mh-u25", "--format", "svg", "--size", "a4"], "--size: applies to --format pdf only"),
        (
            ["mh-u25", "--format", "pdf", "--size", "sticker", "--lang", ",".join(LANGUAGES)],
            "choose fewer with --lang",
        ),
    ],
)
def test_command_refuses_bad_input_in_one_line(
    data_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out.file"
    line = one_error_line(invoke(data_dir, *args, "--out", str(out)))
    assert message in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("parent", ["missing", "a-file"])
def test_command_reports_an_unwritable_out_path(
    data_dir: Path, tmp_path: Path, parent: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    out = tmp_path / parent / "poster.pdf"
    line = one_error_line(invoke(data_dir, "mh-u25", "--format", "pdf", "--out", str(out)))
    assert f"{out}: cannot write" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_command_keeps_the_old_file_when_it_fails(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sticker.pdf"
    out.write_bytes(b"old poster")
    langs = ",".join(LANGUAGES)
    args = ["mh-u25", "--format", "pdf", "--size", "sticker", "--lang", langs]
    one_error_line(invoke(data_dir, *args, "--out", str(out)))
    assert out.read_bytes() == b"old poster"
    assert [p.name for p in tmp_path.iterdir()] == ["sticker.pdf"]


def test_command_warns_when_the_public_url_is_not_set(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "code.svg"
    result = invoke(data_dir, "mh-u25", "--format", "svg", "--out", str(out), public_url=None)
    assert result.exit_code == 0, result.output
    assert "encodes http://127.0.0.1:8000/s/mh-u25" in result.stdout
    assert result.stderr.startswith("officepulse: warning: OFFICEPULSE_PUBLIC_URL is not set")


def test_command_needs_an_initialised_data_directory(tmp_path: Path) -> None:
    line = one_error_line(invoke(tmp_path / "empty", "mh-u25", "--format", "svg", "--out", "x"))
    assert "no officepulse database here" in line
