#!/usr/bin/env bash
# Runs the examples end to end on the embedded default: no servers needed.
# Usage: scripts/demo.sh VENV_BIN
# Everything it writes (job table, broker, workdirs, logs) stays in a scratch directory,
# removed at the end: the folder it is run from, the repository's root under `make demo`,
# is left as it was.
set -euo pipefail
bin=$(cd "$1" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/dbdict-demo.XXXXXX")
worker=
cleanup() {
    if [ -n "$worker" ]; then kill -TERM "$worker" 2>/dev/null || true; wait "$worker" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
export DBDICT_HOME="$work/home"  # a fresh embedded job table and broker (SQLite)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"  # the examples, for dbdict and its worker
cd "$work"

echo "== the original's builder example (expect: hello blahblah there)"
"$bin/dbdict" run --dry-run examples.regexp.experiment regexp::re.compile "regexp.pattern='a.*c'"

echo "== a sweep: 3 targets x 3 scales = 9 jobs, one Celery message each"
"$bin/dbdict" schedule examples.count.experiment "target=range(3, 6)" "scale=choice(1, 10, 100)" \
    interval=0.01
"$bin/dbdict" schedule examples.count.experiment target=3 scale=1 interval=0.01

echo "== a Celery worker runs them (celery -A dbdict_celery worker, through 'dbdict worker')"
"$bin/dbdict" worker --concurrency 2 --logfile "$work/worker.log" >"$work/worker.out" 2>&1 &
worker=$!
"$bin/dbdict" status --wait --timeout 300
kill -TERM "$worker"
wait "$worker"
worker=
echo "-- the results table:"
"$bin/dbdict" list --columns id,status,target,scale,result --sort=-result
echo "-- job 9's files:"
ls "$DBDICT_HOME/exproot/jobs/jobs/9"

echo "== a resumable job: stopped by SIGTERM after a few steps, then resumed"
"$bin/dbdict" run -w "$work/count" examples.count.experiment target=40 interval=0.1 &
job=$!
for _ in $(seq 1 300); do
    grep -qsE "^count = ([3-9]|[1-3][0-9])$" "$work/count/current.conf" && break
    sleep 0.05
done
kill -TERM "$job"
wait "$job" || [ $? -eq 3 ]  # 3: INCOMPLETE, its state saved
echo "-- saved checkpoint:"
cat "$work/count/current.conf"
"$bin/dbdict" run -w "$work/count" examples.count.experiment target=40 interval=0.1 2>&1 | tail -n 4
echo "-- final state:"
cat "$work/count/current.conf"
