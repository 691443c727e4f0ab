-- Batched admission and settlement: many requests in one round trip and one commit.
--
-- Why: every admission of a limited key updates that key's rows, so requests of one hot key
-- serialize on the row lock and on their commit (about 2,000 a second on a small machine). The
-- proxy coalesces the admissions that arrive while a round trip is in flight into one call of
-- tollgate_reserve_batch: each request is still checked and charged all or nothing, in arrival
-- order, by tollgate_reserve itself, so the rules live in one place.
--
-- Deadlocks: a batch touches many rows. It first locks every row it may touch in one global order
-- (tenant limit rows, then key limit rows, then tenant budget rows, then key budget rows, each by
-- owner id), the same category order tollgate_reserve and tollgate_settle follow for their single
-- rows, so batches, single calls and settlements cannot wait on each other in a cycle. Rows
-- created on first use are not pre-locked; the proxy retries a batch that lost a deadlock one
-- request at a time.

CREATE FUNCTION tollgate_lock_owners(p_tenant_ids uuid[], p_key_ids uuid[],
                                     p_tenant_windows timestamptz[], p_key_windows timestamptz[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM limit_state WHERE owner_id = ANY (p_tenant_ids) ORDER BY owner_id FOR UPDATE;
    PERFORM 1 FROM limit_state WHERE owner_id = ANY (p_key_ids) ORDER BY owner_id FOR UPDATE;
    PERFORM 1 FROM budget_windows bw
        JOIN unnest(p_tenant_ids, p_tenant_windows) AS w(owner_id, window_start)
          ON bw.owner_id = w.owner_id AND bw.window_start = w.window_start
        ORDER BY bw.owner_id, bw.window_start FOR UPDATE OF bw;
    PERFORM 1 FROM budget_windows bw
        JOIN unnest(p_key_ids, p_key_windows) AS w(owner_id, window_start)
          ON bw.owner_id = w.owner_id AND bw.window_start = w.window_start
        ORDER BY bw.owner_id, bw.window_start FOR UPDATE OF bw;
END;
$$;

-- Admits many requests in one statement; one result row per request, `ord` = its index (1-based).
-- Arrays cannot carry nulls from the proxy's driver: '' stands for null in models, metadata, traceparents.
CREATE FUNCTION tollgate_reserve_batch(
    p_request_ids uuid[], p_key_ids uuid[], p_amounts bigint[], p_tokens bigint[], p_proxy_id text,
    p_ttl_seconds integer, p_endpoints text[], p_models text[], p_metadata text[], p_traceparents text[]
) RETURNS TABLE (
    ord integer, outcome text, scope text, retry_after_ms bigint, resets_at timestamptz,
    remaining_requests bigint, remaining_tokens bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := clock_timestamp();
    owners record;
BEGIN
    SELECT array_agg(DISTINCT t.id) AS tenant_ids,
           array_agg(DISTINCT k.id) AS key_ids
      INTO owners
      FROM virtual_keys k JOIN tenants t ON t.id = k.tenant_id
     WHERE k.id = ANY (p_key_ids);
    PERFORM tollgate_lock_owners(
        owners.tenant_ids, owners.key_ids,
        ARRAY(SELECT tollgate_window_start(coalesce(t.budget_period, 'lifetime'), now_ts)
              FROM unnest(owners.tenant_ids) WITH ORDINALITY AS u(id, n) JOIN tenants t ON t.id = u.id ORDER BY u.n),
        ARRAY(SELECT tollgate_window_start(coalesce(k.budget_period, 'lifetime'), now_ts)
              FROM unnest(owners.key_ids) WITH ORDINALITY AS u(id, n) JOIN virtual_keys k ON k.id = u.id ORDER BY u.n));
    FOR i IN 1 .. coalesce(array_length(p_request_ids, 1), 0) LOOP
        RETURN QUERY
            SELECT i, r.outcome, r.scope, r.retry_after_ms, r.resets_at, r.remaining_requests, r.remaining_tokens
            FROM tollgate_reserve(p_request_ids[i], p_key_ids[i], p_amounts[i], p_tokens[i], p_proxy_id,
                                  p_ttl_seconds, p_endpoints[i], nullif(p_models[i], ''), nullif(p_metadata[i], '')::jsonb,
                                  nullif(p_traceparents[i], '')) r;
    END LOOP;
END;
$$;

-- Settles many requests in one statement (each exactly once, with the same effects as
-- tollgate_settle); one result row per request, in the order given. Set-based: a handful of
-- statements per batch whatever its size, because settlement effects add up (slots and unused
-- tokens given back, holds released, costs posted), unlike admission whose outcomes depend on order.
-- '' stands for a null credential id, -1 for a null latency.
CREATE FUNCTION tollgate_settle_batch(
    p_request_ids uuid[], p_costs bigint[], p_prompt_tokens integer[], p_completion_tokens integer[],
    p_cached_tokens integer[], p_pages integer[], p_status_codes integer[], p_estimated boolean[],
    p_credential_ids text[], p_upstream_latency_ms integer[], p_total_latency_ms integer[]
) RETURNS TABLE (ord integer, settled boolean, overshoot_nanos bigint)
LANGUAGE plpgsql AS $$
DECLARE
    tenants_w record;
    keys_w record;
BEGIN
    SELECT array_agg(tenant_id ORDER BY tenant_id) AS ids, array_agg(w ORDER BY tenant_id) AS windows INTO tenants_w
      FROM (SELECT DISTINCT tenant_id, tenant_window_start AS w FROM holds WHERE request_id = ANY (p_request_ids)) s;
    SELECT array_agg(key_id ORDER BY key_id) AS ids, array_agg(w ORDER BY key_id) AS windows INTO keys_w
      FROM (SELECT DISTINCT key_id, key_window_start AS w FROM holds WHERE request_id = ANY (p_request_ids)) s;
    PERFORM tollgate_lock_owners(tenants_w.ids, keys_w.ids, tenants_w.windows, keys_w.windows);
    RETURN QUERY
    WITH input AS (
        SELECT i.* FROM unnest(p_request_ids, p_costs, p_prompt_tokens, p_completion_tokens, p_cached_tokens, p_pages,
                               p_status_codes, p_estimated, p_credential_ids, p_upstream_latency_ms, p_total_latency_ms)
                        WITH ORDINALITY AS i(request_id, cost, prompt, completion, cached, pages, status, estimated,
                                             credential, upstream_ms, total_ms, n)
    ),
    gone AS (
        -- A request id given twice in one batch is deleted (settled) once.
        DELETE FROM holds h USING input i WHERE h.request_id = i.request_id
        RETURNING h.*, i.cost, i.prompt, i.completion, i.cached, i.pages, i.status, i.estimated, i.credential,
                  i.upstream_ms, i.total_ms, i.n
    ),
    slots AS (
        -- Per limit row: concurrency slots freed and tokens/min given back (unused = held - used; it
        -- is negative when usage exceeded the hold, which takes the difference).
        SELECT owner_id, count(*)::integer AS freed, sum(refund) AS refund_seconds FROM (
            SELECT g.tenant_id AS owner_id,
                   CASE WHEN t.tpm_limit IS NULL THEN 0
                        ELSE 60.0 * (g.tokens - greatest(0, g.prompt) - greatest(0, g.completion)) / t.tpm_limit END AS refund
              FROM gone g JOIN tenants t ON t.id = g.tenant_id WHERE g.tenant_limited
            UNION ALL
            SELECT g.key_id,
                   CASE WHEN k.tpm_limit IS NULL THEN 0
                        ELSE 60.0 * (g.tokens - greatest(0, g.prompt) - greatest(0, g.completion)) / k.tpm_limit END
              FROM gone g JOIN virtual_keys k ON k.id = g.key_id WHERE g.key_limited
        ) x GROUP BY owner_id
    ),
    limits_updated AS (
        UPDATE limit_state ls SET in_flight = greatest(ls.in_flight - s.freed, 0),
            token_tat = CASE WHEN ls.token_tat = '-infinity' OR s.refund_seconds = 0 THEN ls.token_tat
                             ELSE ls.token_tat - make_interval(secs => s.refund_seconds) END
        FROM slots s WHERE ls.owner_id = s.owner_id
        RETURNING 1
    ),
    budgets AS (
        SELECT owner_id, window_start, sum(amount_nanos) AS released, sum(cost) AS posted FROM (
            SELECT tenant_id AS owner_id, tenant_window_start AS window_start, amount_nanos, cost
              FROM gone WHERE tenant_window_start IS NOT NULL
            UNION ALL
            SELECT key_id, key_window_start, amount_nanos, cost FROM gone WHERE key_window_start IS NOT NULL
        ) x GROUP BY owner_id, window_start
    ),
    budgets_updated AS (
        UPDATE budget_windows bw SET reserved_nanos = greatest(bw.reserved_nanos - b.released, 0),
            spent_nanos = bw.spent_nanos + b.posted
        FROM budgets b WHERE bw.owner_id = b.owner_id AND bw.window_start = b.window_start
        RETURNING 1
    ),
    ledger AS (
        INSERT INTO usage_ledger (request_id, started_at, tenant_id, key_id, credential_id, endpoint, model,
            prompt_tokens, completion_tokens, cached_tokens, pages, cost_nanos, currency, status_code, estimated,
            upstream_latency_ms, total_latency_ms, metadata, traceparent)
        SELECT g.request_id, g.started_at, g.tenant_id, g.key_id, nullif(g.credential, '')::uuid, g.endpoint, g.model,
            greatest(g.prompt, 0), greatest(g.completion, 0), greatest(g.cached, 0), greatest(g.pages, 0), g.cost,
            g.currency, g.status, g.estimated, nullif(g.upstream_ms, -1), nullif(g.total_ms, -1), g.metadata, g.traceparent
        FROM gone g
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT i.n::integer, g.request_id IS NOT NULL, coalesce(greatest(g.cost - g.amount_nanos, 0), 0)::bigint
    FROM input i LEFT JOIN gone g ON g.n = i.n
    ORDER BY i.n;
END;
$$;
