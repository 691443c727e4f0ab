-- The reaper takes its locks in the global order (0004): limit and budget rows first, holds after.
--
-- Why: it used to lock the expired holds it found (FOR UPDATE SKIP LOCKED) and settle them one by
-- one, each settlement locking that hold's limit and budget rows: owners in expiry order, after
-- the holds. A settlement batch locks the owners of its holds in the global order and the holds
-- after. When a replica dies, its holds expire together across many tenants, and the reaper of a
-- surviving replica (settling them) and that replica's settlement batches (touching the same
-- tenants) could each hold a row the other waited for: Postgres aborts one after deadlock_timeout
-- (1 s) and it retries.
--
-- Now the reaper settles what it finds through tollgate_settle_batch, which locks in the global
-- order. Reapers on several replicas that find the same holds wait for each other on the owner
-- rows; the later one finds the holds already deleted, so each is still settled once. Settled at
-- the reserved amount and marked estimated, as before.
CREATE OR REPLACE FUNCTION tollgate_reap_expired_holds(p_limit integer) RETURNS integer
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    ids uuid[];
    amounts bigint[];
    n integer;
    reaped integer;
BEGIN
    SELECT array_agg(request_id ORDER BY expires_at), array_agg(amount_nanos ORDER BY expires_at) INTO ids, amounts
      FROM (SELECT request_id, amount_nanos, expires_at FROM holds WHERE expires_at < clock_timestamp()
            ORDER BY expires_at LIMIT p_limit) expired;
    n := coalesce(array_length(ids, 1), 0);
    IF n = 0 THEN RETURN 0; END IF;
    -- No usage, status 0, estimated; '' and -1 stand for a null credential and latencies.
    SELECT count(*) FILTER (WHERE s.settled) INTO reaped
      FROM tollgate_settle_batch(ids, amounts, array_fill(0, ARRAY[n]), array_fill(0, ARRAY[n]), array_fill(0, ARRAY[n]),
                                 array_fill(0, ARRAY[n]), array_fill(0, ARRAY[n]), array_fill(true, ARRAY[n]),
                                 array_fill(''::text, ARRAY[n]), array_fill(-1, ARRAY[n]), array_fill(-1, ARRAY[n])) s;
    RETURN reaped;
END;
$$;
