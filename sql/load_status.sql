-- The status the load batch recorded for one attempt: LOADED, or DUPLICATE when the version
-- had already been loaded. Parameters (already-quoted SQL literals): ${load_id}.
SELECT status FROM airlines.load_ledger WHERE load_id = ${load_id};
