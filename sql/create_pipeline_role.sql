-- The database role that holds every privilege the pipeline's statements need on schema
-- airlines (sql/grants.sql). Run as a superuser (or a user with the CREATE ROLE privilege),
-- only when sql/pipeline_role_exists.sql finds no such role. The pipeline's identities are
-- its members: IAM roles tagged RedshiftDbRoles=flightpipe on Redshift Serverless, or
-- `GRANT ROLE flightpipe TO <user>` for a database user.
CREATE ROLE flightpipe;
