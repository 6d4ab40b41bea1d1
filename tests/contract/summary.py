"""The API contract's three figures from a schemathesis NDJSON event stream (``.ci/contract``).

Usage: ``python tests/contract/summary.py events.ndjson``. Prints one line,
``contract: server errors N, undocumented statuses N, schema-valid requests rejected N, run errors N, cases N``,
and exits 1 unless the first four are 0 and at least one case ran (an empty run proves nothing).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CHECKS = {
    "not_a_server_error": "server errors",
    "status_code_conformance": "undocumented statuses",
    "positive_data_acceptance": "schema-valid requests rejected",
}


def summarize(lines: list[str]) -> tuple[dict[str, int], int, int]:
    failing: dict[str, set[str]] = {name: set() for name in CHECKS}
    cases: set[str] = set()
    errors = 0
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line)
        kind, body = next(iter(event.items()))
        if kind == "NonFatalError":
            errors += 1
        if kind != "ScenarioFinished":
            continue
        for case_id, results in ((body.get("recorder") or {}).get("checks") or {}).items():
            cases.add(case_id)
            for result in results:
                if result.get("name") in failing and result.get("status") == "failure":
                    failing[result["name"]].add(case_id)
    return {name: len(ids) for name, ids in failing.items()}, errors, len(cases)


def main(path: str) -> int:
    counts, errors, cases = summarize(Path(path).read_text(encoding="utf-8").splitlines())
    figures = ", ".join(f"{CHECKS[name]} {counts[name]}" for name in CHECKS)
    print(f"contract: {figures}, run errors {errors}, cases {cases}")
    return 0 if cases and errors == 0 and not any(counts.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
