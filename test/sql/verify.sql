-- verify: secretsmgr_verify checks a version's password against the role's
-- verifier in pg_authid (SCRAM-SHA-256 and MD5) with PostgreSQL's own code,
-- and says why when it does not log in.  It never writes: it works in a
-- read-only transaction (and on a standby, see test/t).  The DBA calls run
-- as regress_dba (CREATEROLE, the DBA grants of docs/security.md); reading
-- pg_authid and the secret's metadata is the test's, as superuser.
\pset format unaligned
\! test/emulator/smctl reset --state
\! test/emulator/smctl create ver/app '{"engine":"postgres","username":"regress_ver_app","password":"Ver-Initial-Pw-1"}'
\! test/emulator/smctl create ver/gone '{"username":"regress_ver_gone","password":"Ver-Gone-Pw-2"}'
\! test/emulator/smctl create ver/bad '{"username":"regress_ver_bad","password":"Ver-Bad-Pw-3"}'
\! test/emulator/smctl create ver/unmanaged '{"username":"regress_ver_app","password":"Ver-Unmanaged-Pw-4"}'
SET secretsmgr.cache_ttl = 0;


CREATE ROLE regress_ver_app LOGIN;
CREATE ROLE regress_ver_gone LOGIN;
CREATE ROLE regress_ver_bad LOGIN;
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_manage('ver/app', 'regress_ver_app');
SELECT secretsmgr_manage('ver/gone', 'regress_ver_gone');
SELECT secretsmgr_manage('ver/bad', 'regress_ver_bad');

-- no password yet
SELECT secretsmgr_verify('ver/app') AS verifies;
SELECT length(secretsmgr_rotate('ver/app')) AS id_length;
-- SCRAM-SHA-256: AWSCURRENT verifies (the rotation left no AWSPENDING, so
-- that is false, saying why); the previous password does not
SELECT secretsmgr_verify('ver/app') AS current, secretsmgr_verify('ver/app', 'AWSPENDING') AS pending;
SELECT secretsmgr_verify('ver/app', 'AWSPREVIOUS') AS previous;
SELECT secretsmgr_verify('ver/app', 'NOSUCHSTAGE') AS no_such_stage;
RESET ROLE;
SELECT secretsmgr_describe_secret('ver/app') ->> 'ARN' AS arn \gset
SELECT rolpassword LIKE 'SCRAM-SHA-256$4096:%' AS scram FROM pg_authid WHERE rolname = 'regress_ver_app';
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_verify(:'arn') AS by_arn;
-- verify agrees with a real login
SELECT sm_login('ver/app') AS logs_in;

-- MD5: the verifier is 'md5' || md5(password || role name), built in SQL
-- without the password ever being in the text (PostgreSQL 18 warns that
-- MD5 is deprecated)
SET client_min_messages = error;
DO $$ BEGIN
	EXECUTE format('ALTER ROLE regress_ver_app PASSWORD %L',
		'md5' || md5((sm_value('ver/app') ->> 'password') || 'regress_ver_app'));
END $$;
RESET client_min_messages;
RESET ROLE;
SELECT rolpassword LIKE 'md5%' AS md5 FROM pg_authid WHERE rolname = 'regress_ver_app';
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_verify('ver/app') AS md5_verifies, secretsmgr_verify('ver/app', 'AWSPREVIOUS') AS previous;
SELECT length(secretsmgr_reconcile('ver/app')) AS id_length;

-- the transaction's own ALTER ROLE is seen
BEGIN;
ALTER ROLE regress_ver_app PASSWORD NULL;
SELECT secretsmgr_verify('ver/app') AS after_own_alter;
ROLLBACK;
SELECT secretsmgr_verify('ver/app') AS after_rollback;

-- a right password that still would not log in
ALTER ROLE regress_ver_app NOLOGIN;
SELECT secretsmgr_verify('ver/app') AS nologin;
ALTER ROLE regress_ver_app LOGIN VALID UNTIL '2001-01-01';
SELECT secretsmgr_verify('ver/app') AS expired;
ALTER ROLE regress_ver_app VALID UNTIL 'infinity';
SELECT secretsmgr_verify('ver/app') AS valid_again;

-- read-only transaction
BEGIN READ ONLY;
SELECT secretsmgr_verify('ver/app') AS read_only;
COMMIT;

-- a bound role that was dropped; a version naming a role not bound
DROP ROLE regress_ver_gone;
SELECT secretsmgr_verify('ver/gone') AS dropped_role;
\! test/emulator/smctl put ver/bad '{"username":"regress_ver_app","password":"Ver-Foreign-Pw-5"}'
SELECT secretsmgr_verify('ver/bad') AS foreign_user;

-- values that cannot be verified, and bad arguments
\! test/emulator/smctl put ver/bad '{"username":"regress_ver_bad"}'
SELECT sm_error($$SELECT secretsmgr_verify('ver/bad')$$);
\! test/emulator/smctl put ver/bad '{"username":"regress_ver_bad","password":17}'
SELECT sm_error($$SELECT secretsmgr_verify('ver/bad')$$);
\! test/emulator/smctl put ver/bad '["regress_ver_bad","Ver-Array-Pw-6"]'
SELECT sm_error($$SELECT secretsmgr_verify('ver/bad')$$);
\! test/emulator/smctl put ver/bad 'AAECAw==' --binary
SELECT sm_error($$SELECT secretsmgr_verify('ver/bad')$$);
SELECT sm_error($$SELECT secretsmgr_verify('ver/unmanaged')$$);
SELECT sm_error($$SELECT secretsmgr_verify('ver/app', '')$$);
SELECT secretsmgr_verify(NULL) IS NULL AS strict, secretsmgr_verify('ver/app', NULL) IS NULL AS strict_stage;

-- verify writes no history
SELECT count(*) AS history_rows FROM secretsmgr_rotation_history WHERE secret_id LIKE 'ver/%' AND step = 'testSecret';

-- clean up
SELECT secretsmgr_unmanage('ver/app'), secretsmgr_unmanage('ver/gone'), secretsmgr_unmanage('ver/bad');
RESET ROLE;
DROP ROLE regress_ver_app, regress_ver_bad;
