-- attacker: nothing a caller plants may ever run as another role.
--
-- regress_attacker holds EXECUTE on every function of the extension (read
-- from pg_depend, so a new function is covered without editing this file)
-- and puts a schema of its own first in its search_path.  That schema
-- shadows the comparison operators of text, name, oid, int4, int8, bool and
-- timestamptz, the common aggregates and functions, and the type "text"
-- (with a cast from name).  Every shadow records current_user and tries
-- ALTER ROLE regress_attacker SUPERUSER.  Every function is then called with
-- plausible arguments (two managed secrets that have rotated once, one per
-- strategy) and implausible ones.  Then a database owner's weapon: the
-- database's default search_path, which the history writer (a background
-- worker connecting as the extension owner) would inherit.  Last, the same
-- calls by regress_attacker_dba, which also holds CREATEROLE, so bindings,
-- rotations and the Lambda steps get past the privilege checks.
--
-- Asserted: no shadow ever ran as any role but the attacker calling, no
-- role attribute or membership changed, and after every call the caller's
-- user id and search_path are back.  A shadow that ran as another role
-- also bumps a sequence (not undone by a rollback), so an error raised
-- after it cannot hide it.
\pset format unaligned
\! test/emulator/smctl create att/single '{"username":"regress_att_single","password":"Att-Single-Initial-Pw-1"}'
\! test/emulator/smctl create att/alt '{"username":"regress_att_alt","password":"Att-Alt-Initial-Pw-2"}'
SET secretsmgr.cache_ttl = 0;
CREATE ROLE regress_att_group NOLOGIN;
CREATE ROLE regress_att_single LOGIN;
CREATE ROLE regress_att_alt LOGIN IN ROLE regress_att_group;
SELECT secretsmgr_manage('att/single', 'regress_att_single', 'single', '1 second');
SELECT secretsmgr_manage('att/alt', 'regress_att_alt', 'alternating', '1 second');
SELECT length(secretsmgr_rotate('att/single')) > 0 AS single_rotated,
       length(secretsmgr_rotate('att/alt')) > 0 AS alternating_rotated;
-- a rotation in flight for the Lambda steps (setSecret / testSecret)
\! test/emulator/smctl put att/single '{"username":"regress_att_single","password":"Att-Single-Pending-Pw-3"}' --stages AWSPENDING --token 5ec0a11a-5ec0-4a11-8a11-5ec0a11a0001
\! test/emulator/smctl put att/alt '{"username":"regress_att_alt_clone","password":"Att-Alt-Pending-Pw-4"}' --stages AWSPENDING --token 5ec0a11a-5ec0-4a11-8a11-5ec0a11a0002

-- the history rows this file adds are removed at its end
SELECT coalesce(max(id), 0) AS history_before FROM secretsmgr_rotation_history \gset

-- every role's attributes and memberships, before
CREATE TABLE regress_att_roles_before AS
SELECT a.rolname, a.rolsuper, a.rolinherit, a.rolcreaterole, a.rolcreatedb,
       a.rolcanlogin, a.rolreplication, a.rolbypassrls, a.rolconnlimit, a.rolvaliduntil,
       ARRAY(SELECT m.roleid::regrole::text || CASE WHEN m.admin_option THEN '+admin' ELSE '' END
               FROM pg_auth_members m WHERE m.member = a.oid ORDER BY 1) AS member_of
FROM pg_authid a;

-- the attackers: EXECUTE on every function of the extension, a schema of
-- their own; regress_attacker_dba also holds CREATEROLE, so its calls get
-- past the privilege checks (bindings, rotations, Lambda steps succeed)
CREATE ROLE regress_attacker LOGIN;
CREATE ROLE regress_attacker_dba LOGIN CREATEROLE;
-- from PostgreSQL 16 CREATEROLE changes only the roles it holds the ADMIN
-- option on: the grant docs/security.md gives a DBA
SELECT sm_dba_admin('regress_attacker_dba') \gset
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT d.objid::regprocedure FROM pg_depend d
	          WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
	            AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'secretsmgr')
	            AND d.deptype = 'e'
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO regress_attacker, regress_attacker_dba', f);
	END LOOP;
END
$$;
SELECT count(*) >= 18 AS granted_every_function,
       bool_and(has_function_privilege('regress_attacker', d.objid, 'EXECUTE')
                AND has_function_privilege('regress_attacker_dba', d.objid, 'EXECUTE')) AS all_executable
FROM pg_depend d
WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'secretsmgr') AND d.deptype = 'e';
CREATE SCHEMA regress_attack AUTHORIZATION regress_attacker;

-- what the plausible calls need to know, read as the DBA
CREATE TABLE regress_attack.known (k text PRIMARY KEY, v text);
INSERT INTO regress_attack.known VALUES
	('single_arn', secretsmgr_describe_secret('att/single') ->> 'ARN'),
	('single_current', sm_stage_id('att/single', 'AWSCURRENT')),
	('alt_current', sm_stage_id('att/alt', 'AWSCURRENT'));
ALTER TABLE regress_attack.known OWNER TO regress_attacker;

SET SESSION AUTHORIZATION regress_attacker;

-- the record of every shadow run; the alarm when one ran as another role
CREATE TABLE regress_attack.ran_as (who name, shadow text);
CREATE SEQUENCE regress_attack.foreign_runs;
CREATE SEQUENCE regress_attack.foreign_role MINVALUE 0 START 0;
GRANT INSERT ON regress_attack.ran_as TO PUBLIC;
GRANT USAGE, UPDATE ON regress_attack.foreign_runs, regress_attack.foreign_role TO PUBLIC;
GRANT USAGE ON SCHEMA regress_attack TO PUBLIC;
CREATE FUNCTION regress_attack.mark(shadow text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF current_user NOT IN ('regress_attacker', 'regress_attacker_dba') THEN
		PERFORM nextval('regress_attack.foreign_runs');
		PERFORM setval('regress_attack.foreign_role', current_user::regrole::oid::int8);
		RAISE WARNING 'shadow % ran as %', shadow, current_user;
	END IF;
	BEGIN
		INSERT INTO regress_attack.ran_as VALUES (current_user, shadow);
	EXCEPTION WHEN OTHERS THEN
		NULL;					-- a read-only transaction: the alarm above remains
	END;
	BEGIN
		EXECUTE 'ALTER ROLE regress_attacker SUPERUSER';
	EXCEPTION WHEN OTHERS THEN
		NULL;
	END;
END
$$;
GRANT EXECUTE ON FUNCTION regress_attack.mark(text) TO PUBLIC;

-- operators: = <> < <= > >= for each type, and the cross-type ones
DO $$
DECLARE
	pair text[];
	op text[];
	fname text;
BEGIN
	FOREACH pair SLICE 1 IN ARRAY ARRAY[
		['text', 'text'], ['name', 'name'], ['oid', 'oid'], ['int4', 'int4'],
		['int8', 'int8'], ['bool', 'bool'], ['timestamptz', 'timestamptz'],
		['name', 'text'], ['text', 'name'], ['int4', 'int8'], ['int8', 'int4']]
	LOOP
		FOREACH op SLICE 1 IN ARRAY ARRAY[['=', 'eq'], ['<>', 'ne'], ['<', 'lt'],
										   ['<=', 'le'], ['>', 'gt'], ['>=', 'ge']]
		LOOP
			fname := format('op_%s_%s_%s', pair[1], pair[2], op[2]);
			EXECUTE format($f$CREATE FUNCTION regress_attack.%I(pg_catalog.%I, pg_catalog.%I)
				RETURNS pg_catalog.bool LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
				AS $b$BEGIN PERFORM regress_attack.mark(%L); RETURN $1 OPERATOR(pg_catalog.%s) $2; END$b$ $f$,
				fname, pair[1], pair[2], op[1] || ' ' || pair[1], op[1]);
			EXECUTE format('CREATE OPERATOR regress_attack.%s (LEFTARG = pg_catalog.%I, RIGHTARG = pg_catalog.%I, FUNCTION = regress_attack.%I)',
				op[1], pair[1], pair[2], fname);
		END LOOP;
	END LOOP;
	-- LIKE and || on text
	CREATE FUNCTION regress_attack.op_like(pg_catalog.text, pg_catalog.text) RETURNS pg_catalog.bool
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS 'BEGIN PERFORM regress_attack.mark(''~~''); RETURN $1 OPERATOR(pg_catalog.~~) $2; END';
	CREATE OPERATOR regress_attack.~~ (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text, FUNCTION = regress_attack.op_like);
	CREATE FUNCTION regress_attack.op_cat(pg_catalog.text, pg_catalog.text) RETURNS pg_catalog.text
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS 'BEGIN PERFORM regress_attack.mark(''||''); RETURN $1 OPERATOR(pg_catalog.||) $2; END';
	CREATE OPERATOR regress_attack.|| (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text, FUNCTION = regress_attack.op_cat);
END
$$;

-- aggregates: max, min, sum, count(*), array_agg, string_agg, bool_and, bool_or
DO $$
DECLARE
	t text;
	agg text[];
BEGIN
	FOREACH t IN ARRAY ARRAY['text', 'int4', 'int8', 'oid', 'timestamptz', 'interval'] LOOP
		FOREACH agg SLICE 1 IN ARRAY ARRAY[['max', '>'], ['min', '<']] LOOP
			EXECUTE format($f$CREATE FUNCTION regress_attack.%I(pg_catalog.%I, pg_catalog.%I)
				RETURNS pg_catalog.%I LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
				AS $b$BEGIN PERFORM regress_attack.mark(%L);
				    RETURN CASE WHEN $1 IS NULL OR $2 OPERATOR(pg_catalog.%s) $1 THEN $2 ELSE $1 END; END$b$ $f$,
				agg[1] || '_' || t, t, t, t, agg[1] || '(' || t || ')', agg[2]);
			EXECUTE format('CREATE AGGREGATE regress_attack.%I(pg_catalog.%I) (SFUNC = regress_attack.%I, STYPE = pg_catalog.%I)',
				agg[1], t, agg[1] || '_' || t, t);
		END LOOP;
	END LOOP;
	CREATE FUNCTION regress_attack.sum_int8(pg_catalog.int8, pg_catalog.int8) RETURNS pg_catalog.int8
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS 'BEGIN PERFORM regress_attack.mark(''sum''); RETURN coalesce($1, 0) OPERATOR(pg_catalog.+) $2; END';
	CREATE AGGREGATE regress_attack.sum(pg_catalog.int8) (SFUNC = regress_attack.sum_int8, STYPE = pg_catalog.int8);
	CREATE FUNCTION regress_attack.sum_int4(pg_catalog.int8, pg_catalog.int4) RETURNS pg_catalog.int8
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS 'BEGIN PERFORM regress_attack.mark(''sum''); RETURN coalesce($1, 0) OPERATOR(pg_catalog.+) $2; END';
	CREATE AGGREGATE regress_attack.sum(pg_catalog.int4) (SFUNC = regress_attack.sum_int4, STYPE = pg_catalog.int8);
	CREATE FUNCTION regress_attack.count_star(pg_catalog.int8) RETURNS pg_catalog.int8
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS 'BEGIN PERFORM regress_attack.mark(''count(*)''); RETURN $1 OPERATOR(pg_catalog.+) 1; END';
	CREATE AGGREGATE regress_attack.count(*) (SFUNC = regress_attack.count_star, STYPE = pg_catalog.int8, INITCOND = '0');
	CREATE FUNCTION regress_attack.array_agg_step(anyarray, anynonarray) RETURNS anyarray
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS 'BEGIN PERFORM regress_attack.mark(''array_agg''); RETURN pg_catalog.array_append($1, $2); END';
	CREATE AGGREGATE regress_attack.array_agg(anynonarray) (SFUNC = regress_attack.array_agg_step, STYPE = anyarray);
	CREATE FUNCTION regress_attack.string_agg_step(pg_catalog.text, pg_catalog.text, pg_catalog.text) RETURNS pg_catalog.text
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS 'BEGIN PERFORM regress_attack.mark(''string_agg'');
	    RETURN CASE WHEN $1 IS NULL THEN $2 ELSE pg_catalog.concat($1, $3, $2) END; END';
	CREATE AGGREGATE regress_attack.string_agg(pg_catalog.text, pg_catalog.text) (SFUNC = regress_attack.string_agg_step, STYPE = pg_catalog.text);
	CREATE FUNCTION regress_attack.bool_and_step(pg_catalog.bool, pg_catalog.bool) RETURNS pg_catalog.bool
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS 'BEGIN PERFORM regress_attack.mark(''bool_and''); RETURN coalesce($1, true) AND $2; END';
	CREATE AGGREGATE regress_attack.bool_and(pg_catalog.bool) (SFUNC = regress_attack.bool_and_step, STYPE = pg_catalog.bool);
	CREATE FUNCTION regress_attack.bool_or_step(pg_catalog.bool, pg_catalog.bool) RETURNS pg_catalog.bool
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS 'BEGIN PERFORM regress_attack.mark(''bool_or''); RETURN coalesce($1, false) OR $2; END';
	CREATE AGGREGATE regress_attack.bool_or(pg_catalog.bool) (SFUNC = regress_attack.bool_or_step, STYPE = pg_catalog.bool);
END
$$;

-- functions SQL text tends to use
DO $$
DECLARE
	f text[];
BEGIN
	FOREACH f SLICE 1 IN ARRAY ARRAY[
		-- name, argument list, result type, body's result expression
		['now', '', 'timestamptz', 'pg_catalog.now()'],
		['clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()'],
		['current_database', '', 'name', 'pg_catalog.current_database()'],
		['length', 'pg_catalog.text', 'int4', 'pg_catalog.length($1)'],
		['lower', 'pg_catalog.text', 'text', 'pg_catalog.lower($1)'],
		['upper', 'pg_catalog.text', 'text', 'pg_catalog.upper($1)'],
		['btrim', 'pg_catalog.text', 'text', 'pg_catalog.btrim($1)'],
		['quote_ident', 'pg_catalog.text', 'text', 'pg_catalog.quote_ident($1)'],
		['quote_literal', 'pg_catalog.text', 'text', 'pg_catalog.quote_literal($1)'],
		['format', 'pg_catalog.text', 'text', 'pg_catalog.format($1)'],
		['replace', 'pg_catalog.text, pg_catalog.text, pg_catalog.text', 'text', 'pg_catalog.replace($1, $2, $3)'],
		['substr', 'pg_catalog.text, pg_catalog.int4, pg_catalog.int4', 'text', 'pg_catalog.substr($1, $2, $3)'],
		['strpos', 'pg_catalog.text, pg_catalog.text', 'int4', 'pg_catalog.strpos($1, $2)'],
		['regexp_replace', 'pg_catalog.text, pg_catalog.text, pg_catalog.text', 'text', 'pg_catalog.regexp_replace($1, $2, $3)'],
		['current_setting', 'pg_catalog.text', 'text', 'pg_catalog.current_setting($1)'],
		['pg_get_userbyid', 'pg_catalog.oid', 'name', 'pg_catalog.pg_get_userbyid($1)'],
		['to_jsonb', 'anyelement', 'jsonb', 'pg_catalog.to_jsonb($1)'],
		['jsonb_build_object', 'pg_catalog.text, pg_catalog.text', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2)'],
		['jsonb_build_array', 'pg_catalog.text', 'jsonb', 'pg_catalog.jsonb_build_array($1)'],
		['array_length', 'anyarray, pg_catalog.int4', 'int4', 'pg_catalog.array_length($1, $2)'],
		['nextval', 'pg_catalog.regclass', 'int8', 'pg_catalog.nextval($1)'],
		['has_table_privilege', 'pg_catalog.name, pg_catalog.text, pg_catalog.text', 'bool', 'pg_catalog.has_table_privilege($1, $2, $3)']]
	LOOP
		EXECUTE format($fn$CREATE FUNCTION regress_attack.%I(%s) RETURNS pg_catalog.%I
			LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
			AS $b$BEGIN PERFORM regress_attack.mark(%L); RETURN %s; END$b$ $fn$,
			f[1], f[2], f[3], f[1], f[4]);
	END LOOP;
END
$$;

-- the type "text", and a cast from name to it (m.role_name::text)
CREATE TYPE regress_attack.text AS (v pg_catalog.text);
CREATE FUNCTION regress_attack.name_to_text(pg_catalog.name) RETURNS regress_attack.text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS 'BEGIN PERFORM regress_attack.mark(''::text''); RETURN ROW($1::pg_catalog.text)::regress_attack.text; END';
CREATE CAST (pg_catalog.name AS regress_attack.text) WITH FUNCTION regress_attack.name_to_text(pg_catalog.name);

-- the calls: every function of the extension, under argument profiles
-- keyed by parameter name, then by type (a new parameter name falls back
-- on its type); NULL in v means SQL NULL, a missing key too
CREATE TABLE regress_attack.profile (profile pg_catalog.text, k pg_catalog.text, v pg_catalog.text);
INSERT INTO regress_attack.profile
SELECT p.profile, x.k, x.v
FROM (VALUES ('single'), ('defaults')) p(profile),
     (VALUES ('secret_id', 'att/single'), ('version_stage', 'AWSCURRENT'),
             ('version_id', (SELECT v FROM regress_attack.known WHERE k OPERATOR(pg_catalog.=) 'single_current')),
             ('role_name', 'regress_att_single'), ('strategy', 'single'),
             ('rotation_interval', '1 day'), ('client_request_token', '5ec0a11a-5ec0-4a11-8a11-5ec0a11a0001'),
             ('purpose', 'database'), ('secret_ids', '{att/single,att/alt}'), ('strict', 'false'),
             ('text', 'att/single'), ('name', 'regress_att_single'), ('bool', 'false'),
             ('interval', '1 day'), ('_text', '{att/single}'), ('int4', '1'), ('int8', '1')) x(k, v)
UNION ALL
SELECT 'alternating', k, v
FROM (VALUES ('secret_id', 'att/alt'), ('version_stage', 'AWSPREVIOUS'),
             ('version_id', (SELECT v FROM regress_attack.known WHERE k OPERATOR(pg_catalog.=) 'alt_current')),
             ('role_name', 'regress_att_alt'), ('strategy', 'alternating'),
             ('rotation_interval', '30 days'), ('client_request_token', '5ec0a11a-5ec0-4a11-8a11-5ec0a11a0002'),
             ('purpose', 'lambda'), ('secret_ids', '{att/alt}'), ('strict', 'true'),
             ('text', 'att/alt'), ('name', 'regress_att_alt'), ('bool', 'true'),
             ('interval', '30 days'), ('_text', '{att/alt}'), ('int4', '2'), ('int8', '2')) x(k, v)
UNION ALL
SELECT 'by arn', k, v
FROM (VALUES ('secret_id', (SELECT v FROM regress_attack.known WHERE k OPERATOR(pg_catalog.=) 'single_arn')),
             ('version_stage', 'AWSPENDING'), ('role_name', 'regress_att_alt_clone'),
             ('client_request_token', '5ec0a11a-5ec0-4a11-8a11-5ec0a11a0001'),
             ('secret_ids', '{att/single,att/single}'), ('strategy', 'alternating'),
             ('text', 'att/single')) x(k, v)
UNION ALL
SELECT 'nulls', 'none', NULL
UNION ALL
SELECT 'empty', k, v
FROM (VALUES ('text', ''), ('name', ''), ('_text', '{}'), ('interval', '0 seconds'),
             ('bool', 'false'), ('int4', '0'), ('int8', '0')) x(k, v)
UNION ALL
SELECT 'unknown', k, v
FROM (VALUES ('secret_id', 'att/none'), ('version_stage', 'AWSBOGUS'), ('version_id', 'no-such-version'),
             ('role_name', 'regress_attacker'), ('strategy', 'bogus'), ('rotation_interval', '-1 day'),
             ('client_request_token', '00000000-0000-4000-8000-000000000000'), ('purpose', 'admin'),
             ('secret_ids', '{att/none,NULL}'), ('text', 'att/none'), ('name', 'regress_attacker'),
             ('interval', '-1 day'), ('_text', '{NULL}'), ('int4', '-1'), ('int8', '-1')) x(k, v)
UNION ALL
SELECT 'hostile', k, v
FROM (VALUES ('secret_id', 'x''); ALTER ROLE regress_attacker SUPERUSER; --'),
             ('role_name', 'regress_attacker"; ALTER ROLE regress_attacker SUPERUSER; --'),
             ('strategy', 'single'' OR 1=1 --'), ('version_stage', '%s%s%n AWSCURRENT'),
             ('client_request_token', repeat('5', 5000)), ('purpose', 'database"}'),
             ('text', repeat('A', 5000)), ('name', 'pg_catalog'),
             ('_text', '{"x''); ALTER ROLE regress_attacker SUPERUSER; --"}'),
             ('interval', '100000 years'), ('int4', '2147483647'), ('int8', '9223372036854775807')) x(k, v);

CREATE TABLE regress_attack.outcome (fn pg_catalog.text, profile pg_catalog.text, result pg_catalog.text,
                                     left_behind pg_catalog.text, who name DEFAULT session_user);
GRANT SELECT ON regress_attack.profile, regress_attack.known TO regress_attacker_dba;
GRANT INSERT ON regress_attack.outcome TO regress_attacker_dba;
CREATE FUNCTION regress_attack.call_everything() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	f record;
	prof pg_catalog.text;
	args pg_catalog.text[];
	val pg_catalog.text;
	tname pg_catalog.text;
	typ pg_catalog.text;
	nargs pg_catalog.int4;
	call pg_catalog.text;
	res pg_catalog.text;
	path pg_catalog.text := pg_catalog.current_setting('search_path');
	left_behind pg_catalog.text;
BEGIN
	FOR f IN
		SELECT p.oid, p.proname, p.pronamespace::regnamespace::pg_catalog.text AS nsp,
		       pg_catalog.string_to_array(p.proargtypes::pg_catalog.text, ' ')::pg_catalog.oid[] AS types,
		       p.pronargs, p.pronargdefaults,
		       (SELECT pg_catalog.array_agg(a.n ORDER BY a.o)
		          FROM ROWS FROM (pg_catalog.unnest(p.proargnames), pg_catalog.unnest(p.proargmodes))
				       WITH ORDINALITY a(n, m, o)
		         WHERE a.m IS NULL OR a.m OPERATOR(pg_catalog.=) ANY ('{i,b,v}'::pg_catalog."char"[])) AS names
		  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
		   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
		   AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
		                                           WHERE e.extname OPERATOR(pg_catalog.=) 'secretsmgr')
		   AND d.deptype OPERATOR(pg_catalog.=) 'e'
		 ORDER BY p.proname USING OPERATOR(pg_catalog.<), p.oid USING OPERATOR(pg_catalog.<)
	LOOP
		FOR prof IN SELECT DISTINCT r.profile FROM regress_attack.profile r
		            ORDER BY r.profile USING OPERATOR(pg_catalog.<) LOOP
			args := '{}';
			nargs := f.pronargs;
			IF prof OPERATOR(pg_catalog.=) 'defaults' THEN
				nargs := f.pronargs OPERATOR(pg_catalog.-) f.pronargdefaults;
			END IF;
			FOR i IN 1 .. nargs LOOP
				SELECT pg_catalog.concat(pg_catalog.quote_ident(n.nspname::pg_catalog.text), '.',
				                         pg_catalog.quote_ident(t.typname::pg_catalog.text)),
				       t.typname::pg_catalog.text
				  INTO tname, typ
				  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
				 WHERE t.oid OPERATOR(pg_catalog.=) f.types[i];
				val := NULL;
				-- the parameter's name first, its type otherwise
				SELECT r.v INTO val FROM regress_attack.profile r
				 WHERE r.profile OPERATOR(pg_catalog.=) prof
				   AND (r.k OPERATOR(pg_catalog.=) f.names[i] OR r.k OPERATOR(pg_catalog.=) typ)
				 ORDER BY (r.k OPERATOR(pg_catalog.=) f.names[i]) IS TRUE DESC
				 LIMIT 1;
				args := pg_catalog.array_append(args,
					pg_catalog.concat(CASE WHEN val IS NULL THEN 'NULL' ELSE pg_catalog.quote_literal(val) END,
					                  '::', tname));
			END LOOP;
			call := pg_catalog.format('%I.%I(%s)', f.nsp, f.proname, pg_catalog.array_to_string(args, ', '));
			left_behind := NULL;
			BEGIN
				EXECUTE pg_catalog.concat('SELECT * FROM ', call);
				res := 'returned';
				-- the owner's id and the pinned search_path end with the call
				IF current_user OPERATOR(pg_catalog.<>) session_user
				   OR pg_catalog.current_setting('search_path') OPERATOR(pg_catalog.<>) path THEN
					left_behind := pg_catalog.concat(current_user, ' / ', pg_catalog.current_setting('search_path'));
				END IF;
			EXCEPTION WHEN OTHERS THEN
				res := SQLSTATE;
			END;
			INSERT INTO regress_attack.outcome VALUES (f.proname, prof, res, left_behind);
		END LOOP;
	END LOOP;
END
$$;

-- the shadows are live: unqualified SQL, as the attacker, runs them
SET search_path = regress_attack, public, pg_catalog;
CREATE TABLE regress_attack.probe AS
SELECT 'a'::pg_catalog.text AS t, 1::pg_catalog.int4 AS i, 1::pg_catalog.int8 AS i8, true AS b,
       pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour' AS ts,
       'regress_attacker'::pg_catalog.name AS r, 0::pg_catalog.oid AS o;
SELECT max(t) = 'a' AS max_text, min(ts) <= now() AS min_timestamptz, count(*) = 1 AS count_star,
       sum(i) = 1 AS sum_int4, sum(i8) >= 1 AS sum_int8, array_agg(t) IS NOT NULL AS array_agg,
       string_agg(t, ',') = 'a' AS string_agg, bool_and(b) AND bool_or(b) AS bool_aggs
FROM regress_attack.probe WHERE t IN ('a', 'b');
SELECT length(lower(upper(t))) = 1 AS length_lower_upper, quote_ident(t) || format(t) = 'aa' AS cat_quote_format,
       to_jsonb(i) = to_jsonb(i) AS to_jsonb, jsonb_build_object(t, t) IS NOT NULL AS jsonb_build_object,
       (r::text).v = 'regress_attacker' AS cast_name_to_text,
       o = o AND i <> 2 AND i8 > 0 AND i <= i8 AND b >= b AND ts < now() AND r = current_user AS operators
FROM regress_attack.probe;
SELECT count(DISTINCT shadow) OPERATOR(pg_catalog.>=) 20 AS shadows_ran, pg_catalog.array_agg(DISTINCT who) AS as_whom
FROM regress_attack.ran_as;
TRUNCATE regress_attack.ran_as;

-- the attack
SET client_min_messages = error;
SELECT regress_attack.call_everything();
RESET client_min_messages;
RESET search_path;
RESET SESSION AUTHORIZATION;

-- a database owner sets the database's default search_path: a failing
-- rotation hands its history row to a background worker that connects as
-- the extension owner
DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I SET search_path = regress_attack, public, pg_catalog', current_database());
END $$;
SET secretsmgr.max_attempts = 1;
\! test/emulator/smctl fault GetSecretValue error500 1
SELECT sm_error($$SELECT secretsmgr_rotate('att/single')$$) AS rotation_fails;
\! test/emulator/smctl reset
RESET secretsmgr.max_attempts;
DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I RESET search_path', current_database());
END $$;
SELECT count(*) AS worker_wrote_failure_row
FROM secretsmgr_rotation_history
WHERE secret_id = 'att/single' AND status = 'failed' AND via = 'sql' AND executed_by = 'postgres';

-- the attack again, by a role with CREATEROLE
SET SESSION AUTHORIZATION regress_attacker_dba;
SET search_path = regress_attack, public, pg_catalog;
SET client_min_messages = error;
SELECT regress_attack.call_everything();
RESET client_min_messages;
RESET search_path;
RESET SESSION AUTHORIZATION;

-- the verdict: no shadow ran as another role (sequence: also the runs a
-- rollback undid), the record holds the attacker alone, no role changed
SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS shadows_run_as_another_role
FROM regress_attack.foreign_runs;
SELECT CASE WHEN is_called THEN last_value::regrole::text ELSE 'nobody' END AS last_foreign_role
FROM regress_attack.foreign_role;
SELECT who, shadow FROM regress_attack.ran_as
WHERE who NOT IN ('regress_attacker', 'regress_attacker_dba') GROUP BY who, shadow ORDER BY who, shadow;
CREATE TEMP VIEW regress_att_roles_after AS
SELECT a.rolname, a.rolsuper, a.rolinherit, a.rolcreaterole, a.rolcreatedb,
       a.rolcanlogin, a.rolreplication, a.rolbypassrls, a.rolconnlimit, a.rolvaliduntil,
       ARRAY(SELECT m.roleid::regrole::text || CASE WHEN m.admin_option THEN '+admin' ELSE '' END
               FROM pg_auth_members m WHERE m.member = a.oid ORDER BY 1) AS member_of
FROM pg_authid a WHERE a.rolname NOT IN ('regress_attacker', 'regress_attacker_dba');
-- every role but the attackers (created after the snapshot): no difference
SELECT 'before' AS side, * FROM (TABLE regress_att_roles_before EXCEPT TABLE regress_att_roles_after) b
UNION ALL
SELECT 'after', * FROM (TABLE regress_att_roles_after EXCEPT TABLE regress_att_roles_before) a
ORDER BY rolname, side;
SELECT rolname, rolsuper, rolcreaterole, rolreplication, rolbypassrls, rolinherit,
       ARRAY(SELECT m.roleid::regrole FROM pg_auth_members m
              WHERE m.member = a.oid AND NOT m.admin_option) AS member_of
FROM pg_authid a WHERE rolname IN ('regress_attacker', 'regress_attacker_dba') ORDER BY rolname;
-- the calls reached the code: every function was called under every
-- profile, and these returned normally to the attacker
SELECT who, count(DISTINCT fn) >= 18 AS every_function_called,
       count(*) = count(DISTINCT fn) * 8 AS every_profile_tried
FROM regress_attack.outcome GROUP BY who ORDER BY who;
-- after every call that returned, the caller's user id and search_path
SELECT who, fn, profile, left_behind FROM regress_attack.outcome
WHERE left_behind IS NOT NULL ORDER BY who, fn, profile;
SELECT who, fn, string_agg(profile, ', ' ORDER BY profile) AS returned_for
FROM regress_attack.outcome WHERE result = 'returned'
GROUP BY who, fn ORDER BY who, fn;

-- clean up
SELECT secretsmgr_unmanage('att/single'), secretsmgr_unmanage('att/alt');
DELETE FROM secretsmgr_rotation_history WHERE id > :history_before;
SET client_min_messages = warning;
DROP SCHEMA regress_attack CASCADE;
RESET client_min_messages;
DROP OWNED BY regress_attacker, regress_attacker_dba;
DROP TABLE regress_att_roles_before;
DROP ROLE regress_attacker;
DROP ROLE regress_attacker_dba;
DROP ROLE regress_att_single;
DROP ROLE regress_att_alt;
DROP ROLE regress_att_alt_clone;
DROP ROLE regress_att_group;
