-- Holds lose their foreign keys to tenants and virtual_keys.
--
-- Why: every hold insert ran two referential checks, each a separate query that share-locks the
-- tenant's and the key's row (FOR KEY SHARE). A ticket grant inserts up to 256 holds at once, and
-- those checks were more than half of its cost: measured on the benchmark machine, 17-24 µs per
-- ticket with them, 7-8 µs without (200 tickets per grant, settle unchanged at 31-42 µs per row).
-- Concurrent share locks on one hot tenant row also turn into multixacts.
--
-- Nothing is lost: every function that inserts a hold (tollgate_reserve, tollgate_reserve_batch,
-- tollgate_grant_tickets) reads the key and its tenant in the same transaction first, and tenants
-- and keys are never deleted (they are suspended or revoked), so a hold cannot name a missing one.
-- The usage ledger never had these foreign keys, for the same reason.
ALTER TABLE holds DROP CONSTRAINT IF EXISTS holds_tenant_id_fkey;
ALTER TABLE holds DROP CONSTRAINT IF EXISTS holds_key_id_fkey;
