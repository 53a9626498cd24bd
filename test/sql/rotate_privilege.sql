-- rotate_privilege: a rotation by a role that may not change the bound
-- role's password is refused up front (42501, with what is missing),
-- before anything is written to Secrets Manager or the database: no
-- AWSPENDING version, no history row, the role's password unchanged.
\pset format unaligned
\! test/emulator/smctl create rotpriv/app '{"engine":"postgres","host":"db.internal","username":"regress_rotpriv_app","password":"RotPriv-Initial-Pw-1"}'
\! test/emulator/smctl create rotpriv/due '{"engine":"postgres","host":"db.internal","username":"regress_rotpriv_due","password":"RotPriv-Due-Pw-3"}'
SET secretsmgr.cache_ttl = 0;
CREATE ROLE regress_rotpriv_app LOGIN;
CREATE ROLE regress_rotpriv_due LOGIN;
CREATE ROLE regress_rotpriv_dba LOGIN;  -- EXECUTE granted below, no CREATEROLE
SELECT secretsmgr_manage('rotpriv/app', 'regress_rotpriv_app', rotation_interval => '1 day');
SELECT secretsmgr_manage('rotpriv/due', 'regress_rotpriv_due', rotation_interval => '1 day');
SELECT secretsmgr_rotate('rotpriv/app') IS NOT NULL AS rotated_by_superuser;
GRANT EXECUTE ON FUNCTION secretsmgr_rotate(text), secretsmgr_set_secret(text, text),
                          secretsmgr_reconcile(text), secretsmgr_rotate_due()
   TO regress_rotpriv_dba, regress_rotpriv_app;

-- what Secrets Manager and the database hold before the refusals
SELECT sm_login('rotpriv/app') AS current_logs_in, sm_labels('rotpriv/app') AS labels,
       (SELECT count(*) FROM jsonb_object_keys(secretsmgr_describe_secret('rotpriv/app') -> 'VersionIdsToStages')) AS versions;
SELECT sm_labels('rotpriv/due') AS due_labels;
SELECT count(*) AS history_rows FROM secretsmgr_rotation_history WHERE secret_id LIKE 'rotpriv/%' \gset
SELECT rolpassword AS verifier_before FROM pg_authid WHERE rolname = 'regress_rotpriv_app' \gset

SET ROLE regress_rotpriv_dba;
SELECT sm_error('SELECT secretsmgr_rotate(''rotpriv/app'')');
SELECT sm_error('SELECT secretsmgr_reconcile(''rotpriv/app'')');
SET client_min_messages = error;  -- the WARNINGs of other secrets' failures
SELECT secret_id, status, version_id FROM secretsmgr_rotate_due() WHERE secret_id LIKE 'rotpriv/%';
RESET client_min_messages;
RESET ROLE;

-- no version was put (no AWSPENDING left behind), no history row
SELECT sm_labels('rotpriv/app') AS labels, sm_labels('rotpriv/due') AS due_labels,
       (SELECT count(*) FROM jsonb_object_keys(secretsmgr_describe_secret('rotpriv/app') -> 'VersionIdsToStages')) AS versions;
SELECT count(*) = :history_rows AS no_history_row FROM secretsmgr_rotation_history WHERE secret_id LIKE 'rotpriv/%';

-- the Lambda's createSecret put a pending version; setSecret by a role
-- that may not apply it is refused before it reads it
\! test/emulator/smctl put rotpriv/app '{"engine":"postgres","host":"db.internal","username":"regress_rotpriv_app","password":"RotPriv-Pending-Pw-2"}' --stages AWSPENDING --token 22222222-3333-4444-5555-666666666666
SET ROLE regress_rotpriv_dba;
SELECT sm_error('SELECT secretsmgr_set_secret(''rotpriv/app'', ''22222222-3333-4444-5555-666666666666'')');
RESET ROLE;

-- nothing changed: the same versions and labels (only the Lambda's pending
-- one added), no history row, the same verifier, AWSCURRENT logs in
SELECT sm_login('rotpriv/app') AS current_logs_in, sm_labels('rotpriv/app') AS labels,
       (SELECT count(*) FROM jsonb_object_keys(secretsmgr_describe_secret('rotpriv/app') -> 'VersionIdsToStages')) AS versions;
SELECT count(*) = :history_rows AS no_history_row FROM secretsmgr_rotation_history WHERE secret_id LIKE 'rotpriv/%';
SELECT rolpassword = :'verifier_before' AS verifier_unchanged FROM pg_authid WHERE rolname = 'regress_rotpriv_app';

-- a role may change its own password: the bound role rotates itself
SET ROLE regress_rotpriv_app;
SELECT secretsmgr_rotate('rotpriv/app') IS NOT NULL AS rotated_by_itself;
RESET ROLE;
SELECT sm_login('rotpriv/app') AS current_logs_in;

-- with CREATEROLE (and, from PostgreSQL 16, the ADMIN option on the role)
-- the same DBA rotates
ALTER ROLE regress_rotpriv_dba CREATEROLE;
SELECT sm_dba_admin('regress_rotpriv_dba') \gset
SET ROLE regress_rotpriv_dba;
SELECT secretsmgr_rotate('rotpriv/app') IS NOT NULL AS rotated_by_createrole;
RESET ROLE;
SELECT sm_login('rotpriv/app') AS current_logs_in;

SELECT secretsmgr_unmanage('rotpriv/app'), secretsmgr_unmanage('rotpriv/due');
REVOKE EXECUTE ON FUNCTION secretsmgr_rotate(text), secretsmgr_set_secret(text, text),
                           secretsmgr_reconcile(text), secretsmgr_rotate_due()
    FROM regress_rotpriv_dba, regress_rotpriv_app;
DROP ROLE regress_rotpriv_dba;
DROP ROLE regress_rotpriv_app;
DROP ROLE regress_rotpriv_due;
