#!/usr/bin/env bash
# fresh_debian_check.sh — runs the README's commands on a BARE Debian 12
# (bookworm) root, as CI's fresh machine does: nothing installed but what
# debootstrap --variant=minbase puts there, so a package or step missing from
# scripts/install-deps.sh, deps-ok.sh, quickstart.sh, test.sh, build.sh or
# .ci/run fails here even when this machine has everything.
#
#   scripts/dev/fresh_debian_check.sh CHROOT_DIR [quickstart] [test]
#       (as root; no step named = both; needs debootstrap: apt-get install
#       debootstrap; a dev tool only, not in install-deps.sh)
#
# CHROOT_DIR holds (made on first use, reused later):
#   base.tar       the bare bookworm root (debootstrap minbase + the
#                  bookworm-updates and security sources a real install has);
#                  delete it to debootstrap again
#   debs/          apt's downloaded packages, shared by the runs to save the
#                  download (NO_DEB_CACHE=1: download every time); apt-get
#                  update and the install itself run on every fresh root
#   root/          the fresh root of the last step (unpacked from base.tar
#                  before EACH step: quickstart and test start bare)
#   logs/STEP.log  everything the step printed, each line prefixed with the
#                  seconds since the step began; logs/times.txt the phases
# Each step: unpack base.tar, copy the host's /etc/resolv.conf and /etc/hosts
# (a real machine resolves its own host name; Slurm's test needs it), `git
# clone` the COMMITTED HEAD of this checkout to /root/mechdiff, mount /proc,
# /sys, /dev, /dev/pts and a fresh /dev/shm, then in a clean environment
# (env -i, PATH and HOME only) run as root:
#   quickstart: scripts/quickstart.sh, then check that report/report.md's
#               table equals the README's (between the quickstart-results
#               markers)
#   test:       bash .ci/run (scripts/test.sh: the whole suite)
# On exit (also on failure or ^C) every process still running inside the
# root (mpirun, slurmd, munged...) is killed by pid and everything mounted
# under root/ is unmounted. The root is left in place for inspection.
#
# Measured 2026-12-07 on the 2-core dev machine shared with other jobs (load
# average 4-6), deb.debian.org, last run (first run in brackets):
#   debootstrap + base.tar (first use only)              30 s
#   quickstart: apt-get update + install                 91 s (76 s, debs downloaded)
#               configure + build                       28 s (14 s)
#               sweep (3 ranks), report                 17 s + 3 s (13 s + 4 s)
#   test:       apt-get update + install                 92 s (53 s)
#               build, the 81 ctest tests, ASan and
#               UBSan builds and tests, fuzz smoke      762 s (614 s)
# about 2.5 + 14 minutes for both steps; every run in docs/fresh-debian.md,
# logs/times.txt keeps each run's figures and load average.
set -euo pipefail
usage() { echo "usage: $0 CHROOT_DIR [quickstart] [test]" >&2; exit 2; }
[ $# -ge 1 ] || usage
DIR=$1; shift
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(quickstart test)
for s in "${STEPS[@]}"; do case $s in quickstart|test) ;; *) usage ;; esac; done
[ "$(id -u)" = 0 ] || { echo "$0: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "$0: apt-get install debootstrap first" >&2; exit 1; }
REPO=$(cd "$(dirname "$0")/../.." && pwd)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
ROOT=$DIR/root
LOGS=$DIR/logs
mkdir -p "$LOGS" "$DIR/debs"
HEAD=$(git -C "$REPO" rev-parse HEAD)
[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no)" ] ||
    echo "note: uncommitted changes in $REPO are NOT tested (the root gets a clone of HEAD $HEAD)"

mounted() { findmnt -rn -o TARGET | awk -v r="$ROOT" 'index($0, r "/") == 1' | sort -r; }
# pids whose root directory is inside ROOT (started by this script's chroot)
inside() {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        case $r in "$ROOT"|"$ROOT"/*) echo "${p#/proc/}" ;; esac
    done
}
release() {
    local pids m
    pids=$(inside)
    if [ -n "$pids" ]; then
        echo "stopping processes left in the root: $(echo $pids)"
        kill $pids 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do pids=$(inside); [ -z "$pids" ] && break; sleep 0.5; done
        [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
        sleep 0.5
    fi
    for m in $(mounted); do umount "$m" 2>/dev/null || umount -l "$m"; done
}
trap release EXIT
trap 'exit 130' INT TERM

make_base() {
    [ -f "$DIR/base.tar" ] && return 0
    local t0=$SECONDS tmp=$DIR/base-root
    rm -rf "$tmp"
    echo "== debootstrap --variant=minbase bookworm ($MIRROR)"
    nice debootstrap --variant=minbase bookworm "$tmp" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 ||
        { tail -20 "$LOGS/debootstrap.log"; echo "debootstrap failed (log: $LOGS/debootstrap.log)"; exit 1; }
    # the sources of a real bookworm install (and of the debian:12 image)
    cat > "$tmp/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
    tar -C "$tmp" -cf "$DIR/base.tar.part" . && mv "$DIR/base.tar.part" "$DIR/base.tar"
    rm -rf "$tmp"
    echo "debootstrap: $((SECONDS - t0)) s" | tee -a "$LOGS/times.txt"
}

fresh_root() {
    [ -z "$(mounted)" ] || { echo "$ROOT still has mounts; refusing to delete it"; exit 1; }
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    tar -C "$ROOT" -xf "$DIR/base.tar"
    cp /etc/resolv.conf /etc/hosts "$ROOT/etc/"
    git clone -q --no-local "$REPO" "$ROOT/root/mechdiff"
    git -C "$ROOT/root/mechdiff" checkout -q --detach "$HEAD"
    mount -t proc proc "$ROOT/proc"
    # recursive: with /sys/fs/cgroup, which every real machine has mounted
    # (slurmd stops with "No filesystem mounted on /sys/fs/cgroup" without it)
    mount --rbind /sys "$ROOT/sys" && mount --make-rslave "$ROOT/sys"
    mount --bind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev"
    mount --bind /dev/pts "$ROOT/dev/pts" && mount --make-rslave "$ROOT/dev/pts"
    mount -t tmpfs -o mode=1777,size=2g shm "$ROOT/dev/shm"
    if [ "${NO_DEB_CACHE:-0}" != 1 ]; then
        mount --bind "$DIR/debs" "$ROOT/var/cache/apt/archives"
    fi
}

# in_root LOG CMD: CMD in the root, as root, clean environment; every line of
# its output goes to LOG prefixed with the seconds since start. Run in the
# background and waited for, so that ^C or a TERM reaches the traps at once
# (bash runs a trap only after the foreground command ends).
in_root() {
    local log=$1 cmd=$2 t0=$EPOCHSECONDS pid rc=0
    (
        set -o pipefail
        chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            /bin/bash -c "cd /root/mechdiff && nice $cmd" 2>&1 </dev/null |
            while IFS= read -r line; do printf '%5d %s\n' $((EPOCHSECONDS - t0)) "$line"; done > "$log"
    ) &
    pid=$!
    wait "$pid" || rc=$?
    return "$rc"
}

# the tests ctest reports as skipped in LOG, one a line
skipped() { sed -n -E 's/^ *[0-9]+[[:space:]]+[0-9]+ - ([^ ]+) \(Skipped\).*/\1/p' "$1" | sort -u; }

# the seconds column of the first line matching an ERE (empty if none)
at() { grep -m1 -E "^ *[0-9]+ $2" "$1" | awk '{print $1}'; }

# the README's results table equals the one in report/report.md
check_table() {
    local readme=$ROOT/root/mechdiff/README.md report=$ROOT/root/mechdiff/report/report.md
    sed -n '/<!-- quickstart-results -->/,/<!-- \/quickstart-results -->/p' "$readme" | grep '^|' > "$LOGS/readme_table.md"
    # the report's first table with the README's header row
    awk -v h="$(head -1 "$LOGS/readme_table.md")" '$0 == h {on = 1} on && /^\|/ {print; next} on {exit}' \
        "$report" > "$LOGS/report_table.md"
    [ -s "$LOGS/readme_table.md" ] || { echo "FAIL: no table between the README's quickstart-results markers"; return 1; }
    if diff -u "$LOGS/readme_table.md" "$LOGS/report_table.md" > "$LOGS/table.diff"; then
        echo "ok: report/report.md's table equals the README's ($(wc -l < "$LOGS/readme_table.md") rows)"
    else
        cat "$LOGS/table.diff"; echo "FAIL: the quickstart's table differs from the README's"; return 1
    fi
}

step_quickstart() {
    local log=$LOGS/quickstart.log rc=0 b s r e
    echo "== quickstart: scripts/quickstart.sh in a fresh root (log: $log)"
    in_root "$log" "scripts/quickstart.sh" || rc=$?
    # phases from the output: apt ends at the last line before the first
    # compiler progress line ("[ 1%] Building ..."), the sweep and the report
    # begin at quickstart.sh's banners
    b=$(grep -m1 -B1 -E '^ *[0-9]+ \[ *[0-9]+%\]' "$log" | head -1 | awk '{print $1}')
    s=$(at "$log" "== mechdiff: quickstart sweep"); r=$(at "$log" "== report")
    e=$(tail -1 "$log" | awk '{print $1}')
    {
        echo "quickstart ($(date -u +%FT%TZ), $HEAD, load $(cut -d' ' -f1-3 /proc/loadavg)): exit $rc, total ${e:-?} s"
        echo "  apt-get update + install ${b:-?} s; configure + build $(( ${s:-0} - ${b:-0} )) s;" \
             "sweep $(( ${r:-0} - ${s:-0} )) s; report $(( ${e:-0} - ${r:-0} )) s"
    } | tee -a "$LOGS/times.txt"
    [ "$rc" = 0 ] || { tail -40 "$log"; echo "FAIL: scripts/quickstart.sh exit $rc (log: $log)"; return 1; }
    check_table
}

step_test() {
    local log=$LOGS/test.log rc=0 b e
    echo "== test: bash .ci/run in a fresh root (log: $log)"
    in_root "$log" "bash .ci/run" || rc=$?
    b=$(grep -m1 -B1 -E '^ *[0-9]+ \[ *[0-9]+%\]' "$log" | head -1 | awk '{print $1}')
    e=$(tail -1 "$log" | awk '{print $1}')
    {
        echo "test ($(date -u +%FT%TZ), $HEAD, load $(cut -d' ' -f1-3 /proc/loadavg)): exit $rc, total ${e:-?} s; apt-get update + install ${b:-?} s," \
             "builds + ctest + sanitizers + fuzz $(( ${e:-0} - ${b:-0} )) s"
        grep -E "tests passed|tests failed|Total Test time" "$log" | sed 's/^ *[0-9]* /  /'
        echo "  skipped: $(skipped "$log" | tr '\n' ' ')"
    } | tee -a "$LOGS/times.txt"
    [ "$rc" = 0 ] || { tail -60 "$log"; echo "FAIL: .ci/run exit $rc (log: $log)"; return 1; }
    # a skip on a fresh machine hides a missing package or step; only the
    # GPU tests (no GPU) and the CUDA build (the CUDA Toolkit is not a
    # package of install-deps.sh) may skip
    local bad
    bad=$(skipped "$log" | grep -Ev '^(gpu\..*|e2e\.cuda_build)$' || true)
    [ -z "$bad" ] || { echo "FAIL: skipped on a fresh machine: $(echo $bad) (their output: ctest -V -R in $ROOT/root/mechdiff/build)"; return 1; }
}

make_base
fail=0
for s in "${STEPS[@]}"; do
    fresh_root
    "step_$s" || fail=1
    release
done
[ "$fail" = 0 ] && echo "PASS: ${STEPS[*]} on a bare bookworm root ($HEAD)" || echo "FAIL (logs in $LOGS)"
exit "$fail"
