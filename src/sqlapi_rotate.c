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
 *   ALTER ROLE ... PASSWORD itself.  A binding whose role is gone may be
 *   removed by a superuser or a CREATEROLE role.
 * - secretsmgr_rotate, secretsmgr_set_secret and secretsmgr_reconcile run
 *   ALTER ROLE as the caller.  The same rule is checked here first, before
 *   anything is written to Secrets Manager or to the database, so a caller
 *   who may not change the password gets an error naming what is missing
 *   instead of PostgreSQL's bare one after an AWSPENDING version was put.
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
 * May the current user change role_name (bind it to a secret, or change its
 * password)?  The one place of the rule of ALTER ROLE ... PASSWORD on
 * another role, on each major: superuser, or CREATEROLE on a non-superuser
 * role, and from PostgreSQL 16 also ADMIN OPTION on it (compat.h).  fname
 * is the SQL function asking: secretsmgr_manage / secretsmgr_unmanage bind,
 * the others rotate.  A role may change its own password, but not bind
 * itself to a secret.
 */
void
sm_sqlapi_check_can_alter_role(const char *role_name, const char *fname)
{
	Oid			roleid = get_role_oid(role_name, false);
	bool		binding = strcmp(fname, "secretsmgr_manage") == 0 ||
		strcmp(fname, "secretsmgr_unmanage") == 0;

	if (superuser())
		return;
	if (!binding && roleid == GetUserId())
		return;

	if (superuser_arg(roleid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 binding ?
				 errmsg("permission denied to manage role \"%s\"", role_name) :
				 errmsg("permission denied to change the password of role \"%s\"", role_name),
				 errdetail("Only superusers can alter superuser roles."),
				 binding ? 0 : errhint("Ask a superuser to call %s().", fname)));

	if (!has_createrole_privilege(GetUserId()))
	{
		if (binding)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to manage role \"%s\"", role_name),
					 SM_CREATEROLE_NEEDS_ADMIN ?
					 errdetail("Only roles with the CREATEROLE attribute and the ADMIN option on role \"%s\" may bind it to a secret.",
							   role_name) :
					 errdetail("Only roles with the CREATEROLE attribute may bind a role to a secret."),
					 SM_CREATEROLE_NEEDS_ADMIN ?
					 errhint("Ask a superuser, or a role with CREATEROLE and the ADMIN option on role \"%s\", to call it.",
							 role_name) :
					 errhint("Ask a superuser, or a role with CREATEROLE, to call it.")));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change the password of role \"%s\"", role_name),
				 errdetail("%s() runs ALTER ROLE as the calling role \"%s\", which lacks the CREATEROLE attribute.",
						   fname, GetUserNameFromId(GetUserId(), false)),
				 errhint("Call %s() as a superuser or as a role with CREATEROLE, or grant CREATEROLE to role \"%s\".",
						 fname, GetUserNameFromId(GetUserId(), false))));
	}

	/* Since PostgreSQL 16, CREATEROLE alters only roles it administers. */
	if (SM_CREATEROLE_NEEDS_ADMIN && !is_admin_of_role(GetUserId(), roleid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 binding ?
				 errmsg("permission denied to manage role \"%s\"", role_name) :
				 errmsg("permission denied to change the password of role \"%s\"", role_name),
				 errdetail("Only roles with the CREATEROLE attribute and the ADMIN option on role \"%s\" may %s.",
						   role_name, binding ? "bind it to a secret" : "change its password"),
				 errhint("A superuser can grant the ADMIN option alone: GRANT %s TO %s WITH ADMIN OPTION, INHERIT FALSE, SET FALSE.",
						 quote_identifier(role_name),
						 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
}

/*
 * May the current user rotate secret_id, that is change the password of
 * every role bound to it?  Checked by the rotating entry points before the
 * rotation reads or writes anything.  An unbound secret, or a bound role
 * that is gone, is left to the rotation's own errors.
 */
void
sm_sqlapi_check_can_rotate(const char *secret_id, const char *fname)
{
	SmBinding	b;

	if (!sm_registry_lookup(secret_id, &b))
		return;
	if (OidIsValid(get_role_oid(b.role_name, true)))
		sm_sqlapi_check_can_alter_role(b.role_name, fname);
	if (b.alternating && b.clone_role && OidIsValid(get_role_oid(b.clone_role, true)))
		sm_sqlapi_check_can_alter_role(b.clone_role, fname);
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
	sm_sqlapi_check_can_alter_role(role_name, "secretsmgr_manage");

	sm_registry_manage(secret_id, role_name, strategy,
					   PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3),
					   PG_ARGISNULL(3));
	PG_RETURN_VOID();
}

/*
 * May the current user remove binding b?  Unbinding needs the same right as
 * binding: to alter the bound role, or its clone when only the clone is
 * left.  A binding whose roles are both gone needs the right to create the
 * role again (superuser or CREATEROLE): a role created later under that
 * name would be bound by it, so it is not left to every caller.
 */
static void
check_can_unbind(const SmBinding *b)
{
	if (OidIsValid(get_role_oid(b->role_name, true)))
		sm_sqlapi_check_can_alter_role(b->role_name, "secretsmgr_unmanage");
	else if (b->clone_role && OidIsValid(get_role_oid(b->clone_role, true)))
		sm_sqlapi_check_can_alter_role(b->clone_role, "secretsmgr_unmanage");
	else if (!superuser() && !has_createrole_privilege(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to unbind secret \"%s\"", b->secret_id),
				 errdetail("Its role \"%s\" no longer exists; only superusers and roles with the CREATEROLE attribute may remove such a binding.",
						   b->role_name),
				 errhint("Ask a superuser, or a role with CREATEROLE, to call it.")));
}

/*
 * secretsmgr_unmanage(secret_id text) RETURNS boolean: the binding found by
 * id, ARN or name is the one checked and the one deleted.
 */
Datum
secretsmgr_unmanage(PG_FUNCTION_ARGS)
{
	char	   *secret_id = secret_id_arg(fcinfo);
	SmBinding	b;

	refuse_read_only("secretsmgr_unmanage");

	if (!sm_registry_lookup(secret_id, &b))
		PG_RETURN_BOOL(false);
	check_can_unbind(&b);
	PG_RETURN_BOOL(sm_registry_unmanage(b.secret_id));
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

	sm_sqlapi_check_can_rotate(secret_id, "secretsmgr_rotate");
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
	sm_sqlapi_check_can_rotate(secret_id, "secretsmgr_set_secret");
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

	sm_sqlapi_check_can_rotate(secret_id, "secretsmgr_reconcile");
	PG_RETURN_TEXT_P(cstring_to_text(sm_rotation_reconcile(secret_id)));
}
