-- Warehouse schema for the flight pipeline (Redshift dialect).
-- Idempotent: every statement may run again on an existing warehouse.
-- Statements are separated by a semicolon at the end of a line.

CREATE SCHEMA IF NOT EXISTS airlines;

CREATE TABLE IF NOT EXISTS airlines.airports_dim (
    airport_id BIGINT       NOT NULL,
    city       VARCHAR(64),
    state      VARCHAR(32),
    name       VARCHAR(128),
    PRIMARY KEY (airport_id)
)
DISTSTYLE ALL
SORTKEY (airport_id);

CREATE TABLE IF NOT EXISTS airlines.daily_flights_fact (
    carrier        VARCHAR(8)   NOT NULL,
    dep_airport_id BIGINT       NOT NULL,
    arr_airport_id BIGINT       NOT NULL,
    dep_airport    VARCHAR(128),
    dep_city       VARCHAR(64),
    dep_state      VARCHAR(32),
    arr_airport    VARCHAR(128),
    arr_city       VARCHAR(64),
    arr_state      VARCHAR(32),
    dep_delay      INTEGER,
    arr_delay      INTEGER,
    flight_date    DATE,
    source_file    VARCHAR(1024) NOT NULL,
    load_id        VARCHAR(64)   NOT NULL,
    loaded_at      TIMESTAMP     NOT NULL
)
DISTSTYLE EVEN
SORTKEY (flight_date);

-- One row per attempt to load one file (an execution that failed before its job ran has
-- one too). status: LOADED, REJECTED, FAILED, DUPLICATE (this version was already loaded) or
-- SUPERSEDED (a newer version of the file was already loaded: its rows were left alone).
-- source_sequencer orders the versions of one file: the S3 event's sequencer as an ordering
-- key (flightpipe/sequencer.py); NULL when the execution had none. A column added after the
-- first release reaches existing warehouses through sql/schema_upgrades.sql.
CREATE TABLE IF NOT EXISTS airlines.load_ledger (
    load_id                VARCHAR(64)   NOT NULL,
    source_file            VARCHAR(1024) NOT NULL,
    source_version         VARCHAR(1024),
    status                 VARCHAR(16)   NOT NULL,
    rows_read              BIGINT,
    rows_loaded            BIGINT,
    rows_rejected          BIGINT,
    unmatched_airport_rows BIGINT,
    error                  VARCHAR(4096),
    started_at             TIMESTAMP     NOT NULL,
    finished_at            TIMESTAMP,
    execution_id           VARCHAR(2048),
    source_sequencer       VARCHAR(128),
    PRIMARY KEY (load_id)
)
DISTSTYLE ALL
SORTKEY (started_at);

-- Which version of each dimension source file is loaded.
CREATE TABLE IF NOT EXISTS airlines.dimension_loads (
    dimension      VARCHAR(64)   NOT NULL,
    source_uri     VARCHAR(1024) NOT NULL,
    source_version VARCHAR(1024) NOT NULL,
    row_count      BIGINT,
    loaded_at      TIMESTAMP     NOT NULL,
    PRIMARY KEY (dimension)
)
DISTSTYLE ALL;

-- The fingerprint of the DDL and grants last applied (sql/schema.sql,
-- sql/create_pipeline_role.sql, sql/grants.sql): the prepare step re-runs the bootstrap only
-- when they changed, so a burst of executions does not re-apply them all at once.
CREATE TABLE IF NOT EXISTS airlines.ddl_applied (
    ddl_hash   VARCHAR(64) NOT NULL,
    applied_at TIMESTAMP   NOT NULL
)
DISTSTYLE ALL;
