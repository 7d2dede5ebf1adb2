#!/usr/bin/env bash
# A layer-sharded model over 3 CPU ranks gives the same numbers as one rank
# (tests/mpi/shard_test.c), on the shipped base model (4 layers: the leader
# holds 2, each member 1).
set -euo pipefail
BUILD=${1:?build dir}
MODEL=models/organism-base
[ -f "$MODEL/model.safetensors" ] || { echo "SKIP: $MODEL is not there"; exit 77; }
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun --oversubscribe -np 3 "$BUILD/tests/shard_test" "$MODEL"
