-- A virtual key with holds outstanding cannot be deleted.
--
-- Why: 0007 dropped the holds' foreign keys, which had refused such deletes, to make hold inserts
-- cheaper. Tollgate itself never deletes keys or tenants (they are revoked or suspended), but an
-- operator may by hand, and a hold naming a missing key could never be settled: the reservation,
-- slot and tokens it took would be lost track of. This trigger restores the refusal at the cost of
-- one look at the (small, in-flight only) holds table per deleted key, and nothing per insert.
-- Tenants need no trigger: a tenant's keys reference it, so it cannot go before they do.
CREATE FUNCTION tollgate_refuse_key_delete_with_holds() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM holds WHERE key_id = OLD.id) THEN
        RAISE EXCEPTION 'virtual key % cannot be deleted: requests admitted under it are not settled yet', OLD.id
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Revoke the key instead; its holds settle, or expire and are reaped, within minutes.';
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER virtual_keys_refuse_delete_with_holds BEFORE DELETE ON virtual_keys
    FOR EACH ROW EXECUTE FUNCTION tollgate_refuse_key_delete_with_holds();
