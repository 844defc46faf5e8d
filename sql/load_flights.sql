-- Load one file's staged rows into airlines.daily_flights_fact, in ONE transaction
-- (one BatchExecuteStatement): stage them, replace the rows of its source file, enrich
-- them with both airports, and record the attempt in the ledger. A failure anywhere
-- rolls all of it back; the job then records a FAILED attempt separately.
-- The staged rows are gzip CSV parts (one from the Python shell job, one per split from
-- the Spark job); the COPY manifest names exactly those parts, and each is mandatory
-- (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html).
-- Parameters (already-quoted SQL literals): ${manifest_uri}, ${iam_role}, ${source_file},
-- ${source_version}, ${load_id}, ${rows_read}, ${rows_rejected},
-- ${unmatched_airport_rows}, ${started_at}, ${execution_id}.
--
-- The LOCK comes first, before anything that takes the transaction's snapshot (CREATE TABLE,
-- COPY, DELETE: https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html).
-- Loads of the fact table then run one after the other, each seeing the rows the previous one
-- committed: two loads of the same new file can no longer both delete nothing and both insert
-- (under snapshot isolation they would, duplicating the file), and two replacements of the same
-- rows wait instead of failing with a serializable isolation violation ("force serialization by
-- locking all tables": https://repost.aws/knowledge-center/redshift-serializable-isolation).

LOCK airlines.daily_flights_fact;

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

-- A version already LOADED is a duplicate delivery (S3 events reach EventBridge at least
-- once): the batch then changes no fact row and records a DUPLICATE attempt. Under the LOCK
-- above, a concurrent delivery of the same version sees the other's LOADED row here.
-- A new version of the file (a re-upload) replaces the rows of the previous one.
DELETE FROM airlines.daily_flights_fact
WHERE source_file = ${source_file}
  AND NOT EXISTS (
      SELECT 1 FROM airlines.load_ledger l
      WHERE l.source_file = ${source_file} AND l.source_version = ${source_version}
        AND l.source_version <> '' AND l.status = 'LOADED'
  );

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
WHERE NOT EXISTS (
    SELECT 1 FROM airlines.load_ledger l
    WHERE l.source_file = ${source_file} AND l.source_version = ${source_version}
      AND l.source_version <> '' AND l.status = 'LOADED'
);

INSERT INTO airlines.load_ledger (
    load_id, source_file, source_version, status,
    rows_read, rows_loaded, rows_rejected, unmatched_airport_rows,
    error, started_at, finished_at, execution_id
)
SELECT ${load_id}, ${source_file}, ${source_version},
       CASE WHEN d.loaded > 0 THEN 'DUPLICATE' ELSE 'LOADED' END,
       ${rows_read}, CASE WHEN d.loaded > 0 THEN 0 ELSE s.staged END,
       ${rows_rejected}, ${unmatched_airport_rows},
       CASE WHEN d.loaded > 0 THEN 'this version was already loaded: a duplicate delivery' END,
       CAST(${started_at} AS TIMESTAMP), GETDATE(), ${execution_id}
FROM (SELECT COUNT(*) AS staged FROM flights_stage) s
CROSS JOIN (
    SELECT COUNT(*) AS loaded FROM airlines.load_ledger l
    WHERE l.source_file = ${source_file} AND l.source_version = ${source_version}
      AND l.source_version <> '' AND l.status = 'LOADED'
) d;
