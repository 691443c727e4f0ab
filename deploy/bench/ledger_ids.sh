#!/bin/bash
# Usage ledger primary key: random (version 4) against time-ordered (version 7) request ids.
#
#   deploy/bench/ledger_ids.sh          (env: N rows already in the ledger, 3,000,000; M rows
#                                        measured, 200,000; SB Postgres shared_buffers, 32MB)
#
# Starts a throwaway Postgres, fills two copies of the ledger's shape (primary key (request_id,
# started_at), two (owner, started_at) indexes) with N rows, checkpoints, then times M more rows
# inserted in batches of 100 as settlements post them, and prints the time and the WAL written.
# A primary key several times larger than shared_buffers stands for a ledger of tens of millions of
# rows on a server of ordinary size: random ids make each insert touch a random index page (and
# the first touch of a page after a checkpoint writes all of it to the WAL); time-ordered ids
# append to the last pages.
set -euo pipefail
pgbin=$(pg_config --bindir); d=$(mktemp -d /tmp/tgl.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }   # initdb refuses root
[ "$(id -u)" = 0 ] && chown postgres "$d"
trap 'as_pg "$pgbin/pg_ctl" -D "$d/pg" -m immediate stop >/dev/null 2>&1; rm -rf "$d"' EXIT
as_pg "$pgbin/initdb" -D "$d/pg" -A trust --no-sync >/dev/null
port=$(python3 -c "import socket;s=socket.socket();s.bind(('',0));print(s.getsockname()[1])")
as_pg "$pgbin/pg_ctl" -D "$d/pg" -l "$d/log" -w \
  -o "-p $port -k $d -c shared_buffers=${SB:-32MB} -c max_wal_size=4GB -c checkpoint_timeout=1h" start >/dev/null
P="psql -h $d -p $port -U postgres -d postgres -qtAX -v ON_ERROR_STOP=1"
$P <<'SQL'
CREATE FUNCTION id7(ts timestamptz) RETURNS uuid LANGUAGE sql AS $$
  SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING substring(int8send((extract(epoch FROM ts) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 'hex')::uuid $$;
CREATE TABLE l4 (request_id uuid, started_at timestamptz, key_id uuid, tenant_id uuid, cost bigint, PRIMARY KEY (request_id, started_at));
CREATE INDEX ON l4 (key_id, started_at); CREATE INDEX ON l4 (tenant_id, started_at);
CREATE TABLE l7 (LIKE l4 INCLUDING ALL);
CREATE TABLE keys AS SELECT gen_random_uuid() AS id FROM generate_series(1, 1000);
CREATE PROCEDURE load(tbl text, v7 boolean, n integer, batch integer, t0 timestamptz) LANGUAGE plpgsql AS $p$
DECLARE i integer := 0; ks uuid[] := (SELECT array_agg(id) FROM keys);
BEGIN
  WHILE i < n LOOP
    EXECUTE format('INSERT INTO %I SELECT CASE WHEN $1 THEN id7($2 + make_interval(secs => (($3 + g) / 1000.0))) ELSE gen_random_uuid() END,
                   $2 + make_interval(secs => (($3 + g) / 1000.0)), $5[1 + g %% 1000], $5[1], 1
                   FROM generate_series(1, $4) g', tbl) USING v7, t0, i, batch, ks;
    COMMIT;
    i := i + batch;
  END LOOP;
END $p$;
SQL
N=${N:-3000000}; M=${M:-200000}
for v in 4 7; do
  v7=false; [ $v = 7 ] && v7=true
  $P -c "CALL load('l$v', $v7, $N, 10000, '2026-01-01')" -c "CHECKPOINT"
  lsn0=$($P -c "SELECT pg_current_wal_lsn()"); t0=$(date +%s.%N)
  $P -c "CALL load('l$v', $v7, $M, 100, '2026-01-01'::timestamptz + interval '1 day')"
  t1=$(date +%s.%N); lsn1=$($P -c "SELECT pg_current_wal_lsn()")
  echo "v$v: $M rows in batches of 100 after $N: $(python3 -c "print(round($t1-$t0,1))") s, WAL $($P -c "SELECT pg_size_pretty(pg_wal_lsn_diff('$lsn1','$lsn0'))"), pk $($P -c "SELECT pg_size_pretty(pg_relation_size('l${v}_pkey'))")"
done
