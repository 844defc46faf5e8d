-- A few rows of the fact table, to show what a run loaded.
SELECT carrier, dep_airport_id, dep_airport, arr_airport_id, arr_airport, dep_delay, arr_delay,
       flight_date
FROM airlines.daily_flights_fact
ORDER BY flight_date NULLS LAST, carrier, dep_airport_id
LIMIT 5;
