/*
 * rotation.c
 *		The rotation engine: secretsmgr_rotate, the Lambda's setSecret and
 *		testSecret steps, verify and reconcile.
 *
 * The contract (docs/rotation.md): secretsmgr_rotate makes two Secrets
 * Manager calls, and nothing about an unfinished rotation is visible in
 * Secrets Manager before the commit.
 *
 * 1. createSecret: GetSecretValue(AWSCURRENT), which decides the user and
 *    whose other fields pass into the new version; a new password from the
 *    CSPRNG (and, for "alternating", the other user); a fresh
 *    ClientRequestToken, which is the new VersionId.  Nothing is written.
 * 2. setSecret: ALTER ROLE with a SCRAM verifier built here.  The statement
 *    is a parse tree handed to ProcessUtility() with a redacted query
 *    string, so no SQL text, log line, hook or error context ever holds the
 *    password.
 * 3. testSecret: the new password checked against the verifier now in
 *    pg_authid (verify.c): pg_authid must hold exactly the verifier built
 *    from it in step 2, which proves it without a second PBKDF2.
 * 4. finishSecret: one PutSecretValue with VersionStages ["AWSCURRENT"]
 *    under that token, queued and performed in an XACT_EVENT_PRE_COMMIT
 *    callback (as postgres_fdw commits remote transactions); Secrets
 *    Manager moves AWSPREVIOUS itself.  Its retries send the same token and
 *    value, so a retry after a lost answer is a no-op success.  A failure
 *    there aborts the commit, so the role keeps its old password; a
 *    rollback leaves nothing at all in Secrets Manager.
 *
 * Invariant: after any failure at any point, either AWSCURRENT still logs in
 * as its role, or the next secretsmgr_rotate / secretsmgr_reconcile brings
 * them back together.  The one window where the new version is AWSCURRENT
 * but the commit did not happen (failure or crash between the pre-commit
 * callback and the commit record) leaves the role matching AWSPREVIOUS: a
 * failure hands the label to undo.c, which moves it back; after a crash
 * reconcile recognises it and applies AWSCURRENT.
 *
 * Two sessions rotating the same secret serialise on a transaction-level
 * advisory lock keyed on the secret's ARN (cluster-wide: roles are shared by
 * every database); different secrets rotate in parallel.
 *
 * Every operation runs in an internal subtransaction.  On error it is rolled
 * back, the failure is written to secretsmgr_rotation_history in a
 * transaction of its own (history.c), counted, logged, and re-raised: no
 * failure is silent, and none survives only in the server log.
 *
 * Passwords live only in secret buffers (zeroed when done, and when their
 * memory context goes away) and in jansson strings (scrubbed by the zeroing
 * allocator secretsmgr.c installs).  No message ever holds one.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "tcop/dest.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "cache.h"
#include "compat.h"
#include "events.h"
#include "guard.h"
#include "history.h"
#include "privilege.h"
#include "registry.h"
#include "rotation.h"
#include "scram.h"
#include "secretbuf.h"
#include "settings.h"
#include "smclient.h"
#include "stats.h"
#include "stats_shmem.h"
#include "undo.h"
#include "verify.h"

#define STAGE_CURRENT	"AWSCURRENT"
#define STAGE_PENDING	"AWSPENDING"
#define STAGE_PREVIOUS	"AWSPREVIOUS"

/* One rotation, Lambda step or reconcile, as history and stats see it. */
typedef struct SmOp
{
	const char *opname;			/* rotate, set_secret, ... (stats) */
	const char *fname;			/* SQL function, for messages */
	const char *via;			/* sql, lambda */
	const char *given_id;		/* secret id as the caller passed it */
	const char *token;			/* set_secret / test_secret */
	SmBinding	binding;
	const char *api_id;			/* what Secrets Manager is called with */
	TimestampTz started_at;
	char	   *executed_by;

	/* progress, read by the failure path */
	const char *step;
	char	   *role_name;
	char	   *new_version_id;
	char	   *previous_version_id;

	/* outcome */
	const char *status;
	char	   *result_text;
	bool		result_bool;
} SmOp;

typedef void (*SmOpBody) (SmOp *op);

/* The username and password of a secret version. */
typedef struct SmCreds
{
	char	   *username;
	char	   *password;		/* secret buffer */
} SmCreds;

/* Why a secret value cannot be used. */
typedef enum SmParseError
{
	SM_PARSE_OK = 0,
	SM_PARSE_BINARY,
	SM_PARSE_NOT_JSON,
	SM_PARSE_NO_USERNAME,
	SM_PARSE_NO_PASSWORD
} SmParseError;

/*
 * finishSecret's PutSecretValue, queued for pre-commit (in
 * TopTransactionContext; value and password in secret buffers, zeroed when
 * the put is done or dropped, and when the transaction ends).
 */
typedef struct SmPendingPut
{
	int			nest_level;
	char	   *api_id;
	char	   *secret_id;
	char	   *secret_arn;
	char	   *role_name;
	char	   *strategy;
	char	   *new_version_id;
	char	   *old_version_id;
	char	   *executed_by;
	const char *via;			/* static string: sql, scheduler */
	TimestampTz started_at;
	char	   *value;			/* the new version's JSON */
	char	   *password;		/* its password, for a second rotation of the
								 * secret in this transaction */
} SmPendingPut;

static List *pending_puts = NIL;
static List *performed_puts = NIL;	/* put at pre-commit, not yet committed */
static bool callbacks_registered = false;

/*
 * AWSCURRENT of the secret about to rotate, read beforehand with the other
 * due secrets' by secretsmgr_rotate_due (BatchGetSecretValue), and the
 * failure of the call that carried it; used by one rotation, then cleared.
 */
static const SmBatchItem *prefetched_current = NULL;
static const SmAwsError *prefetched_error = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

static void xact_callback(XactEvent event, void *arg);
static void subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg);

/* Milliseconds since start. */
static double
elapsed_ms(TimestampTz start)
{
	return (double) (GetCurrentTimestamp() - start) / 1000.0;
}

/*
 * Count an outcome as "opname:status" in secretsmgr_stats(), and of
 * secret_id in the cluster-wide statistics.
 */
static void
count_outcome(const char *opname, const char *status, TimestampTz start,
			  const char *secret_id)
{
	char		name[64];

	snprintf(name, sizeof(name), "%s:%s", opname, status);
	sm_stats_count(SM_STAT_ROTATION, name, elapsed_ms(start));
	if (strcmp(status, "noop") != 0)
		sm_cstats_rotation(secret_id, opname, strcmp(status, "succeeded") == 0);
}

/* The binding of the secret, or an error saying how to create one. */
static void
require_binding(const char *secret_id, SmBinding *b)
{
	if (!sm_registry_lookup(secret_id, b))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("secret \"%s\" is not managed by secretsmgr", secret_id),
				 errdetail("Only a secret registered with secretsmgr_manage() may change a role's password."),
				 errhint("Register it with secretsmgr_manage(secret_id, role_name).")));
}

/*
 * Serialise with every other rotation of this secret, in any database,
 * until the end of the transaction.
 */
static void
lock_secret(const SmBinding *b)
{
	sm_registry_lock_key(b->secret_arn ? b->secret_arn : b->secret_id);
}

/*
 * Take the secret's lock, then re-read the binding: it may have changed
 * while this session waited.
 */
static void
lock_and_refresh(SmOp *op)
{
	lock_secret(&op->binding);
	require_binding(op->binding.secret_id, &op->binding);
	op->api_id = op->binding.secret_arn ? op->binding.secret_arn : op->binding.secret_id;
}

/*
 * Username and password of a version's JSON, read by parse.c.  Nothing is
 * raised while its malloc'd copy is alive, so it is always zeroed and freed.
 */
static SmParseError
parse_creds(const SmSecretValue *v, SmCreds *out)
{
	SmParsedLogin login;
	SmLoginStatus st;
	SmParseError result = SM_PARSE_OK;

	out->username = NULL;
	out->password = NULL;
	if (v->secret_string == NULL)
		return SM_PARSE_BINARY;

	st = sm_parse_login(v->secret_string, strlen(v->secret_string), &login);
	switch (st)
	{
		case SM_LOGIN_OK:
			break;
		case SM_LOGIN_NOT_JSON:
			return SM_PARSE_NOT_JSON;
		case SM_LOGIN_NO_USERNAME:
			return SM_PARSE_NO_USERNAME;
		case SM_LOGIN_NO_PASSWORD:
			return SM_PARSE_NO_PASSWORD;
		case SM_LOGIN_NO_MEMORY:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
	}
	PG_TRY();
	{
		out->username = pstrdup(login.username);
		out->password = sm_secret_strndup(login.password, login.password_len);
	}
	PG_FINALLY();
	{
		sm_parsed_login_free(&login);
	}
	PG_END_TRY();
	return result;
}

/* As parse_creds, raising the error that says what is wrong. */
static void
require_creds(const SmOp *op, const SmSecretValue *v, SmCreds *out)
{
	const char *secret = op->binding.secret_id;
	const char *version = v->version_id ? v->version_id : "?";

	switch (parse_creds(v, out))
	{
		case SM_PARSE_OK:
			return;
		case SM_PARSE_BINARY:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("version \"%s\" of secret \"%s\" holds a binary value", version, secret),
					 errdetail("The value must be a SecretString holding a JSON object with \"username\" and \"password\"."),
					 errhint("Store the credentials as a JSON SecretString.")));
			break;
		case SM_PARSE_NOT_JSON:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("version \"%s\" of secret \"%s\" is not a JSON object", version, secret),
					 errdetail("The value must be a SecretString holding a JSON object with \"username\" and \"password\"."),
					 errhint("Store the credentials as a JSON object, as RDS does.")));
			break;
		case SM_PARSE_NO_USERNAME:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("version \"%s\" of secret \"%s\" has no \"username\" field", version, secret),
					 errdetail("The \"username\" field must be a non-empty JSON string."),
					 errhint("Add the bound role's name as \"username\".")));
			break;
		case SM_PARSE_NO_PASSWORD:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("version \"%s\" of secret \"%s\" has no \"password\" field", version, secret),
					 errdetail("The \"password\" field must be a non-empty JSON string."),
					 errhint("Add a \"password\" field to the secret.")));
			break;
	}
}

/* Is user one of the roles this binding may change? */
static bool
user_is_bound(const SmBinding *b, const char *user)
{
	return strcmp(user, b->role_name) == 0 ||
		(b->alternating && b->clone_role && strcmp(user, b->clone_role) == 0);
}

/* Refuse a version whose username is not a bound role. */
static void
require_bound_user(const SmOp *op, const SmSecretValue *v, const char *user)
{
	const SmBinding *b = &op->binding;

	if (user_is_bound(b, user))
		return;
	if (b->alternating)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("secret \"%s\" names role \"%s\", which is not bound to it",
						b->secret_id, user),
				 errdetail("Version \"%s\" has username \"%s\"; the secret is bound to roles \"%s\" and \"%s\".",
						   v->version_id, user, b->role_name, b->clone_role),
				 errhint("The secret's username never decides which role changes: correct the secret, or its binding with secretsmgr_manage().")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("secret \"%s\" names role \"%s\", which is not bound to it",
					b->secret_id, user),
			 errdetail("Version \"%s\" has username \"%s\"; the secret is bound to role \"%s\".",
					   v->version_id, user, b->role_name),
			 errhint("The secret's username never decides which role changes: correct the secret, or its binding with secretsmgr_manage().")));
}

/* A version read by ARN must belong to the bound secret. */
static void
require_same_secret(const SmOp *op, const SmSecretValue *v)
{
	const SmBinding *b = &op->binding;

	if (b->secret_arn && v->arn && strcmp(b->secret_arn, v->arn) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("version \"%s\" belongs to another secret than \"%s\"",
						v->version_id, b->secret_id),
				 errdetail("The version belongs to \"%s\"; the binding names \"%s\".",
						   v->arn, b->secret_arn),
				 errhint("Pass the ClientRequestToken of this secret's rotation, or register the secret again with secretsmgr_manage().")));
}

/* The role that a binding's new version goes to, given AWSCURRENT's user. */
static const char *
next_user(const SmBinding *b, const char *current_user_name)
{
	if (!b->alternating)
		return b->role_name;
	return strcmp(current_user_name, b->role_name) == 0 ? b->clone_role : b->role_name;
}

/*
 * Serialise with any other transaction changing or dropping role, until
 * this one ends: take the role's object lock (DROP ROLE holds it) and a row
 * lock on its pg_authid row (a concurrent ALTER ROLE holds that row until
 * it ends), waiting for such a transaction and then reading the row it
 * left.  Without this, ALTER ROLE after such a wait fails with PostgreSQL's
 * internal "tuple concurrently updated" or "deleted" (XX000); with it, the
 * rotation goes on from the committed state: a dropped role is reported as
 * missing, a password set by hand is replaced.  A role that does not exist
 * is left to the caller's check.
 */
static void
lock_role(const char *role)
{
	Oid			roleid = get_role_oid(role, true);
	Relation	rel;

	if (!OidIsValid(roleid))
		return;
	LockSharedObject(AuthIdRelationId, roleid, 0, RowExclusiveLock);

	rel = table_open(AuthIdRelationId, RowExclusiveLock);
	for (;;)
	{
		HeapTuple	tup;
		HeapTupleData locktup;
		Buffer		buf;
		TM_FailureData tmfd;
		TM_Result	res;

		CHECK_FOR_INTERRUPTS();
		tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(roleid));
		if (!HeapTupleIsValid(tup))
			break;				/* dropped meanwhile */
		locktup.t_self = tup->t_self;
		ReleaseSysCache(tup);

		res = heap_lock_tuple(rel, &locktup, GetCurrentCommandId(true),
							  LockTupleNoKeyExclusive, LockWaitBlock, false,
							  &buf, &tmfd);
		ReleaseBuffer(buf);
		if (res == TM_Ok || res == TM_SelfModified)
			break;
		if (res != TM_Updated && res != TM_Deleted)
			elog(ERROR, "could not lock the pg_authid row of role \"%s\": result %d",
				 role, (int) res);
		/* another transaction changed the role and committed: re-read it */
		AcceptInvalidationMessages();
	}
	table_close(rel, NoLock);
}

/*
 * The role must exist, log in and stay unprivileged before it changes.
 * Locks it first (lock_role), so the checks see what any concurrent change
 * of the role left.
 */
static void
require_usable_role(const char *role)
{
	SmVerifyResult r;

	lock_role(role);
	r = sm_verify_role_usable(role);

	if (r == SM_VERIFY_NO_ROLE)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", role),
				 errhint("Create the role, or register the secret again with secretsmgr_manage().")));
	if (r == SM_VERIFY_CANNOT_LOGIN)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("role \"%s\" cannot log in", role),
				 errdetail("A new password would not let anyone log in as this role."),
				 errhint("Run ALTER ROLE %s LOGIN first.", quote_identifier(role))));
	if (r == SM_VERIFY_EXPIRED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("role \"%s\" has passed its VALID UNTIL time", role),
				 errdetail("A new password would not let anyone log in as this role."),
				 errhint("Run ALTER ROLE %s VALID UNTIL 'infinity' (or a later time) first.",
						 quote_identifier(role))));
	sm_registry_check_unprivileged(role);
}

/*
 * ALTER ROLE role PASSWORD '<SCRAM verifier built here>', run through
 * ProcessUtility() so audit hooks see it, with a redacted query string (as
 * the extension's own statement, which the drift guard lets pass).
 * The plain password never reaches any SQL text.  Returns the verifier, in
 * a secret buffer, for require_verified.
 */
static char *
set_role_password(const char *role, const char *password)
{
	char	   *verifier;
	AlterRoleStmt *stmt;
	RoleSpec   *spec;
	PlannedStmt *pstmt;
	char	   *query;

	verifier = sm_scram_build_secret(password);

	spec = makeNode(RoleSpec);
	spec->roletype = ROLESPEC_CSTRING;
	spec->rolename = pstrdup(role);
	spec->location = -1;

	stmt = makeNode(AlterRoleStmt);
	stmt->role = spec;
	stmt->options = list_make1(makeDefElem("password", (Node *) makeString(verifier), -1));
	stmt->action = +1;

	pstmt = makeNode(PlannedStmt);
	pstmt->commandType = CMD_UTILITY;
	pstmt->canSetTag = false;
	pstmt->utilityStmt = (Node *) stmt;
	pstmt->stmt_location = -1;
	pstmt->stmt_len = 0;

	query = psprintf("ALTER ROLE %s PASSWORD '<redacted>'", quote_identifier(role));

	sm_guard_run_own(pstmt, query, role);
	CommandCounterIncrement();

	return verifier;
}

/*
 * The password must now log in as role, or the step failed.  verifier is
 * what set_role_password built from it (zeroed here).
 */
static void
require_verified(const SmOp *op, const char *role, const char *password,
				 char *verifier)
{
	SmVerifyResult r = sm_verify_built_password(role, password, verifier);

	sm_secure_zero(verifier, strlen(verifier));

	if (r != SM_VERIFY_OK)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the new password of role \"%s\" does not verify", role),
				 errdetail("After ALTER ROLE, %s.", sm_verify_describe(r, role)),
				 errhint("Check for a check_password_hook or an event that changed the role in this transaction.")));
}

/*
 * The new version's JSON: AWSCURRENT's, with only "password" (and, for
 * "alternating", "username") replaced; engine, host, port, dbname and any
 * other field pass through untouched.  Returned in a secret buffer.
 */
static char *
build_new_value(const SmOp *op, const char *current_json, const char *user,
				const char *password)
{
	size_t		len;
	char	   *built;
	char	   *volatile buf = NULL;

	built = sm_parse_login_replace(current_json, strlen(current_json),
								   op->binding.alternating ? user : NULL,
								   password, &len);
	if (built == NULL)
		elog(ERROR, "could not build the new value of secret \"%s\"", op->binding.secret_id);
	PG_TRY();
	{
		buf = sm_secret_strndup(built, len);
	}
	PG_FINALLY();
	{
		sm_secure_zero(built, len);
		free(built);
	}
	PG_END_TRY();
	return buf;
}

/*
 * A token that GetSecretValue did not find: say why, from DescribeSecret
 * (no such version, not AWSPENDING, or a placeholder createSecret never
 * filled).
 */
pg_noreturn static void explain_missing_token(const SmOp *op, bool want_pending);

static void
explain_missing_token(const SmOp *op, bool want_pending)
{
	SmSecretDescription desc;
	const SmVersionStages *stages;
	bool		exists;
	bool		pending;

	sm_client_describe(op->api_id, &desc);
	stages = sm_description_version(&desc, op->token);
	exists = stages != NULL;
	pending = exists && sm_stages_have(stages->stages, stages->nstages, STAGE_PENDING);

	if (!exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("secret \"%s\" has no version \"%s\"", op->binding.secret_id, op->token),
				 errdetail("The client request token names no version of this secret; it may belong to another secret."),
				 errhint("Pass the ClientRequestToken of this secret's rotation; the createSecret step creates the version.")));
	if (want_pending && !pending)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("version \"%s\" of secret \"%s\" is not labelled AWSPENDING",
						op->token, op->binding.secret_id),
				 errdetail("setSecret applies only the pending version of a rotation."),
				 errhint("Start a new rotation; its createSecret step labels the new version AWSPENDING.")));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("version \"%s\" of secret \"%s\" has no value", op->token, op->binding.secret_id),
			 errdetail("The version exists as a placeholder, but createSecret has not stored a value in it."),
			 errhint("Run the rotation's createSecret step (PutSecretValue with this token and AWSPENDING) first.")));
}

/* Drop every cached value of the secret in this backend. */
static void
invalidate_cached(const char *given_id, const char *secret_id, const char *arn)
{
	sm_cache_invalidate(secret_id);
	if (arn)
		sm_cache_invalidate(arn);
	if (given_id && strcmp(given_id, secret_id) != 0)
		sm_cache_invalidate(given_id);
}

/* A history row describing op (status and error filled by the caller). */
static SmHistoryRow
op_row(const SmOp *op, const char *status)
{
	SmHistoryRow row;

	memset(&row, 0, sizeof(row));
	row.secret_id = op->binding.secret_id ? op->binding.secret_id : op->given_id;
	row.role_name = op->role_name;
	row.new_version_id = op->new_version_id;
	row.previous_version_id = op->previous_version_id;
	row.strategy = op->binding.strategy;
	row.step = op->step;
	row.status = status;
	row.via = op->via;
	row.started_at = op->started_at;
	row.finished_at = GetCurrentTimestamp();
	row.executed_by = op->executed_by;
	return row;
}

/*
 * A failure: write its history row in a transaction of its own, count it,
 * log it.  The caller re-raises.
 */
static void
record_failure(const SmHistoryRow *row, const ErrorData *edata,
			   const char *opname, TimestampTz started_at)
{
	SmHistoryRow r = *row;

	r.status = "failed";
	r.sqlstate = unpack_sql_state(edata->sqlerrcode);
	r.error = edata->message;
	r.finished_at = GetCurrentTimestamp();

	(void) sm_history_insert_autonomous(&r);
	count_outcome(opname, "failed", started_at, r.secret_id);
	ereport(LOG,
			(errmsg("secretsmgr: %s of secret \"%s\" failed at step %s: %s",
					opname, r.secret_id, r.step, edata->message),
			 errhidestmt(true)));
}

/*
 * Run body in an internal subtransaction (the PL/pgSQL exception-block
 * pattern).  On error: roll the subtransaction back, record the failure so
 * it outlives the caller's transaction, and re-raise.
 */
static void
run_recorded(SmOp *op, SmOpBody body)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);

	PG_TRY();
	{
		body(op);

		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		SmHistoryRow row;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;

		row = op_row(op, "failed");
		record_failure(&row, edata, op->opname, op->started_at);
		ReThrowError(edata);
	}
	PG_END_TRY();
}

/* Common start of every operation: who, when, which binding. */
static SmOp *
op_begin(const char *opname, const char *fname, const char *via,
		 const char *secret_id, const char *first_step)
{
	SmOp	   *op = palloc0(sizeof(SmOp));

	op->opname = opname;
	op->fname = fname;
	op->via = via;
	op->given_id = secret_id;
	op->started_at = GetCurrentTimestamp();
	op->executed_by = GetUserNameFromId(GetUserId(), false);
	op->step = first_step;
	require_binding(secret_id, &op->binding);
	op->api_id = op->binding.secret_arn ? op->binding.secret_arn : op->binding.secret_id;
	return op;
}

/*
 * An error reported while labels moved by this transaction wait for its
 * commit is why that commit failed (a serialization failure, say): keep it
 * for the history rows of the rotations whose labels move back.
 */
static void
note_commit_error(ErrorData *edata)
{
	if (performed_puts != NIL && edata->elevel >= ERROR)
		sm_undo_set_reason(edata->sqlerrcode, edata->message);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* Register the transaction callbacks, once per backend. */
static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = note_commit_error;
	callbacks_registered = true;
}

/*
 * Queue finishSecret's PutSecretValue of value (new_version's JSON, holding
 * password) for pre-commit.
 */
static void
queue_put(const SmOp *op, const char *new_version, const char *old_version,
		  const char *value, const char *password)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	SmPendingPut *m = palloc0(sizeof(SmPendingPut));

	register_callbacks();
	m->nest_level = GetCurrentTransactionNestLevel();
	m->api_id = pstrdup(op->api_id);
	m->secret_id = pstrdup(op->binding.secret_id);
	m->secret_arn = op->binding.secret_arn ? pstrdup(op->binding.secret_arn) : NULL;
	m->role_name = pstrdup(op->role_name);
	m->strategy = pstrdup(op->binding.strategy);
	m->new_version_id = pstrdup(new_version);
	m->old_version_id = pstrdup(old_version);
	m->executed_by = pstrdup(op->executed_by);
	m->via = op->via;
	m->started_at = op->started_at;
	m->value = sm_secret_strdup(value);
	m->password = sm_secret_strdup(password);
	pending_puts = lappend(pending_puts, m);
	MemoryContextSwitchTo(old);
}

/* Zero the secrets of a queued put that is done or dropped. */
static void
scrub_put(SmPendingPut *m)
{
	if (m->value)
		sm_secure_zero(m->value, strlen(m->value));
	if (m->password)
		sm_secure_zero(m->password, strlen(m->password));
	m->value = NULL;
	m->password = NULL;
}

/*
 * The put this transaction already queued for the secret, if it still
 * stands (a rolled-back savepoint drops its puts): a second rotation of the
 * secret in the same transaction reuses its version.
 */
static SmPendingPut *
queued_put(const char *api_id)
{
	SmPendingPut *found = NULL;
	ListCell   *lc;

	foreach(lc, pending_puts)
	{
		SmPendingPut *m = lfirst(lc);

		if (strcmp(m->api_id, api_id) == 0 && m->password != NULL)
			found = m;
	}
	return found;
}

/* Was the same put (secret, version) already performed in this list? */
static bool
already_moved(List *moves, int upto, const SmPendingPut *m)
{
	for (int i = 0; i < upto; i++)
	{
		SmPendingPut *o = list_nth(moves, i);

		if (strcmp(o->api_id, m->api_id) == 0 &&
			strcmp(o->new_version_id, m->new_version_id) == 0)
			return true;
	}
	return false;
}

/* Record that queued put m failed with edata (the row outlives the abort). */
static void
record_put_failure(const SmPendingPut *m, ErrorData *edata)
{
	SmHistoryRow row;

	memset(&row, 0, sizeof(row));
	row.secret_id = m->secret_id;
	row.role_name = m->role_name;
	row.new_version_id = m->new_version_id;
	row.previous_version_id = m->old_version_id;
	row.strategy = m->strategy;
	row.step = "finishSecret";
	row.via = m->via;
	row.started_at = m->started_at;
	row.executed_by = m->executed_by;
	record_failure(&row, edata, "rotate", m->started_at);
}

/*
 * One queued put: the new version, made AWSCURRENT, under the rotation's
 * token (every retry sends the same token and value, so a retry whose
 * first attempt landed is answered as a success and changes nothing).  An
 * error is recorded (it must outlive the aborting transaction) and
 * re-raised, which aborts the commit.
 */
static void
put_version(SmPendingPut *m)
{
	MemoryContext ctx = CurrentMemoryContext;
	static const char *const stages[1] = {STAGE_CURRENT};

	PG_TRY();
	{
		(void) sm_client_put_secret_value(m->api_id, m->new_version_id,
										  m->value, stages, 1);
		scrub_put(m);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		FlushErrorState();
		scrub_put(m);
		pending_puts = NIL;
		sm_undo_set_reason(edata->sqlerrcode,
						   psprintf("the PutSecretValue of secret \"%s\" failed: %s",
									m->secret_id, edata->message));
		record_put_failure(m, edata);
		ReThrowError(edata);
	}
	PG_END_TRY();
}

/*
 * A put of a concurrent round failed with err: raise it as a single put's
 * failure would be, record it, and return the error data (the caller
 * re-raises the first one once every answer is accounted for).
 */
static ErrorData *
put_failed(SmPendingPut *m, const SmAwsError *err)
{
	MemoryContext ctx = CurrentMemoryContext;
	ErrorData  *edata = NULL;

	PG_TRY();
	{
		sm_client_raise("PutSecretValue", err, m->secret_id);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		FlushErrorState();
		scrub_put(m);
		record_put_failure(m, edata);
	}
	PG_END_TRY();
	return edata;
}

/* Put m: it is AWSCURRENT now, and undo.c moves it back if we abort. */
static void
put_performed(int i, SmPendingPut *m)
{
	MemoryContext old;

	sm_undo_performed(i);
	old = MemoryContextSwitchTo(TopTransactionContext);
	performed_puts = lappend(performed_puts, m);
	MemoryContextSwitchTo(old);

	/* Cached AWSCURRENT / AWSPENDING values of this secret are stale. */
	invalidate_cached(NULL, m->secret_id, m->secret_arn);
}

/*
 * The puts of several secrets (secretsmgr_rotate_due, or several
 * rotations in one transaction), sent concurrently through
 * sm_client_call_many: each is idempotent under its token, as that
 * function requires.  Every answer is accounted for before anything is
 * raised, so each version that did become AWSCURRENT is handed to undo.c;
 * then the first failure is raised, which aborts the commit.
 */
static void
perform_puts_concurrently(List *moves)
{
	int			n = list_length(moves);
	SmPutRequest *puts = palloc0(sizeof(SmPutRequest) * n);
	bool	   *ok = palloc0(sizeof(bool) * n);
	SmAwsError *errs = palloc0(sizeof(SmAwsError) * n);
	int		   *which = palloc(sizeof(int) * n);
	int			nreq = 0;
	ErrorData  *first = NULL;
	const char *first_secret = NULL;

	for (int i = 0; i < n; i++)
	{
		SmPendingPut *m = list_nth(moves, i);

		if (already_moved(moves, i, m))
			continue;
		/*
		 * Sent means maybe put: a cancel ends the wait with answers unread,
		 * and the worker then looks at each secret before moving it back.
		 */
		sm_undo_performed(i);
		which[nreq] = i;
		puts[nreq].secret_id = m->api_id;
		puts[nreq].client_request_token = m->new_version_id;
		puts[nreq].secret_string = m->value;
		puts[nreq].stage = STAGE_CURRENT;
		nreq++;
	}
	sm_client_put_secret_value_many(puts, nreq, ok, errs);

	for (int k = 0; k < nreq; k++)
	{
		SmPendingPut *m = list_nth(moves, which[k]);

		if (ok[k])
		{
			scrub_put(m);
			put_performed(which[k], m);
		}
		else
		{
			ErrorData  *edata;

			/* refused by Secrets Manager: nothing to move back */
			if (errs[k].transport == SM_HTTP_OK && errs[k].http_status >= 400 &&
				errs[k].http_status < 500)
				sm_undo_not_performed(which[k]);
			edata = put_failed(m, &errs[k]);
			if (first == NULL)
			{
				first = edata;
				first_secret = m->secret_id;
			}
		}
	}
	if (first != NULL)
	{
		for (int i = 0; i < n; i++)
			scrub_put(list_nth(moves, i));
		pending_puts = NIL;
		sm_undo_set_reason(first->sqlerrcode,
						   psprintf("the PutSecretValue of secret \"%s\" failed: %s",
									first_secret, first->message));
		ReThrowError(first);
	}
}

/*
 * Pre-commit: put the new version of every queued rotation as AWSCURRENT
 * (one put alone, several concurrently).  An error aborts the commit, so
 * the roles keep their old passwords.  If
 * the commit fails after some versions were put (a later put, a
 * serialization failure), the abort hands them to undo.c, prepared here,
 * to move AWSCURRENT back.  A rotation counts as succeeded once its
 * transaction has committed.
 */
static void
perform_puts(void)
{
	List	   *moves = pending_puts;
	int			n = list_length(moves);
	SmUndoMove *undo = palloc0(sizeof(SmUndoMove) * n);

	for (int i = 0; i < n; i++)
	{
		SmPendingPut *m = list_nth(moves, i);

		undo[i].api_id = m->api_id;
		undo[i].secret_id = m->secret_id;
		undo[i].lock_key = m->secret_arn ? m->secret_arn : m->secret_id;
		undo[i].role_name = m->role_name;
		undo[i].strategy = m->strategy;
		undo[i].new_version_id = m->new_version_id;
		undo[i].old_version_id = m->old_version_id;
		undo[i].executed_by = m->executed_by;
		undo[i].via = m->via;
		undo[i].started_at = m->started_at;
	}
	sm_undo_prepare(undo, n);

	/* several secrets: their puts in flight together */
	if (n > 1)
	{
		perform_puts_concurrently(moves);
		pending_puts = NIL;
		return;
	}
	for (int i = 0; i < n; i++)
	{
		SmPendingPut *m = list_nth(moves, i);

		if (already_moved(moves, i, m))
			continue;
		put_version(m);
		put_performed(i, m);
	}
	pending_puts = NIL;
}

/*
 * Transaction end after labels moved (must not raise).  Committed: the
 * rotations succeeded.  Aborted: they failed; undo.c moves the labels back
 * and records each rotation as failed.
 */
static void
end_performed_puts(bool committed)
{
	ListCell   *lc;

	foreach(lc, performed_puts)
	{
		SmPendingPut *m = lfirst(lc);

		count_outcome("rotate", committed ? "succeeded" : "failed", m->started_at,
					  m->secret_id);
		if (!committed)
			ereport(LOG,
					(errmsg("secretsmgr: the transaction that rotated secret \"%s\" did not commit after AWSCURRENT moved to version \"%s\"; moving it back to version \"%s\"",
							m->secret_id, m->new_version_id, m->old_version_id),
					 errhidestmt(true)));
	}
	performed_puts = NIL;
	(void) sm_undo_finish(committed);
}

/* Transaction end: perform the moves at pre-commit, forget them after. */
static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (pending_puts != NIL)
				perform_puts();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (pending_puts != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that rotated a secret"),
						 errdetail("The new version's PutSecretValue cannot wait for COMMIT PREPARED."),
						 errhint("Rotate in a transaction that commits directly.")));
			break;
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
			/* must not raise; the lists' memory goes with the transaction */
			pending_puts = NIL;
			end_performed_puts(event == XACT_EVENT_COMMIT);
			break;
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			pending_puts = NIL;
			break;
	}
}

/*
 * Subtransaction end: a rolled-back savepoint drops its queued moves; a
 * released one hands them to its parent.
 */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level;
	ListCell   *lc;

	if (pending_puts == NIL)
		return;
	level = GetCurrentTransactionNestLevel();

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, pending_puts)
		{
			SmPendingPut *m = lfirst(lc);

			if (m->nest_level >= level)
			{
				scrub_put(m);
				pending_puts = foreach_delete_current(pending_puts, lc);
			}
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_puts)
		{
			SmPendingPut *m = lfirst(lc);

			if (m->nest_level >= level)
				m->nest_level = level - 1;
		}
	}
}

/*
 * Read AWSCURRENT of op's secret into *cur: the value prefetched for it, if
 * any, else GetSecretValue.  A prefetch was taken under the rotation lock
 * (secretsmgr_rotate_due locks first), so it is what a read now would give.
 * An error the batch answered for this secret, or the failure of its whole
 * call, is raised as the single read's would be; a secret the answer did
 * not mention is read alone.
 */
static void
read_current(SmOp *op, SmSecretValue *cur)
{
	const SmBatchItem *item = prefetched_current;
	const SmAwsError *err = prefetched_error;

	prefetched_current = NULL;
	prefetched_error = NULL;
	if (item != NULL && strcmp(item->secret_id, op->api_id) == 0)
	{
		SmAwsError	e;

		if (item->found)
		{
			sm_secret_value_copy(cur, &item->value);
			return;
		}
		if (err != NULL && err->type != NULL)
			sm_client_raise("BatchGetSecretValue", err, op->api_id);
		if (item->error_code != NULL && strcmp(item->error_code, "NotReturned") != 0)
		{
			memset(&e, 0, sizeof(e));
			e.transport = SM_HTTP_OK;
			e.http_status = 200;
			e.type = item->error_code;
			e.request_id = (err != NULL && err->request_id) ? err->request_id : "";
			e.attempts = 1;
			sm_client_raise_get_secret_value(&e, op->api_id, STAGE_CURRENT, NULL);
		}
	}
	sm_client_get_secret_value(op->api_id, STAGE_CURRENT, NULL, false, cur);
}

/*
 * secretsmgr_rotate: createSecret (read AWSCURRENT, make the new value, write
 * nothing), setSecret and testSecret now; finishSecret's PutSecretValue
 * queued for pre-commit.
 */
static void
rotate_body(SmOp *op)
{
	SmSecretValue cur;
	SmCreds		curc;
	SmPendingPut *queued;
	const char *new_user;
	char	   *new_password;
	char	   *new_version;
	char	   *value = NULL;
	char	   *verifier;

	op->step = "createSecret";
	lock_and_refresh(op);

	/* AWSCURRENT decides which user gets the new password. */
	read_current(op, &cur);
	require_same_secret(op, &cur);
	require_creds(op, &cur, &curc);
	require_bound_user(op, &cur, curc.username);
	sm_secure_zero(curc.password, strlen(curc.password));

	new_user = next_user(&op->binding, curc.username);
	op->role_name = pstrdup(new_user);
	op->previous_version_id = pstrdup(cur.version_id);
	require_usable_role(new_user);

	/*
	 * Rotated already in this transaction, from the same AWSCURRENT: the
	 * same new version, put once.
	 */
	queued = queued_put(op->api_id);
	if (queued != NULL &&
		strcmp(queued->old_version_id, cur.version_id) == 0 &&
		strcmp(queued->role_name, new_user) == 0)
	{
		new_password = queued->password;
		new_version = pstrdup(queued->new_version_id);
	}
	else
	{
		queued = NULL;
		new_password = sm_rotation_generate_password(sm_guc_password_length,
													 sm_guc_password_exclude_characters);
		new_version = sm_rotation_new_token();
		value = build_new_value(op, cur.secret_string, new_user, new_password);
	}
	op->new_version_id = pstrdup(new_version);

	op->step = "setSecret";
	verifier = set_role_password(new_user, new_password);

	op->step = "testSecret";
	require_verified(op, new_user, new_password, verifier);

	op->step = "finishSecret";
	if (queued == NULL)
	{
		queue_put(op, new_version, cur.version_id, value, new_password);
		sm_secure_zero(value, strlen(value));
		sm_secure_zero(new_password, strlen(new_password));
	}
	sm_secret_value_scrub(&cur);
	invalidate_cached(op->given_id, op->binding.secret_id, op->binding.secret_arn);

	op->status = "succeeded";
	{
		SmHistoryRow row = op_row(op, "succeeded");

		(void) sm_history_insert(&row);
		sm_events_rotation(&row);
	}
	op->result_text = new_version;
}

/*
 * The whole rotation of secret_id; returns the new VersionId.  via is what
 * history records as the caller: "sql" or "scheduler" (a static string).
 */
char *
sm_rotation_rotate(const char *secret_id, const char *via)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext cxt;
	SmOp	   *op;
	char	   *version;

	/*
	 * Everything the rotation allocates (the values read, the verifier,
	 * registry reads, ALTER ROLE's own work) goes when it returns, secret
	 * buffers zeroed: secretsmgr_rotate_due() calls this once per due
	 * secret within one function call.  On error the context is left to the
	 * caller's, which ends with the statement.
	 */
	cxt = AllocSetContextCreate(caller, "secretsmgr rotation", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);

	op = op_begin("rotate", "secretsmgr_rotate", via, secret_id, "createSecret");
	sm_privilege_refuse_read_only(op->fname);
	run_recorded(op, rotate_body);
	/* counted as succeeded once its transaction has committed */

	MemoryContextSwitchTo(caller);
	version = pstrdup(op->result_text);
	MemoryContextDelete(cxt);
	return version;
}

/*
 * sm_rotation_rotate for secretsmgr_rotate_due, with AWSCURRENT already
 * read (current, and err for the call that carried it; see read_current).
 */
char *
sm_rotation_rotate_prefetched(const char *secret_id, const char *via,
							  const SmBatchItem *current, const SmAwsError *err)
{
	char	   *volatile version = NULL;

	prefetched_current = current;
	prefetched_error = err;
	PG_TRY();
	{
		version = sm_rotation_rotate(secret_id, via);
	}
	PG_FINALLY();
	{
		prefetched_current = NULL;
		prefetched_error = NULL;
	}
	PG_END_TRY();
	return version;
}

/*
 * The Lambda's setSecret: apply the AWSPENDING version named by the token.
 * Idempotent: when the role already has that password, nothing changes.
 * The stage move is the Lambda's finishSecret, not ours.
 */
static void
set_secret_body(SmOp *op)
{
	SmSecretValue pend;
	SmSecretValue cur;
	SmCreds		pendc;
	SmCreds		curc;
	SmVerifyResult r;

	lock_and_refresh(op);

	if (!sm_client_get_secret_value(op->api_id, STAGE_PENDING, op->token, true, &pend))
		explain_missing_token(op, true);
	require_same_secret(op, &pend);
	require_creds(op, &pend, &pendc);
	require_bound_user(op, &pend, pendc.username);
	op->role_name = pstrdup(pendc.username);
	op->new_version_id = pstrdup(pend.version_id);

	/* Compare with AWSCURRENT: the alternating user must be the other one. */
	sm_client_get_secret_value(op->api_id, STAGE_CURRENT, NULL, false, &cur);
	op->previous_version_id = pstrdup(cur.version_id);
	if (strcmp(cur.version_id, pend.version_id) != 0 && op->binding.alternating)
	{
		require_creds(op, &cur, &curc);
		sm_secure_zero(curc.password, strlen(curc.password));
		if (strcmp(curc.username, pendc.username) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("pending version \"%s\" of secret \"%s\" names the same user as AWSCURRENT",
							pend.version_id, op->binding.secret_id),
					 errdetail("With the \"alternating\" strategy the pending version must name \"%s\", the user not in AWSCURRENT.",
							   next_user(&op->binding, curc.username)),
					 errhint("Let createSecret write the other user's name into the pending version.")));
	}
	sm_secret_value_scrub(&cur);

	r = sm_verify_password(pendc.username, pendc.password);
	if (r == SM_VERIFY_OK)
	{
		/* finishSecret would still publish a privileged role's password */
		sm_registry_check_unprivileged(pendc.username);
		ereport(NOTICE,
				(errmsg("role \"%s\" already has the password of version \"%s\"; nothing to do",
						pendc.username, pend.version_id)));
		op->status = "noop";
	}
	else
	{
		char	   *verifier;

		require_usable_role(pendc.username);
		verifier = set_role_password(pendc.username, pendc.password);
		require_verified(op, pendc.username, pendc.password, verifier);
		op->status = "succeeded";
		invalidate_cached(op->given_id, op->binding.secret_id, op->binding.secret_arn);
	}
	sm_secure_zero(pendc.password, strlen(pendc.password));
	sm_secret_value_scrub(&pend);

	{
		SmHistoryRow row = op_row(op, op->status);

		(void) sm_history_insert(&row);
		if (strcmp(op->status, "succeeded") == 0)
			sm_events_rotation(&row);
	}
}

/* The Lambda's setSecret step. */
void
sm_rotation_set_secret(const char *secret_id, const char *token)
{
	SmOp	   *op;

	op = op_begin("set_secret", "secretsmgr_set_secret", "lambda", secret_id, "setSecret");
	op->token = token;
	op->new_version_id = pstrdup(token);
	sm_privilege_refuse_read_only(op->fname);
	run_recorded(op, set_secret_body);
	count_outcome(op->opname, op->status, op->started_at, op->binding.secret_id);
}

/* The Lambda's testSecret: does the version named by token log in? */
static void
test_secret_body(SmOp *op)
{
	SmSecretValue v;
	SmCreds		c;
	SmVerifyResult r;
	SmHistoryRow row;

	if (!sm_client_get_secret_value(op->api_id, NULL, op->token, true, &v))
		explain_missing_token(op, false);
	require_same_secret(op, &v);
	require_creds(op, &v, &c);
	require_bound_user(op, &v, c.username);
	op->role_name = pstrdup(c.username);
	op->new_version_id = pstrdup(v.version_id);

	r = sm_verify_password(c.username, c.password);
	sm_secure_zero(c.password, strlen(c.password));
	sm_secret_value_scrub(&v);

	op->result_bool = (r == SM_VERIFY_OK);
	op->status = op->result_bool ? "succeeded" : "failed";
	row = op_row(op, op->status);
	if (!op->result_bool)
	{
		char	   *why = sm_verify_describe(r, c.username);

		ereport(NOTICE,
				(errmsg("version \"%s\" of secret \"%s\" does not log in: %s",
						op->token, op->binding.secret_id, why)));
		row.error = why;
	}
	(void) sm_history_insert(&row);
}

/* The Lambda's testSecret step. */
bool
sm_rotation_test_secret(const char *secret_id, const char *token)
{
	SmOp	   *op;

	op = op_begin("test_secret", "secretsmgr_test_secret", "lambda", secret_id, "testSecret");
	op->token = token;
	op->new_version_id = pstrdup(token);
	run_recorded(op, test_secret_body);
	count_outcome(op->opname, op->status, op->started_at, op->binding.secret_id);
	return op->result_bool;
}

/*
 * Does the version with version_stage log in as a bound role?  False, with
 * a NOTICE giving the reason, when it does not.  Writes nothing, so it
 * works on a standby.
 */
bool
sm_rotation_verify(const char *secret_id, const char *version_stage)
{
	SmOp	   *op;
	SmSecretValue v;
	SmCreds		c;
	SmVerifyResult r;

	op = op_begin("verify", "secretsmgr_verify", "sql", secret_id, "testSecret");

	if (!sm_client_get_secret_value(op->api_id, version_stage, NULL, true, &v))
	{
		/* Every secret has AWSCURRENT: without it the secret itself is gone. */
		if (strcmp(version_stage, STAGE_CURRENT) == 0)
		{
			SmSecretDescription gone;

			sm_client_describe(op->api_id, &gone);
		}
		ereport(NOTICE,
				(errmsg("secret \"%s\" has no version labelled \"%s\"",
						op->binding.secret_id, version_stage)));
		return false;
	}
	require_same_secret(op, &v);
	require_creds(op, &v, &c);
	sm_secret_value_scrub(&v);
	if (!user_is_bound(&op->binding, c.username))
	{
		sm_secure_zero(c.password, strlen(c.password));
		ereport(NOTICE,
				(errmsg("version \"%s\" of secret \"%s\" names role \"%s\", which is not bound to the secret",
						version_stage, op->binding.secret_id, c.username)));
		return false;
	}

	r = sm_verify_password(c.username, c.password);
	sm_secure_zero(c.password, strlen(c.password));

	if (r != SM_VERIFY_OK)
	{
		ereport(NOTICE,
				(errmsg("version \"%s\" of secret \"%s\" does not log in: %s",
						version_stage, op->binding.secret_id,
						sm_verify_describe(r, c.username))));
		return false;
	}
	return true;
}

/*
 * Does role's password match the version of the bound secret with stage
 * (or version_id), other than skip_version, and does that version name
 * role?  Then it becomes op->previous_version_id.  A version naming the
 * other bound user whose password it matches goes to *other_version.
 */
static bool
version_matches_role(SmOp *op, const char *stage, const char *version_id,
					 const char *skip_version, const char *role,
					 char **other_version)
{
	SmSecretValue v;
	SmCreds		c;
	bool		result = false;

	if (!sm_client_get_secret_value(op->api_id, stage, version_id, true, &v))
		return false;
	if (strcmp(v.version_id, skip_version) != 0 &&
		(!op->binding.secret_arn || !v.arn || strcmp(v.arn, op->binding.secret_arn) == 0) &&
		parse_creds(&v, &c) == SM_PARSE_OK)
	{
		if (user_is_bound(&op->binding, c.username) &&
			SM_VERIFY_PASSWORD_MATCHED(sm_verify_password(c.username, c.password)))
		{
			if (strcmp(c.username, role) == 0)
			{
				result = true;
				op->previous_version_id = pstrdup(v.version_id);
			}
			else if (other_version != NULL && *other_version == NULL)
				*other_version = pstrdup(v.version_id);
		}
		sm_secure_zero(c.password, strlen(c.password));
	}
	sm_secret_value_scrub(&v);
	return result;
}

/*
 * Reconcile: when AWSCURRENT does not log in, but its role's password is
 * one a version of the secret gave it (AWSPENDING or AWSPREVIOUS naming
 * that role, or the version secretsmgr last set for it: a crash between
 * the stage move and the commit, or a hand edit of the secret), set the
 * role to AWSCURRENT's password.  Otherwise someone changed the password
 * outside secretsmgr: refuse rather than overwrite it.  Under "alternating"
 * a match of the other user is no such proof; only a role that never had
 * a password may then be set.
 */
static void
reconcile_body(SmOp *op)
{
	static const char *const others[] = {STAGE_PENDING, STAGE_PREVIOUS};
	SmSecretValue cur;
	SmCreds		curc;
	SmVerifyResult r;
	const char *matched = NULL;
	char	   *other_version = NULL;
	bool		no_password = false;

	lock_and_refresh(op);

	sm_client_get_secret_value(op->api_id, STAGE_CURRENT, NULL, false, &cur);
	require_same_secret(op, &cur);
	require_creds(op, &cur, &curc);
	require_bound_user(op, &cur, curc.username);
	op->role_name = pstrdup(curc.username);
	op->new_version_id = pstrdup(cur.version_id);

	r = sm_verify_password(curc.username, curc.password);
	if (r == SM_VERIFY_OK)
	{
		ereport(NOTICE,
				(errmsg("role \"%s\" already has the password of AWSCURRENT of secret \"%s\"; nothing to do",
						curc.username, op->binding.secret_id)));
		op->status = "noop";
	}
	else
	{
		char	   *verifier;

		if (r == SM_VERIFY_NO_ROLE || SM_VERIFY_PASSWORD_MATCHED(r))
			require_usable_role(curc.username);

		/*
		 * Is the password the role has one a version of the secret gave it?
		 * Only a version naming that same role can say so: under
		 * "alternating" AWSPREVIOUS names the other user, and its match
		 * says nothing about this role's password.
		 */
		for (int i = 0; i < lengthof(others) && matched == NULL; i++)
		{
			if (version_matches_role(op, others[i], NULL, cur.version_id,
									 curc.username, &other_version))
				matched = others[i];
		}

		/*
		 * Under "alternating" the role's own previous version carries no
		 * label: it is the version secretsmgr last gave it (history).  A
		 * role that never had a password has none to lose once the other
		 * user's version proves the label moved.
		 */
		if (matched == NULL)
		{
			char	   *last = sm_history_last_version(op->binding.secret_id,
													   curc.username);

			if (last != NULL &&
				version_matches_role(op, NULL, last, cur.version_id,
									 curc.username, NULL))
				matched = "the version secretsmgr last set for it";
		}
		if (matched == NULL && op->binding.alternating && other_version &&
			r == SM_VERIFY_NO_PASSWORD)
		{
			no_password = true;
			matched = "no version";
			op->previous_version_id = other_version;
		}

		if (matched == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no version of secret \"%s\" matches the password of its roles",
							op->binding.secret_id),
					 errdetail("AWSCURRENT does not log in (%s), and no version of the secret naming role \"%s\" matches its password: it was changed outside secretsmgr, so reconcile will not overwrite it.",
							   sm_verify_describe(r, curc.username), curc.username),
					 errhint("Store the role's password in the secret as AWSCURRENT, or run secretsmgr_rotate() to give the role a new password.")));

		require_usable_role(curc.username);
		verifier = set_role_password(curc.username, curc.password);
		require_verified(op, curc.username, curc.password, verifier);
		ereport(NOTICE,
				(errmsg("set the password of role \"%s\" to AWSCURRENT of secret \"%s\"",
						curc.username, op->binding.secret_id),
				 no_password ?
				 errdetail("The role had no password, and version \"%s\" logs in as the other user.",
						   op->previous_version_id) :
				 errdetail("The password in pg_authid matched %s, version \"%s\".", matched,
						   op->previous_version_id)));
		op->status = "succeeded";
		invalidate_cached(op->given_id, op->binding.secret_id, op->binding.secret_arn);
	}
	sm_secure_zero(curc.password, strlen(curc.password));
	sm_secret_value_scrub(&cur);

	{
		SmHistoryRow row = op_row(op, op->status);

		(void) sm_history_insert(&row);
		if (strcmp(op->status, "succeeded") == 0)
			sm_events_rotation(&row);
	}
	op->result_text = op->new_version_id;
}

/* Reconcile the role with AWSCURRENT; returns AWSCURRENT's VersionId. */
char *
sm_rotation_reconcile(const char *secret_id)
{
	SmOp	   *op;

	op = op_begin("reconcile", "secretsmgr_reconcile", "sql", secret_id, "reconcile");
	sm_privilege_refuse_read_only(op->fname);
	run_recorded(op, reconcile_body);
	count_outcome(op->opname, op->status, op->started_at, op->binding.secret_id);
	return op->result_text;
}

/*
 * Random bytes from the CSPRNG, or an error: a password must never come
 * from a weaker source.
 */
static void
strong_random(void *buf, size_t len)
{
	if (!pg_strong_random(buf, len))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
}

/*
 * A password of length characters drawn uniformly from the allowed
 * alphabet (rejection sampling: no modulo bias), regenerated until it holds
 * at least one character of every class that has any allowed character
 * (which keeps the result uniform over the acceptable passwords).
 */
char *
sm_rotation_generate_password(int length, const char *exclude)
{
	static const char *const classes[] = {
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"abcdefghijklmnopqrstuvwxyz",
		"0123456789",
		"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
	};
	char		alphabet[128];
	int			class_of[128];
	int			nalpha = 0;
	int			nclasses = 0;
	bool		class_used[lengthof(classes)];
	char	   *pw;
	unsigned char rnd[256];

	if (exclude == NULL)
		exclude = "";
	for (int c = 0; c < lengthof(classes); c++)
	{
		class_used[c] = false;
		for (const char *p = classes[c]; *p; p++)
		{
			if (strchr(exclude, *p) != NULL)
				continue;
			if (!class_used[c])
				nclasses++;
			class_used[c] = true;
			alphabet[nalpha] = *p;
			class_of[nalpha] = c;
			nalpha++;
		}
	}

	if (nalpha == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"secretsmgr.password_exclude_characters\" excludes every character"),
				 errhint("Exclude fewer characters.")));
	if (length < nclasses)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"secretsmgr.password_length\" must be at least %d", nclasses),
				 errdetail("A password holds at least one character of each allowed class.")));

	pw = sm_secret_alloc(length + 1);
	for (;;)
	{
		bool		seen[lengthof(classes)] = {false};
		int			limit = 256 - (256 % nalpha);
		int			filled = 0;
		bool		complete = true;

		while (filled < length)
		{
			strong_random(rnd, sizeof(rnd));
			for (int i = 0; i < (int) sizeof(rnd) && filled < length; i++)
			{
				if (rnd[i] >= limit)
					continue;
				pw[filled] = alphabet[rnd[i] % nalpha];
				seen[class_of[rnd[i] % nalpha]] = true;
				filled++;
			}
		}
		pw[length] = '\0';

		for (int c = 0; c < lengthof(classes); c++)
			if (class_used[c] && !seen[c])
				complete = false;
		if (complete)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	sm_secure_zero(rnd, sizeof(rnd));
	return pw;
}

/* A random (version 4) UUID from the CSPRNG. */
char *
sm_rotation_new_token(void)
{
	uint8		b[16];

	strong_random(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	return psprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
					b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
					b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}
