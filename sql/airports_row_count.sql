-- Rows in the airports dimension (the prepare step reports it).
SELECT COUNT(*) AS row_count FROM airlines.airports_dim;
