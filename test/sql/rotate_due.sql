-- rotate_due: scheduled rotation of every managed secret whose interval has
-- elapsed, each in its own subtransaction; history says via scheduler.
-- The DBA calls run as regress_dba (CREATEROLE, the DBA grants of
-- docs/security.md).
\! test/emulator/smctl reset --state
\! test/emulator/smctl create due/never '{"username":"regress_due_never","password":"Due-Initial-Pw-1"}'
\! test/emulator/smctl create due/fresh '{"username":"regress_due_fresh","password":"Due-Initial-Pw-2"}'
\! test/emulator/smctl create due/manual '{"username":"regress_due_manual","password":"Due-Initial-Pw-3"}'
\! test/emulator/smctl create due/broken '{"username":"regress_due_broken","password":"Due-Initial-Pw-4"}'
SET secretsmgr.cache_ttl = 0;
SET secretsmgr.max_attempts = 1;
CREATE ROLE regress_due_never LOGIN;
CREATE ROLE regress_due_fresh LOGIN;
CREATE ROLE regress_due_manual LOGIN;
CREATE ROLE regress_due_broken LOGIN;
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_manage('due/never', 'regress_due_never', rotation_interval => '30 days');
SELECT secretsmgr_manage('due/fresh', 'regress_due_fresh', rotation_interval => '30 days');
SELECT secretsmgr_manage('due/manual', 'regress_due_manual');
SELECT secretsmgr_manage('due/broken', 'regress_due_broken', rotation_interval => '1 day');
-- due/fresh was rotated just now; due/manual has no interval
SELECT length(secretsmgr_rotate('due/fresh')) = 36 AS fresh_rotated;

-- due/broken cannot be read: its rotation fails, the others go on (a put
-- refused at the commit aborts the whole call instead, and the labels
-- already put are moved back: test/t/034_commit_undo.pl)
\! test/emulator/smctl deny due/broken GetSecretValue
SET client_min_messages = error;  -- the WARNING names the ARN, random here
SELECT secret_id, status, length(version_id) = 36 AS has_version
FROM secretsmgr_rotate_due() ORDER BY secret_id;
RESET client_min_messages;
\! test/emulator/smctl allow due/broken

-- the rotated role logs in with AWSCURRENT; the failure is in the history
SELECT sm_login('due/never') AS never_logs_in, sm_login('due/fresh') AS fresh_logs_in;
SELECT secret_id, step, status, via, sqlstate
FROM secretsmgr_rotation_history WHERE secret_id LIKE 'due/%' ORDER BY id;

-- nothing is due any more but the broken one, which now succeeds
SELECT secret_id, status FROM secretsmgr_rotate_due() ORDER BY secret_id;
SELECT secret_id, status FROM secretsmgr_rotate_due() ORDER BY secret_id;
SELECT sm_login('due/broken') AS broken_logs_in;

-- on a standby, or read-only, it refuses like secretsmgr_rotate
RESET ROLE;
UPDATE secretsmgr_managed SET rotation_interval = '1 second' WHERE secret_id = 'due/manual';
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
BEGIN READ ONLY;
SELECT sm_error($$SELECT * FROM secretsmgr_rotate_due()$$);
ROLLBACK;

RESET ROLE;
SELECT secretsmgr_unmanage(secret_id) FROM secretsmgr_managed WHERE secret_id LIKE 'due/%' ORDER BY 1;
DROP ROLE regress_due_never;
DROP ROLE regress_due_fresh;
DROP ROLE regress_due_manual;
DROP ROLE regress_due_broken;
