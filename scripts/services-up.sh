#!/usr/bin/env bash
# Starts PostgreSQL, Redis and RabbitMQ on 127.0.0.1 if they are not answering.
# Idempotent: a service that answers is left alone.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
    local port=$1 name=$2
    for _ in $(seq 1 60); do up "$port" && return 0; sleep 1; done
    echo "services: $name did not come up on port $port" >&2
    return 1
}

status=0
if ! up 5432; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    wait_for 5432 PostgreSQL || status=1
fi
if ! up 6379; then
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for 6379 Redis || status=1
fi
if ! up 5672; then
    echo "services: starting RabbitMQ"
    rabbitmq-server -detached
    wait_for 5672 RabbitMQ || status=1
fi
exit $status
