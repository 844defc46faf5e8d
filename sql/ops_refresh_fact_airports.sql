-- `flightpipe airports load --refresh-facts`: re-join the fact rows with the airports
-- dimension as it is now, in ONE transaction (one BatchExecuteStatement), so that every row
-- carries the names a load would give it today. Rows are not updated in place: the pipeline's
-- database role holds SELECT, INSERT and DELETE on the fact table, not UPDATE
-- (sql/grants.sql), so each load (load_id) with a row whose names differ is deleted and
-- inserted again, re-joined (a Redshift UPDATE rewrites its rows the same way). The LOCK
-- comes first, as in sql/load_flights.sql, so no load commits in between.
-- The condition is that of sql/ops_fact_rows_with_stale_airports.sql.

LOCK airlines.daily_flights_fact;

CREATE TEMP TABLE stale_loads AS
SELECT DISTINCT f.load_id
FROM airlines.daily_flights_fact f
LEFT JOIN airlines.airports_dim dep ON dep.airport_id = f.dep_airport_id
LEFT JOIN airlines.airports_dim arr ON arr.airport_id = f.arr_airport_id
WHERE f.dep_airport <> dep.name
   OR (f.dep_airport IS NULL AND dep.name IS NOT NULL) OR (f.dep_airport IS NOT NULL AND dep.name IS NULL)
   OR f.dep_city <> dep.city
   OR (f.dep_city IS NULL AND dep.city IS NOT NULL) OR (f.dep_city IS NOT NULL AND dep.city IS NULL)
   OR f.dep_state <> dep.state
   OR (f.dep_state IS NULL AND dep.state IS NOT NULL) OR (f.dep_state IS NOT NULL AND dep.state IS NULL)
   OR f.arr_airport <> arr.name
   OR (f.arr_airport IS NULL AND arr.name IS NOT NULL) OR (f.arr_airport IS NOT NULL AND arr.name IS NULL)
   OR f.arr_city <> arr.city
   OR (f.arr_city IS NULL AND arr.city IS NOT NULL) OR (f.arr_city IS NOT NULL AND arr.city IS NULL)
   OR f.arr_state <> arr.state
   OR (f.arr_state IS NULL AND arr.state IS NOT NULL) OR (f.arr_state IS NOT NULL AND arr.state IS NULL);

CREATE TEMP TABLE refreshed_rows AS
SELECT f.carrier, f.dep_airport_id, f.arr_airport_id,
       dep.name AS dep_airport, dep.city AS dep_city, dep.state AS dep_state,
       arr.name AS arr_airport, arr.city AS arr_city, arr.state AS arr_state,
       f.dep_delay, f.arr_delay, f.flight_date, f.source_file, f.load_id, f.loaded_at
FROM airlines.daily_flights_fact f
JOIN stale_loads s ON s.load_id = f.load_id
LEFT JOIN airlines.airports_dim dep ON dep.airport_id = f.dep_airport_id
LEFT JOIN airlines.airports_dim arr ON arr.airport_id = f.arr_airport_id;

DELETE FROM airlines.daily_flights_fact
USING stale_loads
WHERE airlines.daily_flights_fact.load_id = stale_loads.load_id;

INSERT INTO airlines.daily_flights_fact (
    carrier, dep_airport_id, arr_airport_id,
    dep_airport, dep_city, dep_state,
    arr_airport, arr_city, arr_state,
    dep_delay, arr_delay, flight_date,
    source_file, load_id, loaded_at
)
SELECT carrier, dep_airport_id, arr_airport_id,
       dep_airport, dep_city, dep_state,
       arr_airport, arr_city, arr_state,
       dep_delay, arr_delay, flight_date,
       source_file, load_id, loaded_at
FROM refreshed_rows;
