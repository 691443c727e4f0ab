-- Tollgate control-plane schema.
-- Every tenant-owned table carries tenant_id so the schema can later be sharded by tenant.
-- Money is bigint nano-units (10^-9) of the tenant's currency; never floating point.

CREATE TABLE tenants (
    id               uuid PRIMARY KEY,
    slug             text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    currency         text NOT NULL CHECK (currency IN ('EUR', 'USD')),
    -- The tenant's AES-256 data key, wrapped by a master key (envelope header names the version).
    wrapped_data_key bytea NOT NULL,
    master_key_version integer NOT NULL,
    -- Tenant-wide budget and limits (null = none); every request needs room in these too.
    budget_limit_nanos bigint CHECK (budget_limit_nanos >= 0),
    budget_period    text CHECK (budget_period IN ('lifetime', 'daily', 'weekly', 'monthly')),
    rpm_limit        integer CHECK (rpm_limit > 0),
    tpm_limit        integer CHECK (tpm_limit > 0),
    max_concurrent   integer CHECK (max_concurrent > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((budget_limit_nanos IS NULL) = (budget_period IS NULL))
);

CREATE TABLE admin_tokens (
    id             uuid PRIMARY KEY,
    tenant_id      uuid REFERENCES tenants (id),
    role           text NOT NULL CHECK (role IN ('platform_admin', 'tenant_admin', 'tenant_viewer')),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- HMAC-SHA256 of the token under the server pepper; the token itself is never stored.
    token_hash     bytea NOT NULL UNIQUE,
    display_prefix text NOT NULL,
    expires_at     timestamptz,
    last_used_at   timestamptz,
    revoked_at     timestamptz,
    created_by     uuid REFERENCES admin_tokens (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'platform_admin') = (tenant_id IS NULL))
);
CREATE INDEX admin_tokens_tenant ON admin_tokens (tenant_id, created_at, id);

CREATE TABLE credentials (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    base_url          text NOT NULL,
    weight            integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 0 AND 1000),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    -- AES-256-GCM under the tenant's data key; AAD binds tenant id, credential id and purpose.
    secret_ciphertext bytea NOT NULL,
    secret_last4      text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX credentials_tenant ON credentials (tenant_id, created_at, id);

CREATE TABLE virtual_keys (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- 'expired' is not stored: it is derived from expires_at.
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    display_prefix     text NOT NULL,
    expires_at         timestamptz,
    allowed_models     text[] NOT NULL DEFAULT '{}',
    allowed_endpoints  text[] NOT NULL DEFAULT '{}',
    credential_ids     uuid[] NOT NULL DEFAULT '{}',
    metadata           jsonb NOT NULL DEFAULT '{}',
    budget_limit_nanos bigint CHECK (budget_limit_nanos >= 0),
    budget_period      text CHECK (budget_period IN ('lifetime', 'daily', 'weekly', 'monthly')),
    rpm_limit          integer CHECK (rpm_limit > 0),
    tpm_limit          integer CHECK (tpm_limit > 0),
    max_concurrent     integer CHECK (max_concurrent > 0),
    default_max_tokens integer CHECK (default_max_tokens > 0),
    revoked_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((budget_limit_nanos IS NULL) = (budget_period IS NULL))
);
CREATE INDEX virtual_keys_tenant ON virtual_keys (tenant_id, created_at, id);

-- The secrets of a virtual key: one normally, two during a rotation's grace period.
CREATE TABLE virtual_key_secrets (
    key_hash       bytea PRIMARY KEY,
    key_id         uuid NOT NULL REFERENCES virtual_keys (id),
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    display_prefix text NOT NULL,
    -- null while current; set to the end of the grace period when rotated away.
    valid_until    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX virtual_key_secrets_key ON virtual_key_secrets (key_id);

-- Spend and holds per budget window, for tenants and keys (owner_id is a tenant id or a key id).
-- The data plane reserves with one conditional UPDATE: spent + reserved + hold <= limit_nanos.
CREATE TABLE budget_windows (
    owner_id     uuid NOT NULL,
    window_start timestamptz NOT NULL,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    owner_kind   text NOT NULL CHECK (owner_kind IN ('tenant', 'key')),
    window_end   timestamptz,
    limit_nanos  bigint NOT NULL CHECK (limit_nanos >= 0),
    spent_nanos  bigint NOT NULL DEFAULT 0 CHECK (spent_nanos >= 0),
    reserved_nanos bigint NOT NULL DEFAULT 0 CHECK (reserved_nanos >= 0),
    PRIMARY KEY (owner_id, window_start)
);
CREATE INDEX budget_windows_tenant ON budget_windows (tenant_id);

-- Prices per model and currency; tenant_id null = platform-wide, otherwise a tenant's override.
CREATE TABLE prices (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid REFERENCES tenants (id),
    model                text NOT NULL CHECK (length(model) BETWEEN 1 AND 128),
    currency             text NOT NULL CHECK (currency IN ('EUR', 'USD')),
    input_per_million_nanos        bigint NOT NULL CHECK (input_per_million_nanos >= 0),
    output_per_million_nanos       bigint NOT NULL CHECK (output_per_million_nanos >= 0),
    cached_input_per_million_nanos bigint NOT NULL CHECK (cached_input_per_million_nanos >= 0),
    per_page_nanos       bigint CHECK (per_page_nanos >= 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (tenant_id, model, currency)
);

-- One row per request, written by the data plane exactly once per request id.
-- Partitioned by month; tollgate_ensure_ledger_partitions() creates the months ahead.
CREATE TABLE usage_ledger (
    request_id        uuid NOT NULL,
    started_at        timestamptz NOT NULL,
    tenant_id         uuid NOT NULL,
    key_id            uuid NOT NULL,
    credential_id     uuid,
    endpoint          text NOT NULL,
    model             text,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    cached_tokens     integer NOT NULL DEFAULT 0,
    pages             integer NOT NULL DEFAULT 0,
    cost_nanos        bigint NOT NULL,
    currency          text NOT NULL,
    status_code       integer NOT NULL,
    estimated         boolean NOT NULL DEFAULT false,
    upstream_latency_ms integer,
    total_latency_ms  integer,
    metadata          jsonb,
    traceparent       text,
    settled_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, started_at)
) PARTITION BY RANGE (started_at);
CREATE TABLE usage_ledger_default PARTITION OF usage_ledger DEFAULT;
CREATE INDEX usage_ledger_tenant_time ON usage_ledger (tenant_id, started_at);
CREATE INDEX usage_ledger_key_time ON usage_ledger (key_id, started_at);

CREATE FUNCTION tollgate_ensure_ledger_partitions(months_ahead integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    month_start date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    first date;
    name text;
BEGIN
    FOR i IN 0..months_ahead LOOP
        first := (month_start + make_interval(months => i))::date;
        name := 'usage_ledger_' || to_char(first, 'YYYY_MM');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF usage_ledger FOR VALUES FROM (%L) TO (%L)',
                name, (first::timestamp AT TIME ZONE 'UTC'),
                ((first + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
        END IF;
    END LOOP;
END;
$$;
SELECT tollgate_ensure_ledger_partitions(2);

CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    tenant_id      uuid,
    actor_token_id uuid,
    actor_role     text,
    action         text NOT NULL,
    target_type    text NOT NULL,
    target_id      text,
    -- Changed fields with secrets removed.
    diff           jsonb NOT NULL DEFAULT '{}',
    request_id     text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

-- Replays of create requests carrying an Idempotency-Key, scoped to the calling admin token.
CREATE TABLE idempotency_keys (
    token_id        uuid NOT NULL,
    idempotency_key text NOT NULL,
    operation       text NOT NULL,
    request_hash    bytea NOT NULL,
    tenant_id       uuid,
    response_status integer NOT NULL,
    -- Encrypted when it carries a one-time secret (a minted key or token).
    response_body   bytea NOT NULL,
    response_sealed boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, idempotency_key)
);
