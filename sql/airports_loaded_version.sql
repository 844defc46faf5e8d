-- The source version of the loaded airports dimension and its row count, if any.
SELECT d.source_version, (SELECT COUNT(*) FROM airlines.airports_dim) AS row_count
FROM airlines.dimension_loads d
WHERE d.dimension = 'airports';
