"""The webhook verification snippet of docs/api.md (I6), read from the page and run as a merchant would paste it:
the tests check deliveries with exactly what the documentation tells receivers to do."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@cache
def documented_verify() -> Callable[..., bool]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    (snippet,) = [block for block in blocks if "def verify(" in block]
    namespace: dict = {}
    exec(compile(snippet, f"{DOC}:verify", "exec"), namespace)
    return namespace["verify"]


def verify(secret: str, header: str, body: str, tolerance: int = 300) -> bool:
    return documented_verify()(secret, header, body, tolerance)
