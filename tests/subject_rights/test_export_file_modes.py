"""Finding M6 (exports): export files are created 0600 and their directory 0700, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from subject_rights.models import Export
from tests.subject_rights.test_export import _file_access, pair  # noqa: F401  (pair is a fixture)


@pytest.mark.django_db
def test_export_file_is_owner_only_and_its_directory_too(
    api: Any, pair: tuple[Any, Any], django_capture_on_commit_callbacks: Any, settings: Any, tmp_path: Path,  # noqa: F811
) -> None:
    settings.EXPORT_DIR = str(tmp_path / "var" / "exports")
    old = os.umask(0o022)
    try:
        subject, _ = pair
        req = _file_access(api, subject, django_capture_on_commit_callbacks)
    finally:
        os.umask(old)
    export = Export.objects.get(request=req)
    path = Path(settings.EXPORT_DIR) / export.file_name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not list(path.parent.glob("*.part"))
