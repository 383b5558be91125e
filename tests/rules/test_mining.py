"""Mining finds the forgotten accessories of worlds whose answer is known."""

from __future__ import annotations

import pytest

from recsys.rules.mining import load_suggestions, mine_suggestions, save_suggestions
from tests.rules.conftest import make_catalog, make_history


def test_tiny_world_later_orders_and_co_occurrence() -> None:
    found = {(s.anchor, s.accessory): s for s in mine_suggestions(make_catalog(), make_history())}
    paint_gloves = found[("wall-paint", "protective-gloves")]
    assert paint_gloves.together == 0 and paint_gloves.later > 0  # only ever bought later
    assert 0.3 < paint_gloves.forgotten_rate < 0.7
    assert (
        "came back for it" in paint_gloves.sentence and "within two weeks" in paint_gloves.sentence
    )
    assert ("wall-paint", "masking-tape") in found
    tile_grout = found[("tile", "grout")]
    assert tile_grout.later == 0 and tile_grout.lift > 2
    # direction: shoppers come back for gloves after paint, never for paint after gloves
    assert ("protective-gloves", "wall-paint") not in found
    # the coffee-table buyers' paint 60 days later is outside the window: no rule
    assert ("coffee-table", "wall-paint") not in found


def test_accepting_gives_a_valid_rule() -> None:
    s = next(
        x for x in mine_suggestions(make_catalog(), make_history()) if x.anchor == "wall-paint"
    )
    rule = s.to_rule()
    assert rule.trigger.categories == ["wall-paint"] and rule.suggest.categories == [s.accessory]
    assert rule.id == s.id and "mined" in rule.tags


def test_save_and_load_round_trip(tmp_path) -> None:
    mined = mine_suggestions(make_catalog(), make_history())
    save_suggestions(mined, tmp_path / "mined_rules.json")
    assert load_suggestions(tmp_path / "mined_rules.json") == mined
    assert load_suggestions(tmp_path / "missing.json") == []
    (tmp_path / "bad.json").write_text('{"schema_version": 99, "suggestions": []}')
    with pytest.raises(ValueError, match="unsupported mined rules file"):
        load_suggestions(tmp_path / "bad.json")


def test_bad_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window_days"):
        mine_suggestions(make_catalog(), make_history(), window_days=0)


def test_sample_world_accessories_are_recovered() -> None:
    """The sample world draws forgotten accessories from ``ACCESSORIES``; mining on its orders
    must name them (recall), and what it proposes for those anchors must be real (precision)."""
    from recsys.sample_world import generate_world
    from recsys.sample_world.vocabulary import ACCESSORIES

    world = generate_world(seed=3, n_orders=5000)
    mined = mine_suggestions(world.catalog, world.interactions, max_per_anchor=5)
    pairs = {(s.anchor, s.accessory) for s in mined}
    forgotten = {(s.anchor, s.accessory) for s in mined if s.signal == "forgotten"}
    hits = total = 0
    proposed = correct = f_proposed = f_correct = 0
    for anchor, accessories in ACCESSORIES.items():
        if anchor not in world.catalog.categories:
            continue
        total += min(len(accessories), 5)
        hits += sum(1 for a in accessories if (anchor, a) in pairs)
        anchor_pairs = [p for p in pairs if p[0] == anchor]
        proposed += len(anchor_pairs)
        correct += sum(1 for _, a in anchor_pairs if a in accessories)
        f_pairs = [p for p in forgotten if p[0] == anchor]
        f_proposed += len(f_pairs)
        f_correct += sum(1 for _, a in f_pairs if a in accessories)
    assert total > 20
    assert hits / total >= 0.8, f"recall {hits}/{total}"
    # the forgotten signal is the accessory signal; lift-only pairs include project companions
    assert f_correct / f_proposed >= 0.95, f"forgotten-signal precision {f_correct}/{f_proposed}"
    assert correct / proposed >= 0.75, f"overall precision {correct}/{proposed}"
