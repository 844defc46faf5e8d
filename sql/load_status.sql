-- The status the load batch recorded for one attempt: LOADED, DUPLICATE when the version had
-- already been loaded, or SUPERSEDED when a newer version of the file had.
-- Parameters (already-quoted SQL literals): ${load_id}.
SELECT status FROM airlines.load_ledger WHERE load_id = ${load_id};
