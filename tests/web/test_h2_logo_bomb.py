"""H2: a logo upload is bounded by its declared pixel count before any pixel is decoded."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import warnings
import zlib

import pytest
from bs4 import BeautifulSoup
from PIL import Image

from kassa.extensions import db
from kassa.models import Account
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in

# 13,000 x 13,000 = 169 Mpx: under Pillow's default hard limit (179 Mpx), so before H2 it was decoded in full.
BOMB_SIDE = 13_000


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A real, valid single-colour 1-bit PNG of side x side pixels, built row by row (never held decoded)."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    row = b"\x00" + b"\x00" * ((side + 7) // 8)  # filter byte + packed pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _upload(client, payload: bytes, name: str = "logo.png"):
    return client.post(
        "/settings/branding",
        data={"brand_color": "#112233", "logo": (io.BytesIO(payload), name)},
        content_type="multipart/form-data",
    )


def _field_error(response, field: str) -> str:
    node = BeautifulSoup(response.get_data(as_text=True), "html.parser").find(id=f"f-{field}-error")
    return node.get_text(" ", strip=True) if node else ""


def test_h2_bomb_png_is_small_and_valid(monkeypatch):
    """The fixture is what the attacker sent: a few KB that Pillow reads as a 13,000 x 13,000 image."""
    data = bomb_png()
    assert len(data) < 60_000
    # Kassa lowers Pillow's process-wide pixel limit when its upload code is imported; lift it for this probe.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        probe = Image.open(io.BytesIO(data))  # lazy: the header only
        assert probe.size == (BOMB_SIDE, BOMB_SIDE)


def test_h2_decompression_bomb_logo_is_refused_at_the_field(client):
    """The upload is refused with a field message saying the limit, and nothing about the account changes."""
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    response = _upload(client, bomb_png())
    assert response.status_code == 422
    assert "4096 by 4096 pixels" in _field_error(response, "logo")
    account = db.session.get(Account, owner.account_id)
    assert account.logo_path is None and account.brand_color != "#112233"


_MEASURE = textwrap.dedent(
    """
    import os, sys, tempfile
    os.environ["KASSA_INSTANCE_PATH"] = tempfile.mkdtemp()
    from kassa import create_app
    from kassa.errors import ValidationFailed
    from kassa.services.accounts.accounts import _reencode_logo

    data = sys.stdin.buffer.read()
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True})

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB

    before = status("VmRSS")
    with app.test_request_context("/settings/branding", method="POST"):
        try:
            _reencode_logo(data)
            outcome = "accepted"
        except ValidationFailed as exc:
            outcome = "refused: " + exc.message
    print(outcome)
    print(before, status("VmHWM"))
    """
)


def _upload_memory_in_subprocess(data: bytes) -> tuple[str, int]:
    """(outcome, MB the peak RSS rose above the RSS before processing) of the upload in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _MEASURE], input=data, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    outcome, figures = done.stdout.decode().strip().splitlines()[-2:]
    before_kb, peak_kb = map(int, figures.split())
    return outcome, (peak_kb - before_kb) // 1024


@pytest.mark.parametrize("database_url", ["none"], indirect=False)
def test_h2_bomb_upload_peak_memory_stays_under_100_mb(database_url):
    """Processing the hostile upload in a fresh process raises its peak RSS by well under 100 MB (it used to
    decode 169 Mpx and widen them to RGBA: over a gigabyte)."""
    outcome, grew_mb = _upload_memory_in_subprocess(bomb_png())
    print(f"H2 bomb upload: {outcome}; peak RSS rose {grew_mb} MB")
    assert outcome.startswith("refused")
    assert grew_mb < 100


@pytest.mark.parametrize("database_url", ["none"], indirect=False)
def test_h2_largest_accepted_image_stays_under_100_mb(database_url):
    """The worst an attacker can still send, a 4096 x 4096 RGBA image (4 bytes a pixel decoded), is processed
    within 100 MB."""
    image = Image.new("RGBA", (4096, 4096))
    out = io.BytesIO()
    image.save(out, format="PNG")
    outcome, grew_mb = _upload_memory_in_subprocess(out.getvalue())
    print(f"H2 4096x4096 RGBA upload: {outcome}; peak RSS rose {grew_mb} MB")
    assert outcome == "accepted"
    assert grew_mb < 100


def test_h2_ordinary_logo_still_works(client):
    """A normal 1200 x 400 JPEG logo is accepted and re-encoded to fit 800 x 300."""
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    out = io.BytesIO()
    Image.new("RGB", (1200, 400), (200, 40, 40)).save(out, format="JPEG")
    response = _upload(client, out.getvalue(), "logo.jpg")
    assert response.status_code == 303
    account = db.session.get(Account, owner.account_id)
    stored = Image.open(io.BytesIO(client.get(f"/media/logos/{account.logo_path}").data))
    assert stored.format == "PNG" and stored.size == (800, 267)
