-- Record a load attempt that loaded nothing: status REJECTED (the file was turned
-- away) or FAILED (the load transaction failed and was rolled back).
-- Parameters (already-quoted SQL literals): ${load_id}, ${source_file}, ${source_version},
-- ${source_sequencer}, ${status}, ${rows_read}, ${rows_rejected}, ${unmatched_airport_rows},
-- ${error}, ${started_at}, ${execution_id}.

INSERT INTO airlines.load_ledger (
    load_id, source_file, source_version, status,
    rows_read, rows_loaded, rows_rejected, unmatched_airport_rows,
    error, started_at, finished_at, execution_id, source_sequencer
)
VALUES (
    ${load_id}, ${source_file}, ${source_version}, ${status},
    ${rows_read}, 0, ${rows_rejected}, ${unmatched_airport_rows},
    ${error}, ${started_at}, GETDATE(), ${execution_id}, ${source_sequencer}
);
