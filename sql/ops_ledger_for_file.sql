-- Every load attempt at one file, oldest first (flightpipe show).
SELECT load_id, source_file, source_version, status, rows_read, rows_loaded, rows_rejected,
       unmatched_airport_rows, error, started_at, finished_at, execution_id, source_sequencer
FROM airlines.load_ledger
WHERE source_file = ${source_file}
ORDER BY started_at;
