/*
 * sqlapi_rotate.c
 *		SQL entry points of the registry and the rotation engine.
 *
 * Arguments are checked here before anything goes on the wire, and the
 * privilege checks for SQL callers of these functions sit here too:
 *
 * - EXECUTE on every function is revoked from PUBLIC; a DBA grants it.
 * - secretsmgr_manage / secretsmgr_unmanage also require the right to alter
 *   the role being bound: superuser, or CREATEROLE for a non-superuser role
 *   (and, from PostgreSQL 16, ADMIN OPTION on it).  A binding is what lets
 *   a secret change a role, so registering one is as privileged as
 *   ALTER ROLE ... PASSWORD itself.
 * - secretsmgr_rotate, secretsmgr_set_secret and secretsmgr_reconcile run
 *   ALTER ROLE as the caller, so PostgreSQL's own checks apply to them.
 */
#include "postgres.h"

#include "smjson.h"

#include "access/xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "compat.h"
#include "registry.h"
#include "rotation.h"
#include "secretsmgr.h"
#include "smclient.h"

PG_FUNCTION_INFO_V1(secretsmgr_manage);
PG_FUNCTION_INFO_V1(secretsmgr_unmanage);
PG_FUNCTION_INFO_V1(secretsmgr_verify);
PG_FUNCTION_INFO_V1(secretsmgr_rotate);
PG_FUNCTION_INFO_V1(secretsmgr_set_secret);
PG_FUNCTION_INFO_V1(secretsmgr_test_secret);
PG_FUNCTION_INFO_V1(secretsmgr_reconcile);

/* A text argument that must not be NULL, as a C string. */
static char *
required_text(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* The secret id argument (first), checked. */
static char *
secret_id_arg(FunctionCallInfo fcinfo)
{
	char	   *secret_id = required_text(fcinfo, 0, "secret_id");

	sm_client_check_secret_id(secret_id);
	return secret_id;
}

/*
 * May the current user alter role_name (and so bind it to a secret)?
 * The same rule as ALTER ROLE ... PASSWORD on another role, on each major:
 * superuser, or CREATEROLE for a non-superuser role, and from PostgreSQL 16
 * also ADMIN OPTION on it (compat.h).  The one check of that right.
 */
static void
check_can_alter_role(const char *role_name)
{
	Oid			roleid = get_role_oid(role_name, false);
	bool		createrole;

	if (superuser())
		return;

	if (superuser_arg(roleid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to manage role \"%s\"", role_name),
				 errdetail("Only superusers can alter superuser roles.")));

	createrole = has_createrole_privilege(GetUserId());
	if (!SM_CREATEROLE_NEEDS_ADMIN)
	{
		if (!createrole)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to manage role \"%s\"", role_name),
					 errdetail("Only roles with the CREATEROLE attribute may bind a role to a secret."),
					 errhint("Ask a superuser, or a role with CREATEROLE, to call it.")));
		return;
	}

	if (!createrole)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to manage role \"%s\"", role_name),
				 errdetail("Only roles with the CREATEROLE attribute and the ADMIN option on role \"%s\" may bind it to a secret.",
						   role_name),
				 errhint("Ask a superuser, or a role with CREATEROLE and the ADMIN option on role \"%s\", to call it.",
						 role_name)));
	if (!is_admin_of_role(GetUserId(), roleid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to manage role \"%s\"", role_name),
				 errdetail("Only roles with the CREATEROLE attribute and the ADMIN option on role \"%s\" may bind it to a secret.",
						   role_name),
				 errhint("A superuser can grant the ADMIN option alone: GRANT %s TO %s WITH ADMIN OPTION, INHERIT FALSE, SET FALSE.",
						 quote_identifier(role_name),
						 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
}

/* Writes to the registry are refused on a standby and when read-only. */
static void
refuse_read_only(const char *fname)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot run %s() during recovery", fname),
				 errhint("Run %s() on the primary server.", fname)));
	PreventCommandIfReadOnly(psprintf("%s()", fname));
}

/*
 * secretsmgr_manage(secret_id text, role_name name, strategy text DEFAULT
 * 'single', rotation_interval interval DEFAULT NULL) RETURNS void
 */
Datum
secretsmgr_manage(PG_FUNCTION_ARGS)
{
	char	   *secret_id = secret_id_arg(fcinfo);
	char	   *role_name;
	char	   *strategy;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role_name must not be null")));
	role_name = pstrdup(NameStr(*PG_GETARG_NAME(1)));
	strategy = required_text(fcinfo, 2, "strategy");

	refuse_read_only("secretsmgr_manage");
	check_can_alter_role(role_name);

	sm_registry_manage(secret_id, role_name, strategy,
					   PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3),
					   PG_ARGISNULL(3));
	PG_RETURN_VOID();
}

/* secretsmgr_unmanage(secret_id text) RETURNS boolean */
Datum
secretsmgr_unmanage(PG_FUNCTION_ARGS)
{
	char	   *secret_id = secret_id_arg(fcinfo);
	SmBinding	b;

	refuse_read_only("secretsmgr_unmanage");

	/* Unbinding needs the same right as binding, while the role exists. */
	if (sm_registry_lookup(secret_id, &b))
	{
		if (OidIsValid(get_role_oid(b.role_name, true)))
			check_can_alter_role(b.role_name);
	}
	PG_RETURN_BOOL(sm_registry_unmanage(secret_id));
}

/*
 * secretsmgr_verify(secret_id text, version_stage text DEFAULT
 * 'AWSCURRENT') RETURNS boolean
 */
Datum
secretsmgr_verify(PG_FUNCTION_ARGS)
{
	char	   *secret_id = secret_id_arg(fcinfo);
	char	   *stage = required_text(fcinfo, 1, "version_stage");

	sm_client_check_version_stage(stage);
	PG_RETURN_BOOL(sm_rotation_verify(secret_id, stage));
}

/* secretsmgr_rotate(secret_id text) RETURNS text (the new VersionId) */
Datum
secretsmgr_rotate(PG_FUNCTION_ARGS)
{
	char	   *secret_id = secret_id_arg(fcinfo);

	PG_RETURN_TEXT_P(cstring_to_text(sm_rotation_rotate(secret_id, "sql")));
}

/*
 * secretsmgr_set_secret(secret_id text, client_request_token text)
 * RETURNS void: the rotation Lambda's setSecret step.
 */
Datum
secretsmgr_set_secret(PG_FUNCTION_ARGS)
{
	char	   *secret_id = secret_id_arg(fcinfo);
	char	   *token = required_text(fcinfo, 1, "client_request_token");

	sm_client_check_version_id(token);
	sm_rotation_set_secret(secret_id, token);
	PG_RETURN_VOID();
}

/*
 * secretsmgr_test_secret(secret_id text, client_request_token text)
 * RETURNS boolean: the rotation Lambda's testSecret step.
 */
Datum
secretsmgr_test_secret(PG_FUNCTION_ARGS)
{
	char	   *secret_id = secret_id_arg(fcinfo);
	char	   *token = required_text(fcinfo, 1, "client_request_token");

	sm_client_check_version_id(token);
	PG_RETURN_BOOL(sm_rotation_test_secret(secret_id, token));
}

/* secretsmgr_reconcile(secret_id text) RETURNS text (AWSCURRENT's VersionId) */
Datum
secretsmgr_reconcile(PG_FUNCTION_ARGS)
{
	char	   *secret_id = secret_id_arg(fcinfo);

	PG_RETURN_TEXT_P(cstring_to_text(sm_rotation_reconcile(secret_id)));
}
