/*
 * privilege.c
 *		Every privilege check for SQL callers, and the one refusal of a
 *		change on a standby or in a read-only transaction.
 *
 * The SQL entry points (sqlapi*.c) and the rotation engine ask here before
 * they read a secret for a role or change anything: may the caller alter
 * the role (the rule of ALTER ROLE ... PASSWORD on each major), and may
 * anything be changed now at all.  One wording, one SQLSTATE, a detail and
 * a hint for each refusal.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "compat.h"
#include "privilege.h"
#include "registry.h"

/*
 * Refuse a call of fname() that would change something (a role's password,
 * a secret's stages, the tables secretsmgr owns) on a standby or in a
 * read-only transaction.
 */
void
sm_privilege_refuse_read_only(const char *fname)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot run %s() during recovery", fname),
				 errdetail("%s() changes role passwords or the tables secretsmgr owns, which a standby cannot.",
						   fname),
				 errhint("Run %s() on the primary server; secretsmgr_verify() works on a standby.",
						 fname)));
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot execute %s() in a read-only transaction", fname),
				 errdetail("%s() changes role passwords or the tables secretsmgr owns.",
						   fname),
				 errhint("Run %s() in a read-write transaction.", fname)));
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
sm_privilege_check_alter_role(const char *role_name, const char *fname)
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
sm_privilege_check_rotate(const char *secret_id, const char *fname)
{
	SmBinding	b;

	if (!sm_registry_lookup(secret_id, &b))
		return;
	if (OidIsValid(get_role_oid(b.role_name, true)))
		sm_privilege_check_alter_role(b.role_name, fname);
	if (b.alternating && b.clone_role && OidIsValid(get_role_oid(b.clone_role, true)))
		sm_privilege_check_alter_role(b.clone_role, fname);
}
