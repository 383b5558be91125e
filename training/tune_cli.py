"""``recsys tune`` command line (the search itself lives in ``training.tune``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_BAD_INPUT = 2

TUNE_DESCRIPTION = """\
Search the pipeline's key hyperparameters with Optuna (seeded TPE) on the VALIDATION window
only. The data's orders are cut by time with the config's window shares; every order from
the evaluation window on is dropped before the first trial, so `recsys train` can still
report held-out figures on it. Each trial fits the pipeline on the remaining data and is
scored on the validation window (the base config is measured the same way first).

Searched by default, for the generators present in the base config: EASE l2, RP3beta
alpha/beta, item-kNN K, every generator's quota, candidates.total, ranker num_leaves and
learning_rate. Every trial is a nested MLflow run under one parent run (params = its values,
metrics = its validation figures); the parent holds the best value, the optimisation history
plot and the best config. The best config is written as a pipeline YAML (--out) that
`recsys validate-config` accepts and `recsys train --config` uses.

Example:
  recsys tune --catalog data/sample/catalog.parquet \\
      --interactions data/sample/interactions.parquet --trials 30 --out tuned.yaml
"""


def register_tune(subparsers: Any) -> None:
    from training.tune import METRICS, SPACE_HELP

    p = subparsers.add_parser(
        "tune",
        help="search hyperparameters on the validation window (Optuna, MLflow)",
        description=TUNE_DESCRIPTION,
        epilog=SPACE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--catalog", required=True, type=Path, help="catalog .parquet/.csv")
    p.add_argument("--interactions", required=True, type=Path, help="interactions .parquet/.csv")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="base pipeline YAML (default: the built-in recsys/pipeline.yaml)",
    )
    p.add_argument(
        "--space", type=Path, default=None, help="YAML overriding the search space (below)"
    )
    p.add_argument("--trials", type=int, default=20, help="number of trials (default: 20)")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop starting new trials after this many seconds (default: none)",
    )
    p.add_argument(
        "--metric",
        choices=METRICS,
        default="recall@10",
        help="objective on the validation window (default: recall@10)",
    )
    p.add_argument("--seed", type=int, default=7, help="sampler and fit seed (default: 7)")
    p.add_argument("--experiment", default="home-xsell-tune", help="MLflow experiment name")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("tuned.yaml"),
        help="where to write the best config (default: tuned.yaml)",
    )
    p.add_argument(
        "--unknown-skus",
        choices=("error", "drop"),
        default="error",
        help="events whose SKU is not in the catalog: fail (default) or drop them",
    )
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the history plot and trials.csv to DIR",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    import yaml

    from recsys.config import DEFAULT_CONFIG_PATH, ConfigError
    from recsys.settings import Settings
    from training.cli import _err, _quiet_env
    from training.provenance import dataset_slug, run_name
    from training.train import load_config, load_inputs
    from training.tune import TuneError, load_space, tune

    _quiet_env()
    if args.trials < 1:
        return _err(f"--trials must be >= 1, got {args.trials}")
    if args.timeout is not None and args.timeout <= 0:
        return _err(f"--timeout must be > 0 seconds, got {args.timeout}")
    config_path = args.config or DEFAULT_CONFIG_PATH
    if not Path(config_path).is_file():
        return _err(f"{config_path}: no such file")
    try:
        inputs = load_inputs(args.catalog, args.interactions, config_path, None, args.unknown_skus)
        base = yaml.safe_load(Path(config_path).read_text())
        space = load_space(args.space, base)
    except ConfigError as exc:
        return _err(f"invalid pipeline config: {exc}")
    except TuneError as exc:
        return _err(str(exc))
    print(
        f"search space ({len(space)}): " + "; ".join(s.describe() for s in space.values()),
        file=sys.stderr,
    )
    try:
        outcome = tune(
            inputs.catalog,
            inputs.interactions,
            base,
            space=space,
            trials=args.trials,
            timeout=args.timeout,
            seed=args.seed,
            metric=args.metric,
            experiment=args.experiment,
            out=args.out,
            progress=not args.no_progress,
            settings=Settings(),
            run_name=run_name(dataset_slug(args.catalog), inputs.config.hash, "tune"),
            echo=lambda line: print(line, file=sys.stderr),
            report_dir=args.report,
        )
    except TuneError as exc:
        return _err(str(exc))
    config, _ = load_config(args.out)  # the file must pass what validate-config checks
    print(outcome.comparison())
    print(f"best values: {outcome.best_values}")
    print(f"MLflow parent run: {outcome.parent_run_id} (experiment {outcome.experiment_id})")
    print(
        f"wrote {args.out} (hash {config.hash}); train with: recsys train --config {args.out} ..."
    )
    return EXIT_OK
