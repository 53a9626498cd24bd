-- scram: the SCRAM-SHA-256 verifier secretsmgr builds with OpenSSL's PBKDF2
-- is byte for byte PostgreSQL's.  secretsmgr_scram_selftest is a test-only
-- C entry point (not created by the extension; a superuser binds it here):
-- it generates passwords from a seed and builds each verifier both ways in
-- this backend for the same salt and iteration count; every 25th also goes
-- through PostgreSQL's whole pg_be_scram_build_secret() path (its SASLprep,
-- random salt, the server's iteration count).  "differing" counts the pairs
-- that differ in any byte.
\pset format unaligned
CREATE FUNCTION pg_temp.scram_selftest(count int, seed bigint, full_every int,
	OUT passwords int, OUT ascii int, OUT saslprep_changed int,
	OUT non_ascii_unchanged int, OUT saslprep_refused int,
	OUT full_path int, OUT full_path_at_setting int, OUT differing int)
RETURNS record AS '$libdir/secretsmgr', 'secretsmgr_scram_selftest'
LANGUAGE C STRICT;

-- From 16 the iteration count is the scram_iterations setting: move it off
-- its default, so a builder that ignored it would differ.
DO $$
BEGIN
	IF current_setting('server_version_num')::int >= 160000 THEN
		PERFORM set_config('scram_iterations', '1234', false);
	END IF;
END
$$;
SELECT coalesce(current_setting('scram_iterations', true)::int, 4096) AS iterations \gset

-- 10,000 passwords: ASCII, non-ASCII text SASLprep maps (NFKC, spaces,
-- soft hyphens, a decomposed A-ring), non-ASCII it leaves alone, text it
-- refuses (prohibited or unassigned code points, mixed directions) and
-- invalid UTF-8, both of which PostgreSQL hashes as given.
SELECT * FROM pg_temp.scram_selftest(10000, 20261130, 25);

-- The whole-path verifiers were built at the server's iteration count.
SELECT full_path = full_path_at_setting AS at_server_iterations
FROM pg_temp.scram_selftest(50, 7, 1);

-- A rotation stores such a verifier, at that count, and it logs in.
\! test/emulator/smctl reset --state
\! test/emulator/smctl create scram/app '{"engine":"postgres","host":"db.internal","username":"regress_scram_app","password":"Scram-Initial-Pw-1"}'
SET secretsmgr.cache_ttl = 0;
CREATE ROLE regress_scram_app LOGIN;
SELECT secretsmgr_manage('scram/app', 'regress_scram_app');
SELECT length(secretsmgr_rotate('scram/app')) AS id_length;
SELECT rolpassword ~ '^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$' AS scram_form,
       substring(rolpassword from '^SCRAM-SHA-256\$([0-9]+):')::int = :iterations AS server_iterations
FROM pg_authid WHERE rolname = 'regress_scram_app';
SELECT sm_login('scram/app') AS current_logs_in,
       secretsmgr_verify('scram/app') AS verifies;

SELECT secretsmgr_unmanage('scram/app');
DROP ROLE regress_scram_app;
DO $$
BEGIN
	IF current_setting('server_version_num')::int >= 160000 THEN
		EXECUTE 'RESET scram_iterations';
	END IF;
END
$$;
RESET secretsmgr.cache_ttl;
