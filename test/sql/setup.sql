-- setup: helpers the other suites share.
-- sm_error(query) runs a query and shows the error it raises as
--   SQLSTATE: message / DETAIL / HINT
-- with request ids masked, so expected files hold no random or
-- line-number-dependent text.  It never sees a secret: queries name secrets.
CREATE FUNCTION sm_error(query text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hnt text;
BEGIN
	EXECUTE query;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	det := regexp_replace(det, 'request id [0-9a-fA-F-]+', 'request id <id>', 'g');
	det := regexp_replace(det, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g');
	msg := regexp_replace(msg, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g');
	RETURN st || ': ' || msg
		|| coalesce(E'\nDETAIL: ' || nullif(det, ''), '')
		|| coalesce(E'\nHINT: ' || nullif(hnt, ''), '');
END
$$;
-- Rotation suites' helpers.
-- sm_login: does the version's username/password log in, for real, over TCP
-- with SCRAM?  sm_labels: the secret's staging labels, version ids left out.
-- sm_stage_id: the version holding a label.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
CREATE OR REPLACE FUNCTION sm_login(secret text, stage text DEFAULT 'AWSCURRENT')
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	s jsonb;
	who name;
BEGIN
	PERFORM secretsmgr_cache_invalidate();
	s := secretsmgr_get_secret(secret, stage);
	PERFORM dblink_connect('sm_login', format(
		'host=127.0.0.1 port=%s dbname=%s connect_timeout=10 user=%s password=%s',
		current_setting('port'), current_database(),
		'''' || replace(replace(s ->> 'username', '\', '\\'), '''', '\''') || '''',
		'''' || replace(replace(s ->> 'password', '\', '\\'), '''', '\''') || ''''));
	SELECT u INTO who FROM dblink('sm_login', 'SELECT current_user') AS t(u name);
	PERFORM dblink_disconnect('sm_login');
	RETURN who = s ->> 'username';
EXCEPTION WHEN OTHERS THEN
	IF 'sm_login' = ANY (coalesce(dblink_get_connections(), '{}')) THEN
		PERFORM dblink_disconnect('sm_login');
	END IF;
	RETURN false;
END
$$;
CREATE OR REPLACE FUNCTION sm_labels(secret text) RETURNS text
LANGUAGE sql AS $$
	SELECT string_agg(labels, ' | ' ORDER BY labels)
	FROM (SELECT string_agg(l, ',' ORDER BY l) AS labels
	      FROM jsonb_each(secretsmgr_describe_secret(secret) -> 'VersionIdsToStages') v,
	           jsonb_array_elements_text(v.value) l
	      GROUP BY v.key) s
$$;
CREATE OR REPLACE FUNCTION sm_stage_id(secret text, stage text) RETURNS text
LANGUAGE sql AS $$
	SELECT v.key FROM jsonb_each(secretsmgr_describe_secret(secret) -> 'VersionIdsToStages') v
	WHERE v.value ? stage
$$;
-- The helpers read secrets for the test, not for the role under test:
-- whoever calls them, they run as the superuser that defined them.
ALTER FUNCTION sm_login(text, text) SECURITY DEFINER SET search_path = public, pg_catalog, pg_temp;
ALTER FUNCTION sm_labels(text) SECURITY DEFINER SET search_path = public, pg_catalog, pg_temp;
ALTER FUNCTION sm_stage_id(text, text) SECURITY DEFINER SET search_path = public, pg_catalog, pg_temp;
-- sm_value: what the secret holds now, read for the test's own checks
-- whoever the current role is (the DBA needs no right to read secrets).
CREATE FUNCTION sm_value(secret text, stage text DEFAULT 'AWSCURRENT') RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_catalog, pg_temp
AS $$ SELECT secretsmgr_get_secret(secret, stage) $$;
-- regress_dba: the DBA persona of docs/security.md, a non-superuser with
-- CREATEROLE and that page's GRANT block word for word.  Suites make their
-- DBA calls as this role (SET ROLE regress_dba), so what a DBA can do is
-- what is tested.
CREATE ROLE regress_dba LOGIN CREATEROLE;
GRANT EXECUTE ON FUNCTION secretsmgr_manage(text, name, text, interval),
                          secretsmgr_unmanage(text),
                          secretsmgr_rotate(text),
                          secretsmgr_rotate_due(),
                          secretsmgr_reconcile(text),
                          secretsmgr_verify(text, text),
                          secretsmgr_get_secret(text, text, text),
                          secretsmgr_get_secrets(text[], text, boolean),
                          secretsmgr_describe_secret(text),
                          secretsmgr_cache_invalidate(text),
                          secretsmgr_health(),
                          secretsmgr_stats(),
                          secretsmgr_stats_reset(),
                          secretsmgr_iam_policy(text, text, text[])
    TO regress_dba;
GRANT SELECT ON secretsmgr_managed, secretsmgr_rotation_history TO regress_dba;
-- sm_dba_admin: from PostgreSQL 16 CREATEROLE changes only the roles it
-- holds the ADMIN option on (a role holds it on the roles it created).  Give
-- grantee (regress_dba unless named) that option alone on every test role,
-- as docs/security.md tells a DBA to; on 15 it is not
-- needed and does nothing.
CREATE FUNCTION sm_dba_admin(grantee name DEFAULT 'regress_dba') RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	gid oid := (SELECT g.oid FROM pg_authid g WHERE g.rolname = grantee);
	r record;
BEGIN
	IF current_setting('server_version_num')::int < 160000 THEN
		RETURN;
	END IF;
	-- not the roles grantee already belongs to (itself included): no cycles
	FOR r IN SELECT a.rolname FROM pg_authid a
			  WHERE a.rolname LIKE 'regress\_%' AND NOT a.rolsuper
				AND NOT pg_has_role(a.oid, gid, 'MEMBER')
				AND NOT EXISTS (SELECT 1 FROM pg_auth_members m
								 WHERE m.roleid = a.oid AND m.member = gid
								   AND m.admin_option)
	LOOP
		EXECUTE format('GRANT %I TO %I WITH ADMIN OPTION, INHERIT FALSE, SET FALSE',
					   r.rolname, grantee);
	END LOOP;
END $$;
SELECT sm_error('SELECT 1/0');
SELECT sm_error('SELECT 1');
