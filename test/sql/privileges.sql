-- privileges: nothing is callable until granted; settings holding keys are
-- hidden from everyone but superusers.
CREATE ROLE sm_reader LOGIN;
CREATE ROLE sm_nobody LOGIN;
\! test/emulator/smctl create priv/app '{"username":"app","password":"Priv-Pw-9"}'

-- EXECUTE is revoked from PUBLIC on every function of the extension
SELECT p.proname, has_function_privilege('sm_nobody', p.oid, 'EXECUTE') AS nobody_can
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'secretsmgr'
ORDER BY 1;
SELECT has_table_privilege('sm_nobody', 'secretsmgr_managed', 'SELECT') AS managed_readable,
       has_table_privilege('sm_nobody', 'secretsmgr_rotation_history', 'SELECT') AS history_readable;

SET ROLE sm_nobody;
SELECT secretsmgr_get_secret('priv/app');
SELECT secretsmgr_rotate('priv/app');
RESET ROLE;

-- a DBA grants reading one way, and only that
GRANT EXECUTE ON FUNCTION secretsmgr_get_secret(text, text, text) TO sm_reader;
SET ROLE sm_reader;
SELECT secretsmgr_get_secret('priv/app') ->> 'username' AS reader_reads;
SELECT secretsmgr_get_secret_string('priv/app');
SELECT secretsmgr_rotate('priv/app');

-- key settings: hidden and not settable (the SQLSTATE only: PostgreSQL 16
-- reworded the message)
\set VERBOSITY sqlstate
SHOW secretsmgr.secret_access_key;
SHOW secretsmgr.access_key_id;
\set VERBOSITY default
SET secretsmgr.endpoint = 'http://127.0.0.1:1/';
SET secretsmgr.access_key_id = 'AKIDSTOLEN';
SELECT count(*) AS visible_key_settings FROM pg_settings
WHERE name IN ('secretsmgr.access_key_id', 'secretsmgr.secret_access_key', 'secretsmgr.session_token');
RESET ROLE;

SELECT name FROM pg_settings WHERE name LIKE 'secretsmgr.%' ORDER BY 1;
REVOKE EXECUTE ON FUNCTION secretsmgr_get_secret(text, text, text) FROM sm_reader;
DROP ROLE sm_reader;
DROP ROLE sm_nobody;
