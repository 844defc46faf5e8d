-- What the pipeline role may do: exactly the statements of load_airports.sql,
-- load_flights.sql, record_load_attempt.sql and the reads of the prepare step, on the tables
-- of schema airlines — no CREATE, no DROP, nothing outside the schema. Run as the owner of
-- the tables (the bootstrap identity) after sql/schema.sql; idempotent.
-- Temporary tables (the flights stage) need TEMP on the database, which PUBLIC holds by default.

GRANT USAGE ON SCHEMA airlines TO ROLE flightpipe;

-- Prepare step: LOCK, DELETE, COPY and SELECT on the dimension, and its load record.
-- (UPDATE and DELETE: the privileges PostgreSQL requires for an ACCESS EXCLUSIVE LOCK.)
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE airlines.airports_dim TO ROLE flightpipe;
GRANT SELECT, INSERT, DELETE ON TABLE airlines.dimension_loads TO ROLE flightpipe;

-- ETL job: replace a file's rows in the fact table and record every attempt.
GRANT SELECT, INSERT, DELETE ON TABLE airlines.daily_flights_fact TO ROLE flightpipe;
GRANT SELECT, INSERT ON TABLE airlines.load_ledger TO ROLE flightpipe;

-- Prepare step: whether the bootstrap must run again (the fingerprint of the DDL applied).
GRANT SELECT ON TABLE airlines.ddl_applied TO ROLE flightpipe;
