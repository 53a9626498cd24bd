-- batch: secretsmgr_get_secrets reads many secrets in few calls, one row per
-- requested id; a missing or forbidden secret gets an error code in its row.
\! test/emulator/smctl reset --state
\! for i in $(seq -w 1 45); do test/emulator/smctl create batch/s$i "{\"username\":\"u$i\",\"password\":\"Batch-Pw-$i-xyz\"}"; done
\! test/emulator/smctl create batch/plain 'Batch-Plain-Value'
\! test/emulator/smctl create-binary batch/bin 'AAECAw=='
\! test/emulator/smctl deny batch/s07
SELECT secretsmgr_cache_invalidate() >= 0 AS cache_emptied;
SELECT secretsmgr_stats_reset();

-- helper: the array of batch/sNN for NN in 1..n, with some missing ones mixed in
CREATE FUNCTION batch_ids(n int, missing int DEFAULT 0) RETURNS text[]
LANGUAGE sql AS $$
	SELECT array_agg(id ORDER BY ord) FROM (
		SELECT i AS ord, format('batch/s%s', lpad(i::text, 2, '0')) AS id FROM generate_series(1, n) i
		UNION ALL
		SELECT 1000 + i, format('batch/missing%s', i) FROM generate_series(1, missing) i) q
$$;

-- 1 id
SELECT secret_id, value ->> 'username' AS username, version_id IS NOT NULL AS has_version, error
FROM secretsmgr_get_secrets(ARRAY['batch/s01']);
\! test/emulator/smctl calls BatchGetSecretValue

-- 20 ids, one of them forbidden (s07) and one missing: exactly one more call
SELECT count(*) AS rows, count(value) AS values, array_agg(error ORDER BY secret_id) FILTER (WHERE error IS NOT NULL) AS errors
FROM secretsmgr_get_secrets(batch_ids(19, 1));
\! test/emulator/smctl calls BatchGetSecretValue

-- 21 ids: s01..s19 are cached now (s07 is not: it failed), so one call for 3
SELECT secretsmgr_stats_reset();
SELECT count(*) AS rows, count(value) AS values FROM secretsmgr_get_secrets(batch_ids(21));
SELECT name, count FROM secretsmgr_stats() WHERE category = 'cache' AND name IN ('hit', 'miss') ORDER BY name;
\! test/emulator/smctl calls BatchGetSecretValue

-- 45 ids + 2 missing, cold cache: 47 ids take 3 calls
SELECT secretsmgr_cache_invalidate() > 0 AS cache_emptied;
SELECT count(*) AS rows, count(value) AS values,
       count(*) FILTER (WHERE error = 'ResourceNotFoundException') AS missing,
       count(*) FILTER (WHERE error = 'AccessDeniedException') AS forbidden
FROM secretsmgr_get_secrets(batch_ids(45, 2));
\! test/emulator/smctl calls BatchGetSecretValue

-- rows come back in the order asked, duplicates included
SELECT secret_id, value ->> 'username' AS username, error
FROM secretsmgr_get_secrets(ARRAY['batch/s03', 'batch/nope', 'batch/s01', 'batch/s03', NULL, '']);

-- values that are not JSON, or binary, get their own codes
SELECT secret_id, value, error FROM secretsmgr_get_secrets(ARRAY['batch/plain', 'batch/bin']);

-- another stage is read one by one
\! test/emulator/smctl put batch/s02 '{"username":"u02","password":"Batch-Pw-02-new"}' --stages AWSPENDING --token 22222222-3333-4444-5555-666666666666
SELECT secret_id, value ->> 'username' AS username, version_id, error
FROM secretsmgr_get_secrets(ARRAY['batch/s02', 'batch/s01'], 'AWSPENDING');

-- strict => true raises the first error instead
SELECT sm_error($$SELECT * FROM secretsmgr_get_secrets(ARRAY['batch/s01', 'batch/nope'], strict => true)$$);
SELECT sm_error($$SELECT * FROM secretsmgr_get_secrets(ARRAY['batch/s07'], strict => true)$$);
SELECT sm_error($$SELECT * FROM secretsmgr_get_secrets(ARRAY['batch/plain'], strict => true)$$);
SELECT sm_error($$SELECT * FROM secretsmgr_get_secrets(ARRAY[''], strict => true)$$);
SELECT count(*) AS strict_ok FROM secretsmgr_get_secrets(batch_ids(3), strict => true);

-- bad arguments
SELECT sm_error($$SELECT * FROM secretsmgr_get_secrets(ARRAY['batch/s01'], '')$$);
SELECT sm_error($$SELECT * FROM secretsmgr_get_secrets(ARRAY[['a'],['b']])$$);
SELECT count(*) AS null_array FROM secretsmgr_get_secrets(NULL);
SELECT count(*) AS empty_array FROM secretsmgr_get_secrets('{}');
\! test/emulator/smctl allow batch/s07
DROP FUNCTION batch_ids(int, int);
