-- Load attempts started at or after ${since}, newest first (flightpipe status).
SELECT load_id, source_file, source_version, status, rows_read, rows_loaded, rows_rejected,
       unmatched_airport_rows, error, started_at, finished_at, execution_id
FROM airlines.load_ledger
WHERE started_at >= CAST(${since} AS TIMESTAMP)
ORDER BY started_at DESC;
