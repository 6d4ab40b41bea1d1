"""The API's JSON parser: DRF's, with a nesting-depth limit.

A body nested deeper than ``JSON_MAX_DEPTH`` (arrays and objects; default 20) is refused with a 400
(``malformed``) before any view sees it. Without a limit, about 1,000 levels made the parser itself raise
``RecursionError`` (a 500), and anything a little shallower reached serializers and encryption code that
recurse over the value. The check is an iterative walk: it cannot itself run out of stack.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """True when ``value`` nests containers more than ``limit`` levels deep (a scalar has depth 0)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > limit:
            return True
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return False


class DepthLimitedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:  # deeper than the interpreter's own limit
            raise ParseError("JSON nested too deeply.") from exc
        if json_depth_exceeds(data, int(settings.JSON_MAX_DEPTH)):
            raise ParseError("JSON nested too deeply.")
        return data
