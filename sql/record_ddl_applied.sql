-- Record the fingerprint of the DDL and grants just applied; run by the bootstrap identity
-- in the same transaction as the grants. Parameters (already-quoted SQL literals): ${ddl_hash}.
DELETE FROM airlines.ddl_applied;
INSERT INTO airlines.ddl_applied (ddl_hash, applied_at) VALUES (${ddl_hash}, GETDATE());
