-- version_stage: a version id asked for with a stage that version does not
-- hold is "does not exist" (42704) with a hint to read by id alone, whether
-- the implementation answers ResourceNotFoundException (as the emulator
-- does) or InvalidRequestException naming the VersionStage (as others do);
-- a secret scheduled for deletion stays 55000.
\pset format unaligned
\! test/emulator/smctl create vstage/app '{"username":"regress_vstage","password":"VStage-Pw-1"}' --version-id 33333333-4444-5555-6666-777777777777
\! test/emulator/smctl put vstage/app '{"username":"regress_vstage","password":"VStage-Pw-2"}' --stages AWSPENDING --token 44444444-5555-6666-7777-888888888888
SET secretsmgr.cache_ttl = 0;
SET secretsmgr.max_attempts = 1;

-- by id alone, and by id with the stage it holds
SELECT secretsmgr_get_secret('vstage/app', NULL, '44444444-5555-6666-7777-888888888888') ->> 'username' AS by_id;
SELECT secretsmgr_get_secret('vstage/app', 'AWSPENDING', '44444444-5555-6666-7777-888888888888') ->> 'username' AS by_id_and_stage;

-- by id with the default stage, AWSCURRENT, which that version does not hold
SELECT sm_error($$SELECT secretsmgr_get_secret('vstage/app', version_id => '44444444-5555-6666-7777-888888888888')$$);
\! test/emulator/smctl fault GetSecretValue stage_mismatch
SELECT sm_error($$SELECT secretsmgr_get_secret('vstage/app', version_id => '44444444-5555-6666-7777-888888888888')$$);
\! test/emulator/smctl fault GetSecretValue stage_mismatch
SELECT sm_error($$SELECT secretsmgr_get_secret_string('vstage/app', 'AWSPREVIOUS', '33333333-4444-5555-6666-777777777777')$$);

-- a version id that does not exist at all
SELECT sm_error($$SELECT secretsmgr_get_secret('vstage/app', NULL, '55555555-6666-7777-8888-999999999999')$$);

-- an InvalidRequestException about anything else keeps its own meaning: a
-- secret scheduled for deletion, asked for by version id and stage
\! /usr/bin/python3 -c 'import boto3,os; boto3.client("secretsmanager",endpoint_url=os.environ["SM_EMULATOR_URL"],region_name="us-east-1",aws_access_key_id="AKIDSECRETSMGRTEST",aws_secret_access_key="TESTSECRETKEY/secretsmgr+EXAMPLE").delete_secret(SecretId="vstage/app")'
SELECT sm_error($$SELECT secretsmgr_get_secret('vstage/app', 'AWSPENDING', '44444444-5555-6666-7777-888888888888')$$);
