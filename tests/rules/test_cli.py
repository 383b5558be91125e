"""``recsys rules`` subcommands, called through the real argparse wiring."""

from __future__ import annotations

import argparse

import pytest

from recsys.rules.mining import load_suggestions
from recsys.rules.rules_file import DEFAULT_RULES_PATH, parse_rules_yaml
from serving.rules.cli import register
from tests.rules.conftest import make_catalog, make_history


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="recsys")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_mine_writes_suggestions(tmp_path) -> None:
    make_catalog().save(tmp_path / "catalog.parquet")
    make_history().save(tmp_path / "interactions.parquet")
    out, yml = tmp_path / "mined_rules.json", tmp_path / "mined.yaml"
    assert (
        run(
            [
                "rules",
                "mine",
                "--catalog",
                str(tmp_path / "catalog.parquet"),
                "--interactions",
                str(tmp_path / "interactions.parquet"),
                "--out",
                str(out),
                "--yaml",
                str(yml),
            ]
        )
        == 0
    )
    mined = load_suggestions(out)
    assert ("wall-paint", "protective-gloves") in {(s.anchor, s.accessory) for s in mined}
    assert len(parse_rules_yaml(yml.read_text())) == len(mined)


def test_validate(tmp_path, capsys) -> None:
    assert run(["rules", "validate", str(DEFAULT_RULES_PATH)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n- {id: x, name: x, trigger: {categories: [tile]}, suggest: {categories: [grou]}}\n"
    )
    make_catalog().save(tmp_path / "catalog.parquet")
    assert run(["rules", "validate", str(bad), "--catalog", str(tmp_path / "catalog.parquet")]) == 2
    assert (
        "rules[0] (x).suggest.categories[0]: unknown category 'grou'; did you mean 'grout'?"
        in capsys.readouterr().err
    )


def test_import_export_against_the_settings_store(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    assert run(["rules", "import", str(DEFAULT_RULES_PATH), "--author", "ops"]) == 0
    assert "created 10" in capsys.readouterr().out
    out = tmp_path / "export.yaml"
    assert run(["rules", "export", "--out", str(out)]) == 0
    assert len(parse_rules_yaml(out.read_text())) == 10
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [")
    assert run(["rules", "import", str(broken)]) == 2
    assert "nothing was imported" in capsys.readouterr().err


def test_unknown_action_is_an_argparse_error() -> None:
    with pytest.raises(SystemExit):
        run(["rules", "explode"])


def test_controls_import_list_export_against_the_settings_store(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    src = tmp_path / "controls.yaml"
    src.write_text(
        "version: 1\ncontrols:\n"
        "- {id: pin-g1, name: Gloves first, action: pin, target: {skus: [G1]}, position: 1,"
        " placements: [cart], valid_to: '2026-07-01T00:00:00Z'}\n"
        "- {id: bury-tile, name: Old tiles, action: bury, target: {categories: [tile]}, shift: 3}\n"
    )
    assert run(["controls", "validate", str(src)]) == 0
    assert run(["controls", "import", str(src), "--author", "ops"]) == 0
    assert "created 2" in capsys.readouterr().out
    assert run(["controls", "list"]) == 0
    listed = capsys.readouterr().out
    assert "pin-g1 v1: pin G1 at 1 on cart" in listed and "bury-tile v1: bury tile -3" in listed
    out = tmp_path / "export.yaml"
    assert run(["controls", "export", "--out", str(out)]) == 0
    from recsys.controls import parse_controls_yaml

    assert [c.id for c in parse_controls_yaml(out.read_text())] == ["bury-tile", "pin-g1"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("controls:\n- {id: x, name: x, action: pin, target: {skus: [G1]}}\n")
    assert run(["controls", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "controls[0] (x): a pin needs a position" in err and "nothing was imported" in err
