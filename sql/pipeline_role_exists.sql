-- Whether the pipeline's database role exists (Redshift has no CREATE ROLE IF NOT EXISTS).
SELECT COUNT(*) AS role_count FROM svv_roles WHERE role_name = 'flightpipe';
