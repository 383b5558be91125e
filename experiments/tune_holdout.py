"""After `recsys tune`: the base and the tuned config scored on the EVALUATION window (which
the search never saw), same data, same seed. Prints a markdown table.

    python experiments/tune_holdout.py --data data/tune-sample \
        --tuned experiments/reports/tune/tuned_sample_world.yaml
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

KEYS = ("recall@10", "ndcg@10", "mrr", "coverage")


def main() -> None:
    from recsys.config import DEFAULT_CONFIG_PATH
    from training.fit import fit_recommender
    from training.train import load_inputs

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--data", type=Path, required=True, help="folder with catalog/interactions.parquet"
    )
    ap.add_argument("--base", type=Path, default=DEFAULT_CONFIG_PATH, help="base pipeline YAML")
    ap.add_argument("--tuned", type=Path, required=True, help="YAML written by recsys tune")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for label, cfg in (("base", args.base), ("tuned", args.tuned)):
        inputs = load_inputs(args.data / "catalog.parquet", args.data / "interactions.parquet", cfg)
        result = fit_recommender(
            inputs.catalog, inputs.interactions, inputs.config, seed=args.seed, references=()
        )
        rows.append((label, result.evaluation.metrics, result.evaluation.n_baskets))
    print("| config | " + " | ".join(KEYS) + " | baskets |")
    print("| --- |" + " --- |" * (len(KEYS) + 1))
    for label, m, n in rows:
        print(f"| {label} | " + " | ".join(f"{m[k]:.4f}" for k in KEYS) + f" | {n} |")


if __name__ == "__main__":
    main()
