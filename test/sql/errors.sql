-- errors: every bad input and every failure of Secrets Manager gets a
-- SQLSTATE, a message, a detail and a hint, and never quotes a value.
\pset format unaligned
\pset tuples_only on
\! test/emulator/smctl reset --state
\! test/emulator/smctl create err/json '{"username":"u","password":"Err-Secret-77"}'
\! test/emulator/smctl create err/notjson 'Err-Not-Json-{'
\! test/emulator/smctl create-binary err/bin 'AAEC'
SET secretsmgr.cache_ttl = 0;

-- bad arguments: nothing goes on the wire
SELECT sm_error($$SELECT secretsmgr_get_secret('')$$);
SELECT sm_error($$SELECT secretsmgr_get_secret(repeat('x', 2049))$$);
SELECT sm_error($$SELECT secretsmgr_get_secret(E'bad\tname')$$);
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json', '')$$);
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json', repeat('S', 257))$$);
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json', NULL, 'short')$$);
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json', NULL, repeat('v', 65))$$);
SELECT sm_error($$SELECT secretsmgr_describe_secret('')$$);

-- unknown secret, unknown stage, contradicting stage and version id
SELECT sm_error($$SELECT secretsmgr_get_secret('err/does-not-exist')$$);
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json', 'NOSUCHSTAGE')$$);
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json', 'AWSPREVIOUS', '00000000-0000-0000-0000-000000000000')$$);
SELECT sm_error($$SELECT secretsmgr_describe_secret('err/does-not-exist')$$);

-- a value of the wrong kind: the message never quotes it
SELECT sm_error($$SELECT secretsmgr_get_secret('err/notjson')$$);
SELECT sm_error($$SELECT secretsmgr_get_secret('err/bin')$$);
SELECT sm_error($$SELECT secretsmgr_get_secret_string('err/bin')$$);

-- access denied by IAM
\! test/emulator/smctl deny err/json
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
\! test/emulator/smctl allow err/json

-- throttled, then served: the retries are counted
SELECT secretsmgr_stats_reset();
\! test/emulator/smctl fault GetSecretValue throttle 2
SELECT secretsmgr_get_secret('err/json') ->> 'username' AS after_two_throttles;
SELECT category, name, count FROM secretsmgr_stats()
WHERE category IN ('retry', 'api_error') ORDER BY category, name;

-- throttled past max_attempts
\! test/emulator/smctl fault GetSecretValue throttle 3
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
SET secretsmgr.max_attempts = 1;
\! test/emulator/smctl fault GetSecretValue throttle 1
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
RESET secretsmgr.max_attempts;

-- 5xx and dropped connections are retried
\! test/emulator/smctl fault GetSecretValue error500 1
\! test/emulator/smctl fault GetSecretValue drop 1
SELECT secretsmgr_get_secret('err/json') ->> 'username' AS after_500_and_drop;

-- malformed, oversized, non-JSON error bodies: mapped by what we can tell
\! test/emulator/smctl fault GetSecretValue malformed 1
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
\! test/emulator/smctl fault GetSecretValue oversized 1
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
\! test/emulator/smctl fault GetSecretValue html403 1
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
\! test/emulator/smctl fault GetSecretValue empty403 1
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
\! test/emulator/smctl fault GetSecretValue xml_error 3
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
\! test/emulator/smctl fault GetSecretValue decryption_failure 1
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);

-- a request that outlives request_timeout
SET secretsmgr.request_timeout = '300ms';
SET secretsmgr.max_attempts = 1;
\! test/emulator/smctl fault GetSecretValue hang 1 --delay-ms 3000
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
RESET secretsmgr.request_timeout;
RESET secretsmgr.max_attempts;

-- wrong credentials: the emulator checks every signature with botocore
SET secretsmgr.secret_access_key = 'not-the-right-secret-key';
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
SET secretsmgr.access_key_id = 'AKIDUNKNOWN000000000';
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
RESET secretsmgr.access_key_id;
RESET secretsmgr.secret_access_key;

-- no credentials, no region
SET secretsmgr.access_key_id = '';
SET secretsmgr.secret_access_key = '';
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
RESET secretsmgr.access_key_id;
RESET secretsmgr.secret_access_key;
SET secretsmgr.region = '';
SELECT sm_error($$SELECT secretsmgr_get_secret('err/json')$$);
RESET secretsmgr.region;

-- settings are checked
SELECT sm_error($$SET secretsmgr.endpoint = 'http://secretsmanager.example.com/'$$);
SELECT sm_error($$SET secretsmgr.region = 'Not A Region'$$);

-- and after all that, the secret still reads
SELECT secretsmgr_get_secret('err/json') ->> 'username' AS still_works;
