-- The worst routes by mean arrival delay (routes with at least 5 flights), with airport names.
SELECT dep_airport_id, dep_airport, arr_airport_id, arr_airport,
       COUNT(*) AS flights,
       ROUND(AVG(arr_delay::DECIMAL(12, 2)), 1)::FLOAT AS mean_arr_delay
FROM airlines.daily_flights_fact
WHERE (CAST(${date_from} AS DATE) IS NULL OR flight_date >= CAST(${date_from} AS DATE))
  AND (CAST(${date_to} AS DATE) IS NULL OR flight_date <= CAST(${date_to} AS DATE))
GROUP BY dep_airport_id, dep_airport, arr_airport_id, arr_airport
HAVING COUNT(arr_delay) >= 5
ORDER BY mean_arr_delay DESC, flights DESC, dep_airport_id, arr_airport_id
LIMIT 20;
