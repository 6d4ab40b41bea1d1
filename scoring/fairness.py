"""Fairness report of a trained model over audit-only protected characteristics (pure; no Django).

For each audit-only characteristic (e.g. gender, declared with the CSV prefix ``audit_`` or the REST field
``audit_attributes``; stored encrypted, decrypted in memory at training only) and each of its groups among the
training population: the group size, the share of the group in each tier, and the high-risk rate (share of the
group at churn risk level ``high``). Per characteristic, the ratio of the lowest group's high-risk rate to the
highest's; a ratio below 0.8 is flagged (the "four-fifths rule" of adverse impact).

Small groups are suppressed: a group of fewer than ``min_group`` customers (``SCORING_FAIRNESS_MIN_GROUP``,
default 10) is counted in ``suppressed_customers`` only, without its label or figures, and takes no part in
the ratio. Customers with no value are counted in ``missing``. Group labels are case-folded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FOUR_FIFTHS = 0.8


def _group_label(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().casefold()
    return text or None


AGE_BANDS = ((0, 25, "under 25"), (25, 35, "25-34"), (35, 45, "35-44"), (45, 55, "45-54"), (55, 65, "55-64"),
             (65, 200, "65 and over"))


def age_band(value: Any, *, year: int) -> str | None:
    """An age, a birth year or an ISO birth date -> an age band (``None`` when it is none of these), so that
    an age-like characteristic is reported by band rather than by single year."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    head = text[:4] if len(text) >= 10 and text[4] == "-" else text
    try:
        number = float(head)
    except ValueError:
        return None
    age = year - number if number >= 1900 else number
    for lo, hi, label in AGE_BANDS:
        if lo <= age < hi:
            return label
    return None


def characteristic_report(values: Sequence[Any], tiers: Sequence[str], risk_levels: Sequence[str], *,
                          tier_names: Sequence[str], min_group: int) -> dict[str, Any]:
    """The report of one characteristic (``values`` aligned with ``tiers`` and ``risk_levels``)."""
    if not (len(values) == len(tiers) == len(risk_levels)):
        raise ValueError("values, tiers and risk levels must be aligned")
    members: dict[str, list[int]] = {}
    missing = 0
    for i, value in enumerate(values):
        label = _group_label(value)
        if label is None:
            missing += 1
        else:
            members.setdefault(label, []).append(i)
    groups: dict[str, dict[str, Any]] = {}
    suppressed_groups = suppressed_customers = 0
    for label in sorted(members):
        idx = members[label]
        n = len(idx)
        if n < min_group:
            suppressed_groups += 1
            suppressed_customers += n
            continue
        tier_counts = dict.fromkeys(tier_names, 0)
        for i in idx:
            tier_counts[str(tiers[i])] = tier_counts.get(str(tiers[i]), 0) + 1
        high = sum(1 for i in idx if str(risk_levels[i]) == "high")
        groups[label] = {
            "n": n,
            "tier_shares": {t: round(c / n, 4) for t, c in tier_counts.items()},
            "high_risk_rate": round(high / n, 4),
        }
    report: dict[str, Any] = {
        "groups": groups, "missing": missing,
        "suppressed_groups": suppressed_groups, "suppressed_customers": suppressed_customers,
        "high_risk_ratio": None, "lowest_group": None, "highest_group": None, "flagged": False,
    }
    if len(groups) >= 2:
        rates = {label: g["high_risk_rate"] for label, g in groups.items()}
        lowest = min(rates, key=lambda k: (rates[k], k))
        highest = max(rates, key=lambda k: (rates[k], k))
        ratio = 1.0 if rates[highest] == 0 else rates[lowest] / rates[highest]
        report.update(high_risk_ratio=round(ratio, 4), lowest_group=lowest, highest_group=highest,
                      flagged=ratio < FOUR_FIFTHS)
    return report


def fairness_report(characteristics: Mapping[str, Sequence[Any]], tiers: Sequence[str], risk_levels: Sequence[str],
                    *, tier_names: Sequence[str], min_group: int) -> dict[str, Any]:
    """``card["fairness"]``: one :func:`characteristic_report` per audit-only characteristic."""
    return {
        "rule": "four-fifths: the lowest group's high-risk rate divided by the highest's; below 0.8 is flagged",
        "threshold": FOUR_FIFTHS,
        "min_group_size": int(min_group),
        "population": len(tiers),
        "characteristics": {
            name: characteristic_report(values, tiers, risk_levels, tier_names=tier_names, min_group=min_group)
            for name, values in sorted(characteristics.items())
        },
    }
