-- Reload airlines.airports_dim from the airports CSV in S3, in one transaction,
-- and record which version of the object is loaded. The lock makes concurrent
-- reloads run one after the other instead of interleaving their rows.
-- COPY reads a manifest naming the one airports object: FROM 's3://…' alone is a key prefix
-- and would also load e.g. airports.csv.bak beside it.
-- Parameters (already-quoted SQL literals): ${manifest_uri}, ${source_uri}, ${source_version},
-- ${iam_role}.

LOCK airlines.airports_dim;

DELETE FROM airlines.airports_dim;

COPY airlines.airports_dim (airport_id, city, state, name)
FROM ${manifest_uri}
IAM_ROLE ${iam_role}
MANIFEST
FORMAT AS CSV
IGNOREHEADER 1;

DELETE FROM airlines.dimension_loads WHERE dimension = 'airports';

INSERT INTO airlines.dimension_loads (dimension, source_uri, source_version, row_count, loaded_at)
SELECT 'airports', ${source_uri}, ${source_version}, COUNT(*), GETDATE()
FROM airlines.airports_dim;
