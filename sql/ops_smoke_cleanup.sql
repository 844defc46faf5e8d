-- Remove the fact rows a smoke run loaded; its ledger rows stay, named by the smoke key.
DELETE FROM airlines.daily_flights_fact WHERE source_file = ${source_file};
