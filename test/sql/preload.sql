-- preload: the first read of a session fetches secretsmgr.preload's secrets
-- in one batch, so that read is a cache hit; a failed preload only warns.
\! test/emulator/smctl reset --state
\! test/emulator/smctl create preload/a '{"username":"pa","password":"Preload-Pw-A1"}'
\! test/emulator/smctl create preload/b '{"username":"pb","password":"Preload-Pw-B1"}'
SET secretsmgr.preload = 'preload/a, preload/b, preload/missing';
SELECT secretsmgr_get_secret('preload/b') ->> 'username' AS first_read;
SELECT name, count FROM secretsmgr_stats()
WHERE (category = 'cache' AND name IN ('hit', 'miss')) OR category = 'api_call' ORDER BY name;
\! test/emulator/smctl calls GetSecretValue
\! test/emulator/smctl calls BatchGetSecretValue
-- later reads of the list are hits too, and preload does not run again
SELECT secretsmgr_get_secret('preload/a') ->> 'username' AS second;
\! test/emulator/smctl calls BatchGetSecretValue
