-- The columns of the tables of schema airlines (empty before the first bootstrap): which
-- statements of sql/schema_upgrades.sql an existing warehouse still needs.
SELECT table_name, column_name
FROM information_schema.columns
WHERE table_schema = 'airlines';
