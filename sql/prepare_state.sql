-- Everything the prepare step checks, in one statement (one Data API round trip when nothing
-- changed): the fingerprint of the DDL last applied, the source version of the loaded
-- airports dimension and its row count. It fails, like sql/pipeline_access_check.sql, unless
-- the calling user can read every table of schema airlines with the columns
-- sql/schema_upgrades.sql adds (reads no fact or ledger rows).
SELECT (SELECT MAX(ddl_hash) FROM airlines.ddl_applied) AS ddl_hash,
       (SELECT MAX(source_version) FROM airlines.dimension_loads
        WHERE dimension = 'airports') AS airports_version,
       (SELECT COUNT(*) FROM airlines.airports_dim) AS airports_rows,
       (SELECT COUNT(*) FROM airlines.daily_flights_fact WHERE 1 = 0)
     + (SELECT COUNT(source_sequencer) FROM airlines.load_ledger WHERE 1 = 0) AS visible_rows;
