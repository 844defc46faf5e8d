-- Record an execution that failed before its job wrote a ledger row (the state machine's
-- RecordFailure step): a FAILED attempt that loaded nothing, unless the execution already has
-- a row (its job recorded the attempt, with its own counts and error).
-- Parameters (already-quoted SQL literals): ${load_id}, ${source_file}, ${source_version},
-- ${source_sequencer}, ${error}, ${started_at}, ${execution_id}.

INSERT INTO airlines.load_ledger (
    load_id, source_file, source_version, status,
    rows_read, rows_loaded, rows_rejected, unmatched_airport_rows,
    error, started_at, finished_at, execution_id, source_sequencer
)
SELECT ${load_id}, ${source_file}, ${source_version}, 'FAILED',
       NULL, 0, NULL, NULL,
       ${error}, CAST(${started_at} AS TIMESTAMP), GETDATE(), ${execution_id}, ${source_sequencer}
FROM (
    SELECT COUNT(*) AS recorded FROM airlines.load_ledger WHERE execution_id = ${execution_id}
) e
WHERE e.recorded = 0;
