-- What became of each version of each file under a prefix (flightpipe backfill), newest
-- attempt first within a version:
-- - status: the last attempt's status (the latest started);
-- - settled: 1 when an attempt of the version LOADED it, found it already loaded (DUPLICATE)
--   or found a newer version loaded (SUPERSEDED): nothing is left to do for it;
-- - sequencer: the ordering key an attempt recorded for the version (its S3 event's);
-- - file_sequencer: the greatest ordering key recorded for any version of the file.
SELECT source_file, source_version, status, settled, sequencer, file_sequencer
FROM (
    SELECT source_file, source_version, status,
           ROW_NUMBER() OVER (
               PARTITION BY source_file, source_version ORDER BY started_at DESC, load_id DESC
           ) AS attempt,
           MAX(CASE WHEN status IN ('LOADED', 'DUPLICATE', 'SUPERSEDED') THEN 1 ELSE 0 END)
               OVER (PARTITION BY source_file, source_version) AS settled,
           MAX(source_sequencer) OVER (PARTITION BY source_file, source_version) AS sequencer,
           MAX(source_sequencer) OVER (PARTITION BY source_file) AS file_sequencer
    FROM airlines.load_ledger
    WHERE source_file LIKE ${source_prefix_pattern}
) AS attempts
WHERE attempt = 1;
