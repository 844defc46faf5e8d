-- The latest load attempt of one execution.
SELECT status, rows_read, rows_loaded, rows_rejected, unmatched_airport_rows, error
FROM airlines.load_ledger
WHERE execution_id = ${execution_id}
ORDER BY started_at DESC
LIMIT 1;
