/*
 * guard.c
 *		The drift guard: a ProcessUtility hook on the roles secretsmgr manages.
 *
 * A managed role's password belongs to its secret: an ALTER ROLE ...
 * PASSWORD run by hand leaves AWSCURRENT unable to log in, and a RENAME,
 * NOLOGIN, VALID UNTIL or DROP ROLE breaks the next rotation.  With the
 * library in shared_preload_libraries, every such statement on a role bound
 * in this database's secretsmgr_managed (the role or its alternating clone)
 * is, by secretsmgr.guard:
 *
 * - error: refused with a hint; the refusal is recorded in
 *   secretsmgr_rotation_history by the history worker, in a transaction of
 *   its own, since the caller's is about to fail;
 * - warn: run, warned about, and recorded in the caller's transaction (a
 *   rollback undoes both the change and its record);
 * - off: run.  When a superuser switched the guard off in this session
 *   (its value differs from the one the session started with), the
 *   statement is recorded as "allowed", and so is the switch itself.
 *
 * The extension's own ALTER ROLE goes through sm_guard_run_own(), which
 * lets it pass.  Rows never hold a password: the statement is described by
 * its kind, never by its text.  The hook only looks at statements about
 * roles and at SET secretsmgr.guard; everything else passes untouched.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "guard.h"
#include "history.h"
#include "registry.h"
#include "backend.h"
#include "secretbuf.h"
#include "settings.h"
#include "stats.h"
#include "stale.h"

int			sm_guc_guard = SM_GUARD_WARN;

static const struct config_enum_entry guard_options[] = {
	{"off", SM_GUARD_OFF, false},
	{"warn", SM_GUARD_WARN, false},
	{"error", SM_GUARD_ERROR, false},
	{NULL, 0, false}
};

static ProcessUtility_hook_type prev_process_utility = NULL;
static bool hook_installed = false;

/* Depth of the extension's own role statements in progress. */
static int	own_depth = 0;

/* One role a statement changes, and how. */
typedef struct SmGuardTarget
{
	char	   *role_name;
	const char *action;			/* "ALTER ROLE ... PASSWORD", ... */
	bool		password;		/* the password changes */
} SmGuardTarget;

/* The name a RoleSpec stands for, or NULL (PUBLIC, or no such role). */
static char *
rolespec_name(const RoleSpec *spec)
{
	switch (spec->roletype)
	{
		case ROLESPEC_CSTRING:
			return spec->rolename;
		case ROLESPEC_CURRENT_ROLE:
		case ROLESPEC_CURRENT_USER:
			return GetUserNameFromId(GetUserId(), true);
		case ROLESPEC_SESSION_USER:
			return GetUserNameFromId(GetSessionUserId(), true);
		default:
			return NULL;
	}
}

/* Add a target for role (if named) to list. */
static List *
add_target(List *list, char *role, const char *action, bool password)
{
	SmGuardTarget *t;

	if (role == NULL)
		return list;
	t = palloc(sizeof(SmGuardTarget));
	t->role_name = role;
	t->action = action;
	t->password = password;
	return lappend(list, t);
}

/*
 * The roles a statement changes in a way the guard watches: ALTER ROLE with
 * PASSWORD, NOLOGIN or VALID UNTIL, ALTER ROLE ... RENAME, DROP ROLE.
 */
static List *
statement_targets(Node *parsetree)
{
	List	   *targets = NIL;
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_AlterRoleStmt:
			{
				AlterRoleStmt *stmt = (AlterRoleStmt *) parsetree;
				char	   *role = rolespec_name(stmt->role);

				foreach(lc, stmt->options)
				{
					DefElem    *d = lfirst(lc);

					if (strcmp(d->defname, "password") == 0)
						targets = add_target(targets, role, "ALTER ROLE ... PASSWORD", true);
					else if (strcmp(d->defname, "canlogin") == 0 && !defGetBoolean(d))
						targets = add_target(targets, role, "ALTER ROLE ... NOLOGIN", false);
					else if (strcmp(d->defname, "validUntil") == 0)
						targets = add_target(targets, role, "ALTER ROLE ... VALID UNTIL", false);
				}
				break;
			}
		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;

				if (stmt->renameType == OBJECT_ROLE)
					targets = add_target(targets, stmt->subname, "ALTER ROLE ... RENAME", false);
				break;
			}
		case T_DropRoleStmt:
			foreach(lc, ((DropRoleStmt *) parsetree)->roles)
				targets = add_target(targets, rolespec_name(lfirst(lc)), "DROP ROLE", false);
			break;
		default:
			break;
	}
	return targets;
}

/* Was the guard switched off in this session (not by the configuration)? */
static bool
switched_off_here(void)
{
	const char *reset = GetConfigOptionResetString("secretsmgr.guard");

	return sm_guc_guard == SM_GUARD_OFF && reset != NULL && strcmp(reset, "off") != 0;
}

/* The history row of a drift event on the role of binding b. */
static SmHistoryRow
drift_row(const SmBinding *b, const SmGuardTarget *t, const char *status)
{
	SmHistoryRow row;
	TimestampTz now = GetCurrentTimestamp();

	memset(&row, 0, sizeof(row));
	row.secret_id = b->secret_id;
	row.role_name = t->role_name;
	row.strategy = b->strategy;
	row.step = "drift";
	row.status = status;
	row.via = "sql";
	row.started_at = now;
	row.finished_at = now;
	row.executed_by = GetUserNameFromId(GetUserId(), false);
	row.error = psprintf("%s from outside secretsmgr", t->action);
	return row;
}

/* Refuse the statement: record the refusal first (it outlives the error). */
static void
refuse(const SmBinding *b, const SmGuardTarget *t)
{
	SmHistoryRow row = drift_row(b, t, "refused");

	row.sqlstate = "55000";
	(void) sm_history_insert_autonomous(&row);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("role \"%s\" is managed by secretsmgr", t->role_name),
			 errdetail("Secret \"%s\" holds its password; %s would leave the secret and the role apart.",
					   b->secret_id, t->action),
			 errhint("Rotate with secretsmgr_rotate('%s'), or unbind it with secretsmgr_unmanage('%s') first; the attempt is recorded in secretsmgr_rotation_history.",
					 b->secret_id, b->secret_id)));
}

/* Record a statement that ran (warned about or allowed) in this transaction. */
static void
record_ran(const SmBinding *b, const SmGuardTarget *t, const char *status)
{
	SmHistoryRow row = drift_row(b, t, status);

	(void) sm_history_insert(&row);
	if (strcmp(status, "warned") == 0)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("role \"%s\" is managed by secretsmgr", t->role_name),
				 errdetail("Secret \"%s\" holds its password; %s leaves the secret and the role apart.",
						   b->secret_id, t->action),
				 errhint("Bring them back together with secretsmgr_rotate('%s') or secretsmgr_reconcile('%s'); the change is recorded in secretsmgr_rotation_history.",
						 b->secret_id, b->secret_id)));
}

/*
 * Is this statement SET secretsmgr.guard?  (ALTER SYSTEM changes the
 * configuration: that is the administrator's setting, not a session's.)
 */
static bool
is_guard_set(Node *parsetree)
{
	VariableSetStmt *set;

	if (!IsA(parsetree, VariableSetStmt))
		return false;
	set = (VariableSetStmt *) parsetree;
	return set->name != NULL && pg_strcasecmp(set->name, "secretsmgr.guard") == 0;
}

/*
 * After SET secretsmgr.guard: when it is now off although the session
 * started with it on, record who switched it off (one row, no secret).
 */
static void
record_switch(void)
{
	SmHistoryRow row;
	TimestampTz now;

	if (!switched_off_here() ||
		!IsTransactionState() || XactReadOnly ||
		!OidIsValid(get_extension_oid("secretsmgr", true)))
		return;
	now = GetCurrentTimestamp();
	memset(&row, 0, sizeof(row));
	row.step = "guard";
	row.status = "disabled";
	row.via = "sql";
	row.started_at = now;
	row.finished_at = now;
	row.executed_by = GetUserNameFromId(GetUserId(), false);
	row.error = pstrdup("secretsmgr.guard switched off for this session");
	(void) sm_history_insert(&row);
}

/*
 * The hook: classify, then refuse, or run and record.  Statements that are
 * not about a managed role go straight to the next hook.
 */
static void
guard_process_utility(PlannedStmt *pstmt, const char *queryString,
					  bool readOnlyTree, ProcessUtilityContext context,
					  ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	List	   *targets = NIL;
	List	   *bound = NIL;
	ListCell   *lc;
	bool		guard_set = false;

	if (own_depth == 0 && IsTransactionState())
	{
		/* off by configuration: nothing to refuse or record */
		if (sm_guc_guard != SM_GUARD_OFF || switched_off_here())
			targets = statement_targets(parsetree);
		guard_set = is_guard_set(parsetree);
	}

	/* which targets are managed, and as which binding */
	foreach(lc, targets)
	{
		SmGuardTarget *t = lfirst(lc);
		SmBinding  *b = palloc0(sizeof(SmBinding));

		if (!sm_registry_lookup_role(t->role_name, b))
			continue;
		if (sm_guc_guard == SM_GUARD_ERROR)
			refuse(b, t);
		bound = lappend(bound, list_make2(t, b));
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	foreach(lc, bound)
	{
		SmGuardTarget *t = linitial(lfirst(lc));
		SmBinding  *b = lsecond(lfirst(lc));

		if (sm_guc_guard == SM_GUARD_WARN)
			record_ran(b, t, "warned");
		else if (switched_off_here())
			record_ran(b, t, "allowed");
		if (t->password)
			sm_stale_password_changed(t->role_name);
	}
	if (guard_set)
		record_switch();
}

/* Run the extension's own role statement; the guard lets it pass. */
void
sm_guard_run_own(PlannedStmt *pstmt, const char *query, const char *role)
{
	own_depth++;
	PG_TRY();
	{
		ProcessUtility(pstmt, query, false, PROCESS_UTILITY_QUERY, NULL, NULL,
					   None_Receiver, NULL);
	}
	PG_FINALLY();
	{
		own_depth--;
	}
	PG_END_TRY();
	sm_stale_password_changed(role);
}

/* Is the hook installed? */
bool
sm_guard_active(void)
{
	return hook_installed;
}

/* Define secretsmgr.guard; install the hook when preloaded. */
void
sm_guard_init(void)
{
	DefineCustomEnumVariable("secretsmgr.guard",
							 "What happens to a change of a managed role made outside secretsmgr.",
							 "off, warn (run it, warn, record it) or error (refuse it, record it).  "
							 "Needs secretsmgr in shared_preload_libraries.",
							 &sm_guc_guard, SM_GUARD_WARN, guard_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = guard_process_utility;
	hook_installed = true;
}

/* Health: the drift guard's state, as a status and a detail with a hint. */
void
sm_guard_health(const char **status, char **detail)
{
	if (!sm_guard_active())
	{
		*status = "OK";
		*detail = pstrdup("not active: secretsmgr is not in shared_preload_libraries, so changes of managed roles are not watched and failed logins are not counted. Hint: add it and restart the server.");
	}
	else if (sm_guc_guard == SM_GUARD_OFF)
	{
		*status = "WARN";
		*detail = pstrdup("secretsmgr.guard is off: ALTER ROLE and DROP ROLE on managed roles are neither refused nor recorded. Hint: SET secretsmgr.guard = warn or error in postgresql.conf.");
	}
	else
	{
		*status = "OK";
		*detail = psprintf("secretsmgr.guard = %s", GetConfigOption("secretsmgr.guard", false, false));
	}
}
