-- iam_enforced: the database's access key holds exactly the policy
-- secretsmgr_iam_policy('database') generates, and the emulator enforces it
-- as IAM does; every function of the extension then runs without one
-- AccessDenied.  The policy the function generated before its actions came
-- from the client's table of operations is not enough.
\! test/emulator/smctl reset --state
\! test/emulator/smctl create iam/app '{"username":"regress_iam_app","password":"Iam-Initial-Pw-1x"}' --kms-key-id arn:aws:kms:us-east-1:123456789012:key/5555aaaa-6666-bbbb-7777-cccc8888dddd
\! test/emulator/smctl create iam/alt '{"username":"regress_iam_alt","password":"Iam-Alt-Initial-Pw-2"}'
SET secretsmgr.cache_ttl = 0;
CREATE ROLE regress_iam_app LOGIN;
CREATE ROLE regress_iam_alt LOGIN;
SELECT secretsmgr_manage('iam/app', 'regress_iam_app', rotation_interval => '30 days');
SELECT secretsmgr_manage('iam/alt', 'regress_iam_alt', 'alternating', rotation_interval => '30 days');

-- attach exactly what the function returns to the database's key
\pset tuples_only on
\pset format unaligned
SELECT secretsmgr_iam_policy() \g |test/emulator/smctl iam-policy AKIDSECRETSMGRTEST -
\pset tuples_only off
\pset format aligned
SELECT jsonb_path_query_array(secretsmgr_iam_policy(), '$.Statement[*].Action[*]') AS actions;
-- a secret the policy does not name is denied, so the policy is enforced
\! test/emulator/smctl create iam/unlisted '{"username":"nobody","password":"Iam-Unlisted-Pw-3"}'
SELECT sm_error($$SELECT secretsmgr_get_secret('iam/unlisted')$$);
\! test/emulator/smctl reset

-- every function, under the generated policy
\pset tuples_only on
\pset format unaligned
SELECT secretsmgr_iam_policy() \g |test/emulator/smctl iam-policy AKIDSECRETSMGRTEST -
\pset tuples_only off
\pset format aligned
SELECT length(secretsmgr_rotate('iam/app')) > 0 AS rotated_single,
       length(secretsmgr_rotate('iam/alt')) > 0 AS rotated_alternating;
SELECT sm_login('iam/app') AS app_logs_in, sm_login('iam/alt') AS alt_logs_in;
-- every row OK (configuration warns of the emulator's plain HTTP endpoint)
SELECT check_name, status,
       CASE WHEN status <> 'OK' THEN regexp_replace(regexp_replace(regexp_replace(detail, '127\.0\.0\.1:[0-9]+', '127.0.0.1:<port>'), '(secret:[a-z/]+)-[A-Za-z0-9]{6}', '\1-XXXXXX', 'g'), '[0-9a-f-]{36}', '<id>') END AS detail
  FROM secretsmgr_health() ORDER BY check_name;
SELECT secret_id, value ? 'password' AS has_password, error
  FROM secretsmgr_get_secrets(ARRAY['iam/app', 'iam/alt']);
SELECT secretsmgr_get_secret('iam/app') ? 'password' AS get_secret,
       length(secretsmgr_get_secret_string('iam/alt')) > 0 AS get_secret_string;
SELECT secretsmgr_describe_secret('iam/app') ? 'VersionIdsToStages' AS described;
SELECT secretsmgr_verify('iam/app') AS verified_app, secretsmgr_verify('iam/alt') AS verified_alt;
SELECT secretsmgr_reconcile('iam/app') IS NOT NULL AS reconciled;
SELECT count(*) AS due FROM secretsmgr_rotate_due();
-- the Lambda's steps in the database: createSecret's PutSecretValue is
-- made with the same key, which the policy allows on the managed secrets
\! test/emulator/smctl put iam/app '{"username":"regress_iam_app","password":"Iam-Pending-Pw-4x"}' --stages AWSPENDING --token 44444444-4444-4444-8444-444444444444
SELECT secretsmgr_set_secret('iam/app', '44444444-4444-4444-8444-444444444444') IS NOT NULL AS set_secret,
       secretsmgr_test_secret('iam/app', '44444444-4444-4444-8444-444444444444') AS test_secret;
-- finishSecret (the Lambda's UpdateSecretVersionStage), with the same key
\! /usr/bin/python3 -c 'import boto3,os; c=boto3.client("secretsmanager",endpoint_url=os.environ["SM_EMULATOR_URL"],region_name="us-east-1",aws_access_key_id="AKIDSECRETSMGRTEST",aws_secret_access_key="TESTSECRETKEY/secretsmgr+EXAMPLE"); cur=[v for v,s in c.describe_secret(SecretId="iam/app")["VersionIdsToStages"].items() if "AWSCURRENT" in s][0]; c.update_secret_version_stage(SecretId="iam/app",VersionStage="AWSCURRENT",MoveToVersionId="44444444-4444-4444-8444-444444444444",RemoveFromVersionId=cur)'
SELECT sm_login('iam/app') AS app_logs_in;
\! test/emulator/smctl calls | /usr/bin/python3 -c 'import json, sys; r = json.load(sys.stdin)["recent"]; print("calls:", len(r) > 20, "access denied:", sum(e.get("error") == "AccessDeniedException" for e in r))'

-- the policy generated before (DescribeSecret, GetSecretValue, PutSecretValue,
-- UpdateSecretVersionStage on the ARNs; the key through Secrets Manager) is
-- not enough: health's endpoint probe, its version check and batch reads fail
\pset tuples_only on
\pset format unaligned
SELECT jsonb_build_object('Version', '2012-10-17', 'Statement', jsonb_build_array(
         jsonb_build_object('Effect', 'Allow',
           'Action', '["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"]'::jsonb,
           'Resource', p #> '{Statement,0,Resource}'),
         jsonb_build_object('Effect', 'Allow',
           'Action', '["kms:Decrypt", "kms:GenerateDataKey"]'::jsonb,
           'Resource', p #> '{Statement,2,Resource}',
           'Condition', '{"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}'::jsonb)))
  FROM secretsmgr_iam_policy() AS p \g |test/emulator/smctl iam-policy AKIDSECRETSMGRTEST -
\pset tuples_only off
\pset format aligned
SELECT check_name, status, regexp_replace(regexp_replace(regexp_replace(detail, '127\.0\.0\.1:[0-9]+', '127.0.0.1:<port>'), '(secret:[a-z/]+)-[A-Za-z0-9]{6}', '\1-XXXXXX', 'g'), '[0-9a-f-]{36}', '<id>') AS detail
  FROM secretsmgr_health() WHERE status <> 'OK' ORDER BY check_name;
SELECT secret_id, value IS NULL AS no_value, error
  FROM secretsmgr_get_secrets(ARRAY['iam/app', 'iam/alt']);
\! test/emulator/smctl reset

-- a secret the database only reads, and one it is about to bind, are named
-- (by ARN, or by name with "-??????" for the suffix) in the third argument:
-- without it both are denied; with exactly what it generates, both work,
-- the reader's customer-managed key included, and after the binding the
-- same call grants the new secret the managed actions
\! test/emulator/smctl create iam/reader '{"username":"nobody","password":"Iam-Reader-Pw-5x"}' --kms-key-id arn:aws:kms:us-east-1:123456789012:key/9999aaaa-8888-bbbb-7777-cccc6666dddd
\! test/emulator/smctl create iam/new '{"username":"regress_iam_new","password":"Iam-New-Initial-Pw-6"}'
CREATE ROLE regress_iam_new LOGIN;
\pset tuples_only on
\pset format unaligned
SELECT secretsmgr_iam_policy() \g |test/emulator/smctl iam-policy AKIDSECRETSMGRTEST -
\pset tuples_only off
\pset format aligned
SELECT sm_error($$SELECT secretsmgr_get_secret('iam/reader')$$);
SELECT sm_error($$SELECT secretsmgr_manage('iam/new', 'regress_iam_new')$$);
\set reads 'ARRAY[''arn:aws:secretsmanager:us-east-1:123456789012:secret:iam/reader-??????'', ''arn:aws:secretsmanager:us-east-1:123456789012:secret:iam/new-??????'']'
SELECT jsonb_pretty(jsonb_path_query_array(secretsmgr_iam_policy(secrets => :reads),
         '$.Statement[*] ? (@.Sid like_regex "Read")'));
\pset tuples_only on
\pset format unaligned
SELECT secretsmgr_iam_policy(secrets => :reads) \g |test/emulator/smctl iam-policy AKIDSECRETSMGRTEST -
\pset tuples_only off
\pset format aligned
SELECT secretsmgr_get_secret('iam/reader') ? 'password' AS reader_read;
SELECT secretsmgr_manage('iam/new', 'regress_iam_new');
-- (the new version is put at commit, which AWS refuses: the rotation rolls back)
\set VERBOSITY sqlstate
SELECT length(secretsmgr_rotate('iam/new')) > 0 AS rotated_new;
\set VERBOSITY default
-- regenerated after the binding: iam/new is managed now, by its exact ARN
SELECT s ->> 'Sid' AS sid,
       regexp_replace(s ->> 'Resource', '-[A-Za-z0-9]{6}"', '-XXXXXX"', 'g') AS resource
  FROM jsonb_array_elements(secretsmgr_iam_policy(secrets => :reads) -> 'Statement') AS s
 WHERE s ->> 'Sid' IN ('SecretsmgrManagedSecrets', 'SecretsmgrReadSecrets');
\pset tuples_only on
\pset format unaligned
SELECT secretsmgr_iam_policy(secrets => :reads) \g |test/emulator/smctl iam-policy AKIDSECRETSMGRTEST -
\pset tuples_only off
\pset format aligned
SELECT length(secretsmgr_rotate('iam/new')) > 0 AS rotated_new;
SELECT sm_login('iam/new') AS new_logs_in;
-- what the third argument refuses
SELECT sm_error($$SELECT secretsmgr_iam_policy(secrets => ARRAY['iam/reader'])$$);
SELECT sm_error($$SELECT secretsmgr_iam_policy(secrets => ARRAY['arn:aws:secretsmanager:us-east-1:123456789012:secret:iam/*'])$$);
SELECT sm_error($$SELECT secretsmgr_iam_policy(secrets => ARRAY[NULL])$$);
SELECT sm_error($$SELECT secretsmgr_iam_policy('lambda', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ops/admin-AbC123', ARRAY['arn:aws:secretsmanager:us-east-1:123456789012:secret:iam/new-??????'])$$);
\! test/emulator/smctl reset
SELECT secretsmgr_unmanage('iam/new');
DROP ROLE regress_iam_new;

SELECT secretsmgr_unmanage('iam/app'), secretsmgr_unmanage('iam/alt');
DELETE FROM secretsmgr_rotation_history WHERE secret_id LIKE 'iam/%';
DROP ROLE regress_iam_app, regress_iam_alt, regress_iam_alt_clone;
