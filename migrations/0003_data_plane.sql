-- Data plane: rate-limit and concurrency state, budget holds, and the two functions the proxy
-- calls: tollgate_reserve (admission, one round trip, before anything is forwarded) and
-- tollgate_settle (exactly once per request id). The database clock is the only clock used.

-- Rate-limit (GCRA) and concurrency state per key and per tenant. owner_id = key id or tenant id.
-- A row is only touched for limits that are configured, so unlimited tenants are no hot spot.
CREATE TABLE limit_state (
    owner_id    uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    owner_kind  text NOT NULL CHECK (owner_kind IN ('tenant', 'key')),
    -- GCRA theoretical arrival times: a limit of N per minute admits a request when
    -- max(tat, now) + 60s/N - now <= 60s.
    request_tat timestamptz NOT NULL DEFAULT '-infinity',
    token_tat   timestamptz NOT NULL DEFAULT '-infinity',
    in_flight   integer NOT NULL DEFAULT 0 CHECK (in_flight >= 0)
);

-- One row per admitted request until it settles. Deleting the row is what makes settlement
-- happen exactly once: a second settle (journal replay, reaper race) finds nothing to delete.
CREATE TABLE holds (
    request_id          uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    key_id              uuid NOT NULL REFERENCES virtual_keys (id),
    started_at          timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL,
    proxy_id            text NOT NULL,
    endpoint            text NOT NULL,
    model               text,
    currency            text NOT NULL,
    amount_nanos        bigint NOT NULL CHECK (amount_nanos >= 0),
    tokens              bigint NOT NULL CHECK (tokens >= 0),
    -- Budget windows the amount is reserved in (null: that owner has no budget).
    key_window_start    timestamptz,
    tenant_window_start timestamptz,
    -- Which limit rows were charged, so settlement gives back exactly what was taken.
    key_limited         boolean NOT NULL,
    tenant_limited      boolean NOT NULL,
    metadata            jsonb,
    traceparent         text
);
CREATE INDEX holds_expires_at ON holds (expires_at);

-- The start of the UTC calendar window containing `at` (must match BudgetPeriod in Swift).
CREATE FUNCTION tollgate_window_start(period text, at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE period
        WHEN 'lifetime' THEN 'epoch'::timestamptz
        WHEN 'daily'    THEN date_trunc('day',   at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        WHEN 'weekly'   THEN date_trunc('week',  at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        WHEN 'monthly'  THEN date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    END
$$;

CREATE FUNCTION tollgate_window_end(period text, start timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE period
        WHEN 'lifetime' THEN NULL
        WHEN 'daily'    THEN ((start AT TIME ZONE 'UTC') + interval '1 day')   AT TIME ZONE 'UTC'
        WHEN 'weekly'   THEN ((start AT TIME ZONE 'UTC') + interval '7 days')  AT TIME ZONE 'UTC'
        WHEN 'monthly'  THEN ((start AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
    END
$$;

-- Admission: checks and charges, for the key and its tenant, requests/min, tokens/min, concurrency
-- and the budget hold, all or nothing, in one statement. Rows are locked in a fixed order
-- (tenant before key) so concurrent reservations cannot deadlock.
-- outcome: ok | key_inactive | key_expired | tenant_suspended | rate_limited | tokens_limited |
--          request_too_large | concurrency_limited | budget_exhausted
-- scope:   'key' or 'tenant' for the limit that refused.
CREATE FUNCTION tollgate_reserve(
    p_request_id uuid, p_key_id uuid, p_amount bigint, p_tokens bigint, p_proxy_id text,
    p_ttl_seconds integer, p_endpoint text, p_model text, p_metadata jsonb, p_traceparent text
) RETURNS TABLE (
    outcome text, scope text, retry_after_ms bigint, resets_at timestamptz,
    remaining_requests bigint, remaining_tokens bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := clock_timestamp();
    k record;
    t record;
    ks limit_state%ROWTYPE;
    ts limit_state%ROWTYPE;
    k_window timestamptz;
    t_window timestamptz;
    k_budget budget_windows%ROWTYPE;
    t_budget budget_windows%ROWTYPE;
    key_limited boolean;
    tenant_limited boolean;
    new_k_req timestamptz; new_k_tok timestamptz;
    new_t_req timestamptz; new_t_tok timestamptz;
    rem_req bigint := NULL;
    rem_tok bigint := NULL;
BEGIN
    SELECT vk.* INTO k FROM virtual_keys vk WHERE vk.id = p_key_id;
    IF NOT FOUND OR k.status <> 'active' THEN
        RETURN QUERY SELECT 'key_inactive'::text, 'key'::text, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    IF k.expires_at IS NOT NULL AND k.expires_at <= now_ts THEN
        RETURN QUERY SELECT 'key_expired'::text, 'key'::text, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    SELECT tn.* INTO t FROM tenants tn WHERE tn.id = k.tenant_id;
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

    -- Lock order: tenant limits, key limits, tenant budget, key budget.
    -- Rows are created on first use; the common path is a single locking read each.
    IF tenant_limited THEN
        SELECT * INTO ts FROM limit_state WHERE owner_id = t.id FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO limit_state (owner_id, tenant_id, owner_kind) VALUES (t.id, t.id, 'tenant') ON CONFLICT DO NOTHING;
            SELECT * INTO ts FROM limit_state WHERE owner_id = t.id FOR UPDATE;
        END IF;
    END IF;
    IF key_limited THEN
        SELECT * INTO ks FROM limit_state WHERE owner_id = k.id FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO limit_state (owner_id, tenant_id, owner_kind) VALUES (k.id, t.id, 'key') ON CONFLICT DO NOTHING;
            SELECT * INTO ks FROM limit_state WHERE owner_id = k.id FOR UPDATE;
        END IF;
    END IF;
    IF t.budget_limit_nanos IS NOT NULL THEN
        t_window := tollgate_window_start(t.budget_period, now_ts);
        SELECT * INTO t_budget FROM budget_windows WHERE owner_id = t.id AND window_start = t_window FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO budget_windows (owner_id, window_start, tenant_id, owner_kind, window_end, limit_nanos)
            VALUES (t.id, t_window, t.id, 'tenant', tollgate_window_end(t.budget_period, t_window), t.budget_limit_nanos)
            ON CONFLICT DO NOTHING;
            SELECT * INTO t_budget FROM budget_windows WHERE owner_id = t.id AND window_start = t_window FOR UPDATE;
        END IF;
    END IF;
    IF k.budget_limit_nanos IS NOT NULL THEN
        k_window := tollgate_window_start(k.budget_period, now_ts);
        SELECT * INTO k_budget FROM budget_windows WHERE owner_id = k.id AND window_start = k_window FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO budget_windows (owner_id, window_start, tenant_id, owner_kind, window_end, limit_nanos)
            VALUES (k.id, k_window, t.id, 'key', tollgate_window_end(k.budget_period, k_window), k.budget_limit_nanos)
            ON CONFLICT DO NOTHING;
            SELECT * INTO k_budget FROM budget_windows WHERE owner_id = k.id AND window_start = k_window FOR UPDATE;
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
    IF tenant_limited THEN
        UPDATE limit_state SET request_tat = coalesce(new_t_req, request_tat), token_tat = coalesce(new_t_tok, token_tat),
            in_flight = in_flight + 1
        WHERE owner_id = t.id;
    END IF;
    IF key_limited THEN
        UPDATE limit_state SET request_tat = coalesce(new_k_req, request_tat), token_tat = coalesce(new_k_tok, token_tat),
            in_flight = in_flight + 1
        WHERE owner_id = k.id;
    END IF;
    IF t_window IS NOT NULL THEN
        UPDATE budget_windows SET reserved_nanos = reserved_nanos + p_amount, limit_nanos = t.budget_limit_nanos
        WHERE owner_id = t.id AND window_start = t_window;
    END IF;
    IF k_window IS NOT NULL THEN
        UPDATE budget_windows SET reserved_nanos = reserved_nanos + p_amount, limit_nanos = k.budget_limit_nanos
        WHERE owner_id = k.id AND window_start = k_window;
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

-- Settlement, exactly once per request id: posts the real cost, releases the rest of the hold,
-- frees the concurrency slot, gives back unused tokens/min, and writes the ledger row.
-- Returns settled = false when the request was already settled (replays are harmless).
CREATE FUNCTION tollgate_settle(
    p_request_id uuid, p_cost bigint, p_prompt_tokens integer, p_completion_tokens integer,
    p_cached_tokens integer, p_pages integer, p_status_code integer, p_estimated boolean,
    p_credential_id uuid, p_upstream_latency_ms integer, p_total_latency_ms integer
) RETURNS TABLE (settled boolean, overshoot_nanos bigint)
LANGUAGE plpgsql AS $$
DECLARE
    h holds%ROWTYPE;
    k record;
    t record;
    used_tokens bigint := greatest(0, p_prompt_tokens) + greatest(0, p_completion_tokens);
    unused_tokens bigint;
BEGIN
    DELETE FROM holds WHERE request_id = p_request_id RETURNING * INTO h;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, 0::bigint;
        RETURN;
    END IF;
    SELECT tpm_limit INTO k FROM virtual_keys WHERE id = h.key_id;
    SELECT tpm_limit INTO t FROM tenants WHERE id = h.tenant_id;
    unused_tokens := h.tokens - used_tokens;

    IF h.tenant_limited THEN
        UPDATE limit_state SET in_flight = greatest(in_flight - 1, 0),
            token_tat = CASE WHEN t.tpm_limit IS NULL OR token_tat = '-infinity' THEN token_tat
                             ELSE token_tat - make_interval(secs => 60.0 * unused_tokens / t.tpm_limit) END
        WHERE owner_id = h.tenant_id;
    END IF;
    IF h.key_limited THEN
        UPDATE limit_state SET in_flight = greatest(in_flight - 1, 0),
            token_tat = CASE WHEN k.tpm_limit IS NULL OR token_tat = '-infinity' THEN token_tat
                             ELSE token_tat - make_interval(secs => 60.0 * unused_tokens / k.tpm_limit) END
        WHERE owner_id = h.key_id;
    END IF;
    IF h.tenant_window_start IS NOT NULL THEN
        UPDATE budget_windows SET reserved_nanos = greatest(reserved_nanos - h.amount_nanos, 0),
            spent_nanos = spent_nanos + p_cost
        WHERE owner_id = h.tenant_id AND window_start = h.tenant_window_start;
    END IF;
    IF h.key_window_start IS NOT NULL THEN
        UPDATE budget_windows SET reserved_nanos = greatest(reserved_nanos - h.amount_nanos, 0),
            spent_nanos = spent_nanos + p_cost
        WHERE owner_id = h.key_id AND window_start = h.key_window_start;
    END IF;
    INSERT INTO usage_ledger (request_id, started_at, tenant_id, key_id, credential_id, endpoint, model,
        prompt_tokens, completion_tokens, cached_tokens, pages, cost_nanos, currency, status_code, estimated,
        upstream_latency_ms, total_latency_ms, metadata, traceparent)
    VALUES (h.request_id, h.started_at, h.tenant_id, h.key_id, p_credential_id, h.endpoint, h.model,
        greatest(p_prompt_tokens, 0), greatest(p_completion_tokens, 0), greatest(p_cached_tokens, 0),
        greatest(p_pages, 0), p_cost, h.currency, p_status_code, p_estimated, p_upstream_latency_ms,
        p_total_latency_ms, h.metadata, h.traceparent)
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT true, greatest(p_cost - h.amount_nanos, 0);
END;
$$;

-- Holds whose proxy died (expired), settled at the reserved amount and marked estimated.
-- Safe with many replicas: each hold is claimed with SKIP LOCKED and settled exactly once.
CREATE FUNCTION tollgate_reap_expired_holds(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT request_id, amount_nanos FROM holds WHERE expires_at < clock_timestamp()
             ORDER BY expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        PERFORM tollgate_settle(r.request_id, r.amount_nanos, 0, 0, 0, 0, 0, true, NULL, NULL, NULL);
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;

-- Change notifications: every running proxy LISTENs and drops what it cached about the object.
CREATE FUNCTION tollgate_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
BEGIN
    -- Only ids travel: never key hashes, ciphertexts or names.
    PERFORM pg_notify('tollgate_changes', json_build_object(
        'table', TG_TABLE_NAME,
        'id', CASE TG_TABLE_NAME WHEN 'virtual_key_secrets' THEN payload->>'key_id' ELSE payload->>'id' END,
        'tenant_id', CASE TG_TABLE_NAME WHEN 'tenants' THEN payload->>'id' ELSE payload->>'tenant_id' END)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tenants_notify AFTER UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tollgate_notify_change();
CREATE TRIGGER virtual_keys_notify AFTER UPDATE OR DELETE ON virtual_keys
    FOR EACH ROW EXECUTE FUNCTION tollgate_notify_change();
CREATE TRIGGER virtual_key_secrets_notify AFTER INSERT OR UPDATE OR DELETE ON virtual_key_secrets
    FOR EACH ROW EXECUTE FUNCTION tollgate_notify_change();
CREATE TRIGGER credentials_notify AFTER INSERT OR UPDATE OR DELETE ON credentials
    FOR EACH ROW EXECUTE FUNCTION tollgate_notify_change();
