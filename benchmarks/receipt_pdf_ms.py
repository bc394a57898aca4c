"""receipt_pdf_ms: warm render time of a 3-line branded receipt PDF, against a bare one-paragraph page."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import emit

WARMUP = 5
RUNS = 50


def _timings_ms(render: Callable[[], object]) -> tuple[float, list[float]]:
    """(first render, warm renders after WARMUP) in milliseconds."""
    start = time.perf_counter()
    render()
    cold = (time.perf_counter() - start) * 1000
    for _ in range(WARMUP - 1):
        render()
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        render()
        timings.append((time.perf_counter() - start) * 1000)
    return cold, timings


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def _sample_receipt(logo: Path):
    from kassa.money import Money
    from kassa.renderers.receipt import ReceiptData, ReceiptLine

    def eur(minor: int) -> Money:
        return Money(minor, "EUR")

    return ReceiptData(
        number="R-000042", issued_at=datetime(2025, 3, 12, 13, 3, tzinfo=UTC), timezone="Europe/Amsterdam",
        language="nl", merchant_name="Bakkerij De Gouden Korst",
        merchant_address="Kerkstraat 12\n1017 GC Amsterdam\nNetherlands", merchant_email="hallo@example.com",
        brand_color="#d64541", logo_file=logo, buyer_email="jane@example.com", buyer_name="Jane Doe",
        billing_address="221B Baker Street\nLondon NW1 6XE",
        lines=(
            ReceiptLine(
                "Sourdough subscription", "One 800 g loaf every Saturday", 1, eur(1000), eur(1000),
                "every month, 7 payments"),
            ReceiptLine("Croissants (box of 6)", "Butter croissants", 2, eur(625), eur(1250), None),
            ReceiptLine("Delivery", "", 1, eur(300), eur(300), None),
        ),
        total=eur(2550), amount_paid=eur(2550), payment_method="Visa •••• 4242", test_mode=True,
        recurring_note="Then € 10,00 every month until cancelled",
    )


def main() -> dict:
    from PIL import Image
    from weasyprint import HTML

    previous_instance = os.environ.get("KASSA_INSTANCE_PATH")
    with tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp:
        os.environ["KASSA_INSTANCE_PATH"] = str(Path(tmp) / "instance")
        try:
            from kassa import create_app
            from kassa.renderers.receipt import render_receipt

            app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
        finally:
            # Other benchmarks run in this process after us and must not inherit a deleted folder.
            if previous_instance is None:
                os.environ.pop("KASSA_INSTANCE_PATH", None)
            else:
                os.environ["KASSA_INSTANCE_PATH"] = previous_instance
        with app.app_context():
            logo = Path(app.config["KASSA_UPLOAD_DIR"]) / "logos" / "benchmarklogo0001.png"
            logo.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGBA", (360, 120), (214, 69, 65, 255)).save(logo)
            receipt = _sample_receipt(logo)
            cold, timings = _timings_ms(lambda: render_receipt(receipt))
            size = len(render_receipt(receipt)[2])
        _, bare = _timings_ms(lambda: HTML(string="<p>Thank you for your payment.</p>").write_pdf())
    p50 = statistics.median(timings)
    return emit("receipt_pdf_ms", p50, "ms", baseline=statistics.median(bare), n=RUNS,
                p95=round(_p95(timings), 3), baseline_p95=round(_p95(bare), 3), cold_ms=round(cold, 3), pdf_bytes=size)


if __name__ == "__main__":
    main()
