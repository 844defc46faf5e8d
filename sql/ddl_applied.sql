-- The fingerprint of the DDL and grants last applied (empty before the first bootstrap).
SELECT ddl_hash FROM airlines.ddl_applied;
