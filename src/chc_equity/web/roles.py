"""Roles and what each may see: the one place the access policy is written down.

Kept free of FastAPI so the policy can be read (and tested) on its own; ``security.py`` turns it into
request dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """The four roles of the issue, from most to least privileged."""

    NETWORK_ADMIN = "network_admin"
    NETWORK_ANALYST = "network_analyst"
    CENTER_STAFF = "center_staff"
    VIEWER = "viewer"


ALL_ROLES: frozenset[Role] = frozenset(Role)
# Roles allowed to see patient-level lists (ids of patients); a viewer never is.
PATIENT_LEVEL_ROLES: frozenset[Role] = frozenset(
    {Role.NETWORK_ADMIN, Role.NETWORK_ANALYST, Role.CENTER_STAFF}
)
ADMIN_ROLES: frozenset[Role] = frozenset({Role.NETWORK_ADMIN})


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user as the request handlers see it (no password hash, no session token)."""

    username: str
    role: Role
    center: str | None
    csrf_token: str

    @property
    def all_centers(self) -> bool:
        """True when the user is not bound to one center (network roles, network-wide viewers)."""
        return self.center is None

    @property
    def suppressed(self) -> bool:
        """Viewers get small-cell-suppressed aggregates only."""
        return self.role is Role.VIEWER

    def may_see_center(self, center: str) -> bool:
        """Whether this user may read anything about ``center``."""
        return self.center is None or self.center == center


def validate_assignment(role: Role, center: str | None) -> None:
    """Reject role/center combinations that make no sense, so a mis-typed `users add` fails loudly.

    Center staff must name their center; network roles must not (they see every center); a viewer may
    be network-wide or bound to one center.
    """
    if role is Role.CENTER_STAFF and not center:
        raise ValueError("center_staff users need --center")
    if role in (Role.NETWORK_ADMIN, Role.NETWORK_ANALYST) and center:
        raise ValueError(f"{role.value} users see every center; do not pass --center")
