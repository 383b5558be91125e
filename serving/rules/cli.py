"""``recsys rules ...``: mine suggestions, validate a rules file, export/import the rule store.

Plugged in through the ``recsys.commands`` entry-point group (``rules =
"serving.rules.cli:register"``). The store commands use the deployment settings
(``RECSYS_DATABASE_URL`` or the SQLite file under ``RECSYS_DATA_DIR``), the same store the
service uses, so an import here is picked up by running API processes within seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rules", help="merchandiser rules: mine, validate, export, import"
    )
    sub = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    mine = sub.add_parser("mine", help="propose rules from order history (writes mined_rules.json)")
    mine.add_argument("--catalog", required=True, type=Path)
    mine.add_argument("--interactions", required=True, type=Path)
    mine.add_argument("--out", type=Path, default=Path("mined_rules.json"))
    mine.add_argument(
        "--window-days",
        type=int,
        default=14,
        help="how long after the anchor counts as 'came back'",
    )
    mine.add_argument("--yaml", type=Path, help="also write the suggestions as a rules YAML file")
    mine.set_defaults(handler=_mine)

    validate = sub.add_parser(
        "validate", help="check a rules YAML file (every error, by rule and field)"
    )
    validate.add_argument("file", type=Path)
    validate.add_argument(
        "--catalog", type=Path, help="also check category and SKU names against it"
    )
    validate.set_defaults(handler=_validate)

    export = sub.add_parser("export", help="write the stored rules as YAML")
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")
    export.set_defaults(handler=_export)

    imp = sub.add_parser("import", help="load a rules YAML file into the store (all or nothing)")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--mode",
        choices=("merge", "replace"),
        default="merge",
        help="replace also deletes stored rules that are not in the file",
    )
    imp.add_argument("--author", default="cli")
    imp.add_argument("--dry-run", action="store_true")
    imp.set_defaults(handler=_import)

    controls = subparsers.add_parser(
        "controls", help="answer controls (pin, boost, bury, hide): list, validate, export, import"
    )
    csub = controls.add_subparsers(dest="controls_command", metavar="ACTION", required=True)
    clist = csub.add_parser("list", help="the stored controls, one line each")
    clist.set_defaults(handler=_controls_list)
    cval = csub.add_parser(
        "validate", help="check a controls YAML file (every error, by control and field)"
    )
    cval.add_argument("file", type=Path)
    cval.set_defaults(handler=_controls_validate)
    cexp = csub.add_parser("export", help="write the stored controls as YAML")
    cexp.add_argument("--out", type=Path, help="file to write (default: stdout)")
    cexp.set_defaults(handler=_controls_export)
    cimp = csub.add_parser(
        "import", help="load a controls YAML file into the store (all or nothing)"
    )
    cimp.add_argument("file", type=Path)
    cimp.add_argument(
        "--mode",
        choices=("merge", "replace"),
        default="merge",
        help="replace also deletes stored controls that are not in the file",
    )
    cimp.add_argument("--author", default="cli")
    cimp.add_argument("--dry-run", action="store_true")
    cimp.set_defaults(handler=_controls_import)


def _mine(args: argparse.Namespace) -> int:
    from recsys.data.catalog import load_catalog
    from recsys.data.interactions import load_interactions
    from recsys.rules.mining import mine_suggestions, save_suggestions
    from recsys.rules.rules_file import dump_rules_yaml

    catalog = load_catalog(args.catalog)
    interactions = load_interactions(args.interactions, catalog, unknown_skus="drop")
    found = mine_suggestions(catalog, interactions, window_days=args.window_days)
    save_suggestions(found, args.out)
    if args.yaml:
        args.yaml.write_text(dump_rules_yaml([s.to_rule() for s in found]))
    for s in found[:10]:
        print(f"{s.anchor} => {s.accessory}: {s.sentence}")
    print(f"{len(found)} suggestions written to {args.out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from recsys.rules.model import RuleValidationError, check_against_catalog
    from recsys.rules.rules_file import parse_rules_yaml

    check = None
    if args.catalog:
        from recsys.data.catalog import load_catalog

        cat = load_catalog(args.catalog)

        def check(rule):  # type: ignore[no-untyped-def]
            return check_against_catalog(rule, cat.categories, cat.ids, cat.taxonomy.slugs)

    try:
        rules = parse_rules_yaml(args.file.read_text(), check)
    except RuleValidationError as exc:
        for e in exc.errors:
            print(f"{args.file}: {e}", file=sys.stderr)
        return 2
    print(f"{args.file}: {len(rules)} rules, all valid")
    return 0


def _store():  # type: ignore[no-untyped-def]
    from recsys.rules.model import Rule
    from recsys.settings import Settings
    from serving.rules.store import RuleStore

    store: RuleStore[Rule] = RuleStore(Settings().resolved_database_url)
    store.create_tables()
    return store


def _export(args: argparse.Namespace) -> int:
    from recsys.rules.rules_file import dump_rules_yaml

    stored = _store().list()
    text = dump_rules_yaml(
        [s.rule for s in stored], versions={s.rule.id: s.version for s in stored}
    )
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _import(args: argparse.Namespace) -> int:
    from recsys.rules.model import RuleValidationError
    from recsys.rules.rules_file import parse_rules_yaml
    from serving.rules.store import ImportConflict

    versions: dict[str, int] = {}
    try:
        rules = parse_rules_yaml(args.file.read_text(), versions=versions)
    except RuleValidationError as exc:
        for e in exc.errors:
            print(f"{args.file}: {e}", file=sys.stderr)
        print("nothing was imported", file=sys.stderr)
        return 2
    if args.dry_run:
        print(f"{len(rules)} rules valid; dry run, nothing written")
        return 0
    try:
        res = _store().import_rules(rules, args.author, mode=args.mode, base_versions=versions)
    except ImportConflict as exc:
        print(f"{args.file}: {exc}; nothing was imported", file=sys.stderr)
        return 3
    print(
        f"created {len(res.created)}, updated {len(res.updated)}, unchanged {len(res.unchanged)}, "
        f"deleted {len(res.deleted)}"
    )
    return 0


def _control_store():  # type: ignore[no-untyped-def]
    from recsys.settings import Settings
    from serving.rules.store import ControlStore

    store = ControlStore(Settings().resolved_database_url)
    store.create_tables()
    return store


def _read_controls(path: Path):  # type: ignore[no-untyped-def]
    from recsys.controls import parse_controls_yaml
    from recsys.rules.model import RuleValidationError

    try:
        return parse_controls_yaml(path.read_text())
    except RuleValidationError as exc:
        for e in exc.errors:
            print(f"{path}: {e}", file=sys.stderr)
        return None


def _controls_list(args: argparse.Namespace) -> int:
    from recsys.controls import control_summary

    stored = _control_store().list()
    for s in stored:
        c = s.rule
        window = (
            f" {c.valid_from or '…'} – {c.valid_to or '…'}" if c.valid_from or c.valid_to else ""
        )
        state = "" if c.enabled else " (disabled)"
        print(
            f"{c.id} v{s.version}: {control_summary(c)} on {', '.join(c.placements)}{window}{state}"
        )
    print(f"{len(stored)} controls")
    return 0


def _controls_validate(args: argparse.Namespace) -> int:
    controls = _read_controls(args.file)
    if controls is None:
        return 2
    print(f"{args.file}: {len(controls)} controls, all valid")
    return 0


def _controls_export(args: argparse.Namespace) -> int:
    from recsys.controls import dump_controls_yaml

    text = dump_controls_yaml([s.rule for s in _control_store().list()])
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _controls_import(args: argparse.Namespace) -> int:
    controls = _read_controls(args.file)
    if controls is None:
        print("nothing was imported", file=sys.stderr)
        return 2
    if args.dry_run:
        print(f"{len(controls)} controls valid; dry run, nothing written")
        return 0
    res = _control_store().import_rules(controls, args.author, mode=args.mode)
    print(
        f"created {len(res.created)}, updated {len(res.updated)}, unchanged {len(res.unchanged)}, "
        f"deleted {len(res.deleted)}"
    )
    return 0
