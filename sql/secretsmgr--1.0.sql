/* secretsmgr 1.0 — install script */
\echo Use "CREATE EXTENSION secretsmgr" to load this file. \quit

/*
 * Registry: which secret may rotate which role.  Only a row here lets a
 * secret change a role; the secret's own "username" never decides it.
 * Written only through secretsmgr_manage() / secretsmgr_unmanage().
 */
CREATE TABLE @extschema@.secretsmgr_managed (
	secret_id			text PRIMARY KEY
						CHECK (length(secret_id) BETWEEN 1 AND 2048),
	secret_arn			text UNIQUE,
	role_name			name NOT NULL,
	clone_role			name,
	strategy			text NOT NULL DEFAULT 'single'
						CHECK (strategy IN ('single', 'alternating')),
	rotation_interval	interval CHECK (rotation_interval > interval '0'),
	created_at			timestamptz NOT NULL DEFAULT now(),
	created_by			name NOT NULL DEFAULT current_user,
	CHECK ((strategy = 'alternating') = (clone_role IS NOT NULL))
);

/*
 * One row per rotation, reconcile or Lambda step.  Never a password.
 * Failures are written by a short-lived background worker in a transaction
 * of their own, so they stay after the caller's transaction rolls back.
 */
CREATE TABLE @extschema@.secretsmgr_rotation_history (
	id					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	secret_id			text,		/* NULL: the drift guard switched off */
	role_name			name,
	new_version_id		text,
	previous_version_id	text,
	strategy			text,
	step				text NOT NULL
						CHECK (step IN ('createSecret', 'setSecret', 'testSecret',
										'finishSecret', 'reconcile', 'drift', 'guard')),
	status				text NOT NULL
						CHECK (status IN ('succeeded', 'failed', 'noop',
										  'refused', 'warned', 'allowed', 'disabled')),
	via					text NOT NULL CHECK (via IN ('sql', 'lambda', 'scheduler')),
	started_at			timestamptz NOT NULL,
	finished_at			timestamptz NOT NULL,
	executed_by			name NOT NULL,
	sqlstate			text,
	error				text
);
CREATE INDEX ON @extschema@.secretsmgr_rotation_history (secret_id, id);

SELECT pg_catalog.pg_extension_config_dump('@extschema@.secretsmgr_managed', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.secretsmgr_rotation_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.secretsmgr_rotation_history_id_seq', '');

REVOKE ALL ON @extschema@.secretsmgr_managed FROM PUBLIC;
REVOKE ALL ON @extschema@.secretsmgr_rotation_history FROM PUBLIC;

/* Fetch */
CREATE FUNCTION @extschema@.secretsmgr_get_secret(secret_id text,
	version_stage text DEFAULT 'AWSCURRENT', version_id text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'secretsmgr_get_secret'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.secretsmgr_get_secret_string(secret_id text,
	version_stage text DEFAULT 'AWSCURRENT', version_id text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'secretsmgr_get_secret_string'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.secretsmgr_get_secret_binary(secret_id text,
	version_stage text DEFAULT 'AWSCURRENT', version_id text DEFAULT NULL)
RETURNS bytea
AS 'MODULE_PATHNAME', 'secretsmgr_get_secret_binary'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.secretsmgr_get_secrets(secret_ids text[],
	version_stage text DEFAULT 'AWSCURRENT', strict boolean DEFAULT false,
	OUT secret_id text, OUT value jsonb, OUT version_id text, OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'secretsmgr_get_secrets'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 20;

CREATE FUNCTION @extschema@.secretsmgr_describe_secret(secret_id text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'secretsmgr_describe_secret'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.secretsmgr_cache_invalidate(secret_id text DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'secretsmgr_cache_invalidate'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

/* Observe */
CREATE FUNCTION @extschema@.secretsmgr_stats(
	OUT category text, OUT name text, OUT count bigint, OUT total_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'secretsmgr_stats'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.secretsmgr_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'secretsmgr_stats_reset'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

/*
 * Cluster-wide statistics (shared_preload_libraries = 'secretsmgr'):
 * readable by pg_read_all_stats, like pg_stat_statements.
 */
CREATE FUNCTION @extschema@.secretsmgr_cluster_stats(
	OUT dbid oid, OUT userid oid, OUT secret_id text, OUT operation text,
	OUT calls bigint, OUT errors bigint, OUT error_types jsonb, OUT retries bigint,
	OUT cache_hits bigint, OUT cache_misses bigint, OUT stale_serves bigint,
	OUT total_ms double precision, OUT min_ms double precision,
	OUT max_ms double precision, OUT mean_ms double precision,
	OUT last_error_at timestamptz, OUT last_error_type text,
	OUT rotations_succeeded bigint, OUT rotations_failed bigint,
	OUT last_rotation_succeeded_at timestamptz, OUT last_rotation_failed_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'secretsmgr_cluster_stats'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE VIEW @extschema@.secretsmgr_cluster_stats AS
	SELECT d.datname AS database, r.rolname AS role_name, s.*
	FROM @extschema@.secretsmgr_cluster_stats() s
	LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.dbid
	LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.userid;

CREATE FUNCTION @extschema@.secretsmgr_cluster_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'secretsmgr_cluster_stats_reset'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.secretsmgr_health(
	OUT check_name text, OUT status text, OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'secretsmgr_health'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.secretsmgr_stale_clients(
	OUT secret_id text, OUT role_name name, OUT kind text, OUT client_addr text,
	OUT pid integer, OUT backend_start timestamptz, OUT failed_logins bigint,
	OUT first_failed_at timestamptz, OUT last_failed_at timestamptz,
	OUT last_rotation timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'secretsmgr_stale_clients'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.secretsmgr_iam_policy(purpose text DEFAULT 'database',
	admin_secret text DEFAULT NULL, secrets text[] DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'secretsmgr_iam_policy'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

/* Registry */
CREATE FUNCTION @extschema@.secretsmgr_manage(secret_id text, role_name name,
	strategy text DEFAULT 'single', rotation_interval interval DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'secretsmgr_manage'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.secretsmgr_unmanage(secret_id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'secretsmgr_unmanage'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

/* Verify and rotate */
CREATE FUNCTION @extschema@.secretsmgr_verify(secret_id text,
	version_stage text DEFAULT 'AWSCURRENT')
RETURNS boolean
AS 'MODULE_PATHNAME', 'secretsmgr_verify'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION @extschema@.secretsmgr_rotate(secret_id text)
RETURNS text
AS 'MODULE_PATHNAME', 'secretsmgr_rotate'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.secretsmgr_rotate_due(
	OUT secret_id text, OUT status text, OUT version_id text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'secretsmgr_rotate_due'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.secretsmgr_set_secret(secret_id text, client_request_token text)
RETURNS void
AS 'MODULE_PATHNAME', 'secretsmgr_set_secret'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.secretsmgr_test_secret(secret_id text, client_request_token text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'secretsmgr_test_secret'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.secretsmgr_reconcile(secret_id text)
RETURNS text
AS 'MODULE_PATHNAME', 'secretsmgr_reconcile'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

/* Nothing is callable until a DBA grants it (see docs/security.md). */
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_get_secret(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_get_secret_string(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_get_secret_binary(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_get_secrets(text[], text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_describe_secret(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_cache_invalidate(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_stats() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_stats_reset() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_cluster_stats() FROM PUBLIC;
REVOKE ALL ON @extschema@.secretsmgr_cluster_stats FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_cluster_stats_reset() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_health() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_stale_clients() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_iam_policy(text, text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_manage(text, name, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_unmanage(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_verify(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_rotate(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_rotate_due() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_set_secret(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_test_secret(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.secretsmgr_reconcile(text) FROM PUBLIC;

/* The cluster-wide statistics are for those who read every statistic. */
GRANT EXECUTE ON FUNCTION @extschema@.secretsmgr_cluster_stats() TO pg_read_all_stats;
GRANT SELECT ON @extschema@.secretsmgr_cluster_stats TO pg_read_all_stats;
