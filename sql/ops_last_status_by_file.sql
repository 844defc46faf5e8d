-- The last recorded status of each file under a prefix (flightpipe backfill --failed-only).
SELECT source_file, status
FROM (
    SELECT source_file, status,
           ROW_NUMBER() OVER (PARTITION BY source_file ORDER BY started_at DESC, load_id DESC) AS attempt
    FROM airlines.load_ledger
    WHERE source_file LIKE ${source_prefix_pattern}
) AS attempts
WHERE attempt = 1;
