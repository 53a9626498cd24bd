-- fetch: reading secrets through the SQL API, against the emulator.
-- Secret values never appear in SQL text (log_statement would log them):
-- they are compared through md5().
\set VERBOSITY default
\! test/emulator/smctl reset --state
\! test/emulator/smctl create fetch/json '{"engine":"postgres","host":"db.internal","username":"app_user","password":"Fetch-Pw-1xyz","port":5432}'
\! test/emulator/smctl create fetch/plain 'plain-text-value-42'
\! test/emulator/smctl create-binary fetch/bin 'AAECAwT/'

-- jsonb, text and bytea views of a secret
SELECT secretsmgr_get_secret('fetch/json') - 'password' AS without_password;
SELECT md5(secretsmgr_get_secret('fetch/json') ->> 'password') = md5('Fetch' || '-Pw-1xyz') AS password_matches;
SELECT md5(secretsmgr_get_secret_string('fetch/plain')) = md5('plain-text-' || 'value-42') AS string_matches;
SELECT md5(encode(secretsmgr_get_secret_binary('fetch/bin'), 'hex')) = md5('000102' || '0304ff') AS binary_matches;
SELECT length(secretsmgr_get_secret_binary('fetch/plain')) AS string_as_bytes;

-- the same secret by ARN
SELECT secretsmgr_get_secret(secretsmgr_describe_secret('fetch/json') ->> 'ARN') ->> 'username' AS by_arn;

-- describe: metadata, never the value
SELECT d ? 'SecretString' AS has_string, d ? 'SecretBinary' AS has_binary,
       d ->> 'Name' AS name, jsonb_typeof(d -> 'VersionIdsToStages') AS stages_type,
       (SELECT array_agg(s ORDER BY s) FROM jsonb_each(d -> 'VersionIdsToStages') e,
               jsonb_array_elements_text(e.value) s) AS labels
FROM secretsmgr_describe_secret('fetch/json') d;

-- stages and version ids
\! test/emulator/smctl put fetch/json '{"username":"app_user","password":"Fetch-Pw-2abc"}' --stages AWSPENDING --token 11111111-2222-3333-4444-555555555555
SELECT md5(secretsmgr_get_secret('fetch/json', 'AWSPENDING') ->> 'password') = md5('Fetch' || '-Pw-2abc') AS pending_matches;
SELECT md5(secretsmgr_get_secret('fetch/json', NULL, '11111111-2222-3333-4444-555555555555') ->> 'password') = md5('Fetch' || '-Pw-2abc') AS by_version_id;
SELECT md5(secretsmgr_get_secret('fetch/json', 'AWSPENDING', '11111111-2222-3333-4444-555555555555') ->> 'password') = md5('Fetch' || '-Pw-2abc') AS stage_and_id_agree;
SELECT secretsmgr_get_secret('fetch/json', version_stage => 'AWSCURRENT') ->> 'username' AS current_user_name;

-- NULL secret id gives NULL, like a strict function
SELECT secretsmgr_get_secret(NULL) IS NULL AS null_in_null_out,
       secretsmgr_get_secret_string(NULL) IS NULL AS null_string,
       secretsmgr_get_secret_binary(NULL) IS NULL AS null_binary;

-- every call above went through the signed API
SELECT name, count > 0 AS called FROM secretsmgr_stats()
WHERE category = 'api_call' ORDER BY name;
