#!/usr/bin/env bash
# Runs the examples end to end on the embedded default: no servers needed.
# Usage: scripts/demo.sh VENV_BIN
set -euo pipefail
bin=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/dbdict-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== the original's builder example (expect: hello blahblah there)"
"$bin/dbdict" run --dry-run examples.regexp.experiment regexp::re.compile "regexp.pattern='a.*c'"

echo "== the job table (embedded SQLite): schedule three jobs, once each, then drain them"
export DBDICT_HOME="$work/home"
for target in 3 5 8; do
    "$bin/dbdict" schedule examples.count.experiment target=$target interval=0.01
done
"$bin/dbdict" schedule examples.count.experiment target=3 interval=0.01
"$bin/dbdict" sql -n 0 "$work/exproot"
echo "-- job 3's files and final checkpoint:"
ls "$work/exproot/jobs/jobs/3"
grep -E "^(count|result) =" "$work/exproot/jobs/jobs/3/current.conf"

echo "== a resumable job: stopped by SIGTERM after a few steps, then resumed"
"$bin/dbdict" run -w "$work/count" examples.count.experiment target=20 interval=0.05 &
job=$!
for _ in $(seq 1 200); do grep -qs "count = 5" "$work/count/current.conf" && break; sleep 0.05; done
kill -TERM "$job"
wait "$job"
echo "-- saved checkpoint:"
cat "$work/count/current.conf"
"$bin/dbdict" run -w "$work/count" examples.count.experiment target=20 interval=0.05 | tail -n 3
echo "-- final state:"
cat "$work/count/current.conf"
