-- Load one file's staged rows into airlines.daily_flights_fact, in ONE transaction
-- (one BatchExecuteStatement): stage them, replace the rows of its source file, enrich
-- them with both airports, and record the attempt in the ledger. A failure anywhere
-- rolls all of it back; the job then records a FAILED attempt separately.
-- The staged rows are gzip CSV parts (one from the Python shell job, one per split from
-- the Spark job); the COPY manifest names exactly those parts, and each is mandatory
-- (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html).
-- Parameters (already-quoted SQL literals): ${manifest_uri}, ${iam_role}, ${source_file},
-- ${source_version}, ${source_sequencer}, ${load_id}, ${rows_read}, ${rows_rejected},
-- ${unmatched_airport_rows}, ${started_at}, ${execution_id}.
--
-- The LOCK comes first, before anything that takes the transaction's snapshot (CREATE TABLE,
-- COPY, DELETE: https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html).
-- Loads of the fact table then run one after the other, each seeing the rows and the ledger
-- row the previous one committed: the decision below is taken after the LOCK, so of two loads
-- of one file the one committing last always knows what the other did (an older version
-- finding a newer one loaded leaves it alone), two loads of the same new file can no longer
-- both delete nothing and both insert
-- (under snapshot isolation they would, duplicating the file), and two replacements of the same
-- rows wait instead of failing with a serializable isolation violation ("force serialization by
-- locking all tables": https://repost.aws/knowledge-center/redshift-serializable-isolation).

LOCK airlines.daily_flights_fact;

-- What this attempt does, decided once, under the LOCK, from the attempts committed before:
-- - DUPLICATE: this version is already LOADED (S3 events reach EventBridge at least once);
-- - SUPERSEDED: a newer version of the file is already LOADED — one whose ordering key
--   (source_sequencer: the S3 event's sequencer, flightpipe/sequencer.py) is greater. S3
--   does not deliver events in order and loads of one key race, so an older upload can
--   reach this point last; its rows are left alone.
-- - LOADED otherwise: the rows of the file's previous version are replaced.
-- An attempt without a sequencer (NULL) is never superseded, and its LOADED row supersedes
-- nothing: such a load replaces the file's rows as it comes.
CREATE TEMP TABLE load_decision AS
SELECT CASE WHEN same.loaded > 0 THEN 'DUPLICATE'
            WHEN newer.loaded > 0 THEN 'SUPERSEDED'
            ELSE 'LOADED' END AS status,
       newer.sequencer AS newer_sequencer
FROM (
    SELECT COUNT(*) AS loaded FROM airlines.load_ledger l
    WHERE l.source_file = ${source_file} AND l.source_version = ${source_version}
      AND l.source_version <> '' AND l.status = 'LOADED'
) same
CROSS JOIN (
    SELECT COUNT(*) AS loaded, MAX(l.source_sequencer) AS sequencer
    FROM airlines.load_ledger l
    WHERE l.source_file = ${source_file} AND l.status = 'LOADED'
      AND l.source_sequencer > ${source_sequencer}
) newer;

CREATE TEMP TABLE flights_stage (
    carrier        VARCHAR(8),
    dep_airport_id BIGINT,
    arr_airport_id BIGINT,
    dep_delay      INTEGER,
    arr_delay      INTEGER,
    flight_date    DATE
);

COPY flights_stage (carrier, dep_airport_id, arr_airport_id, dep_delay, arr_delay, flight_date)
FROM ${manifest_uri}
IAM_ROLE ${iam_role}
MANIFEST
GZIP
FORMAT AS CSV;

DELETE FROM airlines.daily_flights_fact
WHERE source_file = ${source_file}
  AND EXISTS (SELECT 1 FROM load_decision WHERE status = 'LOADED');

INSERT INTO airlines.daily_flights_fact (
    carrier, dep_airport_id, arr_airport_id,
    dep_airport, dep_city, dep_state,
    arr_airport, arr_city, arr_state,
    dep_delay, arr_delay, flight_date,
    source_file, load_id, loaded_at
)
SELECT s.carrier, s.dep_airport_id, s.arr_airport_id,
       dep.name, dep.city, dep.state,
       arr.name, arr.city, arr.state,
       s.dep_delay, s.arr_delay, s.flight_date,
       ${source_file}, ${load_id}, GETDATE()
FROM flights_stage s
LEFT JOIN airlines.airports_dim dep ON dep.airport_id = s.dep_airport_id
LEFT JOIN airlines.airports_dim arr ON arr.airport_id = s.arr_airport_id
WHERE EXISTS (SELECT 1 FROM load_decision WHERE status = 'LOADED');

INSERT INTO airlines.load_ledger (
    load_id, source_file, source_version, status,
    rows_read, rows_loaded, rows_rejected, unmatched_airport_rows,
    error, started_at, finished_at, execution_id, source_sequencer
)
SELECT ${load_id}, ${source_file}, ${source_version}, d.status,
       ${rows_read}, CASE WHEN d.status = 'LOADED' THEN s.staged ELSE 0 END,
       ${rows_rejected}, ${unmatched_airport_rows},
       CASE d.status
           WHEN 'DUPLICATE' THEN 'this version was already loaded: a duplicate delivery'
           WHEN 'SUPERSEDED' THEN 'a newer version of this file is already loaded (sequencer '
                                  || d.newer_sequencer || '): its rows were left alone'
       END,
       CAST(${started_at} AS TIMESTAMP), GETDATE(), ${execution_id}, ${source_sequencer}
FROM (SELECT COUNT(*) AS staged FROM flights_stage) s
CROSS JOIN load_decision d;
