"""Profiles for missed targets: pyinstrument around worker tasks, py-spy on running servers.

``python -m bench.run ... --option profile=true`` turns them on; the text reports land in
``bench/results/profiles/`` next to the JSON (collapsed py-spy stacks are summarised into the functions
with the most inclusive and self samples, restricted to the project's own code plus the top of the rest).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .common import REPO, RESULTS_DIR

PROFILE_DIR = RESULTS_DIR / "profiles"


def profile_path(name: str) -> Path:
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    return PROFILE_DIR / name


def pyspy_available() -> bool:
    return bool(shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy").exists())


def _pyspy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else "py-spy"


def pyspy_start(pid: int, seconds: float, out: Path, *, subprocesses: bool = True, rate: int = 200) -> subprocess.Popen:
    """Start sampling ``pid`` (and its children) for ``seconds`` into collapsed-stack file ``out``."""
    cmd = [_pyspy(), "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", str(rate),
           "--format", "raw", "--output", str(out), "--nonblocking"]
    if subprocesses:
        cmd.append("--subprocesses")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


PROJECT_DIRS = ("audit/", "profiles/", "consent/", "scoring/", "subject_rights/", "config/", "bench/")


def _is_project(frame: str, root: str) -> bool:
    """py-spy prints ``function (path:line)`` with paths relative to sys.path entries."""
    _, _, location = frame.rpartition(" (")
    location = location.replace(root, "")
    return location.startswith(PROJECT_DIRS) and "site-packages" not in location


def _function(frame: str) -> str:
    """``name (path:line)`` -> ``name (path)``: inclusive time per function, not per line."""
    head, sep, location = frame.rpartition(" (")
    if not sep:
        return frame
    return f"{head} ({location.rsplit(':', 1)[0].rstrip(')')})"


def summarize_collapsed(path: Path, *, top: int = 30) -> str:
    """Inclusive and self sample shares per function from py-spy's raw (collapsed) output."""
    inclusive: Counter[str] = Counter()
    self_count: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        for frame in {_function(f) for f in frames}:
            inclusive[frame] += n
        if frames:
            self_count[frames[-1]] += n
    if not total:
        return "(no samples)\n"
    root = str(REPO) + os.sep

    def short(frame: str) -> str:
        return frame.replace(root, "").replace(str(Path(sys.prefix)) + os.sep, "")

    lines = [f"samples: {total}", "", "inclusive % (project code)"]
    own = [(f, c) for f, c in inclusive.most_common() if _is_project(f, root)]
    lines += [f"{c / total * 100:6.1f}%  {short(f)}" for f, c in own[:top]]
    lines += ["", "self % (any code)"]
    lines += [f"{c / total * 100:6.1f}%  {short(f)}" for f, c in self_count.most_common(top)]
    return "\n".join(lines) + "\n"
