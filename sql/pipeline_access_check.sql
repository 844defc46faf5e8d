-- Fails unless the calling user can read every table of schema airlines and the tables have
-- the columns sql/schema_upgrades.sql adds (reads no rows).
SELECT (SELECT COUNT(*) FROM airlines.airports_dim WHERE 1 = 0)
     + (SELECT COUNT(*) FROM airlines.dimension_loads WHERE 1 = 0)
     + (SELECT COUNT(*) FROM airlines.daily_flights_fact WHERE 1 = 0)
     + (SELECT COUNT(source_sequencer) FROM airlines.load_ledger WHERE 1 = 0) AS visible_rows;
