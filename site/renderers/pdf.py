"""WeasyPrint plumbing shared by every PDF: a local-only URL fetcher and warm, reused fonts and CSS."""

from __future__ import annotations

import gc
import mimetypes
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import DataHandler, Request, url2pathname

from flask import current_app
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse, path2url

from kassa.renderers import STATIC_DIR

PDF_CSS = STATIC_DIR / "css" / "pdf.css"

# Pango's font map is not thread-safe, and the font configuration and image cache are shared below.
_RENDER_LOCK = threading.Lock()
# Decoded images by URL, reused across documents (a merchant's logo is decoded once per process).
# Emptied between renders once it grows: WeasyPrint reads entries back while writing, so never mid-render.
_IMAGE_CACHE: dict = {}
_IMAGE_CACHE_MAX = 256


class ForbiddenResource(ValueError):
    """A document referenced something outside the local files it may use (network, other paths)."""


class RestrictedURLFetcher(URLFetcher):
    """Fetches only `data:` URIs and `file://` paths inside `allowed_dirs`; anything else raises.

    A document never reaches the network or the rest of the disk, whatever its HTML says. WeasyPrint
    logs a refused resource and renders without it.
    """

    def __init__(self, allowed_dirs: Iterable[Path | str]) -> None:
        super().__init__(timeout=1, allowed_protocols=("data", "file"), allow_redirects=False)
        self.allowed_dirs = tuple(Path(os.path.realpath(d)) for d in allowed_dirs)

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            return self._fetch_data(url)
        if scheme == "file":
            return self._fetch_file(url)
        raise ForbiddenResource(f"Documents may not load {scheme or 'relative'} URLs: {url[:200]}")

    def _fetch_data(self, url: str) -> URLFetcherResponse:
        # urllib's own data: decoder, called directly so no other handler (proxy, http) is ever involved.
        response = DataHandler().data_open(Request(url))  # noqa: S310 - only data: URLs reach here
        return URLFetcherResponse(url, response.read(), {"Content-Type": response.headers["Content-Type"]})

    def _fetch_file(self, url: str) -> URLFetcherResponse:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ForbiddenResource(f"Documents may not load files from other hosts: {url[:200]}")
        # realpath resolves "..", symlinks and doubled slashes before the check, not after.
        path = Path(os.path.realpath(url2pathname(parts.path)))
        if not any(path.is_relative_to(allowed) for allowed in self.allowed_dirs):
            raise ForbiddenResource(f"Documents may not load files outside the app's folders: {url[:200]}")
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {path}")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # The resolved path goes back as the URL: WeasyPrint may reopen it later by that name.
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})


def allowed_dirs() -> tuple[Path, ...]:
    """The folders a document may read from: the app's static files and the upload folder."""
    return (STATIC_DIR, Path(current_app.config["KASSA_UPLOAD_DIR"]))


@lru_cache(maxsize=8)
def _fetcher(dirs: tuple[Path, ...]) -> RestrictedURLFetcher:
    return RestrictedURLFetcher(dirs)


def url_fetcher() -> RestrictedURLFetcher:
    """The restricted fetcher for the current app (one per set of folders, reused)."""
    return _fetcher(allowed_dirs())


@lru_cache(maxsize=1)
def font_config() -> FontConfiguration:
    # Building it loads every system font through fontconfig: by far the slowest part of a cold render.
    return FontConfiguration()


@lru_cache(maxsize=16)
def _stylesheet(path: Path, mtime_ns: int, fetcher: RestrictedURLFetcher) -> CSS:
    # Keyed by mtime so an edited stylesheet is picked up without a restart.
    return CSS(string=path.read_text(encoding="utf-8"), base_url=path2url(path), url_fetcher=fetcher,
               font_config=font_config())


def stylesheet(path: Path) -> CSS:
    """A parsed stylesheet, cached across documents."""
    return _stylesheet(path, path.stat().st_mtime_ns, url_fetcher())


def render_pdf(html: str, *, base_dir: Path, stylesheets: Sequence[Path] = (PDF_CSS,)) -> bytes:
    """PDF bytes of `html`; relative URLs resolve against `base_dir`, all fetching is restricted."""
    fetcher = url_fetcher()
    css = [stylesheet(path) for path in stylesheets]
    with _RENDER_LOCK, _young_garbage_only():
        try:
            document = HTML(string=html, base_url=path2url(Path(base_dir)), url_fetcher=fetcher)
            return document.write_pdf(stylesheets=css, font_config=font_config(), cache=_IMAGE_CACHE)
        finally:
            if len(_IMAGE_CACHE) > _IMAGE_CACHE_MAX:
                _IMAGE_CACHE.clear()


@contextmanager
def _young_garbage_only() -> Iterator[None]:
    """Keep a render's short-lived cycles out of the old generation, then free them in one young sweep.

    A render allocates ~10^5 cyclic objects. Collected as they go, many survive into the oldest generation
    and trigger full collections that walk the whole app's heap (tens of ms, every few renders).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.collect(0)
            gc.enable()
