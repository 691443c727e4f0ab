-- Admission tickets: holds a replica takes in advance for a busy key, so that most of its requests
-- are admitted without a database round trip on their path.
--
-- Why: every admitted request used to wait for one round trip and one commit (its durable hold)
-- before it was forwarded: about 0.7 ms at one connection, most of the gateway's added latency.
-- A ticket is exactly such a hold (same rules, same rows charged: requests/min, tokens/min, a
-- concurrency slot, the budget amount), granted before the request exists. A request that fits an
-- unused ticket takes it and is forwarded at once; its hold was durable before it arrived, so
-- nothing is ever forwarded uncovered. Settlement is unchanged (by hold id, exactly once), with the
-- request's own details (start, endpoint, model, metadata) written to the ledger instead of the
-- ticket's placeholders. Unused tickets are released: everything they took is given back,
-- requests/min included, and no ledger row is written.
--
-- Fairness: a replica's tickets are capacity other replicas cannot use while they wait. A grant
-- therefore takes at most 1/p_headroom of what is left of each limit and budget of the key and its
-- team (read at grant time), and nothing when that is fewer than p_min_count tickets: near a limit,
-- and for keys with small limits, every request goes through exact per-request admission.
--
-- A replica that dies leaves its tickets to the reaper, which settles expired holds at their
-- amount, marked estimated: the conservative charge, as for any request whose outcome is unknown.

ALTER TABLE holds ADD COLUMN ticket boolean NOT NULL DEFAULT false;

-- The proxy names the tickets (p_ticket_ids; as many are asked for): if it never hears the answer,
-- it can still give back whatever was granted.
--
-- Set-based: the tickets of one grant are alike (one key, one amount, one token count), so their
-- effect is n times one request's: each GCRA clock moves by n intervals, n slots, n amounts, one
-- multi-row insert. The rows are locked first, in the global order (tenant limits, key limits,
-- tenant budget, key budget; see 0004), and the room is read from the locked rows, so n tickets
-- fit exactly as n requests admitted one after another by tollgate_reserve would.
CREATE FUNCTION tollgate_grant_tickets(
    p_ticket_ids uuid[], p_key_id uuid, p_amount bigint, p_tokens bigint, p_proxy_id text, p_ttl_seconds integer,
    p_endpoint text, p_model text, p_headroom integer, p_min_count integer
) RETURNS TABLE (ticket_ids uuid[], valid_until timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := clock_timestamp();
    k virtual_keys%ROWTYPE;
    t tenants%ROWTYPE;
    n numeric := coalesce(array_length(p_ticket_ids, 1), 0);
    headroom numeric := greatest(p_headroom, 1);
    k_limited boolean; t_limited boolean;
    k_window timestamptz; t_window timestamptz;
    ks limit_state%ROWTYPE; ts limit_state%ROWTYPE;
    kb budget_windows%ROWTYPE; tb budget_windows%ROWTYPE;
    usable_until timestamptz := 'infinity';
    granted integer;
BEGIN
    SELECT * INTO k FROM virtual_keys WHERE id = p_key_id;
    IF NOT FOUND THEN RETURN; END IF;
    SELECT * INTO t FROM tenants WHERE id = k.tenant_id;
    IF k.status <> 'active' OR t.status <> 'active' OR (k.expires_at IS NOT NULL AND k.expires_at <= now_ts)
       OR p_tokens > coalesce(k.tpm_limit, p_tokens) OR p_tokens > coalesce(t.tpm_limit, p_tokens) THEN
        RETURN;
    END IF;
    IF k.expires_at IS NOT NULL THEN usable_until := k.expires_at; END IF;
    t_limited := t.rpm_limit IS NOT NULL OR t.tpm_limit IS NOT NULL OR t.max_concurrent IS NOT NULL;
    k_limited := k.rpm_limit IS NOT NULL OR k.tpm_limit IS NOT NULL OR k.max_concurrent IS NOT NULL;
    IF t.budget_limit_nanos IS NOT NULL THEN
        t_window := tollgate_window_start(t.budget_period, now_ts);
        usable_until := least(usable_until, coalesce(tollgate_window_end(t.budget_period, t_window), 'infinity'));
    END IF;
    IF k.budget_limit_nanos IS NOT NULL THEN
        k_window := tollgate_window_start(k.budget_period, now_ts);
        usable_until := least(usable_until, coalesce(tollgate_window_end(k.budget_period, k_window), 'infinity'));
    END IF;

    -- Lock (creating on first use) in the global order, reading the room as locked.
    IF t_limited THEN
        ts := tollgate_locked_limit_row(t.id, t.id, 'tenant');
        n := least(n, floor(tollgate_ticket_room(ts, t.rpm_limit, t.tpm_limit, t.max_concurrent, p_tokens, now_ts) / headroom));
    END IF;
    IF k_limited THEN
        ks := tollgate_locked_limit_row(k.id, t.id, 'key');
        n := least(n, floor(tollgate_ticket_room(ks, k.rpm_limit, k.tpm_limit, k.max_concurrent, p_tokens, now_ts) / headroom));
    END IF;
    IF t_window IS NOT NULL THEN
        tb := tollgate_locked_budget_row(t.id, t_window, t.id, 'tenant', t.budget_period, t.budget_limit_nanos);
        n := least(n, tollgate_ticket_budget_room(tb, t.budget_limit_nanos, p_amount, headroom));
    END IF;
    IF k_window IS NOT NULL THEN
        kb := tollgate_locked_budget_row(k.id, k_window, t.id, 'key', k.budget_period, k.budget_limit_nanos);
        n := least(n, tollgate_ticket_budget_room(kb, k.budget_limit_nanos, p_amount, headroom));
    END IF;
    -- A few tickets are not worth their cost to other replicas (idle capacity they cannot use).
    IF n < greatest(p_min_count, 1) THEN RETURN; END IF;
    granted := n::integer;

    -- n requests admitted one after another: each clock moves n intervals from max(clock, now).
    IF t_limited THEN PERFORM tollgate_charge_limit_row(t.id, t.rpm_limit, t.tpm_limit, granted, p_tokens, now_ts); END IF;
    IF k_limited THEN PERFORM tollgate_charge_limit_row(k.id, k.rpm_limit, k.tpm_limit, granted, p_tokens, now_ts); END IF;
    IF t_window IS NOT NULL THEN
        UPDATE budget_windows SET reserved_nanos = reserved_nanos + granted * p_amount, limit_nanos = t.budget_limit_nanos
        WHERE owner_id = t.id AND window_start = t_window;
    END IF;
    IF k_window IS NOT NULL THEN
        UPDATE budget_windows SET reserved_nanos = reserved_nanos + granted * p_amount, limit_nanos = k.budget_limit_nanos
        WHERE owner_id = k.id AND window_start = k_window;
    END IF;
    INSERT INTO holds (request_id, tenant_id, key_id, started_at, expires_at, proxy_id, endpoint, model, currency,
                       amount_nanos, tokens, key_window_start, tenant_window_start, key_limited, tenant_limited, ticket)
    SELECT id, t.id, k.id, now_ts, now_ts + make_interval(secs => p_ttl_seconds), p_proxy_id, p_endpoint, p_model,
           t.currency, p_amount, p_tokens, k_window, t_window, k_limited, t_limited, true
      FROM unnest(p_ticket_ids[1:granted]) AS id;
    RETURN QUERY SELECT p_ticket_ids[1:granted], usable_until;
END;
$$;

-- An owner's limit row, locked (created on first use).
CREATE FUNCTION tollgate_locked_limit_row(p_owner uuid, p_tenant uuid, p_kind text) RETURNS limit_state
LANGUAGE plpgsql AS $$
DECLARE
    row limit_state%ROWTYPE;
BEGIN
    SELECT * INTO row FROM limit_state WHERE owner_id = p_owner FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO limit_state (owner_id, tenant_id, owner_kind) VALUES (p_owner, p_tenant, p_kind) ON CONFLICT DO NOTHING;
        SELECT * INTO row FROM limit_state WHERE owner_id = p_owner FOR UPDATE;
    END IF;
    RETURN row;
END;
$$;

-- An owner's budget row for a window, locked (created on first use).
CREATE FUNCTION tollgate_locked_budget_row(p_owner uuid, p_window timestamptz, p_tenant uuid, p_kind text,
                                           p_period text, p_limit bigint) RETURNS budget_windows
LANGUAGE plpgsql AS $$
DECLARE
    row budget_windows%ROWTYPE;
BEGIN
    SELECT * INTO row FROM budget_windows WHERE owner_id = p_owner AND window_start = p_window FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO budget_windows (owner_id, window_start, tenant_id, owner_kind, window_end, limit_nanos)
        VALUES (p_owner, p_window, p_tenant, p_kind, tollgate_window_end(p_period, p_window), p_limit)
        ON CONFLICT DO NOTHING;
        SELECT * INTO row FROM budget_windows WHERE owner_id = p_owner AND window_start = p_window FOR UPDATE;
    END IF;
    RETURN row;
END;
$$;

-- Tickets of p_amount a locked budget row has room for, 1/p_headroom of what is left (null: no bound).
-- Over budget (after an overshoot) even free tickets get none, as tollgate_reserve_batch refuses
-- free requests then.
CREATE FUNCTION tollgate_ticket_budget_room(b budget_windows, p_limit bigint, p_amount bigint, p_headroom numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_amount > 0 THEN floor((p_limit - b.spent_nanos - b.reserved_nanos)::numeric / (p_headroom * p_amount))
                WHEN b.spent_nanos + b.reserved_nanos > p_limit THEN 0 END
$$;

-- Charges n requests of p_tokens each to an owner's (locked) limit row.
CREATE FUNCTION tollgate_charge_limit_row(p_owner uuid, p_rpm integer, p_tpm integer, p_count integer, p_tokens bigint,
                                          now_ts timestamptz) RETURNS void
LANGUAGE sql AS $$
    UPDATE limit_state SET
        request_tat = CASE WHEN p_rpm IS NULL THEN request_tat
                           ELSE greatest(request_tat, now_ts) + make_interval(secs => 60.0 * p_count / p_rpm) END,
        token_tat = CASE WHEN p_tpm IS NULL THEN token_tat
                         ELSE greatest(token_tat, now_ts) + make_interval(secs => 60.0 * p_count * p_tokens / p_tpm) END,
        in_flight = in_flight + p_count
    WHERE owner_id = p_owner
$$;

-- How many more requests of p_tokens each an owner's locked limit row admits right now (null: no limit).
CREATE FUNCTION tollgate_ticket_room(s limit_state, p_rpm integer, p_tpm integer, p_conc integer, p_tokens bigint,
                                     now_ts timestamptz) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT least(
        CASE WHEN p_rpm IS NULL THEN NULL ELSE
            floor(extract(epoch FROM (interval '60 seconds' - (greatest(s.request_tat, now_ts) - now_ts))) * p_rpm / 60) END,
        CASE WHEN p_tpm IS NULL THEN NULL
             -- Requests of no tokens: refused only while usage has run the clock over a minute ahead.
             WHEN p_tokens <= 0 THEN CASE WHEN s.token_tat - now_ts > interval '60 seconds' THEN 0 END
             ELSE floor(extract(epoch FROM (interval '60 seconds' - (greatest(s.token_tat, now_ts) - now_ts))) * p_tpm / 60 / p_tokens) END,
        CASE WHEN p_conc IS NULL THEN NULL ELSE p_conc - s.in_flight END)
$$;

-- Answers after its commit: a ticket the proxy hears of is durable.
CREATE PROCEDURE tollgate_take_tickets(
    p_ticket_ids uuid[], p_key_id uuid, p_amount bigint, p_tokens bigint, p_proxy_id text, p_ttl_seconds integer,
    p_endpoint text, p_model text, p_headroom integer, p_min_count integer,
    INOUT ticket_ids uuid[] DEFAULT NULL, INOUT valid_for_ms bigint DEFAULT NULL
)
LANGUAGE plpgsql AS $$
BEGIN
    -- valid_for_ms: how long from now the tickets may be used, -1 for no end. A duration, not an
    -- instant, so that the proxy's clock does not have to agree with the database's.
    SELECT g.ticket_ids,
           CASE WHEN g.valid_until = 'infinity' THEN -1
                ELSE greatest(0, floor(extract(epoch FROM (g.valid_until - clock_timestamp())) * 1000))::bigint END
      INTO ticket_ids, valid_for_ms
      FROM tollgate_grant_tickets(p_ticket_ids, p_key_id, p_amount, p_tokens, p_proxy_id, p_ttl_seconds,
                                  p_endpoint, p_model, p_headroom, p_min_count) g;
    COMMIT;
END;
$$;

-- tollgate_settle_batch (0004) with two kinds of rows more:
--   released: an unused ticket, given back whole (its request/min too); no ledger row.
--   detailed: the ledger row takes the request id, start, endpoint, model, metadata and traceparent
--             given here (a ticket's own are placeholders; '' stands for null, -1 for a null start).
--             The hold is still found, and settled exactly once, by its own id (the ticket's).
-- Overloads of the 0004/0005 versions, which stay: a replica of the previous release still posts
-- its settlements through them during a rolling upgrade.
CREATE FUNCTION tollgate_settle_batch(
    p_request_ids uuid[], p_costs bigint[], p_prompt_tokens integer[], p_completion_tokens integer[],
    p_cached_tokens integer[], p_pages integer[], p_status_codes integer[], p_estimated boolean[],
    p_credential_ids text[], p_upstream_latency_ms integer[], p_total_latency_ms integer[],
    p_released boolean[], p_detailed boolean[], p_ledger_ids uuid[], p_started_ms bigint[], p_endpoints text[],
    p_models text[], p_metadata text[], p_traceparents text[]
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
                               p_status_codes, p_estimated, p_credential_ids, p_upstream_latency_ms, p_total_latency_ms,
                               p_released, p_detailed, p_ledger_ids, p_started_ms, p_endpoints, p_models, p_metadata,
                               p_traceparents)
                        WITH ORDINALITY AS i(request_id, cost, prompt, completion, cached, pages, status, estimated,
                                             credential, upstream_ms, total_ms, released, detailed, ledger_id, started_ms,
                                             endpoint_in, model_in, metadata_in, traceparent_in, n)
    ),
    gone AS (
        -- A request id given twice in one batch is deleted (settled) once. Only tickets are released.
        DELETE FROM holds h USING input i WHERE h.request_id = i.request_id AND (NOT i.released OR h.ticket)
        RETURNING h.*, CASE WHEN i.released THEN 0 ELSE i.cost END AS charged, i.prompt, i.completion, i.cached,
                  i.pages, i.status, i.estimated, i.credential, i.upstream_ms, i.total_ms, i.released, i.detailed,
                  i.ledger_id, i.started_ms, i.endpoint_in, i.model_in, i.metadata_in, i.traceparent_in, i.n
    ),
    slots AS (
        -- Per limit row: concurrency slots freed, tokens/min given back (unused = held - used; it is
        -- negative when usage exceeded the hold, which takes the difference) and, for released
        -- tickets, their request/min.
        SELECT owner_id, count(*)::integer AS freed, sum(refund) AS refund_seconds, sum(request_refund) AS request_refund_seconds FROM (
            SELECT g.tenant_id AS owner_id,
                   CASE WHEN t.tpm_limit IS NULL THEN 0
                        ELSE 60.0 * (g.tokens - greatest(0, g.prompt) - greatest(0, g.completion)) / t.tpm_limit END AS refund,
                   CASE WHEN g.released AND t.rpm_limit IS NOT NULL THEN 60.0 / t.rpm_limit ELSE 0 END AS request_refund
              FROM gone g JOIN tenants t ON t.id = g.tenant_id WHERE g.tenant_limited
            UNION ALL
            SELECT g.key_id,
                   CASE WHEN k.tpm_limit IS NULL THEN 0
                        ELSE 60.0 * (g.tokens - greatest(0, g.prompt) - greatest(0, g.completion)) / k.tpm_limit END,
                   CASE WHEN g.released AND k.rpm_limit IS NOT NULL THEN 60.0 / k.rpm_limit ELSE 0 END
              FROM gone g JOIN virtual_keys k ON k.id = g.key_id WHERE g.key_limited
        ) x GROUP BY owner_id
    ),
    limits_updated AS (
        UPDATE limit_state ls SET in_flight = greatest(ls.in_flight - s.freed, 0),
            token_tat = CASE WHEN ls.token_tat = '-infinity' OR s.refund_seconds = 0 THEN ls.token_tat
                             ELSE ls.token_tat - make_interval(secs => s.refund_seconds) END,
            request_tat = CASE WHEN ls.request_tat = '-infinity' OR s.request_refund_seconds = 0 THEN ls.request_tat
                               ELSE ls.request_tat - make_interval(secs => s.request_refund_seconds) END
        FROM slots s WHERE ls.owner_id = s.owner_id
        RETURNING 1
    ),
    budgets AS (
        SELECT owner_id, window_start, sum(amount_nanos) AS released, sum(charged) AS posted FROM (
            SELECT tenant_id AS owner_id, tenant_window_start AS window_start, amount_nanos, charged
              FROM gone WHERE tenant_window_start IS NOT NULL
            UNION ALL
            SELECT key_id, key_window_start, amount_nanos, charged FROM gone WHERE key_window_start IS NOT NULL
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
        SELECT CASE WHEN g.detailed THEN g.ledger_id ELSE g.request_id END,
            CASE WHEN g.detailed AND g.started_ms >= 0 THEN to_timestamp(g.started_ms / 1000.0) ELSE g.started_at END,
            g.tenant_id, g.key_id, nullif(g.credential, '')::uuid,
            CASE WHEN g.detailed THEN g.endpoint_in ELSE g.endpoint END,
            CASE WHEN g.detailed THEN nullif(g.model_in, '') ELSE g.model END,
            greatest(g.prompt, 0), greatest(g.completion, 0), greatest(g.cached, 0), greatest(g.pages, 0), g.charged,
            g.currency, g.status, g.estimated, nullif(g.upstream_ms, -1), nullif(g.total_ms, -1),
            CASE WHEN g.detailed THEN nullif(g.metadata_in, '')::jsonb ELSE g.metadata END,
            CASE WHEN g.detailed THEN nullif(g.traceparent_in, '') ELSE g.traceparent END
        FROM gone g WHERE NOT g.released
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT i.n::integer, g.request_id IS NOT NULL, coalesce(greatest(g.charged - g.amount_nanos, 0), 0)::bigint
    FROM input i LEFT JOIN gone g ON g.n = i.n
    ORDER BY i.n;
END;
$$;

CREATE PROCEDURE tollgate_post_settlements(
    p_request_ids uuid[], p_costs bigint[], p_prompt_tokens integer[], p_completion_tokens integer[],
    p_cached_tokens integer[], p_pages integer[], p_status_codes integer[], p_estimated boolean[],
    p_credential_ids text[], p_upstream_latency_ms integer[], p_total_latency_ms integer[],
    p_released boolean[], p_detailed boolean[], p_ledger_ids uuid[], p_started_ms bigint[], p_endpoints text[],
    p_models text[], p_metadata text[], p_traceparents text[],
    INOUT settled boolean[] DEFAULT NULL, INOUT overshoot_nanos bigint[] DEFAULT NULL
)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT array_agg(s.settled ORDER BY s.ord), array_agg(s.overshoot_nanos ORDER BY s.ord)
      INTO settled, overshoot_nanos
      FROM tollgate_settle_batch(p_request_ids, p_costs, p_prompt_tokens, p_completion_tokens, p_cached_tokens,
                                 p_pages, p_status_codes, p_estimated, p_credential_ids, p_upstream_latency_ms,
                                 p_total_latency_ms, p_released, p_detailed, p_ledger_ids, p_started_ms, p_endpoints,
                                 p_models, p_metadata, p_traceparents) s;
    COMMIT;
END;
$$;
