#!/usr/bin/env bash
# PostgreSQL (127.0.0.1:5432, database `test`) and Redis (127.0.0.1:6379) for the service-backed
# tests. On CI they must answer; on a laptop without them those tests skip with a reason.
set -uo pipefail
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
pg_up()    { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if ! pg_up; then
  if [[ "${CI:-}" == "true" ]] && ! command -v pg_ctlcluster >/dev/null; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  fi
  if command -v pg_ctlcluster >/dev/null; then
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start 2>/dev/null || true
    sleep 2
  fi
fi
if ! redis_up; then
  if [[ "${CI:-}" == "true" ]] && ! command -v redis-server >/dev/null; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  fi
  if command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null 2>&1 || true
    sleep 1
  fi
fi
pg_up && echo "postgres: up" || echo "postgres: not reachable (service-backed tests will skip outside CI)"
redis_up && echo "redis: up" || echo "redis: not reachable (service-backed tests will skip outside CI)"
if [[ "${CI:-}" == "true" ]]; then
  pg_up && redis_up || { echo "CI needs PostgreSQL and Redis" >&2; exit 1; }
  # the `test` database must exist for the tests
  psql -h 127.0.0.1 -U postgres -lqt 2>/dev/null | cut -d'|' -f1 | grep -qw test || \
    createdb -h 127.0.0.1 -U postgres test 2>/dev/null || true
fi
exit 0
