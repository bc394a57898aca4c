"""The API's error (I7): Stripe's envelope, `{"error": {"type", "message", "param", "code"}}`, and its status."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error in Stripe's envelope: `{"error": {"type", "message", "param", "code"}}` with its HTTP status."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error = {"type": self.type, "message": self.message}
        if self.param:
            error["param"] = self.param
        if self.code:
            error["code"] = self.code
        return {"error": error}
