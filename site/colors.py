"""Brand colours: pick readable text for a merchant's colour (WCAG contrast), for buttons and bars."""

from __future__ import annotations

DARK_TEXT = "#1b1f24"
LIGHT_TEXT = "#ffffff"


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(a: str, b: str) -> float:
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(background: str) -> str:
    """White or near-black, whichever reads better on the merchant's brand colour."""
    return LIGHT_TEXT if contrast_ratio(background, LIGHT_TEXT) >= contrast_ratio(background, DARK_TEXT) else DARK_TEXT
