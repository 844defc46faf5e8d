-- The airport ids of the dimension: the job reports rows whose airports it does not know.
SELECT airport_id FROM airlines.airports_dim;
