#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh Debian machine:
# installs what is missing (Slurm and munge included), builds, runs every
# ctest test (unit, MPI, end-to-end, Slurm), then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer (gcc) and runs the unit and
# bad-input tests there, again with clang's UBSan, and smoke-runs the
# libFuzzer harnesses (clang).
#   scripts/test.sh            (as root, or with sudo)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps-ok.sh --slurm || scripts/install-deps.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
scripts/build.sh build
(cd build && ctest --output-on-failure -j 2)
scripts/build.sh build-asan -DMECHDIFF_SANITIZE=ON -DMECHDIFF_NATIVE=OFF
# unit tests, and the commands' bad-input paths (truncated/corrupt checkpoints,
# bad config, unknown hook/token, edited/truncated results files) under
# ASan+UBSan with leak detection (hostile_results: in status and merge; its
# `run`s are MPI programs, whose MPI_Init allocations Open MPI never frees;
# verify: every check of a hand-edited results file, leaks in verify)
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -R "^unit\.|^e2e\.(commands|tokenize|bad_checkpoint|hostile_results|verify)$")
# clang's UndefinedBehaviorSanitizer checks more than gcc's (NULL + 0,
# float-to-int overflow...): the unit tests and every bad-input test
CC=clang scripts/build.sh build-ubsan -DMECHDIFF_UBSAN=ON -DMECHDIFF_NATIVE=OFF
(cd build-ubsan && ctest --output-on-failure -j 2 -R \
  "^unit\.|^e2e\.(commands|tokenize|bad_checkpoint|exit_status|symlinks|job_limits|small_errors|nonfinite|refusal_bad_input|folder_check|hostile_results|verify)$")
# the libFuzzer harnesses build and survive a short smoke run (scripts/fuzz.sh
# --time N for a long run); the two that damage whole results files below
# the HDF5 API (forked, ~15-75 executions/s against ~50-5000 for the others)
# get fewer runs
scripts/fuzz.sh --runs "${FUZZ_SMOKE_RUNS:-3000}" safetensors config tokenizer job chat_template csv fewshot \
  st_index tokenizer_config generation_config hub journal model results shard_msg generate
scripts/fuzz.sh --runs "${FUZZ_SMOKE_RUNS_SLOW:-1000}" h5bytes catchup
