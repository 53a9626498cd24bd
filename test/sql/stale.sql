-- stale: with secretsmgr.cache_max_stale, an expired value rides out a
-- transient outage (throttling, 5xx, timeouts, dropped connections), with a
-- warning once per entry; never not-found or access errors, never after an
-- invalidation, never past the bound.
\! test/emulator/smctl reset --state
\! test/emulator/smctl create stale/app '{"username":"st","password":"Stale-Pw-1abc"}'
SELECT secretsmgr_cache_invalidate() >= 0 AS emptied;
SELECT secretsmgr_stats_reset();
SET secretsmgr.cache_ttl = '1s';
SET secretsmgr.max_attempts = 1;
SET secretsmgr.request_timeout = '500ms';

-- off by default: an expired value is not served when the refresh fails
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS warm;
SELECT pg_sleep(1.1);
\! test/emulator/smctl fault GetSecretValue throttle 1
SELECT sm_error($$SELECT secretsmgr_get_secret('stale/app')$$);

-- on: each transient kind is ridden out
SET secretsmgr.cache_max_stale = '1h';
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS warm_again;
SELECT pg_sleep(1.1);
\! test/emulator/smctl fault GetSecretValue throttle 1
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS stale_after_throttle;
\! test/emulator/smctl fault GetSecretValue error503 1
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS stale_after_503_no_second_warning;
\! test/emulator/smctl fault GetSecretValue hang 1 --delay-ms 3000
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS stale_after_timeout;
\! test/emulator/smctl fault GetSecretValue drop 2
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS stale_after_drop;
-- connection refused: an endpoint where nothing listens
SET secretsmgr.endpoint = 'http://127.0.0.1:9/';
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS stale_after_refused;
RESET secretsmgr.endpoint;
SELECT name, count FROM secretsmgr_stats() WHERE category = 'cache' AND name = 'stale';

-- a successful refresh ends the stale period
\! test/emulator/smctl reset
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS refreshed;
SELECT name, count FROM secretsmgr_stats() WHERE category = 'cache' AND name = 'stale';
SELECT pg_sleep(1.1);

-- not for access errors (nor any other non-transient error)
\! test/emulator/smctl fault GetSecretValue access_denied 1
SELECT sm_error($$SELECT secretsmgr_get_secret('stale/app')$$);
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS warm_3;
SELECT pg_sleep(1.1);
\! test/emulator/smctl deny stale/app
SELECT sm_error($$SELECT secretsmgr_get_secret('stale/app')$$);
\! test/emulator/smctl allow stale/app

-- not after an invalidation
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS warm_4;
SELECT secretsmgr_cache_invalidate('stale/app');
\! test/emulator/smctl fault GetSecretValue throttle 1
SELECT sm_error($$SELECT secretsmgr_get_secret('stale/app')$$);

-- not after a rotation of the secret's role
\! test/emulator/smctl create stale/rot '{"username":"regress_stale_rot","password":"Stale-Rot-Pw-1"}'
CREATE ROLE regress_stale_rot LOGIN;
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_manage('stale/rot', 'regress_stale_rot');
RESET ROLE;
SELECT secretsmgr_get_secret('stale/rot') ->> 'username' AS warm_rot;
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT length(secretsmgr_rotate('stale/rot')) = 36 AS rotated;
RESET ROLE;
\! test/emulator/smctl fault GetSecretValue throttle 1
SELECT sm_error($$SELECT secretsmgr_get_secret('stale/rot')$$);
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_unmanage('stale/rot');
RESET ROLE;
DROP ROLE regress_stale_rot;

-- not past the bound
SET secretsmgr.cache_max_stale = '1s';
SELECT secretsmgr_get_secret('stale/app') ->> 'username' AS warm_5;
SELECT pg_sleep(2.2);
\! test/emulator/smctl fault GetSecretValue throttle 1
SELECT sm_error($$SELECT secretsmgr_get_secret('stale/app')$$);

-- the batch read rides it out too
SET secretsmgr.cache_max_stale = '1h';
SELECT count(*) FROM secretsmgr_get_secrets(ARRAY['stale/app']) WHERE value IS NOT NULL;
SELECT pg_sleep(1.1);
\! test/emulator/smctl fault BatchGetSecretValue error500 1
SELECT secret_id, value ->> 'username' AS username, error FROM secretsmgr_get_secrets(ARRAY['stale/app']);
