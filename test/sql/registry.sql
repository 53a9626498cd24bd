-- registry: secretsmgr_manage / secretsmgr_unmanage decide which secret may
-- rotate which role.  Only a role able to ALTER the target may bind it;
-- privileged roles are refused unless allowed; "alternating" creates (or
-- adopts) <role>_clone with the same memberships; every bad input changes
-- nothing.
\pset format unaligned
\! test/emulator/smctl reset --state
\! test/emulator/smctl create reg/app '{"username":"regress_reg_app","password":"Reg-Pw-1"}'
\! test/emulator/smctl create reg/alt '{"username":"regress_reg_alt","password":"Reg-Alt-Pw-2"}'
\! test/emulator/smctl create reg/adopt '{"username":"regress_reg_adopt","password":"Reg-Adopt-Pw-3"}'
\! test/emulator/smctl create reg/priv '{"username":"regress_reg_super","password":"Reg-Priv-Pw-4"}'
\! test/emulator/smctl create reg/byarn '{"username":"regress_reg_byarn","password":"Reg-ByArn-Pw-5"}'
\! test/emulator/smctl create reg/gone '{"username":"regress_reg_gone","password":"Reg-Gone-Pw-6"}'
SET secretsmgr.cache_ttl = 0;

CREATE ROLE regress_reg_group1 NOLOGIN;
CREATE ROLE regress_reg_group2 NOLOGIN;
CREATE ROLE regress_reg_app LOGIN;
CREATE ROLE regress_reg_alt LOGIN CREATEDB CONNECTION LIMIT 7 IN ROLE regress_reg_group1, regress_reg_group2;
CREATE ROLE regress_reg_adopt LOGIN IN ROLE regress_reg_group1;
CREATE ROLE regress_reg_adopt_clone NOLOGIN;
CREATE ROLE regress_reg_nologin NOLOGIN;
CREATE ROLE regress_reg_super LOGIN SUPERUSER;
CREATE ROLE regress_reg_repl LOGIN REPLICATION;
CREATE ROLE regress_reg_rls LOGIN BYPASSRLS;
CREATE ROLE regress_reg_creator LOGIN CREATEROLE;
CREATE ROLE regress_reg_plain LOGIN;
GRANT EXECUTE ON FUNCTION secretsmgr_manage(text, name, text, interval),
	secretsmgr_unmanage(text) TO regress_reg_creator, regress_reg_plain;

-- a binding, and what it stores (the ARN resolved with DescribeSecret)
SELECT secretsmgr_manage('reg/app', 'regress_reg_app');
SELECT secret_id, secret_arn LIKE 'arn:aws:secretsmanager:us-east-1:%:secret:reg/app-%' AS arn_resolved,
       role_name, clone_role, strategy, rotation_interval, created_by
FROM secretsmgr_managed ORDER BY secret_id;
-- managing again updates the row
SELECT secretsmgr_manage('reg/app', 'regress_reg_app', 'single', '30 days');
SELECT secret_id, role_name, strategy, rotation_interval FROM secretsmgr_managed ORDER BY secret_id;

-- bad inputs: each refused, nothing changes
SELECT sm_error($$SELECT secretsmgr_manage('reg/alt', 'regress_reg_alt', 'round-robin')$$);
SELECT sm_error($$SELECT secretsmgr_manage('reg/alt', 'regress_reg_alt', 'single', '-1 day')$$);
SELECT sm_error($$SELECT secretsmgr_manage('reg/alt', 'regress_reg_alt', 'single', '0')$$);
SELECT sm_error($$SELECT secretsmgr_manage('reg/alt', NULL)$$);
SELECT sm_error($$SELECT secretsmgr_manage(NULL, 'regress_reg_alt')$$);
SELECT sm_error($$SELECT secretsmgr_manage('reg/alt', 'regress_reg_alt', NULL)$$);
SELECT sm_error($$SELECT secretsmgr_manage('', 'regress_reg_alt')$$);
SELECT sm_error($$SELECT secretsmgr_manage('reg/alt', 'regress_reg_no_such_role')$$);
SELECT sm_error($$SELECT secretsmgr_manage('reg/alt', 'regress_reg_nologin')$$);
SELECT sm_error($$SELECT secretsmgr_manage('reg/no-such-secret', 'regress_reg_alt')$$);
-- a role is rotated by one secret only; a secret is bound once (by name or ARN)
SELECT sm_error($$SELECT secretsmgr_manage('reg/alt', 'regress_reg_app')$$);
SELECT regexp_replace(sm_error(format('SELECT secretsmgr_manage(%L, %L)',
	secretsmgr_describe_secret('reg/app') ->> 'ARN', 'regress_reg_alt')), 'reg/app-[A-Za-z0-9]{6}', 'reg/app-XXXXXX', 'g');
SELECT count(*) AS bindings FROM secretsmgr_managed;

-- privileged roles are refused unless secretsmgr.allow_privileged_roles
SELECT sm_error($$SELECT secretsmgr_manage('reg/priv', 'regress_reg_super')$$);
SELECT sm_error($$SELECT secretsmgr_manage('reg/priv', 'regress_reg_repl')$$);
SELECT sm_error($$SELECT secretsmgr_manage('reg/priv', 'regress_reg_rls')$$);
SET secretsmgr.allow_privileged_roles = on;
SELECT secretsmgr_manage('reg/priv', 'regress_reg_super');
SELECT secretsmgr_unmanage('reg/priv');
RESET secretsmgr.allow_privileged_roles;

-- alternating: <role>_clone is created as a login role with the role's
-- memberships and attributes, and no password until the first rotation;
-- a superuser binds this one: the role has CREATEDB, which from
-- PostgreSQL 16 only a role with CREATEDB may give the clone it creates
SELECT secretsmgr_manage('reg/alt', 'regress_reg_alt', 'alternating');
SELECT secret_id, role_name, clone_role, strategy FROM secretsmgr_managed WHERE secret_id = 'reg/alt';
SELECT rolname, rolcanlogin, rolcreatedb, rolconnlimit, rolpassword IS NULL AS no_password
FROM pg_authid WHERE rolname LIKE 'regress_reg_alt%' ORDER BY 1;
SELECT r.rolname, g.rolname AS member_of
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
WHERE r.rolname LIKE 'regress_reg_alt%' ORDER BY 1, 2;
-- managing again adds memberships the role gained since
CREATE ROLE regress_reg_group3 NOLOGIN;
GRANT regress_reg_group3 TO regress_reg_alt;
SELECT secretsmgr_manage('reg/alt', 'regress_reg_alt', 'alternating');
SELECT r.rolname, g.rolname AS member_of
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
WHERE r.rolname = 'regress_reg_alt_clone' ORDER BY 1, 2;
-- an existing clone is adopted (and allowed to log in)
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_manage('reg/adopt', 'regress_reg_adopt', 'alternating');
RESET ROLE;
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'regress_reg_adopt_clone';
SELECT secretsmgr_unmanage('reg/adopt');
-- ... unless it is privileged
ALTER ROLE regress_reg_adopt_clone BYPASSRLS;
SELECT sm_error($$SELECT secretsmgr_manage('reg/adopt', 'regress_reg_adopt', 'alternating')$$);
-- the clone name must fit in 63 characters
CREATE ROLE regress_reg_a_role_name_of_exactly_fifty_eight_characters_x LOGIN;
SELECT sm_error($$SELECT secretsmgr_manage('reg/adopt', 'regress_reg_a_role_name_of_exactly_fifty_eight_characters_x', 'alternating')$$);
DROP ROLE regress_reg_a_role_name_of_exactly_fifty_eight_characters_x;

-- who may bind: CREATEROLE for an unprivileged role, nobody but a
-- superuser for a superuser; the tables stay unreadable to them
-- (the detail and hint differ by major: sql/majors.sql checks them)
SET ROLE regress_reg_plain;
SELECT split_part(sm_error($$SELECT secretsmgr_manage('reg/adopt', 'regress_reg_adopt')$$), E'\n', 1) AS refused;
SELECT split_part(sm_error($$SELECT secretsmgr_unmanage('reg/app')$$), E'\n', 1) AS refused;
SELECT sm_error($$SELECT count(*) FROM secretsmgr_managed$$);
RESET ROLE;
-- from PostgreSQL 16 CREATEROLE also needs the ADMIN option on the role
GRANT regress_reg_adopt TO regress_reg_creator WITH ADMIN OPTION;
SET ROLE regress_reg_creator;
SELECT secretsmgr_manage('reg/adopt', 'regress_reg_adopt');
SELECT sm_error($$SELECT secretsmgr_manage('reg/priv', 'regress_reg_super')$$);
SELECT sm_error($$SELECT count(*) FROM secretsmgr_managed$$);
SELECT secretsmgr_unmanage('reg/adopt');
RESET ROLE;

-- bindings are found by the secret's ARN too (the Lambda passes the ARN)
SELECT secretsmgr_unmanage(secretsmgr_describe_secret('reg/app') ->> 'ARN') AS unmanaged_by_arn;
SELECT secretsmgr_unmanage('reg/app') AS again;
SELECT secretsmgr_unmanage('reg/alt') AS alt;
SELECT secretsmgr_unmanage(NULL) IS NULL AS strict;
-- a binding registered under the ARN is found by the secret's name, and
-- the row found is the row checked and deleted
CREATE ROLE regress_reg_byarn LOGIN;
SELECT secretsmgr_manage(secretsmgr_describe_secret('reg/byarn') ->> 'ARN', 'regress_reg_byarn');
SELECT secretsmgr_unmanage('reg/byarn') AS unmanaged_by_name;
SELECT count(*) AS byarn_bindings_left FROM secretsmgr_managed WHERE role_name = 'regress_reg_byarn';
-- a binding whose role was dropped: only a role that could create it again
-- (superuser, CREATEROLE) may remove it
CREATE ROLE regress_reg_gone LOGIN;
SELECT secretsmgr_manage('reg/gone', 'regress_reg_gone');
DROP ROLE regress_reg_gone;
SET ROLE regress_reg_plain;
SELECT sm_error($$SELECT secretsmgr_unmanage('reg/gone')$$);
RESET ROLE;
SELECT count(*) AS gone_bindings_left FROM secretsmgr_managed WHERE secret_id = 'reg/gone';
SET ROLE regress_reg_creator;
SELECT secretsmgr_unmanage('reg/gone') AS unmanaged_by_createrole;
RESET ROLE;
BEGIN READ ONLY;
SELECT sm_error($$SELECT secretsmgr_manage('reg/app', 'regress_reg_app')$$);
ROLLBACK;
SELECT count(*) AS bindings_left FROM secretsmgr_managed;
-- unmanaging leaves the clone role in place
SELECT rolname FROM pg_roles WHERE rolname = 'regress_reg_alt_clone';

-- clean up
REVOKE EXECUTE ON FUNCTION secretsmgr_manage(text, name, text, interval),
	secretsmgr_unmanage(text) FROM regress_reg_creator, regress_reg_plain;
DROP ROLE regress_reg_app, regress_reg_alt, regress_reg_alt_clone, regress_reg_adopt, regress_reg_byarn,
	regress_reg_adopt_clone, regress_reg_nologin, regress_reg_super, regress_reg_repl,
	regress_reg_rls, regress_reg_creator, regress_reg_plain,
	regress_reg_group1, regress_reg_group2, regress_reg_group3;
