"""The colours of equity roles, one set for the static report (Altair) and the web app (Vega-Lite).

Before, the report drew the reference group blue and "worse" red while the web drew "other" groups blue:
the same blue meant opposite things. Colour-blind-safe (ColorBrewer RdBu ends plus neutral greys), each
at least 4.5:1 against white so that a mark doubles as text colour; charts always add a legend, and a
suppressed group is a hollow grey outline ("suppressed"), never a missing row.
"""

from __future__ import annotations

REFERENCE = "reference"
WORSE = "worse"
BETTER = "better"
NOT_SIGNIFICANT = "not significant"
SUPPRESSED = "suppressed"

ROLE_COLORS: dict[str, str] = {
    REFERENCE: "#1d2433",  # near-black: the yardstick
    WORSE: "#b2182b",  # red: significantly worse than the reference (q < 0.05)
    BETTER: "#2166ac",  # blue: significantly better
    NOT_SIGNIFICANT: "#6b6b6b",  # grey
    SUPPRESSED: "#767676",  # grey outline, hollow
}
ROLES: tuple[str, ...] = tuple(ROLE_COLORS)


def role_of(
    *, is_reference: bool | None, worse: bool | None, better: bool | None, suppressed: bool | None
) -> str:
    """The legend role of a stratum."""
    if suppressed:
        return SUPPRESSED
    if is_reference:
        return REFERENCE
    if worse:
        return WORSE
    if better:
        return BETTER
    return NOT_SIGNIFICANT
