-- rotate_due_batch: secretsmgr_rotate_due() reads the current values of the
-- due secrets with BatchGetSecretValue, 20 ids a call, several calls in
-- flight (secretsmgr.max_concurrent_requests), instead of one GetSecretValue
-- each; an error the batch answer lists for one secret fails that secret's
-- rotation as its own GetSecretValue would, and only that one.  The call
-- counts come from the emulator's request counters.
\pset format unaligned
\! for i in $(seq -w 1 45); do test/emulator/smctl create dueb/$i "{\"username\":\"regress_dueb_$i\",\"password\":\"Due-Batch-Initial-$i\"}"; done
SET secretsmgr.cache_ttl = 0;
SET secretsmgr.max_attempts = 1;
-- two calls in flight: windows of 40 secrets, so 45 take two windows
SET secretsmgr.max_concurrent_requests = 2;
SET client_min_messages = warning;
DO $$
BEGIN
	FOR i IN 1..45 LOOP
		EXECUTE format('CREATE ROLE %I LOGIN', 'regress_dueb_' || lpad(i::text, 2, '0'));
		PERFORM secretsmgr_manage('dueb/' || lpad(i::text, 2, '0'),
								  'regress_dueb_' || lpad(i::text, 2, '0'),
								  rotation_interval => '1 day');
	END LOOP;
END
$$;
RESET client_min_messages;

-- dueb/07 may not be read: the batch answer lists AccessDeniedException
-- for it among the 44 values
\! test/emulator/smctl deny dueb/07 GetSecretValue
\set batch_before `test/emulator/smctl calls BatchGetSecretValue`
\set get_before `test/emulator/smctl calls GetSecretValue`
SET client_min_messages = error;  -- the WARNING names the ARN, random here
SELECT status, count(*) FROM secretsmgr_rotate_due() GROUP BY status ORDER BY status;
RESET client_min_messages;
\set batch_after `test/emulator/smctl calls BatchGetSecretValue`
\set get_after `test/emulator/smctl calls GetSecretValue`
-- the same failure a rotation reading AWSCURRENT alone meets
SELECT regexp_replace(sm_error($$SELECT secretsmgr_rotate('dueb/07')$$),
                      'arn:aws:secretsmanager:[^"]*', '<arn>', 'g') AS single_read_error;
\! test/emulator/smctl allow dueb/07 GetSecretValue
-- 45 due secrets: 2 calls for the first window of 40, 1 for the last 5.
-- No GetSecretValue at all: no rotation reads AWSCURRENT on its own, and a
-- rotation makes no other read.
SELECT :batch_after - :batch_before AS batch_get_secret_value_calls,
       :get_after - :get_before AS get_secret_value_calls;

-- the denied secret failed as its GetSecretValue would have (42501, AWS
-- denied GetSecretValue), in the history too (the scheduled rotation, then
-- the single one above); every other role logs in
SELECT secret_id, via, step, status, sqlstate,
       regexp_replace(error, 'arn:aws:secretsmanager:[^"]*', '<arn>') AS error
FROM secretsmgr_rotation_history
WHERE secret_id LIKE 'dueb/%' AND status <> 'succeeded' ORDER BY id;
SELECT count(*) FILTER (WHERE sm_login('dueb/' || lpad(i::text, 2, '0'))) AS logging_in
FROM generate_series(1, 45) i;

-- a throttled batch call is retried like any call: the next run rotates
-- dueb/07 alone, after one throttling answer
SET secretsmgr.max_attempts = 3;
SET secretsmgr.retry_base_delay = '10ms';
\! test/emulator/smctl fault BatchGetSecretValue throttle 1
\set batch_before `test/emulator/smctl calls BatchGetSecretValue`
SELECT secret_id, status FROM secretsmgr_rotate_due() ORDER BY secret_id;
\set batch_after `test/emulator/smctl calls BatchGetSecretValue`
SELECT :batch_after - :batch_before AS batch_get_secret_value_calls,
       sm_login('dueb/07') AS logs_in;

SET client_min_messages = warning;
SELECT count(secretsmgr_unmanage(secret_id)) FROM secretsmgr_managed WHERE secret_id LIKE 'dueb/%';
DO $$
BEGIN
	FOR i IN 1..45 LOOP
		EXECUTE format('DROP ROLE %I', 'regress_dueb_' || lpad(i::text, 2, '0'));
	END LOOP;
END
$$;
RESET client_min_messages;
RESET secretsmgr.max_concurrent_requests;
RESET secretsmgr.max_attempts;
RESET secretsmgr.retry_base_delay;
RESET secretsmgr.cache_ttl;
