"""Verify a model bundle before anything loads it into a serving process.

Two layers, because a corrupt file can take the whole process down instead of raising:
LightGBM's C++ model parser aborts on a truncated ``ranker.txt`` (SIGABRT, not an exception),
and faiss can do the same on a damaged index.

1. ``checksums``: ``write_manifest`` records the SHA-256 of every file of the bundle under the
   manifest's ``files`` key; ``verify_checksums`` recomputes them and refuses a bundle with a
   file missing, truncated or altered since it was saved.
2. ``probe_native_files``: the native loaders (``lgb.Booster``, ``faiss.read_index``) run on
   every such file in a *child* process (``python -m recsys.bundle_check <dir>``); a crash there
   is a ``BundleError`` naming the file, never a dead server. This also covers bundles saved
   before checksums existed, and a bundle that was written corrupt.

``verify_bundle`` runs both; the model holder calls it before loading a new bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

FILES_KEY = "files"
_NATIVE_SUFFIXES = {".txt": "lightgbm", ".faiss": "faiss"}
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksums(
    directory: Path | str, *, exclude: tuple[str, ...] = ("manifest.json",)
) -> dict[str, str]:
    """SHA-256 of every file below ``directory`` (relative POSIX path -> hex), sorted."""
    directory = Path(directory)
    out: dict[str, str] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel not in exclude:
            out[rel] = _sha256(path)
    return out


def _error(path: Path | str, problem: str) -> Exception:
    from recsys.bundle import BundleError  # lazy: bundle.py calls into this module

    return BundleError(path, problem)


def verify_checksums(directory: Path | str, manifest: dict[str, Any]) -> int:
    """Compare every file listed in ``manifest['files']`` with its recorded SHA-256.

    Returns how many files were checked (0 for a bundle saved before checksums existed).
    Raises ``BundleError`` naming the first missing or changed file."""
    directory = Path(directory)
    recorded = manifest.get(FILES_KEY)
    if recorded is None:
        return 0
    if not isinstance(recorded, dict):
        raise _error(directory / "manifest.json", f"'{FILES_KEY}' must map file -> sha256")
    for rel, expected in sorted(recorded.items()):
        path = directory / rel
        if not path.is_file():
            raise _error(path, "file missing (listed in the manifest's checksums)")
        if _sha256(path) != expected:
            raise _error(
                path,
                "checksum mismatch: the file changed or was truncated after the bundle was saved",
            )
    return len(recorded)


def native_files(directory: Path | str) -> list[Path]:
    """Files a native (C++) parser reads: LightGBM model text under ``ranker*``, faiss indexes."""
    directory = Path(directory)
    found = [p for p in directory.rglob("*.faiss") if p.is_file()]
    found += [p for p in directory.rglob("*.txt") if p.is_file() and "ranker" in p.parent.name]
    return sorted(found)


def _load_native(path: Path) -> None:
    """Parse one native file the way the bundle loader will (may crash the process)."""
    if path.suffix == ".faiss":
        import faiss

        faiss.read_index(str(path))
    else:
        import lightgbm as lgb

        booster = lgb.Booster(model_file=str(path))
        if booster.num_trees() < 1:
            raise ValueError("the ranker has no trees")


def probe_native_files(directory: Path | str, *, timeout: float = 120.0) -> int:
    """Load every native file in a child process; ``BundleError`` naming the file if the child
    fails or dies (e.g. SIGABRT from LightGBM on a truncated model). Returns the file count."""
    directory = Path(directory)
    files = native_files(directory)
    if not files:
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "recsys.bundle_check", str(directory)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise _error(directory, f"native files did not load within {timeout:.0f} s") from None
    if proc.returncode == 0:
        return len(files)
    # the child prints "loading <path>" before each file: the last one is the culprit
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("loading ")]
    culprit = lines[-1].removeprefix("loading ") if lines else str(directory)
    how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
    reason = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "")[:200]
    raise _error(
        culprit, f"corrupt: its native loader failed in a test process ({how}) {reason}".rstrip()
    )


def verify_bundle(directory: Path | str) -> None:
    """Checksums first (cheap, exact), then the native loaders in a child process."""
    from recsys.bundle import read_manifest

    manifest = read_manifest(directory)
    verify_checksums(directory, manifest)
    probe_native_files(directory)


# What LightGBM imports opportunistically but a model parse never needs: blocking them makes
# the probe's child start in about a fifth of the time (sklearn alone took ~2 s to import),
# which every model load and reload pays.
_UNNEEDED_IN_PROBE = ("sklearn", "pandas", "dask", "pyarrow", "matplotlib", "graphviz")


def _main(argv: list[str]) -> int:
    """Child process entry: load each native file, announcing it first (stdout, flushed)."""
    for name in _UNNEEDED_IN_PROBE:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None = "not installed"
    directory = Path(argv[0])
    for path in native_files(directory):
        print(f"loading {path}", flush=True)
        try:
            _load_native(path)
        except Exception as exc:  # noqa: BLE001 - reported to the parent via the exit code
            print(f"{type(exc).__name__}: {exc}"[:500], file=sys.stderr, flush=True)
            return 2
    print(json.dumps({"ok": True}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
