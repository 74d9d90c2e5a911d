#!/usr/bin/env bash
# Installs the programs the tests run but do not build themselves, each only if it is
# missing (`make test` and `make bench` run this first; the tests install nothing).
# As root with apt-get (Debian, Ubuntu) it installs them; otherwise it names what to
# install and fails, so that no test is left to fail or skip for a missing package.
set -euo pipefail

# program:Debian package. sshd and pgbouncer are started privately by the tests; the
# servers are the ones scripts/services-up.sh starts; psql and sqlite3 read tables as
# a user would; docker-compose checks deploy/; chromium and its driver run the
# dashboard in a real browser (tests/web).
needed=(
    sshd:openssh-server ssh:openssh-client ssh-keygen:openssh-client rsync:rsync
    pgbouncer:pgbouncer psql:postgresql-client sqlite3:sqlite3 pg_ctlcluster:postgresql
    redis-server:redis-server rabbitmq-server:rabbitmq-server
    ip:iproute2 unshare:util-linux git:git
    chromium:chromium chromedriver:chromium-driver
)

found() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
compose() { docker compose version >/dev/null 2>&1 || found docker-compose; }

missing=()
for pair in "${needed[@]}"; do
    found "${pair%%:*}" || missing+=("${pair#*:}")
done
compose || missing+=(docker-compose)
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "prerequisites: missing ${missing[*]}; as root: apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "prerequisites: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
