#!/usr/bin/env bash
# `cmake --install` puts the command, the library, its headers and a CMake
# package config in a prefix; a separate C program finds it with
# find_package(mechdiff), links, and runs a forward pass on a golden model.
set -euo pipefail
BUILD=${1:?build dir}
ROOT=$(pwd)
T=$(mktemp -d "$(cd "$BUILD" && pwd)/install.XXXXXX")
trap 'rm -rf "$T"' EXIT
cmake --install "$BUILD" --prefix "$T/prefix" >/dev/null
"$T/prefix/bin/mechdiff" --version
test -f "$T/prefix/include/mechdiff/forward.h"
# internal headers stay out of the prefix
for h in plan journal h5out exp_util inflight shard; do
  if [ -e "$T/prefix/include/mechdiff/$h.h" ]; then echo "internal header $h.h installed" >&2; exit 1; fi
done
mkdir -p "$T/consumer"
cat > "$T/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(mechdiff REQUIRED)
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE mechdiff::mechdiff)
CM
cat > "$T/consumer/main.c" <<'C'
#include <stdio.h>
#include <mechdiff/forward.h>
int main(int argc, char **argv)
{
    md_error err = {0};
    md_model *m = NULL;
    if (argc < 2 || md_model_load(&m, argv[1], NULL, &err) != MD_OK) { fprintf(stderr, "%s\n", err.msg); return 1; }
    int ids[3] = {5, 6, 7};
    float logits[4096];
    md_kvcache *kc = NULL;
    if (md_kvcache_create(&kc, m, 1, 3, &err) != MD_OK) return 1;
    md_forward f;
    md_forward_init(&f, m);
    f.n_seq = 1; f.t0 = 0; f.t1 = 3; f.tokens = ids; f.cache = kc; f.logits_out = logits;
    if (md_model_forward(m, &f, &err) != MD_OK) { fprintf(stderr, "%s\n", err.msg); return 1; }
    printf("consumer: logit[0] = %f over %d tokens\n", logits[0], m->cfg.vocab_size);
    md_kvcache_free(kc);
    md_model_free(m);
    return 0;
}
C
cmake -S "$T/consumer" -B "$T/consumer/build" -DCMAKE_PREFIX_PATH="$T/prefix" >/dev/null
cmake --build "$T/consumer/build" >/dev/null
LD_LIBRARY_PATH="$T/prefix/lib:${LD_LIBRARY_PATH:-}" "$T/consumer/build/consumer" "$ROOT/tests/golden/models/llama3_f32"
echo "install: ok"
