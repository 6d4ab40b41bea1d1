"""One home for capturing Celery task messages in tests (the ``task_messages`` fixture in ``tests/conftest.py``).

Three points are watched, so nothing handed to Celery escapes the capture whether tasks run eagerly, in-process
or through a broker to a worker: ``Task.apply_async`` (the arguments as the caller gives them), the
``before_task_publish`` signal (the message body and headers as published to a broker) and ``task_prerun``
(the arguments of a task run in this process)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from celery.app.task import Task
from celery.signals import before_task_publish, task_prerun

from tests.privacy_scan import as_bytes


@dataclass(frozen=True)
class TaskMessage:
    via: str  # "apply_async" | "publish" | "run"
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    raw: bytes  # everything captured (for publish: headers and body), for scanning


@dataclass
class TaskMessages:
    items: list[TaskMessage] = field(default_factory=list)

    def __iter__(self) -> Iterator[TaskMessage]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def blob(self) -> bytes:
        return b"\n".join(m.raw for m in self.items)

    def calls(self) -> list[tuple[str, list[Any]]]:
        """(task name, positional args) of every message, however it was captured."""
        return [(m.task, m.args) for m in self.items]

    def of(self, task: str, via: str | None = None) -> list[TaskMessage]:
        return [m for m in self.items if m.task == task and (via is None or m.via == via)]


def capture_task_messages(monkeypatch: Any) -> Iterator[TaskMessages]:
    captured = TaskMessages()
    original = Task.apply_async

    def apply_async(self: Task, args: Any = None, kwargs: Any = None, *a: Any, **kw: Any) -> Any:
        captured.items.append(TaskMessage("apply_async", self.name, list(args or []), dict(kwargs or {}),
                                          as_bytes({"task": self.name, "args": args, "kwargs": kwargs})))
        return original(self, args, kwargs, *a, **kw)

    def on_publish(sender: Any = None, body: Any = None, headers: Any = None, **_: Any) -> None:
        args, kwargs = ([], {})
        if isinstance(body, tuple | list) and len(body) >= 2:  # protocol 2: (args, kwargs, embed)
            args, kwargs = list(body[0] or []), dict(body[1] or {})
        name = str((headers or {}).get("task") or sender or "")
        captured.items.append(TaskMessage("publish", name, args, kwargs,
                                          as_bytes({"task": name, "headers": headers, "body": body})))

    def on_prerun(task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
        name = str(getattr(task, "name", ""))
        captured.items.append(TaskMessage("run", name, list(args or []), dict(kwargs or {}),
                                          as_bytes({"task": name, "args": list(args or []),
                                                    "kwargs": dict(kwargs or {})})))

    monkeypatch.setattr(Task, "apply_async", apply_async)
    before_task_publish.connect(on_publish, weak=False, dispatch_uid="tests.task_messages.publish")
    task_prerun.connect(on_prerun, weak=False, dispatch_uid="tests.task_messages.prerun")
    try:
        yield captured
    finally:
        before_task_publish.disconnect(dispatch_uid="tests.task_messages.publish")
        task_prerun.disconnect(dispatch_uid="tests.task_messages.prerun")
