-- hostile: privileges and injection.
-- A role without grants can call no function of the extension and touch
-- neither of its tables; a role granted only secretsmgr_get_secret reads and
-- does nothing else.  Role names, secret ids and the JSON fields of a secret
-- are data, never SQL: hostile ones give clear errors, malformed ids never
-- reach Secrets Manager, and no role but the ones rotated on purpose changes.
-- No password appears in any statement here (the emulator holds them).
SET secretsmgr.cache_ttl = 0;
\! test/emulator/smctl create hostile/app '{"username":"regress_hostile_app","password":"Hostile-Initial-Pw-1"}'
\! test/emulator/smctl create hostile/evil '{"username":"regress_hostile\"; DROP ROLE regress_hostile_v; --","password":"Hostile-Evil-Pw-2"}'
\! test/emulator/smctl create hostile/alt '{"username":"regress_hostile'"'"'alt\"; DROP ROLE regress_hostile_v; --","password":"Hostile-Alt-Pw-3"}'
CREATE ROLE regress_hostile_nobody LOGIN;
CREATE ROLE regress_hostile_reader LOGIN;
CREATE ROLE regress_hostile_v LOGIN;
CREATE ROLE regress_hostile_app LOGIN;
CREATE ROLE "regress_hostile""; DROP ROLE regress_hostile_v; --" LOGIN;
CREATE ROLE "regress_hostile'alt""; DROP ROLE regress_hostile_v; --" LOGIN;

-- 1. no grants: every function of the extension is refused before it runs;
-- so is every write to its tables.  The arguments are real values: a strict
-- function called with a NULL constant is folded away by the planner before
-- any privilege check, which would prove nothing.
SET ROLE regress_hostile_nobody;
SELECT p.proname,
       sm_error(format('SELECT %s(%s)', p.oid::regproc,
                       (SELECT string_agg(quote_literal(CASE format_type(t, NULL)
                                              WHEN 'name' THEN 'regress_hostile_app'
                                              WHEN 'interval' THEN '1 day'
                                              WHEN 'boolean' THEN 'false'
                                              WHEN 'text[]' THEN '{hostile/app}'
                                              WHEN 'text' THEN 'hostile/app'
                                          END) || '::' || format_type(t, NULL), ', ' ORDER BY o)
                        FROM unnest(p.proargtypes) WITH ORDINALITY u(t, o)))) AS refused
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'secretsmgr'
ORDER BY 1;
SELECT sm_error($$INSERT INTO secretsmgr_managed (secret_id, role_name, strategy) VALUES ('hostile/app', 'postgres', 'single')$$) AS insert_managed,
       sm_error($$UPDATE secretsmgr_managed SET role_name = 'postgres'$$) AS update_managed,
       sm_error($$DELETE FROM secretsmgr_rotation_history$$) AS delete_history,
       sm_error($$SELECT count(*) FROM secretsmgr_rotation_history$$) AS read_history;
RESET ROLE;

-- 2. granted secretsmgr_get_secret only: it reads, and that is all
GRANT EXECUTE ON FUNCTION secretsmgr_get_secret(text, text, text) TO regress_hostile_reader;
SET ROLE regress_hostile_reader;
SELECT secretsmgr_get_secret('hostile/app') ->> 'username' AS reader_reads;
SELECT f AS call, sm_error(f) AS refused FROM (VALUES
	($$SELECT secretsmgr_rotate('hostile/app')$$),
	($$SELECT secretsmgr_manage('hostile/app', 'regress_hostile_reader')$$),
	($$SELECT secretsmgr_unmanage('hostile/app')$$),
	($$SELECT secretsmgr_reconcile('hostile/app')$$),
	($$SELECT secretsmgr_set_secret('hostile/app', '11111111-1111-4111-8111-111111111111')$$),
	($$SELECT secretsmgr_test_secret('hostile/app', '11111111-1111-4111-8111-111111111111')$$),
	($$SELECT secretsmgr_verify('hostile/app')$$),
	($$SELECT secretsmgr_rotate_due()$$),
	($$SELECT secretsmgr_get_secret_string('hostile/app')$$),
	($$SELECT secretsmgr_describe_secret('hostile/app')$$),
	($$SELECT secretsmgr_cache_invalidate()$$),
	($$UPDATE secretsmgr_managed SET role_name = 'regress_hostile_reader'$$)) v(f);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION secretsmgr_get_secret(text, text, text) FROM regress_hostile_reader;

-- 3. role names are identifiers, never SQL text
SELECT sm_error($$SELECT secretsmgr_manage('hostile/app', 'a"; DROP ROLE postgres; --')$$) AS no_such_role;
SELECT sm_error($$SELECT secretsmgr_manage('hostile/app', 'regress_hostile_app', 'single; DROP ROLE regress_hostile_v')$$) AS bad_strategy;
-- roles whose names are SQL bind, rotate and log in like any other
SELECT secretsmgr_manage('hostile/app', 'regress_hostile_app');
SELECT secretsmgr_manage('hostile/evil', 'regress_hostile"; DROP ROLE regress_hostile_v; --');
SELECT secretsmgr_manage('hostile/alt', 'regress_hostile''alt"; DROP ROLE regress_hostile_v; --', 'alternating');
SELECT length(secretsmgr_rotate('hostile/app')) AS app_id_length,
       length(secretsmgr_rotate('hostile/evil')) AS evil_id_length,
       length(secretsmgr_rotate('hostile/alt')) AS alt_id_length,
       length(secretsmgr_rotate('hostile/alt')) AS alt_again_id_length;
SELECT sm_login('hostile/app') AS app_logs_in, sm_login('hostile/evil') AS evil_logs_in,
       sm_login('hostile/alt') AS alt_logs_in,
       secretsmgr_get_secret('hostile/alt') ->> 'username' AS alt_now;
SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress_hostile%' ORDER BY 1;

-- from here on no role may change: keep what pg_authid holds now
CREATE TEMP TABLE hostile_roles AS
	SELECT rolname, rolsuper, rolcreaterole, rolcanlogin, rolreplication,
	       rolbypassrls, rolvaliduntil, rolpassword FROM pg_authid;
CREATE FUNCTION pg_temp.roles_unchanged() RETURNS boolean LANGUAGE sql AS $$
	SELECT NOT EXISTS (
		(SELECT * FROM hostile_roles EXCEPT
		 SELECT rolname, rolsuper, rolcreaterole, rolcanlogin, rolreplication,
		        rolbypassrls, rolvaliduntil, rolpassword FROM pg_authid)
		UNION ALL
		(SELECT rolname, rolsuper, rolcreaterole, rolcanlogin, rolreplication,
		        rolbypassrls, rolvaliduntil, rolpassword FROM pg_authid EXCEPT
		 SELECT * FROM hostile_roles))
$$;
-- sm_error, and whether the call took less than a second
CREATE FUNCTION pg_temp.refused(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	r text := sm_error(query);
BEGIN
	RETURN r || CASE WHEN clock_timestamp() - t0 < interval '1 second' THEN '' ELSE ' (took over 1 s)' END;
END
$$;

-- 4. malformed secret ids, stages and version ids: refused with 22023 in
-- this backend, quickly, and nothing is sent to Secrets Manager
\! test/emulator/smctl reset
SELECT label, pg_temp.refused(format('SELECT secretsmgr_get_secret(%L)', id)) AS get_secret
FROM (VALUES ('empty', ''),
             ('tab', E'hostile/\tapp'),
             ('newline', E'hostile/app\nX-Injected: 1'),
             ('escape', E'hostile/\x1b[2Japp'),
             ('delete', E'hostile/\x7fapp'),
             ('non-ASCII', 'hostile/äpp'),
             ('2049 characters', repeat('h', 2049)),
             ('10 MB', repeat('h', 10 * 1024 * 1024))) v(label, id);
SELECT f AS call, pg_temp.refused(format(f, repeat('h', 10 * 1024 * 1024))) AS refused FROM (VALUES
	('SELECT secretsmgr_get_secret_string(%L)'),
	('SELECT secretsmgr_get_secret_binary(%L)'),
	('SELECT secretsmgr_describe_secret(%L)'),
	('SELECT secretsmgr_cache_invalidate(%L)'),
	('SELECT secretsmgr_manage(%L, ''regress_hostile_app'')'),
	('SELECT secretsmgr_unmanage(%L)'),
	('SELECT secretsmgr_verify(%L)'),
	('SELECT secretsmgr_rotate(%L)'),
	('SELECT secretsmgr_reconcile(%L)'),
	('SELECT secretsmgr_set_secret(%L, ''11111111-1111-4111-8111-111111111111'')'),
	('SELECT secretsmgr_test_secret(%L, ''11111111-1111-4111-8111-111111111111'')'),
	('SELECT secretsmgr_get_secret(''hostile/app'', %L)'),
	('SELECT secretsmgr_get_secret(''hostile/app'', NULL, %L)'),
	('SELECT secretsmgr_set_secret(''hostile/app'', %L)')) v(f);
SELECT pg_temp.refused($$SELECT secretsmgr_get_secret('hostile/app', E'AWS\rCURRENT')$$) AS stage_with_cr,
       pg_temp.refused($$SELECT secretsmgr_set_secret('hostile/app', E'11111111-1111-4111-8111-11111111111\x01')$$) AS token_with_control;
-- a batch answers each malformed id with its own error, and asks for the good one only
SELECT length(secret_id) AS id_length, value ->> 'username' AS username, error
FROM secretsmgr_get_secrets(ARRAY['hostile/app', repeat('h', 10 * 1024 * 1024), E'a\tb', ''])
ORDER BY 1 DESC;
\! test/emulator/smctl calls GetSecretValue
\! test/emulator/smctl calls DescribeSecret
\! test/emulator/smctl calls BatchGetSecretValue
\! test/emulator/smctl calls PutSecretValue
-- quotes and semicolons are printable: they travel as JSON data and come back as "not found"
SELECT sm_error($$SELECT secretsmgr_get_secret('hostile/app''; DROP ROLE regress_hostile_v; --')$$) AS quoted_id;
SELECT sm_error($$SELECT secretsmgr_manage('hostile/"x"}; {"SecretId": "hostile/app', 'regress_hostile_app')$$) AS json_in_id;
SELECT pg_temp.roles_unchanged() AS roles_unchanged;

-- 5. hostile JSON fields in the secret bound to regress_hostile_app
-- a username that is SQL: never taken as a role, let alone as SQL
\! test/emulator/smctl create hostile/app '{"username":"regress_hostile_app'"'"'; DROP ROLE regress_hostile_v; --","password":"Hostile-Sql-User-Pw-4"}'
SELECT secretsmgr_verify('hostile/app') AS sql_username_verifies;
SELECT sm_error($$SELECT secretsmgr_rotate('hostile/app')$$) AS rotate;
SELECT sm_error($$SELECT secretsmgr_reconcile('hostile/app')$$) AS reconcile;
-- a password holding a NUL escape: no C string can carry it, so the value is refused
\! test/emulator/smctl create hostile/app '{"username":"regress_hostile_app","password":"a\u0000b"}'
SELECT sm_error($$SELECT secretsmgr_get_secret('hostile/app')$$) AS get_secret;
SELECT sm_error($$SELECT secretsmgr_verify('hostile/app')$$) AS verify;
SELECT sm_error($$SELECT secretsmgr_rotate('hostile/app')$$) AS rotate;
SELECT sm_error($$SELECT secretsmgr_reconcile('hostile/app')$$) AS reconcile;
-- passwords that are not strings
\! test/emulator/smctl create hostile/app '{"username":"regress_hostile_app","password":12345678}'
SELECT sm_error($$SELECT secretsmgr_verify('hostile/app')$$) AS number_password;
\! test/emulator/smctl create hostile/app '{"username":"regress_hostile_app","password":["Hostile-Array-Pw-5"]}'
SELECT sm_error($$SELECT secretsmgr_rotate('hostile/app')$$) AS array_password;
\! test/emulator/smctl create hostile/app '{"username":"regress_hostile_app","password":null}'
SELECT sm_error($$SELECT secretsmgr_reconcile('hostile/app')$$) AS null_password;
\! test/emulator/smctl create hostile/app '{"username":"regress_hostile_app","password":""}'
SELECT sm_error($$SELECT secretsmgr_verify('hostile/app')$$) AS empty_password;
-- a pending version naming another role: the Lambda's setSecret refuses it
\! test/emulator/smctl put hostile/app '{"username":"regress_hostile_v","password":"Hostile-Victim-Pw-6"}' --stages AWSPENDING --token 68687374-696c-4500-8000-000000000001
SELECT sm_error($$SELECT secretsmgr_set_secret('hostile/app', '68687374-696c-4500-8000-000000000001')$$) AS set_secret_other_role;
SELECT pg_temp.roles_unchanged() AS roles_unchanged;

-- the largest value Secrets Manager stores (64 KiB): a password of 65,007
-- characters is data like any other; it does not match, then rotates away
\! /usr/bin/python3 -c 'import json,subprocess; subprocess.run(["test/emulator/smctl","create","hostile/app",json.dumps({"username":"regress_hostile_app","password":"Hostile-Big-Pw-"+"x"*64992})],check=True)'
SELECT length(secretsmgr_get_secret('hostile/app') ->> 'password') AS password_length;
SELECT secretsmgr_verify('hostile/app') AS big_password_verifies;
SELECT pg_temp.roles_unchanged() AS roles_unchanged;
SELECT length(secretsmgr_rotate('hostile/app')) AS id_length;
SELECT sm_login('hostile/app') AS rotated_logs_in,
       length(secretsmgr_get_secret('hostile/app') ->> 'password') AS new_password_length;
SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress_hostile%' ORDER BY 1;

SELECT secretsmgr_unmanage('hostile/app'), secretsmgr_unmanage('hostile/evil'),
       secretsmgr_unmanage('hostile/alt');
DROP ROLE regress_hostile_nobody, regress_hostile_reader, regress_hostile_v,
	regress_hostile_app, "regress_hostile""; DROP ROLE regress_hostile_v; --",
	"regress_hostile'alt""; DROP ROLE regress_hostile_v; --",
	"regress_hostile'alt""; DROP ROLE regress_hostile_v; --_clone";
-- the suites after this one read the history: leave none of ours
DELETE FROM secretsmgr_rotation_history WHERE secret_id LIKE 'hostile/%';
