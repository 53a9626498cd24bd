-- cache: hits, expiry, LRU bound, invalidation, and its counters
\! test/emulator/smctl reset --state
\! test/emulator/smctl create cache/a '{"username":"a","password":"Cache-Pw-A1"}'
\! test/emulator/smctl create cache/b '{"username":"b","password":"Cache-Pw-B1"}'
\! test/emulator/smctl create cache/c '{"username":"c","password":"Cache-Pw-C1"}'
SELECT secretsmgr_cache_invalidate();
SELECT secretsmgr_stats_reset();
SET secretsmgr.cache_ttl = '5min';

-- first read misses, the next ones hit: one API call for three reads
SELECT secretsmgr_get_secret('cache/a') ->> 'username' AS u FROM generate_series(1, 3);
SELECT name, count FROM secretsmgr_stats() WHERE category = 'cache' AND name IN ('hit', 'miss') ORDER BY name;
\! test/emulator/smctl calls GetSecretValue

-- a new AWSCURRENT is not seen until the entry expires or is invalidated
\! test/emulator/smctl create cache/a '{"username":"a2","password":"Cache-Pw-A2"}'
SELECT secretsmgr_get_secret('cache/a') ->> 'username' AS still_cached;
SELECT secretsmgr_cache_invalidate('cache/a') AS dropped;
SELECT secretsmgr_get_secret('cache/a') ->> 'username' AS refreshed;

-- stage and version are part of the key
SELECT secretsmgr_get_secret('cache/a', 'AWSPREVIOUS') ->> 'username' AS previous;
SELECT count FROM secretsmgr_stats() WHERE category = 'cache' AND name = 'entries';

-- expiry
SET secretsmgr.cache_ttl = '1s';
SELECT secretsmgr_get_secret('cache/b') ->> 'username' AS b;
SELECT pg_sleep(1.2);
SELECT secretsmgr_get_secret('cache/b') ->> 'username' AS b_again;
SELECT count > 0 AS expired_counted FROM secretsmgr_stats() WHERE category = 'cache' AND name = 'expired';
SET secretsmgr.cache_ttl = '5min';

-- LRU bound: the least recently used entry goes first
SELECT secretsmgr_cache_invalidate();
SET secretsmgr.cache_max_entries = 2;
SELECT secretsmgr_get_secret('cache/a') ->> 'username', secretsmgr_get_secret('cache/b') ->> 'username';
SELECT secretsmgr_get_secret('cache/a') ->> 'username';  -- a is now the most recent
SELECT secretsmgr_get_secret('cache/c') ->> 'username';  -- evicts b
SELECT name, count FROM secretsmgr_stats() WHERE category = 'cache' AND name IN ('entries', 'evicted') ORDER BY name;
\! test/emulator/smctl calls GetSecretValue
SELECT secretsmgr_get_secret('cache/a') ->> 'username';  -- hit: no new call
\! test/emulator/smctl calls GetSecretValue
RESET secretsmgr.cache_max_entries;

-- cache off
SET secretsmgr.cache_ttl = 0;
SELECT secretsmgr_get_secret('cache/a') ->> 'username', secretsmgr_get_secret('cache/a') ->> 'username';
SELECT count FROM secretsmgr_stats() WHERE category = 'cache' AND name = 'entries';
RESET secretsmgr.cache_ttl;

-- invalidate checks its argument, NULL means all
SELECT secretsmgr_cache_invalidate('');
SELECT secretsmgr_cache_invalidate(NULL) >= 0 AS all_dropped;
