-- The fact rows of one file, with the joined airport names (flightpipe smoke).
SELECT carrier, dep_airport_id, dep_airport, dep_city, dep_state, arr_airport_id, arr_airport,
       arr_city, arr_state, dep_delay, arr_delay, flight_date
FROM airlines.daily_flights_fact
WHERE source_file = ${source_file}
ORDER BY flight_date, carrier, dep_airport_id;
