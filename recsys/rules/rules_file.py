"""Rules as a YAML file (``version: 1`` + ``rules: [...]``): import, export, and the defaults.

Parsing is all-or-nothing: every rule is validated and every problem reported (with the rule's
position and id) before anything is returned, so a bad file never half-applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from recsys.rules.model import FieldError, Rule, RuleValidationError, parse_rule
from recsys.safe_yaml import load_yaml, short_repr

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.yaml")
FILE_VERSION = 1
RuleCheck = Callable[[Rule], list[FieldError]]


def parse_rules_document(
    data: Any,
    check: Callable[[Any], list[FieldError]] | None = None,
    *,
    parse: Callable[[Any], Any] = parse_rule,
    key: str = "rules",
    versions: dict[str, int] | None = None,
) -> list[Any]:
    """Validate a parsed rules document (a mapping with ``rules``, or a bare list of rules).
    ``check`` (e.g. names against a catalog) runs on each structurally valid rule; its errors
    are reported with the others. ``parse``/``key`` read other versioned documents the same
    way (answer controls: ``parse_control``, ``controls``). An entry may carry the stored
    ``version`` it was exported at (``dump_rules_yaml(..., versions=...)``); those are collected
    into ``versions`` (id -> version) so an import can refuse to overwrite a rule changed since
    the export."""
    if isinstance(data, dict):
        version = data.get("version", FILE_VERSION)
        if version != FILE_VERSION:
            raise RuleValidationError(
                [
                    FieldError(
                        "version",
                        f"unsupported version {short_repr(version)}; expected {FILE_VERSION}",
                    )
                ]
            )
        unknown = set(data) - {"version", key}
        if unknown:
            raise RuleValidationError(
                [
                    FieldError(str(k), f"unknown top-level key (expected 'version' and '{key}')")
                    for k in sorted(unknown, key=str)
                ]
            )
        items = data.get(key)
    else:
        items = data
    if not isinstance(items, list):
        raise RuleValidationError([FieldError(key, f"expected a list of {key}")])
    rules: list[Any] = []
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        label = f"{key}[{i}]"
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            label += f" ({item['id']})"
        base = None
        if isinstance(item, dict) and "version" in item:
            item = dict(item)
            base = item.pop("version")
            if isinstance(base, bool) or not isinstance(base, int) or base < 1:
                errors.append(
                    FieldError(
                        f"{label}.version",
                        f"must be a stored version number >= 1, got {short_repr(base)}",
                    )
                )
                continue
        try:
            rule = parse(item)
        except RuleValidationError as exc:
            errors.extend(
                FieldError(f"{label}.{e.path}" if e.path else label, e.message) for e in exc.errors
            )
            continue
        if rule.id in seen:
            errors.append(
                FieldError(f"{label}.id", f"duplicate id {rule.id!r} (also {key}[{seen[rule.id]}])")
            )
            continue
        seen[rule.id] = i
        if base is not None and versions is not None:
            versions[rule.id] = base
        if check is not None:
            errors.extend(FieldError(f"{label}.{e.path}", e.message) for e in check(rule))
        rules.append(rule)
    if errors:
        raise RuleValidationError(errors)
    return rules


def parse_rules_yaml(
    text: str,
    check: Callable[[Any], list[FieldError]] | None = None,
    *,
    parse: Callable[[Any], Any] = parse_rule,
    key: str = "rules",
    versions: dict[str, int] | None = None,
) -> list[Any]:
    """Validate YAML text holding rules (or, with ``parse``/``key``, other documents);
    ``RuleValidationError`` lists every problem. Parsed with ``recsys.safe_yaml`` limits (size,
    depth, aliases) before anything else."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise RuleValidationError([FieldError("", f"not valid YAML: {exc}")]) from None
    return parse_rules_document(data, check, parse=parse, key=key, versions=versions)


def dump_rules_yaml(
    rules: Sequence[Any], key: str = "rules", versions: dict[str, int] | None = None
) -> str:
    """The file form of ``rules`` (round-trips through ``parse_rules_yaml``); with ``versions``
    each entry carries its stored version, which an import checks (stale -> conflict)."""
    docs = [
        {**r.to_document(), "version": versions[r.id]}
        if versions and r.id in versions
        else r.to_document()
        for r in rules
    ]
    return yaml.safe_dump({"version": FILE_VERSION, key: docs}, sort_keys=False, allow_unicode=True)


def load_rules_file(path: str | Path) -> list[Rule]:
    path = Path(path)
    try:
        return parse_rules_yaml(path.read_text())
    except RuleValidationError as exc:
        raise RuleValidationError(exc.errors, prefix=f"{path}: ") from None


def default_rules() -> list[Rule]:
    """The shipped rules for the sample world (``default_rules.yaml``)."""
    return load_rules_file(DEFAULT_RULES_PATH)
