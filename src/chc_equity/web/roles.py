"""Roles and what each may see: the one place the access policy is written down.

Kept free of FastAPI so the policy can be read (and tested) on its own; ``security.py`` turns it into
request dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """The roles, from most to least privileged.

    ``program_manager`` runs a center's CHW program (adds CHWs, assigns patients, sets "panel only") and
    sees what center staff see; ``chw`` is a community health worker of one center: aggregates like
    center staff, patient rows only through the outreach routes (and the worklist), which honour the
    center's "panel only" setting. Both are bound to one center.

    ``program_staff`` works for the farmworker voucher program (chc_equity.vouchers) and for nothing
    else: it sees the program's pages and none of the analytics (no center data, no aggregates).
    """

    NETWORK_ADMIN = "network_admin"
    NETWORK_ANALYST = "network_analyst"
    PROGRAM_MANAGER = "program_manager"
    CENTER_STAFF = "center_staff"
    CHW = "chw"
    VIEWER = "viewer"
    PROGRAM_STAFF = "program_staff"


ALL_ROLES: frozenset[Role] = frozenset(Role)
# Who may use the analytics (every page and API that names no roles): all but the voucher program's staff.
ANALYTICS_ROLES: frozenset[Role] = ALL_ROLES - {Role.PROGRAM_STAFF}
# The farmworker voucher program (verify, issue, import and adjudicate claims, budget): its staff only.
VOUCHER_ROLES: frozenset[Role] = frozenset({Role.PROGRAM_STAFF})
# Roles allowed to see the center-wide patient-level lists (care gaps, pre-visit, missing demographics);
# a viewer never is, nor a CHW (whose patient rows may be limited to a panel: see OUTREACH_READ_ROLES).
PATIENT_LEVEL_ROLES: frozenset[Role] = frozenset(
    {Role.NETWORK_ADMIN, Role.NETWORK_ANALYST, Role.CENTER_STAFF, Role.PROGRAM_MANAGER}
)
ADMIN_ROLES: frozenset[Role] = frozenset({Role.NETWORK_ADMIN})
# CHW program: who reads CHWs, assignments and outreach; who records outreach; who manages the program.
OUTREACH_READ_ROLES: frozenset[Role] = PATIENT_LEVEL_ROLES | {Role.CHW}
OUTREACH_WRITE_ROLES: frozenset[Role] = frozenset({Role.CENTER_STAFF, Role.PROGRAM_MANAGER, Role.CHW})
PROGRAM_ROLES: frozenset[Role] = frozenset({Role.NETWORK_ADMIN, Role.PROGRAM_MANAGER})
# Improvement (assessments, projects, PDSA cycles): every analytics role reads scores and charts (a viewer:
# aggregates only, no responses, notes or PDSA text); the detail roles read the full records; center
# staff and program managers write their own center's, the network admin any center's (the facilitator).
IMPROVEMENT_READ_ROLES: frozenset[Role] = ANALYTICS_ROLES
IMPROVEMENT_DETAIL_ROLES: frozenset[Role] = PATIENT_LEVEL_ROLES | {Role.CHW}
IMPROVEMENT_WRITE_ROLES: frozenset[Role] = frozenset(
    {Role.NETWORK_ADMIN, Role.CENTER_STAFF, Role.PROGRAM_MANAGER}
)
CENTER_BOUND_ROLES: frozenset[Role] = frozenset({Role.CENTER_STAFF, Role.PROGRAM_MANAGER, Role.CHW})


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

    Center staff, program managers and CHWs must name their center; network roles must not (they see
    every center); a viewer may be network-wide or bound to one center.
    """
    if role in CENTER_BOUND_ROLES and not center:
        raise ValueError(f"{role.value} users need --center")
    if role in (Role.NETWORK_ADMIN, Role.NETWORK_ANALYST, Role.PROGRAM_STAFF) and center:
        raise ValueError(f"{role.value} users see every center; do not pass --center")
