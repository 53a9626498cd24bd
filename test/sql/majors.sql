-- majors: what changes with the PostgreSQL major, checked on each
-- (expected/majors.out is 15's, majors_1.out 16's and later's).
-- Who may bind and rotate a role: CREATEROLE on 15; from 16, CREATEROLE and
-- the ADMIN option on the role, which the role that created it holds.
-- A verifier secretsmgr builds has the session's scram_iterations (16 and
-- later; 4096 on 15), logs in, and testSecret still proves it.  An
-- alternating binding's clone gets the role's memberships with their
-- options (ADMIN; from 16 also INHERIT and SET).
\pset format unaligned
\! test/emulator/smctl reset --state
\! test/emulator/smctl create maj/app '{"username":"regress_maj_app","password":"Maj-App-Pw-1"}'
\! test/emulator/smctl create maj/own '{"username":"regress_maj_own","password":"Maj-Own-Pw-2"}'
\! test/emulator/smctl create maj/alt '{"username":"regress_maj_alt","password":"Maj-Alt-Pw-4"}'
SET secretsmgr.cache_ttl = 0;

CREATE ROLE regress_maj_app LOGIN;
CREATE ROLE regress_maj_dba LOGIN CREATEROLE;
CREATE ROLE regress_maj_plain LOGIN;
GRANT EXECUTE ON FUNCTION secretsmgr_manage(text, name, text, interval),
	secretsmgr_unmanage(text), secretsmgr_rotate(text)
	TO regress_maj_dba, regress_maj_plain;

-- without CREATEROLE: refused, the hint saying what it takes on this major
SET ROLE regress_maj_plain;
SELECT sm_error($$SELECT secretsmgr_manage('maj/app', 'regress_maj_app')$$);
RESET ROLE;

-- CREATEROLE alone: enough on 15; from 16 refused, the hint giving the GRANT
SET ROLE regress_maj_dba;
SELECT sm_error($$SELECT secretsmgr_manage('maj/app', 'regress_maj_app')$$);
SELECT sm_error($$SELECT secretsmgr_unmanage('maj/app')$$);
RESET ROLE;
SELECT secretsmgr_manage('maj/app', 'regress_maj_app');
SELECT length(secretsmgr_rotate('maj/app')) AS id_length;
SELECT sm_labels('maj/app') AS labels, sm_login('maj/app') AS logs_in;
SELECT sm_stage_id('maj/app', 'AWSCURRENT') AS before_id \gset
-- a rotation by it: where refused (from 16), refused up front, before
-- anything is written: AWSCURRENT, the password and the labels stay
SET ROLE regress_maj_dba;
SELECT sm_error($$SELECT secretsmgr_rotate('maj/app')$$) AS rotate_by_createrole;
RESET ROLE;
SELECT sm_stage_id('maj/app', 'AWSCURRENT') = :'before_id' AS current_unchanged,
       sm_labels('maj/app') AS labels, sm_login('maj/app') AS logs_in;

-- with the ADMIN option alone (the hint's GRANT; 15 has neither the INHERIT
-- nor the SET option, and needs no grant): binds, rotates, logs in
SELECT current_setting('server_version_num')::int >= 160000 AS pg16 \gset
\if :pg16
GRANT regress_maj_app TO regress_maj_dba WITH ADMIN OPTION, INHERIT FALSE, SET FALSE;
\endif
SET ROLE regress_maj_dba;
SELECT secretsmgr_manage('maj/app', 'regress_maj_app', 'single', '30 days');
SELECT length(secretsmgr_rotate('maj/app')) AS id_length;
RESET ROLE;
SELECT sm_labels('maj/app') AS labels, sm_login('maj/app') AS logs_in,
       sm_login('maj/app', 'AWSPREVIOUS') AS previous_logs_in;

-- a role it created itself: the creator holds the ADMIN option from 16
SET ROLE regress_maj_dba;
CREATE ROLE regress_maj_own LOGIN;
SELECT secretsmgr_manage('maj/own', 'regress_maj_own');
SELECT length(secretsmgr_rotate('maj/own')) AS id_length;
SELECT secretsmgr_unmanage('maj/own') AS unmanaged;
RESET ROLE;
SELECT sm_login('maj/own') AS own_logs_in;

-- scram_iterations (16 and later): the rotated verifier has the session's
-- count and logs in; on 15 the setting does not exist and the count is 4096
SET scram_iterations = 1000;
SELECT length(secretsmgr_rotate('maj/app')) AS id_length;
SELECT split_part(split_part(rolpassword, '$', 2), ':', 1) AS iterations
FROM pg_authid WHERE rolname = 'regress_maj_app';
SELECT sm_login('maj/app') AS logs_in, secretsmgr_verify('maj/app') AS verifies;
-- the Lambda's setSecret (which checks its ALTER ROLE by comparing the
-- verifier it built with pg_authid's, byte for byte) and testSecret
\! /usr/bin/python3 -c 'import boto3,os; c=boto3.client("secretsmanager",endpoint_url=os.environ["SM_EMULATOR_URL"],region_name="us-east-1",aws_access_key_id="AKIDSECRETSMGRTEST",aws_secret_access_key="TESTSECRETKEY/secretsmgr+EXAMPLE"); c.rotate_secret(SecretId="maj/app",ClientRequestToken="22222222-2222-4222-8222-222222222222",RotationLambdaARN="arn:aws:lambda:us-east-1:123456789012:function:rotator"); c.put_secret_value(SecretId="maj/app",ClientRequestToken="22222222-2222-4222-8222-222222222222",SecretString="{\"username\":\"regress_maj_app\",\"password\":\"Maj-Lambda-Pw-3\"}",VersionStages=["AWSPENDING"])'
SELECT secretsmgr_set_secret('maj/app', '22222222-2222-4222-8222-222222222222');
SELECT split_part(split_part(rolpassword, '$', 2), ':', 1) AS iterations
FROM pg_authid WHERE rolname = 'regress_maj_app';
SELECT secretsmgr_test_secret('maj/app', '22222222-2222-4222-8222-222222222222') AS test_secret;
SELECT sm_login('maj/app', 'AWSPENDING') AS pending_logs_in;
RESET scram_iterations;

-- alternating: the clone's memberships have the role's options
CREATE ROLE regress_maj_group NOLOGIN;
CREATE ROLE regress_maj_admins NOLOGIN;
CREATE ROLE regress_maj_alt LOGIN;
\if :pg16
GRANT regress_maj_group TO regress_maj_alt WITH INHERIT FALSE, SET FALSE;
GRANT regress_maj_admins TO regress_maj_alt WITH ADMIN OPTION, SET FALSE;
\else
GRANT regress_maj_group TO regress_maj_alt;
GRANT regress_maj_admins TO regress_maj_alt WITH ADMIN OPTION;
\endif
SELECT secretsmgr_manage('maj/alt', 'regress_maj_alt', 'alternating');
SELECT r.rolname AS member, g.rolname AS member_of,
       to_jsonb(m) - 'oid' - 'roleid' - 'member' - 'grantor' AS options
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
WHERE r.rolname LIKE 'regress_maj_alt%' ORDER BY 1, 2;

-- clean up
SELECT secretsmgr_unmanage('maj/alt');
SELECT secretsmgr_unmanage('maj/app');
REVOKE EXECUTE ON FUNCTION secretsmgr_manage(text, name, text, interval),
	secretsmgr_unmanage(text), secretsmgr_rotate(text)
	FROM regress_maj_dba, regress_maj_plain;
DROP ROLE regress_maj_app, regress_maj_own, regress_maj_dba, regress_maj_plain,
	regress_maj_alt, regress_maj_alt_clone, regress_maj_group, regress_maj_admins;
