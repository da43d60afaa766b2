#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests on SQLite and PostgreSQL.
# Run through `make test` (which runs scripts/setup.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."

stop_private_pg() {
  # The PostgreSQL tests start a private server in the temp folder when none answers on
  # 127.0.0.1:5432 (tests/common/pg.rs); stop it when the suite ends.
  local dir="${TMPDIR:-/tmp}/tianwang-test-pg"
  if [ -f "$dir/data/postmaster.pid" ]; then
    local pg_ctl
    pg_ctl=$(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1)
    if [ "$(id -u)" -eq 0 ]; then
      runuser -u postgres -- "$pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    else
      "$pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    fi
  fi
}
trap stop_private_pg EXIT

cargo fmt --check
cargo clippy --locked --all-targets -q -- -D warnings
# Benches (harness = false) are compiled by clippy above and run by `make bench`, not here.
cargo test --locked --lib --bins --tests
