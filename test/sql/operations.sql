-- operations: secretsmgr_iam_policy and secretsmgr_health, called by
-- regress_dba (CREATEROLE, the DBA grants of docs/security.md)
\! test/emulator/smctl reset --state
\! test/emulator/smctl create ops/app '{"username":"regress_ops_app","password":"Ops-Initial-Pw-1x"}' --kms-key-id arn:aws:kms:us-east-1:123456789012:key/1111aaaa-2222-bbbb-3333-cccc4444dddd
\! test/emulator/smctl create ops/alt '{"username":"regress_ops_alt","password":"Ops-Alt-Initial-Pw-2"}'
CREATE ROLE regress_ops_app LOGIN;
CREATE ROLE regress_ops_alt LOGIN;
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
-- no managed secrets: only the calls that name no secret, a short report
SELECT secretsmgr_iam_policy();
SELECT check_name, status FROM secretsmgr_health();

SELECT secretsmgr_manage('ops/app', 'regress_ops_app', rotation_interval => '30 days');
SELECT secretsmgr_manage('ops/alt', 'regress_ops_alt', 'alternating');

-- exact ARNs (the random suffix masked), the customer-managed key with kms:ViaService
SELECT jsonb_pretty(regexp_replace(secretsmgr_iam_policy()::text, '-[A-Za-z0-9]{6}"', '-XXXXXX"', 'g')::jsonb);
-- the Lambda's policy also reads its administrator secret, named by its full ARN
SELECT jsonb_pretty(regexp_replace(secretsmgr_iam_policy('lambda', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ops/admin-AbC123')::text, '-[A-Za-z0-9]{6}"', '-XXXXXX"', 'g')::jsonb);
SELECT sm_error($$SELECT secretsmgr_iam_policy('admin')$$);
SELECT sm_error($$SELECT secretsmgr_iam_policy('lambda')$$);
SELECT sm_error($$SELECT secretsmgr_iam_policy('lambda', 'ops/admin')$$);
SELECT sm_error($$SELECT secretsmgr_iam_policy('lambda', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ops/admin-??????')$$);
SELECT sm_error($$SELECT secretsmgr_iam_policy('database', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ops/admin-AbC123')$$);

-- health: the initial passwords were never applied, so AWSCURRENT does not verify
SELECT check_name, status FROM secretsmgr_health() ORDER BY check_name;
SELECT length(secretsmgr_rotate('ops/app')) > 0 AS rotated;
SELECT length(secretsmgr_rotate('ops/alt')) > 0 AS rotated;
SELECT check_name, status FROM secretsmgr_health() ORDER BY check_name;

-- a stale AWSPENDING and a missing clone are reported, not raised
\! test/emulator/smctl put ops/app '{"username":"regress_ops_app","password":"Ops-Pending-Pw-3x"}' --stages AWSPENDING --token 33333333-4444-5555-6666-777777777777
DROP ROLE regress_ops_alt_clone;
SELECT check_name, status,
       regexp_replace(regexp_replace(detail, '[0-9a-f-]{36}', '<version>', 'g'), '127\.0\.0\.1:[0-9]+', '127.0.0.1:<port>') AS detail
FROM secretsmgr_health() WHERE status <> 'OK' ORDER BY check_name;

-- access denied and an unreachable endpoint are FAIL rows with hints
\! test/emulator/smctl deny ops/alt
SELECT check_name, status,
       regexp_replace(regexp_replace(detail, 'request id [0-9a-f-]+', 'request id <id>'), 'ops/alt-[A-Za-z0-9]{6}', 'ops/alt-XXXXXX', 'g') AS detail
FROM secretsmgr_health() WHERE check_name LIKE 'secret ops/alt%';
\! test/emulator/smctl allow ops/alt
SET secretsmgr.max_attempts = 1;
SET secretsmgr.connect_timeout = '200ms';
\! test/emulator/smctl fault '*' drop 6
SELECT check_name, status FROM secretsmgr_health() WHERE check_name IN ('configuration', 'credentials', 'endpoint');
\! test/emulator/smctl reset

SELECT secretsmgr_unmanage('ops/app'), secretsmgr_unmanage('ops/alt');
RESET ROLE;
DROP ROLE regress_ops_app;
DROP ROLE regress_ops_alt;
