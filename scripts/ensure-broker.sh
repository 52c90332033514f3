#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers at SVC_AMQP_URL (SPEC §2): starts a local
# rabbitmq-server that is installed but stopped; installs it with apt when missing and we
# are root; otherwise says exactly what to do.
set -euo pipefail

url="${SVC_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
read -r host port < <(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 5672)' "$url")

answers() {
  python3 -c 'import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()' "$host" "$port" \
    2>/dev/null
}

wait_for_broker() {
  for _ in $(seq 90); do
    answers && return 0
    sleep 1
  done
  echo "RabbitMQ was started but does not answer at $host:$port after 90 s" >&2
  return 1
}

answers && exit 0

case "$host" in
  127.*|localhost|::1) ;;
  *) echo "No RabbitMQ answers at $host:$port (SVC_AMQP_URL=$url). Start that broker," \
          "or point SVC_AMQP_URL at one that runs." >&2
     exit 1 ;;
esac

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "RabbitMQ is not installed: installing it with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  else
    echo "RabbitMQ is not installed. Install it (Debian/Ubuntu:" \
         "'sudo apt-get install rabbitmq-server'), or set SVC_AMQP_URL to a running broker." >&2
    exit 1
  fi
fi

echo "starting the local RabbitMQ (rabbitmq-server -detached)" >&2
rabbitmq-server -detached >/dev/null 2>&1 || true
wait_for_broker
