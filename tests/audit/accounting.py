"""A helper for any test: every decision made has exactly one decision record.

    ledger = DecisionLedger()
    ... make decisions, collecting the decision ids the code reports ...
    ledger.assert_exactly(reported_ids)          # one record per reported decision, and no others
"""

from __future__ import annotations

from collections.abc import Iterable


class DecisionLedger:
    def __init__(self) -> None:
        from audit.models import DecisionRecord

        self._start = DecisionRecord.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def new_records(self) -> list[int]:
        from audit.models import DecisionRecord

        return list(DecisionRecord.objects.filter(id__gt=self._start).order_by("id").values_list("id", flat=True))

    def assert_exactly(self, decision_ids: Iterable[int]) -> None:
        reported = list(decision_ids)
        assert len(reported) == len(set(reported)), "a decision id was reported twice"
        assert sorted(reported) == self.new_records(), "decisions and decision records do not match one to one"
