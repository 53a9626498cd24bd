-- reconcile: bring a role and its secret's AWSCURRENT back together after a
-- crash between the stage move and the commit, or a Lambda that stopped
-- after setSecret; refuse when the password was changed by hand.  The DBA
-- calls run as regress_dba (CREATEROLE, the DBA grants of docs/security.md).
\pset format unaligned
\! test/emulator/smctl reset --state
\! test/emulator/smctl create rec/app '{"engine":"postgres","host":"db.internal","username":"regress_rec_app","password":"Rec-Initial-Pw-1"}'
\! test/emulator/smctl create rec/alt '{"engine":"postgres","host":"db.internal","username":"regress_rec_alt","password":"Rec-Alt-Initial-Pw-2"}'
\! test/emulator/smctl create rec/unmanaged '{"username":"regress_rec_app","password":"Rec-Unmanaged-Pw-3"}'
SET secretsmgr.cache_ttl = 0;


CREATE ROLE regress_rec_app LOGIN;
CREATE ROLE regress_rec_alt LOGIN;
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_manage('rec/app', 'regress_rec_app');
SELECT secretsmgr_manage('rec/alt', 'regress_rec_alt', 'alternating');
SELECT length(secretsmgr_rotate('rec/app')) AS id_length;

-- in step: nothing to do, AWSCURRENT's version id comes back
SELECT secretsmgr_reconcile('rec/app') = sm_stage_id('rec/app', 'AWSCURRENT') AS returns_current;

-- the stage moved but the commit never happened: AWSCURRENT holds a
-- password the role never got, the role still has AWSPREVIOUS's
\! test/emulator/smctl put rec/app '{"engine":"postgres","host":"db.internal","username":"regress_rec_app","password":"Rec-Moved-Not-Committed-Pw-4"}'
SELECT sm_login('rec/app') AS current_logs_in, sm_login('rec/app', 'AWSPREVIOUS') AS previous_logs_in;
\set VERBOSITY terse
SELECT secretsmgr_reconcile('rec/app') = sm_stage_id('rec/app', 'AWSCURRENT') AS returns_current;
\set VERBOSITY default
SELECT sm_login('rec/app') AS current_logs_in, sm_login('rec/app', 'AWSPREVIOUS') AS previous_logs_in;

-- a Lambda that stopped after setSecret: the role has AWSPENDING's password
\! test/emulator/smctl put rec/app '{"engine":"postgres","host":"db.internal","username":"regress_rec_app","password":"Rec-Pending-Pw-5"}' --stages AWSPENDING --token 77777777-7777-4777-8777-777777777777
RESET ROLE;  -- setSecret is the Lambda's
SELECT secretsmgr_set_secret('rec/app', '77777777-7777-4777-8777-777777777777');
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT sm_login('rec/app') AS current_logs_in, sm_login('rec/app', 'AWSPENDING') AS pending_logs_in;
SELECT length(secretsmgr_reconcile('rec/app')) AS id_length;
SELECT sm_login('rec/app') AS current_logs_in, sm_login('rec/app', 'AWSPENDING') AS pending_logs_in;

-- changed by hand: no version logs in, and reconcile will not overwrite it
DO $$ BEGIN EXECUTE format('ALTER ROLE regress_rec_app PASSWORD %L', md5(random()::text)); END $$;
SELECT sm_error($$SELECT secretsmgr_reconcile('rec/app')$$);
SELECT sm_login('rec/app') AS current_logs_in;
-- secretsmgr_rotate is the way out
SELECT length(secretsmgr_rotate('rec/app')) AS id_length;
SELECT sm_login('rec/app') AS current_logs_in;

-- alternating: the stage moved to the other user, whose password never
-- changed; reconcile sets that user, the previous one keeps working
SELECT length(secretsmgr_rotate('rec/alt')) AS id_length;
SELECT length(secretsmgr_rotate('rec/alt')) AS id_length;
SELECT sm_value('rec/alt') ->> 'username' AS current_user_name;
\! test/emulator/smctl put rec/alt '{"engine":"postgres","host":"db.internal","username":"regress_rec_alt_clone","password":"Rec-Alt-Moved-Pw-6"}'
SELECT sm_login('rec/alt') AS current_logs_in, sm_login('rec/alt', 'AWSPREVIOUS') AS previous_logs_in;
\set VERBOSITY terse
SELECT length(secretsmgr_reconcile('rec/alt')) AS id_length;
\set VERBOSITY default
SELECT sm_login('rec/alt') AS current_logs_in, sm_login('rec/alt', 'AWSPREVIOUS') AS previous_logs_in;

-- alternating, a password set by hand on AWSCURRENT's user: AWSPREVIOUS
-- still logs in as the other user, which proves nothing about this one;
-- reconcile refuses rather than overwrite the hand-set password
CREATE TEMP TABLE rec_hand (pw text);
INSERT INTO rec_hand SELECT md5(random()::text);
DO $$ BEGIN EXECUTE format('ALTER ROLE %I PASSWORD %L',
	secretsmgr_get_secret('rec/alt') ->> 'username', (SELECT pw FROM rec_hand)); END $$;
SELECT sm_login('rec/alt') AS current_logs_in, sm_login('rec/alt', 'AWSPREVIOUS') AS previous_logs_in;
SELECT sm_error($$SELECT secretsmgr_reconcile('rec/alt')$$);
SELECT dblink_connect('rec_hand', format('host=127.0.0.1 port=%s dbname=%s user=%s password=%s',
	current_setting('port'), current_database(), secretsmgr_get_secret('rec/alt') ->> 'username',
	(SELECT pw FROM rec_hand))) AS hand_set_password_logs_in;
SELECT dblink_disconnect('rec_hand');
SELECT length(secretsmgr_rotate('rec/alt')) AS id_length;
SELECT sm_login('rec/alt') AS current_logs_in;

-- refusals: each changes nothing
SELECT sm_error($$SELECT secretsmgr_reconcile('rec/unmanaged')$$);
BEGIN READ ONLY;
SELECT sm_error($$SELECT secretsmgr_reconcile('rec/app')$$);
ROLLBACK;
ALTER ROLE regress_rec_app NOLOGIN;
SELECT sm_error($$SELECT secretsmgr_reconcile('rec/app')$$);
ALTER ROLE regress_rec_app LOGIN;
\! test/emulator/smctl put rec/app '{"username":"regress_rec_alt","password":"Rec-Foreign-User-Pw-7"}'
SELECT sm_error($$SELECT secretsmgr_reconcile('rec/app')$$);
SELECT secretsmgr_reconcile(NULL) IS NULL AS strict;

-- history: what each reconcile did
SELECT secret_id, step, status, via, role_name, sqlstate,
       previous_version_id IS NOT NULL AS matched_another_version
FROM secretsmgr_rotation_history WHERE step = 'reconcile' ORDER BY id;
SELECT name, count FROM secretsmgr_stats() WHERE name LIKE 'reconcile:%' ORDER BY name;

-- clean up
SELECT secretsmgr_unmanage('rec/app'), secretsmgr_unmanage('rec/alt');
RESET ROLE;
DROP ROLE regress_rec_app, regress_rec_alt, regress_rec_alt_clone;
