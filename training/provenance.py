"""What a run records so it can be reproduced: a fingerprint of the input files' content and
the git state of the code that trained it (the version string is ``recsys.bundle.code_version``)."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def data_fingerprint(paths: Iterable[str | Path]) -> str:
    """SHA-256 over the content of every file (in the order given), hex. Names don't count,
    so a copied or renamed file keeps its fingerprint."""
    digest = hashlib.sha256()
    for path in paths:
        file_digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                file_digest.update(chunk)
        digest.update(file_digest.digest())
    return digest.hexdigest()


def git_commit(start: Path | None = None) -> tuple[str | None, bool]:
    """(HEAD sha, working tree dirty) of the checkout holding this code; (None, False) outside
    a git checkout or without git."""
    where = start or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None, False
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None, False
    return sha.stdout.strip(), bool(status.stdout.strip())
