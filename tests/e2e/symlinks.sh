#!/usr/bin/env bash
# Symbolic links around a run's output (issue 14 item 3):
#  1. a link planted as OUT.h5.lock, OUT.h5.journal or OUT.h5.inflight is
#     refused (status 1, message naming it) and its target is left untouched
#     (the lock file was opened with O_CREAT and truncated through the link);
#     one planted as OUT.h5.tmp is removed, never written through;
#  2. the lock is on the resolved output: a run through a symlinked folder
#     alias, or through a symlink to the output file, is refused (status 73)
#     while another run writes the same file under its real name; a run
#     through an alias writes the real file (the link stays a link).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cat > "$T/job.yaml" <<'YAML'
name: symlinks
seed: 3
runtime: {progress_interval: 100}
experiments:
  - kind: selftest
    units: 200
    rows: 2
    cols: 4
    sleep_ms: 20
YAML
sed 's/units: 200/units: 4/; s/sleep_ms: 20/sleep_ms: 0/' "$T/job.yaml" > "$T/quick.yaml"
victim() { printf 'precious\n' > "$T/victim"; }
victim_intact() { [ "$(cat "$T/victim")" = precious ] || fail "$1: the symlink's target was overwritten"; }

# 1. planted links
for ext in lock journal inflight; do
  victim; rm -rf "$T/o"; mkdir "$T/o"
  [ $ext = lock ] || "$MD" run "$T/quick.yaml" -o "$T/o/out.h5" --quiet || fail "first run"
  rm -f "$T/o/out.h5.$ext"; ln -s "$T/victim" "$T/o/out.h5.$ext"
  rc=0; $MPIRUN -np 2 "$MD" run "$T/quick.yaml" -o "$T/o/out.h5" --quiet 2> "$T/err" || rc=$?
  victim_intact ".$ext"
  [ "$rc" = 1 ] || fail ".$ext link: status $rc (want 1): $(cat "$T/err")"
  grep -q "symbolic link" "$T/err" || fail ".$ext link: message $(cat "$T/err")"
done
victim; rm -rf "$T/o"; mkdir "$T/o"; ln -s "$T/victim" "$T/o/out.h5.tmp"
"$MD" run "$T/quick.yaml" -o "$T/o/out.h5" --quiet || fail "run with a planted .tmp link"
victim_intact ".tmp"

# 2. one lock per file, whatever the name
mkdir "$T/real"; ln -s "$T/real" "$T/alias"
"$MD" run "$T/job.yaml" -o "$T/real/out.h5" --quiet & pid=$!
sleep 1.5
rc=0; "$MD" run "$T/job.yaml" -o "$T/alias/out.h5" --quiet 2> "$T/err" || rc=$?
[ "$rc" = 73 ] || fail "folder alias: a second writer was not refused (status $rc): $(cat "$T/err")"
ln -s "$T/real/out.h5" "$T/file-alias.h5"
rc=0; "$MD" run "$T/job.yaml" -o "$T/file-alias.h5" --quiet 2> "$T/err" || rc=$?
[ "$rc" = 73 ] || fail "file alias: a second writer was not refused (status $rc): $(cat "$T/err")"
(cd "$T/alias" && rc=0 && "$MD" run "$T/job.yaml" -o out.h5 --quiet 2> "$T/err" || rc=$?; [ "$rc" = 73 ]) \
  || fail "relative path through an alias: not refused: $(cat "$T/err")"
wait $pid || fail "the first run failed"
# a run through the file alias resumes the real file and leaves the link a link
"$MD" run "$T/job.yaml" -o "$T/file-alias.h5" --quiet || fail "run through the file alias"
[ -L "$T/file-alias.h5" ] || fail "the output link was replaced by a file"
[ ! -e "$T/file-alias.h5.lock" ] || fail "a lock was taken on the alias name"
echo "symlinks: ok"
