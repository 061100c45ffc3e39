"""The phone survey behind the QR code: server-rendered, works without JavaScript.

``GET /s/{office}`` renders the survey in the client's language; ``POST /s/{office}`` is a plain
form submit that goes through the same validation and the same writer as the JSON API. Pages
set no cookie, load nothing from another origin, and carry a Content-Security-Policy without
``unsafe-inline``.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import anyio.to_thread
import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import MediaType, Request, Response, Router, get, post, route
from litestar.datastructures import CacheControlHeader, State
from litestar.enums import HttpMethod
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

from officepulse.i18n import choose_language, gettext_for
from officepulse.kiosk import KioskState, verify_phone_token
from officepulse.languages import LANGUAGES
from officepulse.limiter import RepeatLimiter, Verdict
from officepulse.offices import Office, get_office
from officepulse.problems import FieldError, ProblemError
from officepulse.responses import MAX_BODY_BYTES, Outcome, store_response, validate_response
from officepulse.runtime import Runtime
from officepulse.surveys import Item, Survey

HERE: Final = Path(__file__).parent
TEMPLATES: Final = HERE / "templates"
STATIC: Final = HERE / "static"

# No inline script or style anywhere, so the policy needs no 'unsafe-inline'.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    # Each rendered form carries a fresh response id; a cached copy would reuse it.
    "Cache-Control": "no-store",
}


@dataclass
class PageContext:
    """What every page needs: the language and its direction, ``_`` and the footer links."""

    lang: str
    office: Office | None = None
    placement: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gettext(self) -> Callable[..., str]:
        gettext = gettext_for(self.lang)

        def translate(message: str, **values: object) -> str:
            text = gettext(message)
            return text % values if values else text

        return translate


class PageRenderer:
    """Renders the page templates (autoescaped, strict about undefined names)."""

    def __init__(self, contact: str | None) -> None:
        self.contact = contact
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=False,
        )

    def render(
        self, name: str, ctx: PageContext, status: int = 200, **values: Any
    ) -> Response[str]:
        office = ctx.office
        query = {"lang": ctx.lang}
        if office is not None:
            query["office"] = office.id
        context: dict[str, Any] = {
            "lang": ctx.lang,
            "direction": LANGUAGES[ctx.lang].direction,
            "_": ctx.gettext,
            "languages": [],
            "current_language": LANGUAGES[ctx.lang].native_name,
            "synthetic": bool(office and office.synthetic),
            "accessibility_href": "/accessibility?" + urlencode(query),
            "contact": self.contact,
            "page_title": "",
        }
        context.update(values)
        html = self.env.get_template(name).render(context)
        return Response(
            html,
            status_code=status,
            media_type=MediaType.HTML,  # Litestar adds the charset (utf-8)
            headers=SECURITY_HEADERS,
        )

    def message(
        self,
        ctx: PageContext,
        title: str,
        heading: str,
        paragraphs: list[str],
        status: int = 200,
    ) -> Response[str]:
        """A short page of text: thanks, not found, try again, ..."""
        return self.render(
            "message.html",
            ctx,
            status=status,
            page_title=title,
            heading=heading,
            paragraphs=paragraphs,
            back_href=None,
            back_text="",
        )


def survey_href(office_id: str, placement: str | None, lang: str | None) -> str:
    """The survey URL of an office (relative), with placement and language when given."""
    query = {}
    if placement:
        query["p"] = placement
    if lang:
        query["lang"] = lang
    suffix = ("?" + urlencode(query)) if query else ""
    return f"/s/{office_id}{suffix}"


def language_options(office_id: str, placement: str | None, current: str) -> list[dict[str, Any]]:
    return [
        {
            "tag": tag,
            "name": language.native_name,
            "direction": language.direction,
            "href": survey_href(office_id, placement, tag),
            "current": tag == current,
        }
        for tag, language in LANGUAGES.items()
    ]


# -- building the survey view -----------------------------------------------------------------


def rating_view(
    item: Item,
    survey: Survey,
    lang: str,
    checked: int | None,
    error: str | None,
) -> dict[str, Any]:
    labels = item.labels_for(lang, survey.default_lang)
    options = []
    for value in range(1, 6):
        # The face shows how the client feels: a calm face for "not tense at all" on the
        # stress item, where a low value is the good end of the scale.
        mood = value if item.polarity == "higher_is_better" else 6 - value
        options.append(
            {
                "value": value,
                "mood": mood,
                "label": labels.labels[value - 1],
                "checked": checked == value,
            }
        )
    return {
        "id": item.id,
        "text": item.text_for(lang, survey.default_lang).text,
        "options": options,
        "error": error,
    }


def survey_view(
    survey: Survey,
    lang: str,
    answers: Mapping[str, int],
    comment: str,
    errors: Mapping[str, str],
) -> dict[str, Any]:
    core: list[dict[str, Any]] = []
    more: list[dict[str, Any]] = []
    for item in survey.rating_items:
        view = rating_view(item, survey, lang, answers.get(item.id), errors.get(item.id))
        (core if item.core else more).append(view)
    comment_view: dict[str, Any] | None = None
    comment_item = survey.comment_item
    if comment_item is not None:
        hint = comment_item.hint_for(lang, survey.default_lang)
        comment_view = {
            "text": comment_item.text_for(lang, survey.default_lang).text,
            "hint": hint.text if hint else "",
            "max_length": comment_item.max_length or 500,
            "value": comment,
            "error": errors.get("comment"),
        }
    return {
        "title": survey.title_for(lang).text,
        "intro": survey.intro_for(lang).text,
        "core": core,
        "more": more,
        "more_open": any(
            view["error"] or any(o["checked"] for o in view["options"]) for view in more
        ),
        "comment": comment_view,
        "survey_id": survey.id,
        "survey_version": survey.version,
    }


# -- handlers ---------------------------------------------------------------------------------


def _office(runtime: Runtime, office_id: str) -> Office | None:
    if office_id not in runtime.office_ids:
        return None
    return runtime.store.read(lambda cur: get_office(cur, office_id))


def _default_survey(runtime: Runtime) -> Survey:
    survey = runtime.surveys.latest(runtime.settings.default_survey)
    if survey is None:  # Runtime.open refuses a settings/survey mismatch; this is a guard
        raise ProblemError(500, f"survey {runtime.settings.default_survey!r} is not defined")
    return survey


def _not_found(renderer: PageRenderer, lang: str) -> Response[str]:
    ctx = PageContext(lang=lang)
    _ = ctx.gettext
    return renderer.message(
        ctx,
        title=_("Page not found"),
        heading=_("We could not find this survey"),
        paragraphs=[
            _("The address may be incomplete. Please scan the code on the poster again."),
            _("If it still does not work, please ask at the reception desk."),
        ],
        status=404,
    )


def _render_survey(
    renderer: PageRenderer,
    runtime: Runtime,
    office: Office,
    lang: str,
    placement: str | None,
    *,
    response_id: str,
    answers: Mapping[str, int] | None = None,
    comment: str = "",
    errors: Mapping[str, str] | None = None,
    problems: list[dict[str, str | None]] | None = None,
    status: int = 200,
    kiosk_token: str = "",
) -> Response[str]:
    survey = _default_survey(runtime)
    view = survey_view(survey, lang, answers or {}, comment, errors or {})
    ctx = PageContext(lang=lang, office=office, placement=placement)
    return renderer.render(
        "survey.html",
        ctx,
        status=status,
        page_title=f"{view['title']} – {office.name}",
        office_name=office.name,
        languages=language_options(office.id, placement, lang),
        action=survey_href(office.id, placement, lang),
        response_id=response_id,
        placement=placement or "",
        errors=problems or [],
        kiosk_token=kiosk_token,
        **view,
    )


@get("/s/{office_id:str}", include_in_schema=False, sync_to_thread=True)
def survey_page(
    request: Request[Any, Any, Any], state: State, office_id: FromPath[str]
) -> Response[str]:
    """The survey form of one office."""
    runtime: Runtime = state.runtime
    renderer: PageRenderer = state.pages
    office = _office(runtime, office_id)
    query_lang = request.query_params.get("lang")
    accept = request.headers.get("accept-language")
    if office is None:
        return _not_found(renderer, choose_language(query_lang, accept, "de"))
    lang = choose_language(query_lang, accept, office.default_lang)
    placement = runtime.placement_for(office.id, request.query_params.get("p") or None)
    # A phone that scanned a kiosk's rotating code carries it through the form unchanged;
    # it is checked (and only ever turned into a flag) when the answers arrive.
    kiosk_token = (request.query_params.get("k") or "")[:200]
    return _render_survey(
        renderer,
        runtime,
        office,
        lang,
        placement,
        response_id=str(uuid.uuid4()),
        kiosk_token=kiosk_token,
    )


def _form_answers(form: Mapping[str, str], survey: Survey) -> tuple[dict[str, int], dict[str, str]]:
    answers: dict[str, int] = {}
    bad: dict[str, str] = {}
    for item in survey.rating_items:
        raw = form.get(f"answer-{item.id}", "").strip()
        if not raw:
            continue
        try:
            answers[item.id] = int(raw)
        except ValueError:
            bad[item.id] = raw
    return answers, bad


def _field_messages(
    errors: list[FieldError], bad: Mapping[str, str], ctx: PageContext, comment_limit: int
) -> tuple[dict[str, str], bool]:
    """Messages per form field in the client's language; True when the form itself is broken."""
    _ = ctx.gettext
    messages: dict[str, str] = {}
    broken = False
    for item_id in bad:
        messages[item_id] = _("Please choose one of the five answers.")
    for error in errors:
        if error.pointer.startswith("#/answers/"):
            messages[error.pointer.removeprefix("#/answers/")] = _(
                "Please choose one of the five answers."
            )
        elif error.pointer == "#/comment":
            messages["comment"] = _(
                "Your comment is too long: at most %(count)s characters.", count=comment_limit
            )
        else:
            broken = True
    return messages, broken


@route(
    ["/s", "/s/{office_id:str}/{rest:path}"],
    http_method=[HttpMethod.GET, HttpMethod.POST],
    include_in_schema=False,
    sync_to_thread=False,
)
def survey_not_found(request: Request[Any, Any, Any], state: State) -> Response[str]:
    """A cut-off or mangled survey address (``/s``, ``/s/a/b``, ``/s/a%2Fb``) gets the same
    friendly page as an unknown office, in the phone's language, not the API's problem JSON."""
    renderer: PageRenderer = state.pages
    accept = request.headers.get("accept-language")
    return _not_found(renderer, choose_language(request.query_params.get("lang"), accept, "de"))


@post("/s/{office_id:str}", include_in_schema=False, request_max_body_size=MAX_BODY_BYTES)
async def submit_survey(
    request: Request[Any, Any, Any], state: State, office_id: FromPath[str]
) -> Response[str]:
    """A plain form submit: store the answers, or show the form again with the problems."""
    runtime: Runtime = state.runtime
    renderer: PageRenderer = state.pages
    limiter: RepeatLimiter = state.limiter
    office = await anyio.to_thread.run_sync(_office, runtime, office_id)
    try:
        form_data = await request.form()
    except (UnicodeError, LookupError):
        # Litestar decodes multipart fields strictly (invalid UTF-8, an unknown charset): a
        # broken form is the client's error, answered by page_error as a 400 page, not a 500.
        raise HTTPException(status_code=400, detail="The form cannot be decoded.") from None
    form = {key: value for key, value in form_data.items() if isinstance(value, str)}
    accept = request.headers.get("accept-language")
    if office is None:
        return _not_found(renderer, choose_language(form.get("lang"), accept, "de"))
    lang = choose_language(form.get("lang"), accept, office.default_lang)
    placement = runtime.placement_for(office.id, form.get("p") or None)
    ctx = PageContext(lang=lang, office=office, placement=placement)
    _ = ctx.gettext
    survey = _default_survey(runtime)
    answers, bad = _form_answers(form, survey)
    comment = form.get("comment", "")
    response_id = form.get("id", "")
    try:
        response_id = str(uuid.UUID(response_id))
    except ValueError:
        response_id = str(uuid.uuid4())  # a tampered or lost id: a fresh one is as anonymous

    # The key is computed and dropped here; only its HMAC under today's salt is counted.
    key = limiter.key(
        request.client.host if request.client else "",
        request.headers.get("user-agent", ""),
        office.id,
    )
    verdict = limiter.check(key)
    if verdict is Verdict.REFUSE:
        return renderer.message(
            ctx,
            title=_("Thank you"),
            heading=_("Thank you, we already have your answers for today"),
            paragraphs=[
                _("From this phone we have received many answers today. Please come back tomorrow.")
            ],
            status=429,
        )

    raw: dict[str, Any] = {
        "id": response_id,
        "office": office.id,
        "survey": survey.id,
        "version": survey.version,
        "channel": "qr",
        "lang": lang,
        "answers": answers,
    }
    if placement:
        raw["placement"] = placement
    if comment.strip():
        raw["comment"] = comment
    row, errors = validate_response(raw, runtime, dt.datetime.now(dt.UTC))
    comment_limit = survey.comment_item.max_length if survey.comment_item else 500
    messages, broken = _field_messages(errors, bad, ctx, comment_limit or 500)
    if row is None or bad:
        problems: list[dict[str, str | None]] = [
            {"text": message, "href": f"#q-{field}" if field != "comment" else "#comment"}
            for field, message in messages.items()
        ]
        if broken:
            problems.append(
                {"text": _("Something went wrong with the form. Please try again."), "href": None}
            )
        return _render_survey(
            renderer,
            runtime,
            office,
            lang,
            placement,
            response_id=response_id,
            answers=answers,
            comment=comment,
            errors=messages,
            problems=problems,
            status=422,
            kiosk_token=form.get("k", "")[:200],
        )
    if verdict is Verdict.FLAG:
        row = msgspec.structs.replace(row, flags=(*row.flags, "repeat"))
    kiosks: KioskState = state.kiosks
    if form.get("k") and verify_phone_token(
        runtime.settings.secret_key or "", form["k"], office.id, kiosks.tokens, time.time()
    ):
        # The strongest evidence that the client was really in the office.
        row = msgspec.structs.replace(row, flags=(*row.flags, "verified_onsite"))
    try:
        outcome = await store_response(runtime, row)
    except ProblemError:
        return renderer.message(
            ctx,
            title=_("Please try again"),
            heading=_("Your answers could not be saved"),
            paragraphs=[_("Nothing was stored. Please send the form again in a moment.")],
            status=503,
        )
    if outcome is Outcome.CREATED:
        limiter.record(key)
    elif outcome is Outcome.CONFLICT:
        # The same form sent again with changed answers (back, edit, send): the first answers
        # stay, and the page must not claim that the changed ones were saved.
        return renderer.message(
            ctx,
            title=_("Thank you"),
            heading=_("Your first answers were already saved"),
            paragraphs=[
                _(
                    "Answers sent again from the same form are not stored a second time,"
                    " so that nobody is counted twice."
                )
            ],
        )
    return renderer.message(
        ctx,
        title=_("Thank you"),
        heading=_("Thank you for your answers!"),
        paragraphs=[
            _("Your answers have been saved anonymously."),
            _("They help to make this office a better place for everyone."),
        ],
    )


@get("/accessibility", include_in_schema=False, sync_to_thread=True)
def accessibility_page(request: Request[Any, Any, Any], state: State) -> Response[str]:
    """The accessibility statement, with a way to report barriers."""
    runtime: Runtime = state.runtime
    renderer: PageRenderer = state.pages
    office_id = request.query_params.get("office")
    office = _office(runtime, office_id) if office_id else None
    lang = choose_language(
        request.query_params.get("lang"),
        request.headers.get("accept-language"),
        office.default_lang if office else "de",
    )
    ctx = PageContext(lang=lang, office=office)
    return renderer.render(
        "accessibility.html",
        ctx,
        page_title=ctx.gettext("Accessibility statement"),
        back_href=survey_href(office.id, None, lang) if office else None,
    )


def page_error(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    """Errors on pages are friendly pages in the client's language, never a stack trace."""
    renderer: PageRenderer = request.app.state.pages
    lang = choose_language(
        request.query_params.get("lang"), request.headers.get("accept-language"), "de"
    )
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return _not_found(renderer, lang)
    ctx = PageContext(lang=lang)
    _ = ctx.gettext
    return renderer.message(
        ctx,
        title=_("Something went wrong"),
        heading=_("Something went wrong"),
        paragraphs=[_("Nothing was stored. Please try again in a moment.")],
        status=status if 400 <= status < 600 else 500,
    )


router = Router(
    path="/",
    route_handlers=[survey_page, submit_survey, survey_not_found, accessibility_page],
    exception_handlers={HTTPException: page_error, Exception: page_error},
    opt={"access": "public"},
)

static_router = create_static_files_router(
    path="/static",
    directories=[STATIC],
    # The names carry no version: a day at most with an old stylesheet after an upgrade,
    # in exchange for phones not fetching it again on every survey.
    cache_control=CacheControlHeader(max_age=86400, public=True),
    include_in_schema=False,
    opt={"access": "public"},
)
