#!/usr/bin/env bash
# A real `recsys tune` run on the sample world (see experiments/reports/tune/README.md).
# Usage: experiments/tune_sample_world.sh [TRIALS] [TIMEOUT_S] [ORDERS]
set -euo pipefail
TRIALS=${1:-30}
TIMEOUT=${2:-3600}
ORDERS=${3:-10000}
RECSYS=${RECSYS:-recsys}
DATA=${DATA:-data/tune-sample}
OUT=${OUT:-experiments/reports/tune}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export MLFLOW_TRACKING_URI=${MLFLOW_TRACKING_URI:-sqlite:///$PWD/data/mlflow.db}
[ -f "$DATA/catalog.parquet" ] || $RECSYS sample-data --seed 7 --orders "$ORDERS" --out "$DATA"
$RECSYS tune --catalog "$DATA/catalog.parquet" --interactions "$DATA/interactions.parquet" \
    --trials "$TRIALS" --timeout "$TIMEOUT" --seed 7 --experiment tune-sample-world \
    --out "$OUT/tuned_sample_world.yaml" --report "$OUT"
$RECSYS validate-config "$OUT/tuned_sample_world.yaml"
