-- Rows in the fact table and the airports dimension.
SELECT (SELECT COUNT(*) FROM airlines.daily_flights_fact) AS daily_flights_fact_rows,
       (SELECT COUNT(*) FROM airlines.airports_dim) AS airports_dim_rows;
