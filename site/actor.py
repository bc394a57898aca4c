"""Who is acting: services receive this instead of the Flask request (DESIGN §7: no request in services)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kassa.models import Permission, User


@dataclass(frozen=True)
class Actor:
    user: User | None
    account_id: int | None
    ip: str | None = None
    # I1: a request made with an API key: the key (named in every audit row) and what it may do.
    api_key_id: int | None = None
    api_permissions: frozenset[str] = frozenset()

    def can(self, permission: Permission) -> bool:
        """What a service checks: the user's role, or an API key's permissions."""
        if self.user is not None:
            return self.user.can(permission)
        return self.api_key_id is not None and permission in self.api_permissions

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user is not None else None

    @classmethod
    def system(cls, account_id: int | None = None) -> Actor:
        """The worker, the clock tick or a processor event acting on the account's behalf."""
        return cls(user=None, account_id=account_id, ip=None)
