/*
 * sqlapi_rotate.c
 *		SQL entry points of the registry and the rotation engine, and the
 *		scheduler (secretsmgr_rotate_due).
 *
 * Arguments are checked here before anything goes on the wire, and the
 * privilege checks (privilege.c) are made before anything is changed:
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

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "backend.h"
#include "privilege.h"
#include "registry.h"
#include "rotation.h"
#include "settings.h"
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

	sm_privilege_refuse_read_only("secretsmgr_manage");
	sm_privilege_check_alter_role(role_name, "secretsmgr_manage");

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
		sm_privilege_check_alter_role(b->role_name, "secretsmgr_unmanage");
	else if (b->clone_role && OidIsValid(get_role_oid(b->clone_role, true)))
		sm_privilege_check_alter_role(b->clone_role, "secretsmgr_unmanage");
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

	sm_privilege_refuse_read_only("secretsmgr_unmanage");

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

	sm_privilege_check_rotate(secret_id, "secretsmgr_rotate");
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
	sm_privilege_check_rotate(secret_id, "secretsmgr_set_secret");
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

	sm_privilege_check_rotate(secret_id, "secretsmgr_reconcile");
	PG_RETURN_TEXT_P(cstring_to_text(sm_rotation_reconcile(secret_id)));
}

/* list_sort order: never rotated first, then the longest since rotated. */
static int
most_overdue_first(const ListCell *a, const ListCell *b)
{
	const SmManaged *ra = lfirst(a);
	const SmManaged *rb = lfirst(b);

	if (ra->has_last != rb->has_last)
		return ra->has_last ? 1 : -1;
	if (!ra->has_last || ra->last_rotated == rb->last_rotated)
		return strcmp(ra->secret_id, rb->secret_id);
	return ra->last_rotated < rb->last_rotated ? -1 : 1;
}

typedef struct DueCall
{
	const char *secret_id;
	char	   *version_id;
	const SmBatchItem *current;	/* AWSCURRENT read by the batch */
	const SmAwsError *error;	/* how its batch call failed */
} DueCall;

/* Inside the subtransaction: one scheduled rotation. */
static void
due_call(void *arg)
{
	DueCall    *c = arg;

	sm_privilege_check_rotate(c->secret_id, "secretsmgr_rotate_due");
	c->version_id = sm_rotation_rotate_prefetched(c->secret_id, "scheduler",
												  c->current, c->error);
}

/* Rotate one due secret in a subtransaction; add its row. */
static void
rotate_one(ReturnSetInfo *rsinfo, SmManaged *r, const SmBatchItem *current,
		   const SmAwsError *error)
{
	DueCall		call = {r->secret_id, NULL, current, error};
	ErrorData  *ed = sm_subxact_run(due_call, &call);
	Datum		values[3];
	bool		nulls[3] = {false, false, true};

	values[0] = CStringGetTextDatum(r->secret_id);
	if (ed == NULL)
	{
		values[1] = CStringGetTextDatum("rotated");
		values[2] = CStringGetTextDatum(call.version_id);
		nulls[2] = false;
	}
	else
	{
		ereport(WARNING,
				(errcode(ed->sqlerrcode),
				 errmsg("scheduled rotation of secret \"%s\" failed: %s",
						r->secret_id, ed->message),
				 ed->hint ? errhint("%s", ed->hint) : 0));
		values[1] = CStringGetTextDatum("failed");
		FreeErrorData(ed);
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Rotate the due secrets window by window.  A window is as many secrets as
 * secretsmgr.max_concurrent_requests BatchGetSecretValue calls of 20 carry:
 * their rotation locks are taken first (in this transaction, as each
 * rotation would take its own), so the AWSCURRENT values read next are the
 * ones each rotation would read itself; the reads go out concurrently, then
 * each secret rotates in its subtransaction with its value, which is zeroed
 * when the window is done.  Bounded windows bound the memory holding values.
 */
static void
rotate_due_windows(ReturnSetInfo *rsinfo, List *due)
{
	int			ndue = list_length(due);
	int			window = SM_BATCH_MAX * Max(1, sm_guc_max_concurrent_requests);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "secretsmgr rotate_due window",
											  ALLOCSET_DEFAULT_SIZES);

	for (int start = 0; start < ndue; start += window)
	{
		int			n = Min(window, ndue - start);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SmBatchItem *items = palloc0(sizeof(SmBatchItem) * n);
		SmAwsError *errs = palloc0(sizeof(SmAwsError) * n);

		for (int k = 0; k < n; k++)
		{
			SmManaged  *r = list_nth(due, start + k);

			items[k].secret_id = r->secret_arn ? r->secret_arn : r->secret_id;
			sm_registry_lock_key(items[k].secret_id);
		}
		sm_client_batch_get_secret_value_many(items, n, errs);
		MemoryContextSwitchTo(old);

		for (int k = 0; k < n; k++)
		{
			rotate_one(rsinfo, list_nth(due, start + k), &items[k], &errs[k]);
			if (items[k].found)
				sm_secret_value_scrub(&items[k].value);
		}
		/* the values are secret buffers: zeroed again as the context goes */
		MemoryContextReset(cxt);
	}
	MemoryContextDelete(cxt);
}

PG_FUNCTION_INFO_V1(secretsmgr_rotate_due);

/*
 * secretsmgr_rotate_due() -> TABLE(secret_id, status, version_id): rotate
 * every managed secret whose rotation_interval has elapsed since its last
 * successful rotation (or that was never rotated), most overdue first, each
 * in a subtransaction of its own so that one failure does not stop the
 * others.  Their AWSCURRENT values are read first, 20 a BatchGetSecretValue
 * call, several calls in flight (rotate_due_windows).  A failure is a
 * WARNING and a "failed" row here, and a history
 * row (via "scheduler") written by the rotation engine.  The stage moves of
 * the rotations that succeeded happen when the calling transaction commits.
 */
Datum
secretsmgr_rotate_due(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	List	   *rows;
	List	   *due = NIL;
	ListCell   *lc;

	sm_privilege_refuse_read_only("secretsmgr_rotate_due");

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	rows = sm_registry_managed();
	foreach(lc, rows)
	{
		SmManaged *r = lfirst(lc);
		TimestampTz next;

		if (!r->has_interval)
			continue;
		if (r->has_last)
		{
			next = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														   TimestampTzGetDatum(r->last_rotated),
														   IntervalPGetDatum(&r->rotation_interval)));
			if (next > now)
				continue;
		}
		due = lappend(due, r);
	}
	list_sort(due, most_overdue_first);
	rotate_due_windows(rsinfo, due);
	return (Datum) 0;
}
