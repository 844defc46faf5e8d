-- Flights and delays by departure state.
SELECT COALESCE(dep_state, '(unknown)') AS dep_state,
       COUNT(*) AS flights,
       ROUND(AVG(dep_delay::DECIMAL(12, 2)), 1)::FLOAT AS mean_dep_delay,
       ROUND(AVG(arr_delay::DECIMAL(12, 2)), 1)::FLOAT AS mean_arr_delay,
       ROUND(100.0 * SUM(CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END) / NULLIF(COUNT(arr_delay), 0), 1)::FLOAT
           AS pct_delayed_15
FROM airlines.daily_flights_fact
WHERE (CAST(${date_from} AS DATE) IS NULL OR flight_date >= CAST(${date_from} AS DATE))
  AND (CAST(${date_to} AS DATE) IS NULL OR flight_date <= CAST(${date_to} AS DATE))
GROUP BY COALESCE(dep_state, '(unknown)')
ORDER BY flights DESC, dep_state;
