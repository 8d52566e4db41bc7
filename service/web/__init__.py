"""The self-contained web page: static files served by the app under a strict CSP."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

HERE = Path(__file__).resolve().parent
# Only these files are ever served: the name is a dictionary key, never part of a path.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "view.js": "text/javascript; charset=utf-8",
    "documents.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=8)
def _read(name: str) -> bytes:
    return (HERE / name).read_bytes()


def _page(name: str, media_type: str) -> Response:
    return Response(_read(name), media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/")
def index() -> Response:
    return _page("index.html", "text/html; charset=utf-8")


@router.get("/view/{doc_id}")
def view(doc_id: str) -> Response:
    # The page fetches /documents/{doc_id} itself; an unknown id shows that endpoint's 404.
    return _page("view.html", "text/html; charset=utf-8")


@router.get("/static/{name}")
def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail="no such file")
    return _page(name, media_type)
