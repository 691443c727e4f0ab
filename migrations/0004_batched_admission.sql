-- Batched admission and settlement: many requests in one round trip and one commit.
--
-- Why: every admission of a limited key updates that key's rows, so requests of one hot key
-- serialize on the row lock and on their commit (about 2,000 a second on a small machine). The
-- proxy coalesces the admissions that arrive while a round trip is in flight into one call of
-- tollgate_reserve_batch: each request is still checked and charged all or nothing, in arrival
-- order, by tollgate_reserve's rules (a differential test keeps the two functions in step).
--
-- Deadlocks: a batch touches many rows. It locks every row it may touch in one global order
-- (tenant limit rows, then key limit rows, then tenant budget rows, then key budget rows, each by
-- owner id), the same category order tollgate_reserve and tollgate_settle follow for their single
-- rows, so batches, single calls and settlements cannot wait on each other in a cycle. Creating
-- rows on first use can still deadlock, rarely; the proxy retries a failed batch one request at
-- a time.

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

-- tollgate_reserve, same rules and outcomes as in 0003, in fewer statements: key and tenant are read
-- in one join, their limit rows locked in one ordered statement, their budget rows in another, and
-- each kind of row updated in one statement. Measured: the statement count was most of the database
-- CPU per request. Lock order is unchanged (tenant limits, key limits, tenant budget, key budget).
CREATE OR REPLACE FUNCTION tollgate_reserve(
    p_request_id uuid, p_key_id uuid, p_amount bigint, p_tokens bigint, p_proxy_id text,
    p_ttl_seconds integer, p_endpoint text, p_model text, p_metadata jsonb, p_traceparent text
) RETURNS TABLE (
    outcome text, scope text, retry_after_ms bigint, resets_at timestamptz,
    remaining_requests bigint, remaining_tokens bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := clock_timestamp();
    pair record;
    k virtual_keys%ROWTYPE;
    t tenants%ROWTYPE;
    r record;
    ks limit_state%ROWTYPE;
    ts limit_state%ROWTYPE;
    k_window timestamptz;
    t_window timestamptz;
    k_budget budget_windows%ROWTYPE;
    t_budget budget_windows%ROWTYPE;
    key_limited boolean;
    tenant_limited boolean;
    limit_ids uuid[] := '{}';
    found_limits integer := 0;
    found_budgets integer := 0;
    new_k_req timestamptz; new_k_tok timestamptz;
    new_t_req timestamptz; new_t_tok timestamptz;
    rem_req bigint := NULL;
    rem_tok bigint := NULL;
BEGIN
    SELECT vk AS key_row, tn AS tenant_row INTO pair
      FROM virtual_keys vk JOIN tenants tn ON tn.id = vk.tenant_id WHERE vk.id = p_key_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'key_inactive'::text, 'key'::text, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    k := pair.key_row;
    t := pair.tenant_row;
    IF k.status <> 'active' THEN
        RETURN QUERY SELECT 'key_inactive'::text, 'key'::text, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    IF k.expires_at IS NOT NULL AND k.expires_at <= now_ts THEN
        RETURN QUERY SELECT 'key_expired'::text, 'key'::text, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    IF t.status <> 'active' THEN
        RETURN QUERY SELECT 'tenant_suspended'::text, 'tenant'::text, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    tenant_limited := t.rpm_limit IS NOT NULL OR t.tpm_limit IS NOT NULL OR t.max_concurrent IS NOT NULL;
    key_limited := k.rpm_limit IS NOT NULL OR k.tpm_limit IS NOT NULL OR k.max_concurrent IS NOT NULL;

    -- A request that can never fit a tokens/min limit is refused outright, not retried forever.
    IF k.tpm_limit IS NOT NULL AND p_tokens > k.tpm_limit THEN
        RETURN QUERY SELECT 'request_too_large'::text, 'key'::text, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    IF t.tpm_limit IS NOT NULL AND p_tokens > t.tpm_limit THEN
        RETURN QUERY SELECT 'request_too_large'::text, 'tenant'::text, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    -- Limit rows: tenant's then key's, locked in one statement (rows are created on first use).
    IF tenant_limited THEN limit_ids := limit_ids || t.id; END IF;
    IF key_limited THEN limit_ids := limit_ids || k.id; END IF;
    IF cardinality(limit_ids) > 0 THEN
        FOR r IN SELECT * FROM limit_state WHERE owner_id = ANY (limit_ids)
                 ORDER BY owner_kind = 'key', owner_id FOR UPDATE LOOP
            IF r.owner_id = t.id THEN ts := r; ELSE ks := r; END IF;
            found_limits := found_limits + 1;
        END LOOP;
        IF found_limits < cardinality(limit_ids) THEN
            IF tenant_limited THEN
                INSERT INTO limit_state (owner_id, tenant_id, owner_kind) VALUES (t.id, t.id, 'tenant') ON CONFLICT DO NOTHING;
                SELECT * INTO ts FROM limit_state WHERE owner_id = t.id FOR UPDATE;
            END IF;
            IF key_limited THEN
                INSERT INTO limit_state (owner_id, tenant_id, owner_kind) VALUES (k.id, t.id, 'key') ON CONFLICT DO NOTHING;
                SELECT * INTO ks FROM limit_state WHERE owner_id = k.id FOR UPDATE;
            END IF;
        END IF;
    END IF;
    -- Budget rows: tenant's then key's current window, likewise.
    IF t.budget_limit_nanos IS NOT NULL THEN t_window := tollgate_window_start(t.budget_period, now_ts); END IF;
    IF k.budget_limit_nanos IS NOT NULL THEN k_window := tollgate_window_start(k.budget_period, now_ts); END IF;
    IF t_window IS NOT NULL OR k_window IS NOT NULL THEN
        FOR r IN SELECT * FROM budget_windows
                 WHERE (owner_id = t.id AND window_start = t_window) OR (owner_id = k.id AND window_start = k_window)
                 ORDER BY owner_kind = 'key', owner_id FOR UPDATE LOOP
            IF r.owner_id = t.id THEN t_budget := r; ELSE k_budget := r; END IF;
            found_budgets := found_budgets + 1;
        END LOOP;
        IF found_budgets < (t_window IS NOT NULL)::integer + (k_window IS NOT NULL)::integer THEN
            IF t_window IS NOT NULL THEN
                INSERT INTO budget_windows (owner_id, window_start, tenant_id, owner_kind, window_end, limit_nanos)
                VALUES (t.id, t_window, t.id, 'tenant', tollgate_window_end(t.budget_period, t_window), t.budget_limit_nanos)
                ON CONFLICT DO NOTHING;
                SELECT * INTO t_budget FROM budget_windows WHERE owner_id = t.id AND window_start = t_window FOR UPDATE;
            END IF;
            IF k_window IS NOT NULL THEN
                INSERT INTO budget_windows (owner_id, window_start, tenant_id, owner_kind, window_end, limit_nanos)
                VALUES (k.id, k_window, t.id, 'key', tollgate_window_end(k.budget_period, k_window), k.budget_limit_nanos)
                ON CONFLICT DO NOTHING;
                SELECT * INTO k_budget FROM budget_windows WHERE owner_id = k.id AND window_start = k_window FOR UPDATE;
            END IF;
        END IF;
    END IF;

    -- Requests per minute (GCRA).
    IF k.rpm_limit IS NOT NULL THEN
        new_k_req := greatest(ks.request_tat, now_ts) + interval '60 seconds' / k.rpm_limit;
        IF new_k_req - now_ts > interval '60 seconds' THEN
            RETURN QUERY SELECT 'rate_limited'::text, 'key'::text,
                ceil(extract(epoch FROM (new_k_req - now_ts - interval '60 seconds')) * 1000)::bigint,
                NULL::timestamptz, 0::bigint, NULL::bigint;
            RETURN;
        END IF;
        rem_req := floor(extract(epoch FROM (interval '60 seconds' - (new_k_req - now_ts))) * k.rpm_limit / 60)::bigint;
    END IF;
    IF t.rpm_limit IS NOT NULL THEN
        new_t_req := greatest(ts.request_tat, now_ts) + interval '60 seconds' / t.rpm_limit;
        IF new_t_req - now_ts > interval '60 seconds' THEN
            RETURN QUERY SELECT 'rate_limited'::text, 'tenant'::text,
                ceil(extract(epoch FROM (new_t_req - now_ts - interval '60 seconds')) * 1000)::bigint,
                NULL::timestamptz, rem_req, NULL::bigint;
            RETURN;
        END IF;
    END IF;
    -- Tokens per minute (GCRA weighted by the request's token hold).
    IF k.tpm_limit IS NOT NULL THEN
        new_k_tok := greatest(ks.token_tat, now_ts) + make_interval(secs => 60.0 * p_tokens / k.tpm_limit);
        IF new_k_tok - now_ts > interval '60 seconds' THEN
            RETURN QUERY SELECT 'tokens_limited'::text, 'key'::text,
                ceil(extract(epoch FROM (new_k_tok - now_ts - interval '60 seconds')) * 1000)::bigint,
                NULL::timestamptz, rem_req, 0::bigint;
            RETURN;
        END IF;
        rem_tok := floor(extract(epoch FROM (interval '60 seconds' - (new_k_tok - now_ts))) * k.tpm_limit / 60)::bigint;
    END IF;
    IF t.tpm_limit IS NOT NULL THEN
        new_t_tok := greatest(ts.token_tat, now_ts) + make_interval(secs => 60.0 * p_tokens / t.tpm_limit);
        IF new_t_tok - now_ts > interval '60 seconds' THEN
            RETURN QUERY SELECT 'tokens_limited'::text, 'tenant'::text,
                ceil(extract(epoch FROM (new_t_tok - now_ts - interval '60 seconds')) * 1000)::bigint,
                NULL::timestamptz, rem_req, rem_tok;
            RETURN;
        END IF;
    END IF;
    -- Concurrency.
    IF k.max_concurrent IS NOT NULL AND ks.in_flight >= k.max_concurrent THEN
        RETURN QUERY SELECT 'concurrency_limited'::text, 'key'::text, 1000::bigint, NULL::timestamptz, rem_req, rem_tok;
        RETURN;
    END IF;
    IF t.max_concurrent IS NOT NULL AND ts.in_flight >= t.max_concurrent THEN
        RETURN QUERY SELECT 'concurrency_limited'::text, 'tenant'::text, 1000::bigint, NULL::timestamptz, rem_req, rem_tok;
        RETURN;
    END IF;
    -- Budgets: spent + reserved + hold <= limit, the limit being the budget in force now.
    IF t.budget_limit_nanos IS NOT NULL
       AND t_budget.spent_nanos + t_budget.reserved_nanos + p_amount > t.budget_limit_nanos THEN
        RETURN QUERY SELECT 'budget_exhausted'::text, 'tenant'::text, NULL::bigint,
            tollgate_window_end(t.budget_period, t_window), rem_req, rem_tok;
        RETURN;
    END IF;
    IF k.budget_limit_nanos IS NOT NULL
       AND k_budget.spent_nanos + k_budget.reserved_nanos + p_amount > k.budget_limit_nanos THEN
        RETURN QUERY SELECT 'budget_exhausted'::text, 'key'::text, NULL::bigint,
            tollgate_window_end(k.budget_period, k_window), rem_req, rem_tok;
        RETURN;
    END IF;

    -- Everything fits: charge it all.
    IF cardinality(limit_ids) > 0 THEN
        UPDATE limit_state SET
            request_tat = CASE WHEN owner_id = t.id THEN coalesce(new_t_req, request_tat) ELSE coalesce(new_k_req, request_tat) END,
            token_tat = CASE WHEN owner_id = t.id THEN coalesce(new_t_tok, token_tat) ELSE coalesce(new_k_tok, token_tat) END,
            in_flight = in_flight + 1
        WHERE owner_id = ANY (limit_ids);
    END IF;
    IF t_window IS NOT NULL OR k_window IS NOT NULL THEN
        UPDATE budget_windows SET reserved_nanos = reserved_nanos + p_amount,
            limit_nanos = CASE WHEN owner_id = t.id THEN t.budget_limit_nanos ELSE k.budget_limit_nanos END
        WHERE (owner_id = t.id AND window_start = t_window) OR (owner_id = k.id AND window_start = k_window);
    END IF;
    INSERT INTO holds (request_id, tenant_id, key_id, started_at, expires_at, proxy_id, endpoint, model, currency,
                       amount_nanos, tokens, key_window_start, tenant_window_start, key_limited, tenant_limited,
                       metadata, traceparent)
    VALUES (p_request_id, t.id, k.id, now_ts, now_ts + make_interval(secs => p_ttl_seconds), p_proxy_id, p_endpoint,
            p_model, t.currency, p_amount, p_tokens, k_window, t_window, key_limited, tenant_limited,
            p_metadata, p_traceparent);
    RETURN QUERY SELECT 'ok'::text, NULL::text, NULL::bigint, NULL::timestamptz, rem_req, rem_tok;
END;
$$;

-- Admits many requests in one statement; one result row per request, `ord` = its index (1-based).
-- Arrays cannot carry nulls from the proxy's driver: '' stands for null in models, metadata, traceparents.
-- The same rules as tollgate_reserve, applied to the batch's
-- requests in order against an in-memory copy of their owners' rows, which are locked once (in
-- the global order), and written back once per row, with one multi-row insert of the holds.
-- Measured (pgbench, 32 requests of one key): about 60 µs of database time per request when each
-- request ran tollgate_reserve's statements; here a batch costs a few statements whatever its size.
-- tollgate_reserve stays the single-request path; a differential test checks that both give the
-- same outcomes and the same state for random sequences of requests.
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
    n integer := coalesce(array_length(p_request_ids, 1), 0);
    -- Owners: the batch's tenants (by id), then its keys (by id) - the global lock order.
    o_id uuid[]; o_tenant uuid[]; o_kind text[]; o_status text[]; o_expires timestamptz[]; o_currency text[];
    o_rpm integer[]; o_tpm integer[]; o_conc integer[]; o_budget bigint[]; o_period text[];
    o_limited boolean[] := '{}'; o_window timestamptz[] := '{}';
    -- Their rows, updated in memory as requests are admitted, written back at the end.
    s_req timestamptz[]; s_tok timestamptz[]; s_flight integer[];
    s_spent bigint[]; s_reserved bigint[]; s_added bigint[] := '{}'; s_touched boolean[] := '{}';
    m integer;
    missing integer;
    -- Holds to insert.
    h_n integer[] := '{}';
    h_kwin timestamptz[] := '{}'; h_twin timestamptz[] := '{}';
    h_klim boolean[] := '{}'; h_tlim boolean[] := '{}';
    i integer; k integer; t integer;
    new_k_req timestamptz; new_k_tok timestamptz; new_t_req timestamptz; new_t_tok timestamptz;
    rem_req bigint; rem_tok bigint;
BEGIN
    SELECT array_agg(x.id ORDER BY x.kind_order, x.id), array_agg(x.tenant_id ORDER BY x.kind_order, x.id),
           array_agg(x.kind ORDER BY x.kind_order, x.id), array_agg(x.status ORDER BY x.kind_order, x.id),
           array_agg(x.expires_at ORDER BY x.kind_order, x.id), array_agg(x.currency ORDER BY x.kind_order, x.id),
           array_agg(x.rpm_limit ORDER BY x.kind_order, x.id), array_agg(x.tpm_limit ORDER BY x.kind_order, x.id),
           array_agg(x.max_concurrent ORDER BY x.kind_order, x.id), array_agg(x.budget_limit_nanos ORDER BY x.kind_order, x.id),
           array_agg(x.budget_period ORDER BY x.kind_order, x.id)
      INTO o_id, o_tenant, o_kind, o_status, o_expires, o_currency, o_rpm, o_tpm, o_conc, o_budget, o_period
      FROM (SELECT 0 AS kind_order, tn.id, tn.id AS tenant_id, 'tenant'::text AS kind, tn.status,
                   NULL::timestamptz AS expires_at, tn.currency, tn.rpm_limit, tn.tpm_limit, tn.max_concurrent,
                   tn.budget_limit_nanos, tn.budget_period
              FROM tenants tn WHERE tn.id IN (SELECT vk.tenant_id FROM virtual_keys vk WHERE vk.id = ANY (p_key_ids))
            UNION ALL
            SELECT 1, vk.id, vk.tenant_id, 'key', vk.status, vk.expires_at, NULL, vk.rpm_limit, vk.tpm_limit,
                   vk.max_concurrent, vk.budget_limit_nanos, vk.budget_period
              FROM virtual_keys vk WHERE vk.id = ANY (p_key_ids)) x;
    m := coalesce(array_length(o_id, 1), 0);
    FOR j IN 1 .. m LOOP
        o_limited[j] := o_rpm[j] IS NOT NULL OR o_tpm[j] IS NOT NULL OR o_conc[j] IS NOT NULL;
        o_window[j] := CASE WHEN o_budget[j] IS NOT NULL THEN tollgate_window_start(o_period[j], now_ts) END;
        s_added[j] := 0;
        s_touched[j] := false;
    END LOOP;

    -- Lock and read the rows (created on first use), in the global order.
    FOR attempt IN 1 .. 2 LOOP
        PERFORM 1 FROM limit_state ls
            JOIN unnest(o_id, o_limited) AS u(id, limited) ON ls.owner_id = u.id AND u.limited
            ORDER BY ls.owner_kind = 'key', ls.owner_id FOR UPDATE OF ls;
        PERFORM 1 FROM budget_windows bw
            JOIN unnest(o_id, o_window) AS u(id, w) ON bw.owner_id = u.id AND bw.window_start = u.w
            ORDER BY bw.owner_kind = 'key', bw.owner_id FOR UPDATE OF bw;
        SELECT array_agg(ls.request_tat ORDER BY u.j), array_agg(ls.token_tat ORDER BY u.j),
               array_agg(ls.in_flight ORDER BY u.j), array_agg(bw.spent_nanos ORDER BY u.j),
               array_agg(bw.reserved_nanos ORDER BY u.j),
               count(*) FILTER (WHERE (u.limited AND ls.owner_id IS NULL) OR (u.w IS NOT NULL AND bw.owner_id IS NULL))
          INTO s_req, s_tok, s_flight, s_spent, s_reserved, missing
          FROM unnest(o_id, o_limited, o_window) WITH ORDINALITY AS u(id, limited, w, j)
          LEFT JOIN limit_state ls ON ls.owner_id = u.id AND u.limited
          LEFT JOIN budget_windows bw ON bw.owner_id = u.id AND bw.window_start = u.w;
        EXIT WHEN missing = 0;
        IF attempt = 2 THEN
            -- Not expected; the proxy retries the requests one at a time when a batch fails.
            RAISE EXCEPTION 'tollgate_reserve_batch: % limit or budget rows could not be created', missing;
        END IF;
        INSERT INTO limit_state (owner_id, tenant_id, owner_kind)
            SELECT u.id, u.tenant, u.kind FROM unnest(o_id, o_tenant, o_kind, o_limited) AS u(id, tenant, kind, limited)
            WHERE u.limited ORDER BY u.kind = 'key', u.id
            ON CONFLICT DO NOTHING;
        INSERT INTO budget_windows (owner_id, window_start, tenant_id, owner_kind, window_end, limit_nanos)
            SELECT u.id, u.w, u.tenant, u.kind, tollgate_window_end(u.period, u.w), u.budget
            FROM unnest(o_id, o_window, o_tenant, o_kind, o_period, o_budget) AS u(id, w, tenant, kind, period, budget)
            WHERE u.w IS NOT NULL ORDER BY u.kind = 'key', u.id
            ON CONFLICT DO NOTHING;
    END LOOP;

    FOR i IN 1 .. n LOOP
        ord := i; scope := NULL; retry_after_ms := NULL; resets_at := NULL;
        remaining_requests := NULL; remaining_tokens := NULL;
        k := array_position(o_id, p_key_ids[i]);
        IF k IS NULL OR o_kind[k] <> 'key' OR o_status[k] <> 'active' THEN
            outcome := 'key_inactive'; scope := 'key'; RETURN NEXT; CONTINUE;
        END IF;
        IF o_expires[k] IS NOT NULL AND o_expires[k] <= now_ts THEN
            outcome := 'key_expired'; scope := 'key'; RETURN NEXT; CONTINUE;
        END IF;
        t := array_position(o_id, o_tenant[k]);
        IF o_status[t] <> 'active' THEN
            outcome := 'tenant_suspended'; scope := 'tenant'; RETURN NEXT; CONTINUE;
        END IF;
        IF o_tpm[k] IS NOT NULL AND p_tokens[i] > o_tpm[k] THEN
            outcome := 'request_too_large'; scope := 'key'; RETURN NEXT; CONTINUE;
        END IF;
        IF o_tpm[t] IS NOT NULL AND p_tokens[i] > o_tpm[t] THEN
            outcome := 'request_too_large'; scope := 'tenant'; RETURN NEXT; CONTINUE;
        END IF;
        new_k_req := NULL; new_k_tok := NULL; new_t_req := NULL; new_t_tok := NULL; rem_req := NULL; rem_tok := NULL;
        -- Requests per minute (GCRA).
        IF o_rpm[k] IS NOT NULL THEN
            new_k_req := greatest(s_req[k], now_ts) + interval '60 seconds' / o_rpm[k];
            IF new_k_req - now_ts > interval '60 seconds' THEN
                outcome := 'rate_limited'; scope := 'key';
                retry_after_ms := ceil(extract(epoch FROM (new_k_req - now_ts - interval '60 seconds')) * 1000)::bigint;
                remaining_requests := 0; RETURN NEXT; CONTINUE;
            END IF;
            rem_req := floor(extract(epoch FROM (interval '60 seconds' - (new_k_req - now_ts))) * o_rpm[k] / 60)::bigint;
        END IF;
        IF o_rpm[t] IS NOT NULL THEN
            new_t_req := greatest(s_req[t], now_ts) + interval '60 seconds' / o_rpm[t];
            IF new_t_req - now_ts > interval '60 seconds' THEN
                outcome := 'rate_limited'; scope := 'tenant';
                retry_after_ms := ceil(extract(epoch FROM (new_t_req - now_ts - interval '60 seconds')) * 1000)::bigint;
                remaining_requests := rem_req; RETURN NEXT; CONTINUE;
            END IF;
        END IF;
        -- Tokens per minute (GCRA weighted by the request's token hold).
        IF o_tpm[k] IS NOT NULL THEN
            new_k_tok := greatest(s_tok[k], now_ts) + make_interval(secs => 60.0 * p_tokens[i] / o_tpm[k]);
            IF new_k_tok - now_ts > interval '60 seconds' THEN
                outcome := 'tokens_limited'; scope := 'key';
                retry_after_ms := ceil(extract(epoch FROM (new_k_tok - now_ts - interval '60 seconds')) * 1000)::bigint;
                remaining_requests := rem_req; remaining_tokens := 0; RETURN NEXT; CONTINUE;
            END IF;
            rem_tok := floor(extract(epoch FROM (interval '60 seconds' - (new_k_tok - now_ts))) * o_tpm[k] / 60)::bigint;
        END IF;
        IF o_tpm[t] IS NOT NULL THEN
            new_t_tok := greatest(s_tok[t], now_ts) + make_interval(secs => 60.0 * p_tokens[i] / o_tpm[t]);
            IF new_t_tok - now_ts > interval '60 seconds' THEN
                outcome := 'tokens_limited'; scope := 'tenant';
                retry_after_ms := ceil(extract(epoch FROM (new_t_tok - now_ts - interval '60 seconds')) * 1000)::bigint;
                remaining_requests := rem_req; remaining_tokens := rem_tok; RETURN NEXT; CONTINUE;
            END IF;
        END IF;
        -- Concurrency.
        IF o_conc[k] IS NOT NULL AND s_flight[k] >= o_conc[k] THEN
            outcome := 'concurrency_limited'; scope := 'key'; retry_after_ms := 1000;
            remaining_requests := rem_req; remaining_tokens := rem_tok; RETURN NEXT; CONTINUE;
        END IF;
        IF o_conc[t] IS NOT NULL AND s_flight[t] >= o_conc[t] THEN
            outcome := 'concurrency_limited'; scope := 'tenant'; retry_after_ms := 1000;
            remaining_requests := rem_req; remaining_tokens := rem_tok; RETURN NEXT; CONTINUE;
        END IF;
        -- Budgets: spent + reserved + hold <= limit.
        IF o_budget[t] IS NOT NULL AND s_spent[t] + s_reserved[t] + p_amounts[i] > o_budget[t] THEN
            outcome := 'budget_exhausted'; scope := 'tenant'; resets_at := tollgate_window_end(o_period[t], o_window[t]);
            remaining_requests := rem_req; remaining_tokens := rem_tok; RETURN NEXT; CONTINUE;
        END IF;
        IF o_budget[k] IS NOT NULL AND s_spent[k] + s_reserved[k] + p_amounts[i] > o_budget[k] THEN
            outcome := 'budget_exhausted'; scope := 'key'; resets_at := tollgate_window_end(o_period[k], o_window[k]);
            remaining_requests := rem_req; remaining_tokens := rem_tok; RETURN NEXT; CONTINUE;
        END IF;
        -- Everything fits: charge it all (in memory; written back below).
        IF o_limited[t] THEN
            s_req[t] := coalesce(new_t_req, s_req[t]); s_tok[t] := coalesce(new_t_tok, s_tok[t]);
            s_flight[t] := s_flight[t] + 1; s_touched[t] := true;
        END IF;
        IF o_limited[k] THEN
            s_req[k] := coalesce(new_k_req, s_req[k]); s_tok[k] := coalesce(new_k_tok, s_tok[k]);
            s_flight[k] := s_flight[k] + 1; s_touched[k] := true;
        END IF;
        IF o_window[t] IS NOT NULL THEN
            s_reserved[t] := s_reserved[t] + p_amounts[i]; s_added[t] := s_added[t] + p_amounts[i]; s_touched[t] := true;
        END IF;
        IF o_window[k] IS NOT NULL THEN
            s_reserved[k] := s_reserved[k] + p_amounts[i]; s_added[k] := s_added[k] + p_amounts[i]; s_touched[k] := true;
        END IF;
        h_n := h_n || i; h_kwin := h_kwin || o_window[k]; h_twin := h_twin || o_window[t];
        h_klim := h_klim || o_limited[k]; h_tlim := h_tlim || o_limited[t];
        outcome := 'ok'; remaining_requests := rem_req; remaining_tokens := rem_tok; RETURN NEXT;
    END LOOP;

    UPDATE limit_state ls SET request_tat = u.req, token_tat = u.tok, in_flight = u.flight
      FROM unnest(o_id, o_limited, s_touched, s_req, s_tok, s_flight) AS u(id, limited, touched, req, tok, flight)
     WHERE u.limited AND u.touched AND ls.owner_id = u.id;
    UPDATE budget_windows bw SET reserved_nanos = bw.reserved_nanos + u.added, limit_nanos = u.budget
      FROM unnest(o_id, o_window, s_touched, s_added, o_budget) AS u(id, w, touched, added, budget)
     WHERE u.w IS NOT NULL AND u.touched AND bw.owner_id = u.id AND bw.window_start = u.w;
    INSERT INTO holds (request_id, tenant_id, key_id, started_at, expires_at, proxy_id, endpoint, model, currency,
                       amount_nanos, tokens, key_window_start, tenant_window_start, key_limited, tenant_limited,
                       metadata, traceparent)
    SELECT p_request_ids[h.n], o_tenant[array_position(o_id, p_key_ids[h.n])], p_key_ids[h.n], now_ts,
           now_ts + make_interval(secs => p_ttl_seconds), p_proxy_id, p_endpoints[h.n], nullif(p_models[h.n], ''),
           o_currency[array_position(o_id, o_tenant[array_position(o_id, p_key_ids[h.n])])],
           p_amounts[h.n], p_tokens[h.n], h.kwin, h.twin, h.klim, h.tlim,
           nullif(p_metadata[h.n], '')::jsonb, nullif(p_traceparents[h.n], '')
      FROM unnest(h_n, h_kwin, h_twin, h_klim, h_tlim) AS h(n, kwin, twin, klim, tlim);
END;
$$;
