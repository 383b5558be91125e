"""Rule validation: every error names its field; YAML files are all-or-nothing."""

from __future__ import annotations

import pytest

from recsys.rules.model import RuleValidationError, check_against_catalog, parse_rule, rule_summary
from recsys.rules.rules_file import default_rules, dump_rules_yaml, parse_rules_yaml

GOOD = {
    "id": "paint-gloves",
    "name": "Paint needs gloves",
    "trigger": {"categories": ["wall-paint"]},
    "suggest": {"categories": ["protective-gloves"]},
}


def paths(doc: dict) -> dict[str, str]:
    with pytest.raises(RuleValidationError) as info:
        parse_rule(doc)
    return {e.path: e.message for e in info.value.errors}


def test_a_minimal_rule_gets_sensible_defaults() -> None:
    rule = parse_rule(GOOD)
    assert rule.enabled and rule.priority == 0 and rule.placements == ["checkout"]
    assert rule.suggest.max_items == 1 and rule.suggest.constraints.in_stock
    assert rule.shopper_reason == "often forgotten with wall paint"
    assert rule_summary(rule) == "wall-paint => protective-gloves"


def test_errors_name_the_field_with_list_indexes() -> None:
    bad = {**GOOD, "suggest": {"categories": ["protective-gloves", "Masking Tape"], "max_items": 0}}
    errors = paths(bad)
    assert "suggest.categories[1]" in errors and "not a slug" in errors["suggest.categories[1]"]
    assert "suggest.max_items" in errors


def test_every_problem_is_reported_at_once() -> None:
    errors = paths({"id": "Bad Id", "trigger": {}, "suggest": {}, "colour": "red"})
    assert {"id", "name", "trigger", "suggest", "colour"} <= set(errors)
    assert "unknown field" in errors["colour"]
    assert "at least one of categories, skus or attributes" in errors["trigger"]


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"placements": ["checkout", "homepage"]}, "placements[1]"),
        ({"priority": 5000}, "priority"),
        ({"trigger": {"categories": ["wall-paint"], "min_quantity": 0}}, "trigger.min_quantity"),
        (
            {"suggest": {"categories": ["grout"], "constraints": {"max_price": -1}}},
            "suggest.constraints.max_price",
        ),
        ({"unless": ["Grout"]}, "unless[0]"),
        ({"trigger": {"categories": ["wall-paint", "wall-paint"]}}, "trigger.categories"),
        ({"trigger": {"attributes": [{"key": "material"}]}}, "trigger.attributes[0].value"),
    ],
)
def test_field_paths(patch: dict, path: str) -> None:
    assert path in paths({**GOOD, **patch})


def test_validity_window_must_be_ordered() -> None:
    errors = paths(
        {**GOOD, "valid_from": "2025-02-01T00:00:00Z", "valid_to": "2025-01-01T00:00:00Z"}
    )
    assert any("valid_to must be after valid_from" in m for m in errors.values())


def test_naive_datetimes_are_utc() -> None:
    rule = parse_rule({**GOOD, "valid_from": "2025-01-01T00:00:00"})
    assert rule.valid_from is not None and rule.valid_from.utcoffset().total_seconds() == 0


def test_catalog_check_suggests_the_right_name(catalog) -> None:
    rule = parse_rule(
        {
            **GOOD,
            "trigger": {"categories": ["paint"]},
            "suggest": {"categories": ["protective-glove"], "skus": ["NOPE"]},
        }
    )
    errors = {
        e.path: e.message for e in check_against_catalog(rule, catalog.categories, catalog.ids)
    }
    assert errors["trigger.categories[0]"] == "unknown category 'paint'; did you mean 'wall-paint'?"
    assert "did you mean 'protective-gloves'" in errors["suggest.categories[0]"]
    assert errors["suggest.skus[0]"] == "unknown SKU 'NOPE'"


def test_default_rules_are_valid_and_round_trip_through_yaml() -> None:
    rules = default_rules()
    ids = {r.id for r in rules}
    assert {"paint-essentials", "tile-essentials", "wallpaper-paste", "laminate-underlay"} <= ids
    assert parse_rules_yaml(dump_rules_yaml(rules)) == rules


def test_default_rules_name_only_sample_world_categories() -> None:
    from recsys.sample_world.vocabulary import CATEGORY_BY_SLUG

    for rule in default_rules():
        for name in rule.trigger.categories + rule.suggest.categories + rule.unless:
            assert name in CATEGORY_BY_SLUG, f"{rule.id}: {name}"


def test_yaml_file_reports_every_bad_rule_and_returns_nothing() -> None:
    text = """
version: 1
rules:
  - {id: ok-rule, name: fine, trigger: {categories: [tile]}, suggest: {categories: [grout]}}
  - {id: bad-one, name: x, trigger: {categories: [tile]}, suggest: {categories: []}}
  - {id: ok-rule, name: dup, trigger: {categories: [tile]}, suggest: {categories: [grout]}}
"""
    with pytest.raises(RuleValidationError) as info:
        parse_rules_yaml(text)
    found = {e.path for e in info.value.errors}
    assert "rules[1] (bad-one).suggest" in found
    assert "rules[2] (ok-rule).id" in found


@pytest.mark.parametrize(
    "text", ["rules: [", "just text", "version: 2\nrules: []", "rules: {a: 1}"]
)
def test_malformed_files_are_clear_errors(text: str) -> None:
    with pytest.raises(RuleValidationError):
        parse_rules_yaml(text)
