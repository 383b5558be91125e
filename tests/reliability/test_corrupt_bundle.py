"""Issue 13 item 1: a truncated ``ranker.txt`` aborts LightGBM's C++ parser (SIGABRT, not an
exception). It must be refused before it reaches a serving process: checksums recorded at save
time, and the native loaders exercised in a child process before the swap."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from recsys.bundle import BundleError, read_manifest
from recsys.bundle_check import FILES_KEY, probe_native_files, verify_bundle, verify_checksums
from serving.schemas import EXAMPLE_TILE, EXAMPLE_WALLPAPER

ADMIN = {"Authorization": "Bearer test-admin-key"}


def _point(link: Path, target: Path) -> None:
    tmp = link.with_name(link.name + ".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


def _truncated_copy(bundle: Path, dest: Path, *, keep_checksums: bool) -> Path:
    shutil.copytree(bundle, dest)
    ranker = dest / "ranker" / "ranker.txt"
    ranker.write_bytes(ranker.read_bytes()[:3000])  # cut mid-tree: LightGBM aborts on it
    if not keep_checksums:  # a bundle saved before checksums existed, or written corrupt
        manifest = json.loads((dest / "manifest.json").read_text())
        manifest.pop(FILES_KEY, None)
        (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def test_saved_bundle_records_a_checksum_for_every_file(bundle_dir: Path) -> None:
    manifest = read_manifest(bundle_dir)
    files = {p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_file()}
    assert set(manifest[FILES_KEY]) == files - {"manifest.json"}
    assert verify_checksums(bundle_dir, manifest) == len(files) - 1
    verify_bundle(bundle_dir)  # an intact bundle passes both layers


def test_truncated_ranker_is_refused_by_checksum(bundle_dir: Path, tmp_path: Path) -> None:
    bad = _truncated_copy(bundle_dir, tmp_path / "bad", keep_checksums=True)
    with pytest.raises(BundleError, match=r"ranker\.txt.*checksum mismatch"):
        verify_bundle(bad)


def test_truncated_ranker_without_checksums_is_caught_in_a_child_process(
    bundle_dir: Path, tmp_path: Path
) -> None:
    bad = _truncated_copy(bundle_dir, tmp_path / "legacy", keep_checksums=False)
    assert probe_native_files(bundle_dir) >= 1
    with pytest.raises(BundleError, match=r"ranker\.txt.*native loader failed.*signal"):
        verify_bundle(bad)  # this process survives: the parser aborted in the child


@pytest.mark.slow
@pytest.mark.parametrize("keep_checksums", [True, False], ids=["checksummed", "legacy"])
def test_hot_reload_of_truncated_ranker_under_load_keeps_old_model(
    server_factory,
    bundle_dir: Path,
    tmp_path: Path,
    keep_checksums: bool,  # noqa: ANN001
) -> None:
    link = tmp_path / "current"
    _point(link, bundle_dir)
    server = server_factory({"RECSYS_MODEL_URI": str(link)}, workers=1).start()
    v1 = httpx.get(f"{server.base}/admin/model", headers=ADMIN).json()["version"]
    bad = _truncated_copy(bundle_dir, tmp_path / "bad", keep_checksums=keep_checksums)
    statuses: Counter = Counter()
    versions: Counter = Counter()
    errors: list[str] = []
    stop = threading.Event()
    body = {"basket": [{"sku": EXAMPLE_TILE}, {"sku": EXAMPLE_WALLPAPER}], "page": "cart", "k": 5}

    def load() -> None:
        with httpx.Client(base_url=server.base, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/recommendations", json=body)
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        versions[r.json()["model_version"]] += 1
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                time.sleep(0.01)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        _point(link, bad)
        r = httpx.post(f"{server.base}/admin/reload", headers=ADMIN, timeout=120)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert server.proc is not None and server.proc.poll() is None, "the server process died"
    out = r.json()
    assert out["outcome"] == "failed" and "ranker.txt" in out["message"], out
    assert out["version"] == v1
    assert not errors and set(statuses) == {200}, (statuses, errors[:3])
    assert set(versions) == {v1} and sum(statuses.values()) > 20
    info = httpx.get(f"{server.base}/admin/model", headers=ADMIN).json()
    assert info["version"] == v1 and "ranker.txt" in info["last_error"]
