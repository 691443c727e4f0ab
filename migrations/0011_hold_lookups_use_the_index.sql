-- Settlement finds its holds through the primary key, never by reading the whole holds table.
--
-- Why: holds has few live rows (the requests in flight and the unused admission tickets) but
-- churns at the request rate: every request inserts a hold and its settlement deletes it. Between
-- two autovacuum runs (a minute apart on stock settings) the table fills with dead rows, so its
-- pages grow from a handful to hundreds or thousands. PL/pgSQL caches a generic plan for each
-- statement of these functions once a connection has run them a few times, and a plan made while
-- holds was small reads it with a sequential scan (hash join): from then on each settlement batch
-- read every page of the table and checked every dead row. Seen in the bench at 32 connections:
-- 739 sequential scans of holds in 8 s, the table at 816 pages with 32,000 dead rows, and scanning
-- about half of Postgres's CPU.
--
-- With sequential scans off inside these functions the planner takes the primary key (or, for the
-- reaper, the expires_at index) whatever it believes the table's size to be. Every other table
-- these functions read is looked up by its primary key too, so nothing else changes. Procedures
-- cannot carry a SET clause and COMMIT, so it goes on the functions they call.
ALTER FUNCTION tollgate_settle(uuid, bigint, integer, integer, integer, integer, integer, boolean, uuid, integer, integer)
    SET enable_seqscan = off;
ALTER FUNCTION tollgate_settle_batch(uuid[], bigint[], integer[], integer[], integer[], integer[], integer[], boolean[],
                                     text[], integer[], integer[])
    SET enable_seqscan = off;
ALTER FUNCTION tollgate_settle_batch(uuid[], bigint[], integer[], integer[], integer[], integer[], integer[], boolean[],
                                     text[], integer[], integer[], boolean[], boolean[], uuid[], bigint[], text[], text[],
                                     text[], text[])
    SET enable_seqscan = off;
ALTER FUNCTION tollgate_reap_expired_holds(integer)
    SET enable_seqscan = off;
