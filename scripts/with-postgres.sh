#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]: runs CMD with FEEDBACKD_TEST_POSTGRES_URL
# pointing at a PostgreSQL the PostgreSQL test suites may create databases in.
#
# - When FEEDBACKD_TEST_POSTGRES_URL is already set, CMD runs against it.
# - Otherwise, when PostgreSQL's server binaries are installed, a throwaway
#   cluster is created in a temporary folder (as the postgres user when run
#   as root), started on a free loopback port, and removed after CMD.
# - Otherwise CMD runs without it and the PostgreSQL suites say they are
#   skipped, unless FEEDBACKD_REQUIRE_POSTGRES=1 (CI sets it), which makes
#   a missing or failing PostgreSQL an error.
set -euo pipefail

if [ -n "${FEEDBACKD_TEST_POSTGRES_URL:-}" ]; then
  exec "$@"
fi

fail_or_skip() {
  if [ "${FEEDBACKD_REQUIRE_POSTGRES:-}" = 1 ]; then
    echo "with-postgres: $1 (FEEDBACKD_REQUIRE_POSTGRES=1)" >&2
    exit 1
  fi
  echo "with-postgres: $1: the PostgreSQL suites will be SKIPPED" >&2
  exec "$@"
}

bindir=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then bindir=$d; break; fi
done
if [ -z "$bindir" ] && command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
  bindir=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
fi
[ -n "$bindir" ] || fail_or_skip "PostgreSQL server binaries not found" "$@"

dir=$(mktemp -d /tmp/feedbackd-pg.XXXXXX)
runas=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres: "$dir"
  runas=(runuser -u postgres --)
fi

cleanup() {
  "${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

if ! "${runas[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2
  trap - EXIT; cleanup
  fail_or_skip "initdb failed" "$@"
fi

# A free port: try a few random ones in the ephemeral range.
started=""
for _ in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 20000))
  # fsync and friends are off: the cluster lives for one test run.
  if "${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null 2>&1; then
    started=1
    break
  fi
done
if [ -z "$started" ]; then
  cat "$dir/postgres.log" >&2 || true
  trap - EXIT; cleanup
  fail_or_skip "the PostgreSQL cluster did not start" "$@"
fi

export FEEDBACKD_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port for this run" >&2
set +e
"$@"
rc=$?
set -e
exit $rc
