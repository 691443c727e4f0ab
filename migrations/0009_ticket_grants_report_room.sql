-- A ticket grant also says how much of the key's requests/min and tokens/min is left after it.
--
-- Why: a request admitted exactly is answered with x-ratelimit-remaining-requests/-tokens, read
-- from the key's limit row as it admits. A request admitted on a ticket makes no round trip, so
-- the proxy answers it from the last grant's figure plus the tickets it still holds unused. Without
-- this, most requests of a busy key (those on tickets) carried the limits but not what remains.
--
-- A new procedure, not a changed one: a replica of the previous release keeps calling
-- tollgate_take_tickets (0006) during a rolling upgrade.
CREATE PROCEDURE tollgate_take_tickets_reporting_room(
    p_ticket_ids uuid[], p_key_id uuid, p_amount bigint, p_tokens bigint, p_proxy_id text, p_ttl_seconds integer,
    p_endpoint text, p_model text, p_headroom integer, p_min_count integer,
    INOUT ticket_ids uuid[] DEFAULT NULL, INOUT valid_for_ms bigint DEFAULT NULL,
    INOUT remaining_requests bigint DEFAULT NULL, INOUT remaining_tokens bigint DEFAULT NULL
)
LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz;
BEGIN
    -- Commits the grant: the room is read just after, as any admission would then see it.
    CALL tollgate_take_tickets(p_ticket_ids, p_key_id, p_amount, p_tokens, p_proxy_id, p_ttl_seconds, p_endpoint,
                               p_model, p_headroom, p_min_count, ticket_ids, valid_for_ms);
    IF coalesce(array_length(ticket_ids, 1), 0) > 0 THEN
        -- As tollgate_reserve_batch (0004) reports it after admitting: the room the GCRA clocks
        -- leave in the next minute.
        now_ts := clock_timestamp();
        SELECT CASE WHEN k.rpm_limit IS NULL THEN NULL
                    ELSE greatest(0, floor(extract(epoch FROM (interval '60 seconds' - (greatest(s.request_tat, now_ts) - now_ts)))
                                           * k.rpm_limit / 60))::bigint END,
               CASE WHEN k.tpm_limit IS NULL THEN NULL
                    ELSE greatest(0, floor(extract(epoch FROM (interval '60 seconds' - (greatest(s.token_tat, now_ts) - now_ts)))
                                           * k.tpm_limit / 60))::bigint END
          INTO remaining_requests, remaining_tokens
          FROM virtual_keys k LEFT JOIN limit_state s ON s.owner_id = k.id
         WHERE k.id = p_key_id;
    END IF;
END;
$$;
