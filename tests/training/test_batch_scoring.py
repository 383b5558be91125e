"""Batch scoring IO on a real bundle fitted on the tiny world (no MLflow involved)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys.cli import main
from training.batch_scoring import ModelSourceError, find_bundle, resolve_bundle, score_file
from training.pyfunc import predict_frame


@pytest.fixture(scope="module")
def bundle(tiny_world_files, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recsys.data import load_catalog, load_interactions
    from training.fit import fit_recommender
    from training.train import load_config

    config, _ = load_config(tiny_world_files["config"])
    catalog = load_catalog(tiny_world_files["catalog"])
    events = load_interactions(tiny_world_files["interactions"], catalog=catalog)
    result = fit_recommender(catalog, events, config, seed=5, ablations=False)
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    result.recommender.save(out)
    return out


@pytest.fixture(scope="module")
def skus(tiny_world_files) -> list[str]:
    return pd.read_parquet(tiny_world_files["catalog"])["sku"].tolist()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_io_unknown_skus_and_malformed_lines(
    bundle: Path, skus: list[str], tmp_path: Path, capsys
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join(
            [
                json.dumps({"basket_id": "b1", "skus": skus[:2], "user_id": None, "page": "cart"}),
                '{"basket_id": "b2", "skus": [',  # line 2: broken JSON
                json.dumps({"basket_id": "b3", "skus": [skus[3], "GHOST-1"], "page": "checkout"}),
                json.dumps({"basket_id": "b4", "skus": "not-a-list"}),  # line 4: wrong type
                "",
                json.dumps({"basket_id": "b5", "skus": [], "k": 3}),  # empty basket: popular items
            ]
        )
        + "\n"
    )
    dst = tmp_path / "out.jsonl"
    code = main(
        ["recommend", "--model", str(bundle), "--baskets", str(src), "--k", "5", "--out", str(dst)]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert f"{src}:2: skipped: not valid JSON" in captured.err
    assert f"{src}:4: skipped: 'skus' must be a list" in captured.err
    assert "scored 3 of 5 baskets" in captured.out
    out = _lines(dst)
    assert [o["basket_id"] for o in out] == ["b1", "b3", "b5"]
    assert set(out[0]) >= {"basket_id", "items", "style", "unknown_skus"}
    assert out[1]["unknown_skus"] == ["GHOST-1"] and out[0]["unknown_skus"] == []
    assert len(out[0]["items"]) == 5 and len(out[2]["items"]) == 3
    item = out[0]["items"][0]
    assert set(item) == {"sku", "score", "sources", "reason"}
    assert item["sku"] in skus and item["sku"] not in skus[:2] and item["reason"]
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_chunking_does_not_change_the_answer(bundle: Path, skus: list[str], tmp_path: Path) -> None:
    from feature_store import load_recommender

    rec = load_recommender(bundle)
    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(
            json.dumps({"basket_id": f"b{i}", "skus": [skus[i], skus[(7 * i + 3) % len(skus)]]})
            + "\n"
            for i in range(25)
        )
    )
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    score_file(rec, src, one, k=6, chunk_size=1000)
    summary = score_file(rec, src, many, k=6, chunk_size=4)
    assert summary.baskets_out == 25 and not summary.malformed
    assert _lines(one) == _lines(many)


def test_pyfunc_frame_matches_batch_records(bundle: Path, skus: list[str], tmp_path: Path) -> None:
    """predict returns structured columns (lists of dicts, a dict), the same records as
    `recsys recommend` writes for the same baskets."""
    from feature_store import load_recommender

    rec = load_recommender(bundle)
    frame = pd.DataFrame({"basket_id": ["p", "q"], "skus": [skus[:2], [skus[4], "GHOST-2"]]})
    pred = predict_frame(rec, frame, default_k=4)  # optional columns left out
    assert list(pred.columns) == ["basket_id", "items", "style", "unknown_skus", "accessories"]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(
        "".join(
            json.dumps({"basket_id": b, "skus": s}) + "\n"
            for b, s in zip(frame["basket_id"], frame["skus"], strict=True)
        )
    )
    score_file(rec, src, dst, k=4, chunk_size=10)
    records = _lines(dst)
    for i, record in enumerate(records):
        row = {c: pred.loc[i, c] for c in pred.columns}
        assert json.loads(json.dumps(row)) == {c: record[c] for c in pred.columns}
    items = pred.loc[0, "items"]
    assert isinstance(items, list) and len(items) == 4 and isinstance(items[0], dict)
    assert isinstance(items[0]["score"], float) and isinstance(items[0]["sources"], list)
    assert isinstance(pred.loc[0, "style"], dict) and "distribution" in pred.loc[0, "style"]
    assert pred.loc[1, "unknown_skus"] == ["GHOST-2"]


def test_model_source_errors_are_clear(tmp_path: Path, bundle: Path) -> None:
    with pytest.raises(ModelSourceError, match="no such file or folder"):
        resolve_bundle(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSourceError, match="no model bundle"):
        resolve_bundle(str(tmp_path / "empty"))
    # a downloaded MLflow model folder: the bundle sits under artifacts/bundle
    nested = tmp_path / "model" / "artifacts"
    nested.mkdir(parents=True)
    (nested / "bundle").symlink_to(bundle, target_is_directory=True)
    assert find_bundle(tmp_path / "model") == tmp_path / "model" / "artifacts" / "bundle"


def test_cli_reports_missing_inputs(tmp_path: Path, bundle: Path, capsys) -> None:
    assert (
        main(
            [
                "recommend",
                "--model",
                str(bundle),
                "--baskets",
                str(tmp_path / "nope.jsonl"),
                "--out",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    src = tmp_path / "in.jsonl"
    src.write_text('{"basket_id": "a", "skus": []}\n')
    assert (
        main(
            [
                "recommend",
                "--model",
                str(tmp_path / "nomodel"),
                "--baskets",
                str(src),
                "--out",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 2
    )
    assert "no such file or folder" in capsys.readouterr().err
