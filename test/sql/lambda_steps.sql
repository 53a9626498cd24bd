-- lambda_steps: the rotation Lambda's setSecret and testSecret steps run in
-- the database (secretsmgr_set_secret, secretsmgr_test_secret), so the new
-- password never crosses the Lambda's connection.  The Lambda's own calls
-- (RotateSecret's placeholder, createSecret's PutSecretValue, finishSecret's
-- UpdateSecretVersionStage) are made here through boto3.
\pset format unaligned
\! test/emulator/smctl reset --state
\! test/emulator/smctl create lambda/app '{"engine":"postgres","host":"db.internal","username":"regress_lambda_app","password":"Lambda-Initial-Pw-1","port":5432}'
\! test/emulator/smctl create lambda/alt '{"engine":"postgres","host":"db.internal","username":"regress_lambda_alt","password":"Lambda-Alt-Initial-Pw-2"}'
\! test/emulator/smctl create lambda/other '{"username":"regress_lambda_other","password":"Lambda-Other-Pw-3"}'
\! test/emulator/smctl create lambda/unmanaged '{"username":"regress_lambda_app","password":"Lambda-Unmanaged-Pw-4"}'
SET secretsmgr.cache_ttl = 0;


CREATE ROLE regress_lambda_app LOGIN;
CREATE ROLE regress_lambda_alt LOGIN;
CREATE ROLE regress_lambda_other LOGIN;
-- the DBA binds the secrets and gives the roles the passwords their secrets
-- hold (regress_dba: CREATEROLE, the DBA grants of docs/security.md)
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_manage('lambda/app', 'regress_lambda_app');
SELECT secretsmgr_manage('lambda/alt', 'regress_lambda_alt', 'alternating');
SELECT secretsmgr_manage('lambda/other', 'regress_lambda_other');
SELECT length(secretsmgr_rotate('lambda/app')) AS id_length,
       length(secretsmgr_rotate('lambda/alt')) AS id_length;
RESET ROLE;
SELECT sm_login('lambda/app') AS app_logs_in, sm_login('lambda/alt') AS alt_logs_in;

-- RotateSecret: an empty AWSPENDING placeholder; setSecret before
-- createSecret filled it is refused
\! /usr/bin/python3 -c 'import boto3,os; boto3.client("secretsmanager",endpoint_url=os.environ["SM_EMULATOR_URL"],region_name="us-east-1",aws_access_key_id="AKIDSECRETSMGRTEST",aws_secret_access_key="TESTSECRETKEY/secretsmgr+EXAMPLE").rotate_secret(SecretId="lambda/app",ClientRequestToken="11111111-1111-4111-8111-111111111111",RotationLambdaARN="arn:aws:lambda:us-east-1:123456789012:function:rotator")'
SELECT sm_error($$SELECT secretsmgr_set_secret('lambda/app', '11111111-1111-4111-8111-111111111111')$$);
SELECT sm_error($$SELECT secretsmgr_test_secret('lambda/app', '11111111-1111-4111-8111-111111111111')$$);

-- createSecret (the Lambda's PutSecretValue with the token)
\! test/emulator/smctl put lambda/app '{"engine":"postgres","host":"db.internal","username":"regress_lambda_app","password":"Lambda-Pending-Pw-5","port":5432}' --stages AWSPENDING --token 11111111-1111-4111-8111-111111111111
-- testSecret before setSecret: false, and says why
SELECT secretsmgr_test_secret('lambda/app', '11111111-1111-4111-8111-111111111111') AS test_before_set;
-- setSecret: the role now has the pending password
SELECT secretsmgr_set_secret('lambda/app', '11111111-1111-4111-8111-111111111111');
SELECT sm_login('lambda/app', 'AWSPENDING') AS pending_logs_in,
       sm_login('lambda/app') AS current_logs_in;
-- a retried setSecret is a no-op that says so
SELECT secretsmgr_set_secret('lambda/app', '11111111-1111-4111-8111-111111111111');
SELECT secretsmgr_test_secret('lambda/app', '11111111-1111-4111-8111-111111111111') AS test_after_set;
-- finishSecret (the Lambda's UpdateSecretVersionStage)
\! /usr/bin/python3 -c 'import boto3,os; c=boto3.client("secretsmanager",endpoint_url=os.environ["SM_EMULATOR_URL"],region_name="us-east-1",aws_access_key_id="AKIDSECRETSMGRTEST",aws_secret_access_key="TESTSECRETKEY/secretsmgr+EXAMPLE"); v=c.describe_secret(SecretId="lambda/app")["VersionIdsToStages"]; cur=[k for k,s in v.items() if "AWSCURRENT" in s][0]; c.update_secret_version_stage(SecretId="lambda/app",VersionStage="AWSCURRENT",MoveToVersionId="11111111-1111-4111-8111-111111111111",RemoveFromVersionId=cur)'
SELECT sm_login('lambda/app') AS current_logs_in, sm_login('lambda/app', 'AWSPREVIOUS') AS previous_logs_in,
       secretsmgr_verify('lambda/app') AS verifies;
-- steps retried after finishSecret still succeed
SELECT secretsmgr_set_secret('lambda/app', '11111111-1111-4111-8111-111111111111');
SELECT secretsmgr_test_secret('lambda/app', '11111111-1111-4111-8111-111111111111') AS test_after_finish;
-- the Lambda may pass the secret's ARN
SELECT secretsmgr_test_secret(secretsmgr_describe_secret('lambda/app') ->> 'ARN',
                              '11111111-1111-4111-8111-111111111111') AS test_by_arn;

-- refusals: each leaves the role's password alone
SELECT sm_error($$SELECT secretsmgr_set_secret('lambda/app', '99999999-9999-4999-8999-999999999999')$$);
\! test/emulator/smctl put lambda/other '{"username":"regress_lambda_other","password":"Lambda-Other-Pending-Pw-6"}' --stages AWSPENDING --token 22222222-2222-4222-8222-222222222222
SELECT sm_error($$SELECT secretsmgr_set_secret('lambda/app', '22222222-2222-4222-8222-222222222222')$$);
SELECT sm_stage_id('lambda/app', 'AWSPREVIOUS') AS previous_id \gset
SELECT sm_error(format('SELECT secretsmgr_set_secret(%L, %L)', 'lambda/app', :'previous_id'));
\! test/emulator/smctl put lambda/app '{"username":"regress_lambda_other","password":"Lambda-Wrong-User-Pw-7"}' --stages AWSPENDING --token 33333333-3333-4333-8333-333333333333
SELECT sm_error($$SELECT secretsmgr_set_secret('lambda/app', '33333333-3333-4333-8333-333333333333')$$);
SELECT sm_error($$SELECT secretsmgr_test_secret('lambda/app', '33333333-3333-4333-8333-333333333333')$$);
\! test/emulator/smctl put lambda/app '{"username":"regress_lambda_app","engine":"postgres"}' --stages AWSPENDING --token 44444444-4444-4444-8444-444444444444
SELECT sm_error($$SELECT secretsmgr_set_secret('lambda/app', '44444444-4444-4444-8444-444444444444')$$);
SELECT sm_error($$SELECT secretsmgr_set_secret('lambda/unmanaged', '44444444-4444-4444-8444-444444444444')$$);
SELECT sm_error($$SELECT secretsmgr_set_secret('lambda/app', 'short')$$);
SELECT secretsmgr_set_secret('lambda/app', NULL) IS NULL AS strict;
BEGIN READ ONLY;
SELECT sm_error($$SELECT secretsmgr_set_secret('lambda/app', '11111111-1111-4111-8111-111111111111')$$);
-- testSecret only reads: it works in a read-only transaction
SELECT secretsmgr_test_secret('lambda/app', '11111111-1111-4111-8111-111111111111') AS test_read_only;
ROLLBACK;
SELECT sm_login('lambda/app') AS current_still_logs_in;

-- alternating: the pending version must name the user not in AWSCURRENT
SELECT secretsmgr_get_secret('lambda/alt') ->> 'username' AS current_user_name;
\! test/emulator/smctl put lambda/alt '{"engine":"postgres","host":"db.internal","username":"regress_lambda_alt_clone","password":"Lambda-Alt-Same-Pw-8"}' --stages AWSPENDING --token 55555555-5555-4555-8555-555555555555
SELECT sm_error($$SELECT secretsmgr_set_secret('lambda/alt', '55555555-5555-4555-8555-555555555555')$$);
\! test/emulator/smctl put lambda/alt '{"engine":"postgres","host":"db.internal","username":"regress_lambda_alt","password":"Lambda-Alt-Pending-Pw-9"}' --stages AWSPENDING --token 66666666-6666-4666-8666-666666666666
SELECT secretsmgr_set_secret('lambda/alt', '66666666-6666-4666-8666-666666666666');
-- the other user still logs in with AWSCURRENT while the pending one is set
SELECT sm_login('lambda/alt') AS current_logs_in, sm_login('lambda/alt', 'AWSPENDING') AS pending_logs_in;
SELECT secretsmgr_test_secret('lambda/alt', '66666666-6666-4666-8666-666666666666') AS test_alt;

-- history: one row per step, via 'lambda', never a password
SELECT secret_id, step, status, via, role_name, sqlstate,
       CASE WHEN new_version_id ~ '^([0-9])\1{7}-' THEN new_version_id
            WHEN new_version_id IS NOT NULL THEN '<random>' END AS new_version_id
FROM secretsmgr_rotation_history WHERE via = 'lambda' ORDER BY id;
SELECT count(*) AS rows_with_a_password FROM secretsmgr_rotation_history h
WHERE h::text ~ 'Lambda-(Initial|Alt|Other|Pending|Wrong|Unmanaged)';

-- clean up
SELECT secretsmgr_unmanage('lambda/app'), secretsmgr_unmanage('lambda/alt'), secretsmgr_unmanage('lambda/other');
DROP ROLE regress_lambda_app, regress_lambda_alt, regress_lambda_alt_clone, regress_lambda_other;
