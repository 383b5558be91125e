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
        path = Path(path)
        if path.is_dir():  # a partitioned dataset: every file, in path order, path included
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(str(file.relative_to(path)).encode())
                digest.update(_file_digest(file))
        else:
            digest.update(_file_digest(path))
    return digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    file_digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            file_digest.update(chunk)
    return file_digest.digest()


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
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None, False
    return sha.stdout.strip(), bool(status.stdout.strip())


def dataset_slug(catalog_path: str | Path) -> str:
    """A short readable name of the dataset a catalog file belongs to: its folder's name
    (``data/online-retail/catalog.parquet`` -> ``online-retail``), or the file's stem when it
    is not called ``catalog`` (``shops/acme.parquet`` -> ``acme``). Lower case, ``a-z0-9-``."""
    path = Path(catalog_path).resolve()
    raw = path.stem if path.stem.lower() != "catalog" else path.parent.name
    slug = "".join(c if c.isalnum() else "-" for c in raw.lower())
    while "--" in slug:
        slug = slug.replace("--", "-")
    return slug.strip("-") or "data"


def run_name(dataset: str, config_hash: str, prefix: str = "") -> str:
    """A distinct, readable MLflow run name: ``[prefix-]dataset-config8-YYYYmmdd-HHMMSS``
    (UTC): which data, which config, when."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    parts = [p for p in (prefix, dataset, config_hash[:8], stamp) if p]
    return "-".join(parts)
