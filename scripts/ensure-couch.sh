#!/usr/bin/env bash
# Makes sure the CouchDB-API server the tests use (pouchdb-server, pinned in couch/package.json
# and couch/package-lock.json) is installed in couch/node_modules. Runs `npm ci` only when it
# is missing or the lock has changed since the last install (a stamp in node_modules holds the
# lock's hash). It starts no server: each test starts its own on a free loopback port
# (tests/couchdb.py).
set -euo pipefail

cd "$(dirname "$0")/../couch"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "ensure-couch: '$tool' is not installed. The CouchDB tests need Node.js (>= 18) and" \
         "npm to install pouchdb-server into couch/node_modules (Debian/Ubuntu:" \
         "'sudo apt-get install nodejs npm'), then run 'make couch'." >&2
    exit 1
  fi
done

major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$major" -lt 18 ]; then
  echo "ensure-couch: node $(node --version 2>/dev/null) is too old; pouchdb-server needs" \
       "Node.js >= 18 here. Install a newer node, then run 'make couch'." >&2
  exit 1
fi

stamp=node_modules/.svc-couch-installed
bin=node_modules/pouchdb-server/bin/pouchdb-server
want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"

if [ -f "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "ensure-couch: installing pouchdb-server (npm ci in couch/)" >&2
# --ignore-scripts: nothing needs building. leveldown (the leveldb adapter) loads the
# prebuilt binary it ships; sqlite3's install step would download a binary, and the tests
# never use the sqlite adapter.
if ! log="$(npm ci --ignore-scripts --no-audit --no-fund --loglevel=error 2>&1)"; then
  printf '%s\n' "$log" >&2
  echo "ensure-couch: 'npm ci' failed in couch/ (is the npm registry reachable?)" >&2
  exit 1
fi

if ! node -e 'require("leveldown"); require("pouchdb-server/package.json")' 2>/dev/null; then
  echo "ensure-couch: pouchdb-server was installed, but its leveldb adapter (leveldown) does" \
       "not load with node $(node --version)." >&2
  exit 1
fi

printf '%s\n' "$want" >"$stamp"
