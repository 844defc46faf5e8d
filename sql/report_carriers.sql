-- Flights, mean and p90 arrival delay and the share delayed more than 15 minutes, by carrier.
-- Averages are taken over DECIMAL: Redshift averages an INTEGER column as a BIGINT (truncated),
-- https://docs.aws.amazon.com/redshift/latest/dg/r_AVG.html (the other reports do the same).
-- Cancelled or diverted flights (no arrival delay) count as flights, not in the delay figures.
SELECT carrier,
       COUNT(*) AS flights,
       ROUND(AVG(arr_delay::DECIMAL(12, 2)), 1)::FLOAT AS mean_arr_delay,
       ROUND(PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY arr_delay)::DECIMAL(12, 2), 1)::FLOAT
           AS p90_arr_delay,
       ROUND(100.0 * SUM(CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END) / NULLIF(COUNT(arr_delay), 0), 1)::FLOAT
           AS pct_delayed_15
FROM airlines.daily_flights_fact
WHERE (CAST(${date_from} AS DATE) IS NULL OR flight_date >= CAST(${date_from} AS DATE))
  AND (CAST(${date_to} AS DATE) IS NULL OR flight_date <= CAST(${date_to} AS DATE))
GROUP BY carrier
ORDER BY flights DESC, carrier;
