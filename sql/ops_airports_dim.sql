-- The airports dimension as loaded: `flightpipe airports load` compares it before and after.
SELECT airport_id, city, state, name
FROM airlines.airports_dim
ORDER BY airport_id;
