"""``recsys`` subcommands of the model lifecycle: train, validate-config, promote, models,
recommend. Plugged in through the ``recsys.commands`` entry point (``register``)."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.registry import DEFAULT_TOLERANCE

if TYPE_CHECKING:
    from recsys.engine.aggregates import AggregationEngine

EXIT_OK = 0
EXIT_REFUSED = 1  # promote: the gate refused
EXIT_BAD_INPUT = 2


def _quiet_env() -> None:
    """One thread per process (2 cores shared) and no per-file MLflow download bars."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def register(subparsers: Any) -> None:
    """Add the lifecycle subcommands to the ``recsys`` parser."""
    p = subparsers.add_parser(
        "train",
        help="validate, fit, evaluate and register a model as one MLflow run",
        description=(
            "Validate the config and the data, fit every stage with progress bars, log one "
            "MLflow run (params, tags, metrics, report, feature importance, data profile) and "
            "register the bundle as a new version of the registered model. The first version "
            "becomes champion; later ones with --promote if they pass the gate. The last line "
            "printed is the registered model URI. A refused --promote is reported, not an error (the "
            "version is registered; `recsys promote` exits 1 when the gate refuses)."
        ),
    )
    p.add_argument("--catalog", required=True, type=Path, help="catalog .parquet/.csv")
    p.add_argument(
        "--interactions",
        required=True,
        type=Path,
        help="interactions .parquet/.csv, or a folder of Parquet partitioned by day "
        "(interactions/date=YYYY-MM-DD/part-*.parquet, `recsys sample-data --partitioned`)",
    )
    p.add_argument(
        "--engine",
        choices=("inprocess", "spark"),
        default="inprocess",
        help="where the co-occurrence aggregates (item and category pair counts for "
        "co-purchase, EASE, feature statistics) are computed: in this process (default, no "
        "JVM) or on Spark (Parquet input; only catalog-sized results come back)",
    )
    p.add_argument(
        "--spark-master",
        default=None,
        help="with --engine spark: local[*], spark://host:7077, yarn, k8s://... "
        "(default: RECSYS_SPARK_MASTER, else local[*])",
    )
    p.add_argument("--config", type=Path, default=None, help="pipeline YAML (default: built in)")
    p.add_argument(
        "--ground-truth",
        type=Path,
        default=None,
        help="sample-world ground_truth.parquet for style/accessory metrics "
        "(default: ground_truth.parquet next to --interactions, if present)",
    )
    p.add_argument(
        "--unknown-skus",
        choices=("error", "drop"),
        default="error",
        help="events whose SKU is not in the catalog: fail naming the row (default) "
        "or drop them (counted and recorded as a run tag)",
    )
    p.add_argument("--experiment", default="home-xsell", help="MLflow experiment name")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--promote", action="store_true", help="move the champion alias if the gate passes"
    )
    p.add_argument(
        "--name",
        default=None,
        help="registered model name (default: RECSYS_MODEL_NAME if set; otherwise "
        "home-xsell for the sample world, the name the demo serves, and "
        "home-xsell-<catalog folder> for any other data, so each dataset has "
        "its own versions and champion)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="gate: largest allowed absolute drop of a key metric",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--ablations",
        action="store_true",
        help="also train rankers without style / CF features for the report (slower)",
    )
    p.set_defaults(handler=cmd_train)

    p = subparsers.add_parser(
        "validate-config",
        help="check a pipeline YAML without training",
        description="Parse and validate a pipeline config: unknown generators, features, styles "
        "or parameters are reported with the key that names them.",
    )
    p.add_argument("file", type=Path)
    p.set_defaults(handler=cmd_validate_config)

    p = subparsers.add_parser(
        "promote",
        help="move the champion alias to a version behind the quality gate",
        description=(
            "Move the champion alias to VERSION only if none of its key metrics (Recall@10, "
            "NDCG@10, accessory recall, style accuracy where present) is worse than the "
            "champion's by more than --tolerance (absolute) and both were evaluated on the "
            "same time window. --force overrides and is recorded as a tag on the version."
        ),
    )
    p.add_argument("--version", required=True, help="model version number")
    p.add_argument(
        "--name", default=None, help="registered model name (default: RECSYS_MODEL_NAME)"
    )
    p.add_argument("--force", action="store_true", help="promote even if the gate refuses")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    p.set_defaults(handler=cmd_promote)

    p = subparsers.add_parser("models", help="list registered versions, aliases and key metrics")
    p.add_argument(
        "--name", default=None, help="registered model name (default: RECSYS_MODEL_NAME)"
    )
    p.set_defaults(handler=cmd_models)

    p = subparsers.add_parser(
        "recommend",
        help="batch-score a JSON-lines file of baskets",
        description=(
            'Each input line: {"basket_id": "...", "skus": ["..."], "user_id": null, '
            '"page": "cart"}; each output line: {"basket_id", "items": [{"sku", "score", '
            '"sources", "reason"}], "style", "unknown_skus", "accessories"}. Unknown SKUs are '
            "reported per line; malformed lines are skipped and reported with their number."
        ),
    )
    p.add_argument(
        "--model",
        default=None,
        help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/model or a bundle "
        "folder (default: models:/<RECSYS_MODEL_NAME>@<RECSYS_MODEL_ALIAS>)",
    )
    p.add_argument("--baskets", required=True, type=Path, help="input JSON lines")
    p.add_argument("--out", required=True, type=Path, help="output JSON lines")
    p.add_argument("--k", type=int, default=10, help="items per basket (a line's own k wins)")
    p.add_argument("--chunk-size", type=int, default=2000, help="baskets per recommend_batch call")
    p.set_defaults(handler=cmd_recommend)

    from training.tune_cli import register_tune

    register_tune(subparsers)


def cmd_train(args: argparse.Namespace) -> int:
    from recsys.config import ConfigError
    from recsys.settings import Settings
    from training.train import StageProgress, describe_outcome, load_inputs, train_and_register

    _quiet_env()
    try:
        inputs = load_inputs(
            args.catalog, args.interactions, args.config, args.ground_truth, args.unknown_skus
        )
    except ConfigError as exc:
        return _err(f"invalid pipeline config: {exc}")
    # DataContractError is reported by recsys.cli.main with the file, row and column.
    print(
        f"data ok: {len(inputs.catalog):,} items, {len(inputs.interactions):,} events; "
        f"config ok: {inputs.config_source} (hash {inputs.config.hash})"
        + (
            f"; dropped {inputs.dropped_unknown_sku_events:,} events of SKUs not in the catalog"
            if inputs.dropped_unknown_sku_events
            else ""
        ),
        file=sys.stderr,
    )
    settings = Settings()
    with ExitStack() as stack:
        engine: AggregationEngine | None = None
        if args.engine == "spark":
            from recsys.engine.spark import SparkEngine, spark_session_scope

            master = args.spark_master or settings.spark_master
            print(f"engine: spark on {master}", file=sys.stderr)
            try:
                spark = stack.enter_context(
                    spark_session_scope(
                        master, settings.spark_shuffle_partitions, settings.spark_driver_memory
                    )
                )
            except RuntimeError as exc:
                return _err(str(exc))
            # rows were validated above (load_inputs); the engine reads the same file and
            # checks its columns; unknown SKUs were refused or dropped there, so drop here
            engine = SparkEngine(
                spark,
                args.interactions,
                inputs.catalog,
                unknown_skus="drop",
                check=False,
                dense_max_items=settings.aggregate_dense_max_items,
                min_pair_count=settings.aggregate_min_pair_count,
            )
        progress = StageProgress(enabled=not args.no_progress)
        outcome = train_and_register(
            inputs,
            seed=args.seed,
            experiment=args.experiment,
            model_name=args.name,
            promote=args.promote,
            tolerance=args.tolerance,
            settings=settings,
            progress=progress,
            ablations=args.ablations,
            engine=engine,
        )
    progress.close()
    print(describe_outcome(outcome))
    serving = Settings()
    if outcome.model_name != serving.model_name:
        print(
            f"note: `recsys serve`, `promote` and `models` use {serving.model_name!r} unless told; "
            f"use --name {outcome.model_name} or RECSYS_MODEL_NAME={outcome.model_name}",
            file=sys.stderr,
        )
    if args.promote and outcome.promotion is not None and not outcome.promotion.promoted:
        print(
            f"warning: {outcome.model_uri} registered but NOT promoted (gate refused, see above)",
            file=sys.stderr,
        )
    print(outcome.model_uri)
    return EXIT_OK


def cmd_validate_config(args: argparse.Namespace) -> int:
    from recsys.config import ConfigError
    from training.train import load_config

    if not args.file.is_file():
        return _err(f"{args.file}: no such file")
    try:
        config, source = load_config(args.file)
    except ConfigError as exc:
        return _err(f"invalid pipeline config: {exc}")
    gens = ", ".join(f"{g.name}({g.kind}, quota {g.quota})" for g in config.generators)
    print(
        f"ok: {source} (hash {config.hash}); feature set {config.feature_set}; generators: {gens}"
    )
    return EXIT_OK


def _client_and_settings() -> tuple[Any, Any]:
    from recsys.settings import Settings
    from training.tracking import client_for, configure_mlflow

    settings = Settings()
    return client_for(configure_mlflow(settings)), settings


def cmd_promote(args: argparse.Namespace) -> int:
    from training.registry import RegistryError, promote

    client, settings = _client_and_settings()
    name = args.name or settings.model_name
    try:
        decision = promote(
            client,
            name,
            args.version,
            tolerance=args.tolerance,
            force=args.force,
            alias=settings.model_alias,
        )
    except RegistryError as exc:
        return _err(str(exc))
    print(decision.explain())
    return EXIT_OK if decision.promoted else EXIT_REFUSED


def cmd_models(args: argparse.Namespace) -> int:
    from training.registry import RegistryError, format_versions, list_versions

    client, settings = _client_and_settings()
    name = args.name or settings.model_name
    try:
        versions = list_versions(client, name)
    except RegistryError as exc:
        return _err(str(exc))
    print(format_versions(name, versions))
    return EXIT_OK


def cmd_recommend(args: argparse.Namespace) -> int:
    import tempfile

    from recsys.bundle import BundleError
    from recsys.settings import Settings
    from training.batch_scoring import ModelSourceError, load_model, score_file

    _quiet_env()
    settings = Settings()
    model = args.model or f"models:/{settings.model_name}@{settings.model_alias}"
    if not args.baskets.is_file():
        return _err(f"{args.baskets}: no such file")
    if args.k < 1:
        return _err(f"--k must be >= 1, got {args.k}")
    with tempfile.TemporaryDirectory(prefix="recsys-model-") as tmp:
        try:
            recommender = load_model(model, settings, Path(tmp))
        except ModelSourceError as exc:
            return _err(str(exc))
        except BundleError as exc:
            return _err(f"cannot load {model}: {exc}")
        summary = score_file(
            recommender, args.baskets, args.out, k=args.k, chunk_size=args.chunk_size
        )
    for line_no, problem in summary.malformed[:50]:
        print(f"{args.baskets}:{line_no}: skipped: {problem}", file=sys.stderr)
    if len(summary.malformed) > 50:
        print(f"... and {len(summary.malformed) - 50} more malformed lines", file=sys.stderr)
    print(f"{summary.describe()}; wrote {args.out}")
    return EXIT_OK
