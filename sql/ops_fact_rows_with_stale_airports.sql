-- Fact rows whose departure or arrival airport (name, city, state) is not what the airports
-- dimension says now: the names they were loaded with, before the dimension changed. An
-- airport id the dimension no longer holds counts when the row still carries a name, as a
-- load joins it to NULLs. Redshift has no IS DISTINCT FROM: "differs" is spelled out, a
-- NULL on one side only included. The same condition as sql/ops_refresh_fact_airports.sql.
SELECT COUNT(*) AS stale_rows
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
