-- Two airports of the dimension, for the file flightpipe smoke generates.
SELECT airport_id FROM airlines.airports_dim ORDER BY airport_id LIMIT 2;
