/*
 * runas.c
 *		The one way secretsmgr runs code as another role.
 *
 * Writing the tables the extension owns (the registry, the history) and
 * reading them for the health report needs the owner's rights, which are
 * usually a superuser's.  Code that runs that way must never run anything
 * the caller chose: SQL text parsed under the caller's search_path would
 * pick the caller's own "=", max() or casts, and run them as the owner.
 * So every owner switch goes through sm_runas_owner(), which
 *
 * - switches to the owner with SECURITY_LOCAL_USERID_CHANGE (no SET ROLE or
 *   RESET ROLE can undo it) and SECURITY_RESTRICTED_OPERATION (no temporary
 *   object, no cursor or prepared statement that outlives the switch; the
 *   SPI statements run here need neither);
 * - opens a GUC nest level and pins search_path to "pg_catalog, pg_temp"
 *   there (RestrictSearchPath(), what PostgreSQL 17's maintenance commands
 *   do), so nothing outside pg_catalog is found by an unqualified name and
 *   a SET by anything called inside is undone too;
 * - restores the user id, the security context and every setting in
 *   PG_FINALLY, on error as on return.
 *
 * The history writer, a background worker that connects as the owner,
 * pins search_path for its whole life right after connecting
 * (sm_runas_worker_connect), at a priority no later SET can override, and
 * then does its work through sm_runas_owner() like everything else.
 *
 * The SQL text run this way is schema-qualified anyway (the extension's
 * tables through the quoted schema, OPERATOR(pg_catalog.=),
 * pg_catalog.max(...), casts to pg_catalog types): the pinned path is the
 * second line of defence, not the only one.
 *
 * Nothing else in secretsmgr calls SetUserIdAndSecContext.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/guc.h"

#include "compat.h"
#include "extension.h"
#include "runas.h"

#define SM_SAFE_SEARCH_PATH		"pg_catalog, pg_temp"

/* Run fn(arg) as the extension owner, search_path pinned; restore all after. */
void
sm_runas_owner(SmRunasFn fn, void *arg)
{
	Oid			owner = sm_extension_owner();
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner,
						   save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	PG_TRY();
	{
		RestrictSearchPath();
		fn(arg);
	}
	PG_FINALLY();
	{
		AtEOXact_GUC(false, save_nestlevel);
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
}

/*
 * Connect this background worker as roleid and pin search_path for good:
 * PGC_S_OVERRIDE outranks the database's and the role's defaults (applied
 * while connecting) and any later SET.
 */
void
sm_runas_worker_connect(Oid dboid, Oid roleid)
{
	BackgroundWorkerInitializeConnectionByOid(dboid, roleid, 0);
	SetConfigOption("search_path", SM_SAFE_SEARCH_PATH, PGC_SUSET,
					PGC_S_OVERRIDE);
}
