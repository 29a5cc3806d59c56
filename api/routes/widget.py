"""Browser assets, served without an API key: the embeddable chat widget (``/widget.js``,
``/widget.css``) and the agent-assist page (``/assist``, ``/assist.js``, ``/assist.css``). The
pages call the API with a key given by whoever embeds them; they render all answers and snippets
as text."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"
_CACHE = "public, max-age=300"
# The assist page loads only its own script and style and talks only to this API; it may be framed
# by any helpdesk (frame-ancestors), which is the point of it.
_ASSIST_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors *")


def _asset(name: str, media_type: str, **headers: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type=media_type,
                        headers={"Cache-Control": _CACHE, "X-Content-Type-Options": "nosniff", **headers})


@router.get("/widget.js")
def widget_js() -> FileResponse:
    # Loaded cross-origin by customers' pages.
    return _asset("widget.js", "text/javascript", **{"Cross-Origin-Resource-Policy": "cross-origin"})


@router.get("/widget.css")
def widget_css() -> FileResponse:
    return _asset("widget.css", "text/css", **{"Cross-Origin-Resource-Policy": "cross-origin"})


@router.get("/assist")
def assist_page() -> FileResponse:
    return _asset("assist.html", "text/html", **{"Content-Security-Policy": _ASSIST_CSP})


@router.get("/assist.js")
def assist_js() -> FileResponse:
    return _asset("assist.js", "text/javascript")


@router.get("/assist.css")
def assist_css() -> FileResponse:
    return _asset("assist.css", "text/css")
