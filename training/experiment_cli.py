"""``recsys experiment create|start|stop|list|report``: A/B experiments from the command line.

Plugged in through the ``recsys.commands`` entry-point group (``experiment =
"training.experiment_cli:register"``). The commands use the deployment settings
(``RECSYS_DATABASE_URL`` or the SQLite file under ``RECSYS_DATA_DIR``): the same store the API
reads, so a start here is served by running API processes within
``RECSYS_EXPERIMENT_POLL_SECONDS``. ``report`` also logs an MLflow run (``--no-mlflow`` to skip)
and ``--promote`` hands a winning registered model to the promotion gate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXAMPLE = """\
example experiment file (YAML or JSON):
  name: full-vs-copurchase
  placements: [checkout]
  variants:
    - {name: full, share: 0.5}                      # the champion as trained
    - name: copurchase
      share: 0.5
      model: null                                   # or models:/home-xsell/3, a bundle path
      knobs: {ranker: false, style_slots: 0, generators: [co_purchase]}
      rules: {mode: all}                            # all | none | {mode: tags, tags: [paint]}
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="A/B experiments: create, start, stop, list, report",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="experiment_command", metavar="ACTION", required=True)
    create = sub.add_parser(
        "create",
        help="store a draft from a YAML/JSON file",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("file", type=Path)
    create.add_argument("--author", default="cli")
    create.set_defaults(handler=_create)
    for name, fn, text in (
        ("start", _start, "start a draft (refused over the memory budget)"),
        ("stop", _stop, "stop a running experiment"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("name")
        p.add_argument("--author", default="cli")
        p.set_defaults(handler=fn)
    lst = sub.add_parser("list", help="all experiments with status and variants")
    lst.set_defaults(handler=_list)
    rep = sub.add_parser("report", help="metrics per variant, differences to control, SRM check")
    rep.add_argument("name")
    rep.add_argument(
        "--minimum-effect",
        type=float,
        default=0.05,
        help="relative change the 'units still needed' figure is for (default 0.05)",
    )
    rep.add_argument("--json", action="store_true", help="print the report as JSON")
    rep.add_argument("--no-mlflow", action="store_true", help="do not log the report to MLflow")
    rep.add_argument(
        "--promote",
        action="store_true",
        help="hand the winner's registered model to the promotion gate",
    )
    rep.add_argument(
        "--metric",
        default="revenue_per_session",
        help="the metric that decides the winner (default revenue_per_session)",
    )
    rep.add_argument("--tolerance", type=float, default=None, help="promotion gate tolerance")
    rep.set_defaults(handler=_report)


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _store() -> tuple[Any, Any]:
    from feature_store.experiment_store import ExperimentStore
    from recsys.settings import Settings

    settings = Settings()
    return ExperimentStore(settings.resolved_database_url), settings


def _create(args: argparse.Namespace) -> int:
    import yaml
    from pydantic import ValidationError

    from feature_store.experiment_store import ExperimentConflict
    from recsys.experiment import Experiment

    if not args.file.is_file():
        return _err(f"{args.file} not found")
    try:
        doc = yaml.safe_load(args.file.read_text())
        exp = Experiment.model_validate(doc)
    except (yaml.YAMLError, ValidationError) as exc:
        return _err(f"{args.file} is not a valid experiment:\n{exc}")
    store, _ = _store()
    try:
        stored = store.create(exp, args.author)
    except ExperimentConflict as exc:
        return _err(str(exc))
    print(
        f"created {stored.experiment.name} (version {stored.version}, draft); "
        f"start it with: recsys experiment start {stored.experiment.name}"
    )
    return 0


def model_dir(uri: str | None, settings: Any) -> Path:
    """The local bundle of a model URI (None = the champion the API follows)."""
    from recsys.bundle import find_bundle

    uri = uri or settings.model_uri or f"models:/{settings.model_name}@{settings.model_alias}"
    if Path(uri).exists():
        return find_bundle(Path(uri))
    import mlflow

    from training.tracking import configure_mlflow

    configure_mlflow(settings)
    return find_bundle(Path(mlflow.artifacts.download_artifacts(artifact_uri=uri)))


def _start(args: argparse.Namespace) -> int:
    from feature_store.experiment_store import (
        ExperimentConflict,
        ExperimentNotFound,
        ExperimentRefused,
        check_memory_budget,
    )

    store, settings = _store()

    def check(exp: Any, others: list[Any]) -> None:
        need = check_memory_budget(
            [exp, *others], lambda u: model_dir(u, settings), settings.experiment_memory_budget_mb
        )
        print(f"memory: {need:.1f} MB of {settings.experiment_memory_budget_mb:g} MB budget")

    try:
        stored = store.start(args.name, args.author, check=check)
    except (ExperimentConflict, ExperimentNotFound, ExperimentRefused) as exc:
        return _err(str(exc))
    print(
        f"started {args.name} at {stored.experiment.started_at:%Y-%m-%d %H:%M:%S} UTC; API "
        f"processes route to it within {settings.experiment_poll_seconds:g} s"
    )
    return 0


def _stop(args: argparse.Namespace) -> int:
    from feature_store.experiment_store import ExperimentConflict, ExperimentNotFound

    store, _ = _store()
    try:
        store.stop(args.name, args.author)
    except (ExperimentConflict, ExperimentNotFound) as exc:
        return _err(str(exc))
    print(f"stopped {args.name}; read it with: recsys experiment report {args.name}")
    return 0


def _list(args: argparse.Namespace) -> int:
    store, _ = _store()
    rows = store.list()
    if not rows:
        print("no experiments yet; create one with: recsys experiment create FILE")
        return 0
    for s in rows:
        e = s.experiment
        variants = ", ".join(f"{v.name} {v.share:.0%}" for v in e.variants)
        print(f"{e.name:<28}{e.status:<9}v{s.version:<4}{','.join(e.placements):<22}{variants}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from feature_store.attribution import EventContextLog
    from feature_store.event_log import EventLog
    from feature_store.experiment_report import METRICS, format_report, report
    from feature_store.experiment_store import ExperimentNotFound
    from feature_store.impression_log import ImpressionLog

    if args.metric not in METRICS:
        return _err(f"--metric must be one of {', '.join(METRICS)}")
    store, settings = _store()
    try:
        exp = store.get(args.name).experiment
    except ExperimentNotFound as exc:
        return _err(f"{exc}; see: recsys experiment list")
    url = settings.resolved_database_url
    events = EventLog(url)
    rep = report(
        exp,
        ImpressionLog(url).read_frame(experiment=exp.name),
        events.read_frame(),
        EventContextLog(events.engine).read_frame(),
        window_hours=settings.attribution_window_hours,
        minimum_effect=args.minimum_effect,
    )
    print(json.dumps(rep.to_dict(), indent=2, default=str) if args.json else format_report(rep))
    if not args.no_mlflow:
        from training.experiment_tracking import log_report

        run_id = log_report(rep, exp, settings)
        print(f"logged to MLflow: run {run_id} (experiment 'online-experiments')", file=sys.stderr)
    if args.promote:
        from training.experiment_tracking import pick_winner, promote_winner
        from training.registry import DEFAULT_TOLERANCE
        from training.tracking import client_for, configure_mlflow

        winner = pick_winner(rep, exp, args.metric)
        client = client_for(configure_mlflow(settings))
        tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
        promoted, message = promote_winner(
            winner, client, tolerance=tolerance, alias=settings.model_alias
        )
        print(message)
        return 0 if promoted else 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m training.experiment_cli ...`` (the same as ``recsys experiment ...``)."""
    parser = argparse.ArgumentParser(prog="recsys")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["experiment", *(argv if argv is not None else sys.argv[1:])])
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
