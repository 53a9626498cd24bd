-- privileged_roles: a role that is privileged itself or through any chain
-- of memberships (SET ROLE works along all of them) is refused at binding
-- time and again before every password change, unless a superuser turns on
-- secretsmgr.allow_privileged_roles.  The DBA is regress_dba, a CREATEROLE
-- non-superuser; the bootstrap superuser's name is masked as <bootstrap>.
\pset format unaligned
\! test/emulator/smctl reset --state
\! test/emulator/smctl create priv/m '{"username":"regress_priv_m","password":"Priv-M-Pw-1"}'
\! test/emulator/smctl create priv/late '{"username":"regress_priv_late","password":"Priv-Late-Pw-2"}'
\! test/emulator/smctl create priv/alt '{"username":"regress_priv_alt","password":"Priv-Alt-Pw-3"}'
SET secretsmgr.cache_ttl = 0;
SELECT rolname AS bootstrap FROM pg_roles WHERE oid = 10 \gset
CREATE FUNCTION priv_error(query text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(sm_error(query), '\m' || (SELECT rolname FROM pg_roles WHERE oid = 10) || '\M', '<bootstrap>', 'g')
$$;

-- the roles: a member of the bootstrap superuser, a member of
-- pg_execute_server_program through an intermediate group, members of
-- groups holding each privileged attribute, and unprivileged chains
CREATE ROLE regress_priv_m LOGIN IN ROLE :"bootstrap";
CREATE ROLE regress_priv_mid NOLOGIN;
GRANT pg_execute_server_program TO regress_priv_mid;
CREATE ROLE regress_priv_prog LOGIN IN ROLE regress_priv_mid;
CREATE ROLE regress_priv_g_repl NOLOGIN REPLICATION;
CREATE ROLE regress_priv_g_rls NOLOGIN BYPASSRLS;
CREATE ROLE regress_priv_g_creator NOLOGIN CREATEROLE;
CREATE ROLE regress_priv_g_deep NOLOGIN IN ROLE regress_priv_g_rls;
CREATE ROLE regress_priv_repl LOGIN IN ROLE regress_priv_g_repl;
CREATE ROLE regress_priv_rls LOGIN NOINHERIT IN ROLE regress_priv_g_deep;
CREATE ROLE regress_priv_creator_member LOGIN IN ROLE regress_priv_g_creator;
CREATE ROLE regress_priv_creator LOGIN CREATEROLE;
CREATE ROLE regress_priv_reader LOGIN IN ROLE pg_read_all_data;
CREATE ROLE regress_priv_writer LOGIN IN ROLE pg_write_all_data;
CREATE ROLE regress_priv_files LOGIN IN ROLE pg_read_server_files;
CREATE ROLE regress_priv_wfiles LOGIN IN ROLE pg_write_server_files;
CREATE ROLE regress_priv_g_plain1 NOLOGIN IN ROLE pg_monitor;
CREATE ROLE regress_priv_g_plain2 NOLOGIN IN ROLE regress_priv_g_plain1;
CREATE ROLE regress_priv_late LOGIN IN ROLE regress_priv_g_plain2;
CREATE ROLE regress_priv_alt LOGIN IN ROLE regress_priv_g_plain1;

-- refused, each with the path that makes it privileged; nothing is bound
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT priv_error($$SELECT secretsmgr_manage('priv/m', 'regress_priv_m')$$);
SELECT priv_error($$SELECT secretsmgr_manage('priv/m', 'regress_priv_prog')$$);
SELECT priv_error($$SELECT secretsmgr_manage('priv/m', 'regress_priv_repl')$$);
SELECT priv_error($$SELECT secretsmgr_manage('priv/m', 'regress_priv_rls')$$);
SELECT priv_error($$SELECT secretsmgr_manage('priv/m', 'regress_priv_creator_member')$$);
SELECT priv_error($$SELECT secretsmgr_manage('priv/m', 'regress_priv_creator')$$);
SELECT priv_error($$SELECT secretsmgr_manage('priv/m', 'regress_priv_reader')$$);
SELECT priv_error($$SELECT secretsmgr_manage('priv/m', 'regress_priv_writer')$$);
SELECT priv_error($$SELECT secretsmgr_manage('priv/m', 'regress_priv_files')$$);
SELECT priv_error($$SELECT secretsmgr_manage('priv/m', 'regress_priv_wfiles', 'alternating')$$);
RESET ROLE;
SELECT count(*) AS bindings, (SELECT count(*) FROM pg_roles WHERE rolname LIKE 'regress_priv_%clone') AS clones
FROM secretsmgr_managed;

-- a chain of unprivileged groups (pg_monitor is not on the list) is fine,
-- and the DBA binds "alternating" (the clone gets the role's groups)
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT secretsmgr_manage('priv/late', 'regress_priv_late');
SELECT secretsmgr_manage('priv/alt', 'regress_priv_alt', 'alternating');
SELECT length(secretsmgr_rotate('priv/late')) AS id_length;
RESET ROLE;
SELECT r.rolname, g.rolname AS member_of
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
WHERE r.rolname LIKE 'regress_priv_alt%' ORDER BY 1, 2;
SELECT sm_login('priv/late') AS late_logs_in;

-- a membership granted after binding: rotate, set_secret and reconcile
-- refuse, and neither the role's password nor the secret's versions change
GRANT regress_priv_mid TO regress_priv_g_plain1;
SELECT rolpassword AS pw_before FROM pg_authid WHERE rolname = 'regress_priv_late' \gset
SELECT secretsmgr_describe_secret('priv/late') -> 'VersionIdsToStages' AS versions \gset
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT priv_error($$SELECT secretsmgr_rotate('priv/late')$$);
SELECT priv_error($$SELECT secretsmgr_rotate('priv/alt')$$);
RESET ROLE;
SELECT secretsmgr_describe_secret('priv/late') -> 'VersionIdsToStages' = :'versions' AS versions_unchanged;
\! test/emulator/smctl put priv/late '{"username":"regress_priv_late","password":"Priv-Late-Pending-Pw-4"}' --stages AWSPENDING --token 44444444-4444-4444-8444-444444444444
SELECT secretsmgr_describe_secret('priv/late') -> 'VersionIdsToStages' AS versions \gset
SELECT priv_error($$SELECT secretsmgr_set_secret('priv/late', '44444444-4444-4444-8444-444444444444')$$);
SELECT secretsmgr_describe_secret('priv/late') -> 'VersionIdsToStages' = :'versions' AS versions_unchanged;
-- AWSCURRENT moved by hand to a version the role does not have: reconcile
-- would set the role's password, and refuses
\! test/emulator/smctl put priv/late '{"username":"regress_priv_late","password":"Priv-Late-Hand-Pw-5"}' --stages AWSCURRENT --token 55555555-5555-4555-8555-555555555555
SELECT secretsmgr_describe_secret('priv/late') -> 'VersionIdsToStages' AS versions \gset
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT priv_error($$SELECT secretsmgr_reconcile('priv/late')$$);
RESET ROLE;
SELECT secretsmgr_describe_secret('priv/late') -> 'VersionIdsToStages' = :'versions' AS versions_unchanged;
SELECT rolpassword = :'pw_before' AS password_unchanged FROM pg_authid WHERE rolname = 'regress_priv_late';
SELECT sm_labels('priv/late') AS labels;

-- a superuser allows privileged roles: rotation and binding go through
SET secretsmgr.allow_privileged_roles = on;
SET client_min_messages = warning;
SELECT secretsmgr_reconcile('priv/late') IS NOT NULL AS reconciled;
RESET client_min_messages;
SELECT sm_login('priv/late') AS late_logs_in;
SELECT secretsmgr_manage('priv/m', 'regress_priv_m');
SELECT length(secretsmgr_rotate('priv/m')) AS id_length;
SELECT sm_login('priv/m') AS m_logs_in;
RESET secretsmgr.allow_privileged_roles;
-- ... and only a superuser may
SELECT sm_dba_admin() \gset
SET ROLE regress_dba;
SELECT sm_error($$SET secretsmgr.allow_privileged_roles = on$$);
RESET ROLE;
-- with the setting off again, the privileged binding stays but rotates no more
SELECT priv_error($$SELECT secretsmgr_rotate('priv/m')$$);

-- clean up
SELECT secretsmgr_unmanage('priv/m'), secretsmgr_unmanage('priv/late'), secretsmgr_unmanage('priv/alt');
DELETE FROM secretsmgr_rotation_history WHERE secret_id LIKE 'priv/%';
DROP FUNCTION priv_error(text);
DROP ROLE regress_priv_m, regress_priv_prog, regress_priv_mid, regress_priv_repl, regress_priv_g_repl,
	regress_priv_rls, regress_priv_g_deep, regress_priv_g_rls, regress_priv_creator_member,
	regress_priv_g_creator, regress_priv_creator, regress_priv_reader, regress_priv_writer,
	regress_priv_files, regress_priv_wfiles, regress_priv_late, regress_priv_alt, regress_priv_alt_clone,
	regress_priv_g_plain2, regress_priv_g_plain1;
