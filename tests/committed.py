"""The committed results, as git holds them: what the README, the claims and the report tests
check.

`rbg run suites/quickstart.toml` (the README's main command) writes results/quickstart on
whatever machine it runs; another CPU computes other roundings, so its numbers differ from the
committed ones within noise (docs/reproducibility.md). The tests of committed files read them
from git's index (the committed files plus whatever is staged), copied once per session into a
temporary folder, so a user's run never makes the test command fail. To test regenerated
results, stage them (`git add results/...`). Outside a git checkout (an unpacked archive) the
working tree's results/ is what there is.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def committed_results() -> Path:
    """A folder holding results/ as git's index has it (else the working tree's results/)."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--", "results"],
            capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ROOT / "results"
    if not listed:
        return ROOT / "results"
    copy = Path(tempfile.mkdtemp(prefix="rbg-committed-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    try:
        subprocess.run(
            ["git", "-C", str(ROOT), "checkout-index", "-z", "--stdin", f"--prefix={copy}/"],
            input=listed, capture_output=True, check=True, timeout=300,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ROOT / "results"
    return copy / "results"


def committed(*parts: str) -> Path:
    """A committed result file or folder, e.g. committed("quickstart", "gan.csv")."""
    return committed_results().joinpath(*parts)
