-- Columns added to the tables of sql/schema.sql after their first release, for warehouses
-- created before them. Redshift's ALTER TABLE ... ADD COLUMN has no IF NOT EXISTS
-- (https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html), so the bootstrap
-- runs each statement only when its table exists without its column (sql/schema_columns.sql);
-- schema.sql creates a new table with every column already. One ADD COLUMN per statement.

-- The ordering key of the attempt's version (flightpipe/sequencer.py).
ALTER TABLE airlines.load_ledger ADD COLUMN source_sequencer VARCHAR(128);
