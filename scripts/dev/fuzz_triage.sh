#!/usr/bin/env bash
# Sorts the crash artifacts of a libFuzzer harness by where they crash:
# replays each (under the harness's own sanitizers, libhdf5 leaks suppressed:
# tests/fuzz/libhdf5.supp) and prints one line
#   libhdf5 <function> <error kind> <file>    the first frame below the
#                                              sanitizer's is in libhdf5
#   mechdiff <frame> <error kind> <file>       anything else: a finding
#   gone <file>                                does not crash on replay
# (a hang: libFuzzer's stack after 10 s of one input).
# Exits 1 when one is mechdiff's. Used by scripts/fuzz.sh for the harnesses
# of damaged results files (h5bytes, catchup), whose campaigns go on past
# libhdf5's crashes (tests/fuzz/README.md, "known libhdf5 crashes").
#   scripts/dev/fuzz_triage.sh build-fuzz/tests/fuzz/fuzz_h5bytes crash-*
set -uo pipefail
exe=$1
shift
supp="$(cd "$(dirname "$0")/../.." && pwd)/tests/fuzz/libhdf5.supp"
status=0
for f in "$@"; do
  out=$(ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$supp UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        OPENBLAS_NUM_THREADS=1 timeout 120 "$exe" -timeout=10 "$f" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then echo "gone $f"; continue; fi
  kind=$(grep -m1 -oE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer|UndefinedBehaviorSanitizer): [A-Za-z-]+( [a-z-]+)?" <<<"$out" |
         sed -E 's/ERROR: [A-Za-z]+: //; s/ /-/g')
  [ -n "$kind" ] || kind="exit-$rc"
  # the first stack frame that is neither the sanitizer's nor libc's
  frame=$(sed -n '/ERROR: /,$p' <<<"$out" | grep -E "^ +#[0-9]+ " |
          grep -vE "__sanitizer|__interceptor|__asan|__lsan|sysdeps/| in __(mem|str)[a-z0-9_]*|in (malloc|calloc|realloc|strdup|memcpy|memmove|memset|free)\b|libc\.so|libc_start|pthread_kill|raise|abort|fuzzer::|in _start|CrashCallback|PrintStackTrace" |
          head -1)
  if grep -q "libhdf5" <<<"$frame"; then
    fn=$(grep -oE " in [A-Za-z0-9_]+" <<<"$frame" | head -1 | sed 's/ in //')
    echo "libhdf5 ${fn:-$(grep -oE 'libhdf5[a-z_]*\.so[.0-9]*\+0x[0-9a-f]+' <<<"$frame")} $kind $f"
  else
    echo "mechdiff $(grep -oE ' in [^ ]+' <<<"$frame" | head -1 | sed 's/ in //') $kind $f"
    status=1
  fi
done
exit $status
