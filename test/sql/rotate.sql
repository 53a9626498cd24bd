-- rotate: secretsmgr_rotate end to end, both strategies, the transaction
-- contract (rollback, savepoints, pre-commit failure) and every refusal.
-- Passwords never appear in SQL text: logins are proven through dblink with
-- the value read from the secret, and compared through md5().  The DBA
-- calls run as regress_dba (CREATEROLE, the DBA grants of docs/security.md);
-- the test reads the secret through sm_value().
\pset format unaligned
\! test/emulator/smctl reset --state
\! test/emulator/smctl create rot/app '{"engine":"postgres","host":"db.internal","username":"regress_rot_app","password":"Rot-Initial-Pw-1","port":5432,"dbname":"appdb","ssl":true}'
\! test/emulator/smctl create rot/alt '{"engine":"postgres","host":"db.internal","username":"regress_rot_alt","password":"Rot-Alt-Initial-Pw-2"}'
\! test/emulator/smctl create rot/unmanaged '{"username":"regress_rot_app","password":"Rot-Unmanaged-Pw-3"}'
SET secretsmgr.cache_ttl = 0;


CREATE ROLE regress_rot_group NOLOGIN;
CREATE ROLE regress_rot_app LOGIN;
CREATE ROLE regress_rot_alt LOGIN IN ROLE regress_rot_group;
CREATE ROLE regress_rot_other LOGIN;
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_manage('rot/app', 'regress_rot_app');
SELECT secretsmgr_manage('rot/alt', 'regress_rot_alt', 'alternating');

-- The role has no password yet: AWSCURRENT does not log in.
SELECT sm_login('rot/app') AS logs_in_before;
SELECT sm_value('rot/app') - 'password' AS before_rest,
       md5(sm_value('rot/app') ->> 'password') AS before_md5 \gset

-- single: one rotation, returning the version that is now AWSCURRENT
SELECT secretsmgr_rotate('rot/app') AS new_version \gset
SELECT length(:'new_version') AS id_length,
       :'new_version' = sm_stage_id('rot/app', 'AWSCURRENT') AS returned_is_current,
       sm_labels('rot/app') AS labels;
SELECT sm_login('rot/app') AS current_logs_in,
       sm_login('rot/app', 'AWSPREVIOUS') AS previous_logs_in,
       secretsmgr_verify('rot/app') AS verifies;
-- only the password changed; engine, host, port, dbname, ssl pass through
SELECT (sm_value('rot/app') - 'password') = :'before_rest'::jsonb AS other_fields_kept,
       md5(sm_value('rot/app') ->> 'password') <> :'before_md5' AS password_changed;
-- the password: 32 characters by default, from the four classes, none of
-- the excluded characters (space : / @ " ' \ `)
SELECT length(p) AS length,
       p ~ '[A-Z]' AND p ~ '[a-z]' AND p ~ '[0-9]' AND p ~ '[^A-Za-z0-9]' AS every_class,
       p !~ '[ :/@"''\\`]' AS no_excluded
FROM (SELECT sm_value('rot/app') ->> 'password' AS p) s;

-- a second rotation: the previous password stops working
SELECT length(secretsmgr_rotate('rot/app')) AS id_length;
SELECT sm_login('rot/app') AS current_logs_in,
       sm_login('rot/app', 'AWSPREVIOUS') AS previous_logs_in,
       sm_labels('rot/app') AS labels;

-- a rotation in another backend drops this backend's cached value at once
-- (the bound role's password changed), whatever the cache TTL
SET secretsmgr.cache_ttl = 300;
SELECT md5(sm_value('rot/app') ->> 'password') AS cached \gset
\! psql -X -q -d contrib_regression -c "SELECT secretsmgr_rotate('rot/app')" > /dev/null
SELECT md5(sm_value('rot/app') ->> 'password') <> :'cached' AS cache_dropped,
       sm_login('rot/app') AS current_logs_in;
RESET secretsmgr.cache_ttl;
SET secretsmgr.cache_ttl = 0;

-- password settings (a superuser's)
RESET ROLE;
SET secretsmgr.password_length = 20;
SET secretsmgr.password_exclude_characters = '!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~ 0123456789';
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT length(secretsmgr_rotate('rot/app')) AS id_length;
SELECT length(p) AS length, p ~ '^[A-Za-z]+$' AS letters_only, p ~ '[A-Z]' AND p ~ '[a-z]' AS both_cases
FROM (SELECT sm_value('rot/app') ->> 'password' AS p) s;
SELECT sm_login('rot/app') AS current_logs_in;
RESET ROLE;
SET secretsmgr.password_exclude_characters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~';
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT sm_error($$SELECT secretsmgr_rotate('rot/app')$$);
RESET ROLE;
RESET secretsmgr.password_length;
RESET secretsmgr.password_exclude_characters;
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;

-- ROLLBACK changes nothing, in the database or in Secrets Manager: the
-- rotation only read AWSCURRENT, its version is put at the commit
SELECT sm_stage_id('rot/app', 'AWSCURRENT') AS current_before \gset
SELECT count(*) AS versions_before FROM jsonb_object_keys(secretsmgr_describe_secret('rot/app') -> 'VersionIdsToStages') \gset
BEGIN;
SELECT secretsmgr_rotate('rot/app') AS rolled_back \gset
ROLLBACK;
SELECT sm_stage_id('rot/app', 'AWSCURRENT') = :'current_before' AS current_unchanged,
       sm_stage_id('rot/app', 'AWSPENDING') IS NULL AS no_pending,
       (SELECT count(*) FROM jsonb_object_keys(secretsmgr_describe_secret('rot/app') -> 'VersionIdsToStages')) = :versions_before AS no_new_version,
       secretsmgr_describe_secret('rot/app') -> 'VersionIdsToStages' ? :'rolled_back' AS rolled_back_exists,
       sm_login('rot/app') AS current_still_logs_in;
SELECT secretsmgr_rotate('rot/app') <> :'rolled_back' AS new_version;
SELECT sm_login('rot/app') AS current_logs_in, sm_labels('rot/app') AS labels;

-- a rolled-back savepoint drops its put; a released one keeps it
SELECT sm_stage_id('rot/app', 'AWSCURRENT') AS current_before \gset
BEGIN;
SAVEPOINT s1;
SELECT length(secretsmgr_rotate('rot/app')) AS id_length;
ROLLBACK TO SAVEPOINT s1;
COMMIT;
SELECT sm_stage_id('rot/app', 'AWSCURRENT') = :'current_before' AS current_unchanged,
       sm_login('rot/app') AS current_logs_in;
BEGIN;
SAVEPOINT s1;
SELECT secretsmgr_rotate('rot/app') AS in_savepoint \gset
RELEASE SAVEPOINT s1;
COMMIT;
SELECT sm_stage_id('rot/app', 'AWSCURRENT') = :'in_savepoint' AS moved, sm_login('rot/app') AS current_logs_in;

-- twice in one transaction: the same new version, put once
BEGIN;
SELECT secretsmgr_rotate('rot/app') AS first \gset
SELECT secretsmgr_rotate('rot/app') = :'first' AS same_version;
COMMIT;
SELECT sm_stage_id('rot/app', 'AWSCURRENT') = :'first' AS moved, sm_login('rot/app') AS current_logs_in;

-- a rotated transaction cannot be prepared
BEGIN;
SELECT length(secretsmgr_rotate('rot/app')) AS id_length;
PREPARE TRANSACTION 'regress_rot';
SELECT sm_login('rot/app') AS current_logs_in;

-- the put fails at commit: the transaction aborts, the role keeps the
-- password AWSCURRENT holds, and the failure stays visible
SELECT sm_stage_id('rot/app', 'AWSCURRENT') AS current_before \gset
\! test/emulator/smctl fault PutSecretValue error500 3
\set VERBOSITY terse
SELECT length(secretsmgr_rotate('rot/app')) AS id_length;
\set VERBOSITY default
SELECT sm_stage_id('rot/app', 'AWSCURRENT') = :'current_before' AS current_unchanged,
       sm_login('rot/app') AS current_logs_in;
SELECT step, status, via, role_name, sqlstate, error IS NOT NULL AS has_error
FROM secretsmgr_rotation_history WHERE secret_id = 'rot/app' ORDER BY id DESC LIMIT 1;
SELECT name, count FROM secretsmgr_stats() WHERE category = 'rotation' AND name = 'rotate:failed';
-- and the next rotation completes it
SELECT length(secretsmgr_rotate('rot/app')) AS id_length;
SELECT sm_login('rot/app') AS current_logs_in;

-- a failure at the other call, the read of AWSCURRENT: nothing changes, it
-- is recorded
SELECT sm_stage_id('rot/app', 'AWSCURRENT') AS current_before \gset
\! test/emulator/smctl fault GetSecretValue throttle 3
SELECT sm_error($$SELECT secretsmgr_rotate('rot/app')$$);
SELECT sm_stage_id('rot/app', 'AWSCURRENT') = :'current_before' AS current_unchanged,
       sm_login('rot/app') AS current_logs_in;
SELECT step, status, sqlstate FROM secretsmgr_rotation_history
WHERE secret_id = 'rot/app' ORDER BY id DESC LIMIT 1;

-- alternating: each rotation sets the user not in AWSCURRENT, so the
-- previous credentials keep working until the next rotation
SELECT sm_login('rot/alt') AS alt_logs_in_before;
SELECT length(secretsmgr_rotate('rot/alt')) AS id_length;
SELECT sm_value('rot/alt') ->> 'username' AS current_user_name,
       sm_value('rot/alt', 'AWSPREVIOUS') ->> 'username' AS previous_user_name,
       sm_login('rot/alt') AS current_logs_in;
SELECT length(secretsmgr_rotate('rot/alt')) AS id_length;
SELECT sm_value('rot/alt') ->> 'username' AS current_user_name,
       sm_login('rot/alt') AS current_logs_in,
       sm_login('rot/alt', 'AWSPREVIOUS') AS previous_still_logs_in;
SELECT length(secretsmgr_rotate('rot/alt')) AS id_length;
SELECT sm_value('rot/alt') ->> 'username' AS current_user_name,
       sm_login('rot/alt') AS current_logs_in,
       sm_login('rot/alt', 'AWSPREVIOUS') AS previous_still_logs_in,
       sm_value('rot/alt') ->> 'host' AS host_kept;
-- both users hold the same group membership
SELECT r.rolname, g.rolname AS member_of
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
WHERE r.rolname LIKE 'regress_rot_alt%' ORDER BY 1;

-- refusals: each changes nothing (no new version, no new password)
\! test/emulator/smctl create rot/bad '{"username":"regress_rot_other","password":"Rot-Bad-Pw-4"}'
CREATE ROLE regress_rot_bound LOGIN;
SELECT secretsmgr_manage('rot/bad', 'regress_rot_bound');
SELECT sm_error($$SELECT secretsmgr_rotate('rot/unmanaged')$$);
SELECT sm_error($$SELECT secretsmgr_rotate('rot/bad')$$);
\! test/emulator/smctl put rot/bad '{"username":"regress_rot_bound"}'
SELECT sm_error($$SELECT secretsmgr_rotate('rot/bad')$$);
\! test/emulator/smctl put rot/bad 'not a JSON value'
SELECT sm_error($$SELECT secretsmgr_rotate('rot/bad')$$);
\! test/emulator/smctl put rot/bad 'AAEC' --binary
SELECT sm_error($$SELECT secretsmgr_rotate('rot/bad')$$);
\! test/emulator/smctl put rot/bad '{"username":"regress_rot_bound","password":"Rot-Bad-Pw-5"}'
ALTER ROLE regress_rot_bound NOLOGIN;
SELECT sm_error($$SELECT secretsmgr_rotate('rot/bad')$$);
ALTER ROLE regress_rot_bound LOGIN VALID UNTIL '2001-01-01';
SELECT sm_error($$SELECT secretsmgr_rotate('rot/bad')$$);
ALTER ROLE regress_rot_bound VALID UNTIL 'infinity';
SELECT sm_labels('rot/bad') AS labels_unchanged;
SELECT sm_error($$SELECT secretsmgr_rotate('')$$);
SELECT secretsmgr_rotate(NULL) IS NULL AS strict;
BEGIN READ ONLY;
SELECT sm_error($$SELECT secretsmgr_rotate('rot/app')$$);
ROLLBACK;

-- history: one row per rotation, never a password
SELECT step, status, via, role_name, strategy, executed_by, sqlstate,
       new_version_id IS NOT NULL AS has_new, previous_version_id IS NOT NULL AS has_previous,
       finished_at >= started_at AS ordered
FROM secretsmgr_rotation_history WHERE secret_id IN ('rot/app', 'rot/alt') ORDER BY id;
SELECT count(*) AS rows_with_a_password FROM secretsmgr_rotation_history h
WHERE h::text ~ 'Rot-(Initial|Alt|Bad|Unmanaged)';

-- clean up
SELECT secretsmgr_unmanage('rot/app'), secretsmgr_unmanage('rot/alt'), secretsmgr_unmanage('rot/bad');
RESET ROLE;
DROP ROLE regress_rot_app, regress_rot_alt, regress_rot_alt_clone, regress_rot_other,
	regress_rot_bound, regress_rot_group;
