/*
 * health.c
 *		The health report: configuration, credentials, the endpoint, and
 *		every managed secret.
 *
 * Every check runs in a subtransaction of its own and any error becomes a
 * FAIL row with the error's message and hint: the report never raises for
 * a failing check (a cancel, a statement timeout or a lost client still
 * ends it: sm_subxact_run re-raises those).  It reads secrets' metadata
 * and verifies AWSCURRENT against the role, but never returns or logs a
 * value.
 */
#include "postgres.h"

#include "smjson.h"

#include <sys/stat.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "backend.h"
#include "credentials.h"
#include "http.h"
#include "guard.h"
#include "health.h"
#include "registry.h"
#include "rotation.h"
#include "secretbuf.h"
#include "settings.h"
#include "smclient.h"
#include "stale.h"
#include "stats_shmem.h"

/* A managed secret, and what its "exists" check learnt from DescribeSecret. */
typedef struct SecretState
{
	SmManaged  *r;
	bool		described;
	char	   *current;		/* version holding AWSCURRENT */
	char	   *pending;		/* version holding AWSPENDING */
} SecretState;

/* The health report being built. */
typedef struct Health
{
	ReturnSetInfo *rsinfo;
} Health;

/* Add one row. */
static void
report(Health *h, const char *check, const char *status, const char *detail)
{
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = CStringGetTextDatum(check);
	values[1] = CStringGetTextDatum(status);
	values[2] = CStringGetTextDatum(detail);
	tuplestore_putvalues(h->rsinfo->setResult, h->rsinfo->setDesc, values, nulls);
}

typedef void (*CheckFn) (Health *h, const char *check, void *arg);

/*
 * The IAM statement whose absence an AWS access denial shows: our error
 * messages name the operation ("AWS denied <Operation> on secret ...").
 */
static char *
missing_statement(const ErrorData *ed, const char *arn)
{
	char		op[64];
	json_t	   *st;
	char	   *dump;
	char	   *result;

	if (ed->sqlerrcode != ERRCODE_INSUFFICIENT_PRIVILEGE || arn == NULL ||
		sscanf(ed->message, "AWS denied %63s on secret", op) != 1)
		return NULL;
	st = json_pack("{s:s, s:s, s:s}", "Effect", "Allow",
				   "Action", psprintf("secretsmanager:%s", op), "Resource", arn);
	dump = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(st);
	result = dump ? pstrdup(dump) : NULL;
	if (dump)
		sm_json_free_string(dump);
	return result;
}

/*
 * Run one check in a subtransaction; an error becomes a FAIL row with the
 * error's message, detail and hint (and, for an AWS access denial on the
 * secret arn, the policy statement that is missing).  NOTICEs of the check
 * are not sent.
 */
typedef struct CheckCall
{
	Health	   *h;
	const char *check;
	CheckFn		fn;
	void	   *arg;
} CheckCall;

/* Inside the subtransaction: the check, with its NOTICEs kept back. */
static void
check_call(void *arg)
{
	CheckCall  *c = arg;
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("client_min_messages", "warning", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	c->fn(c->h, c->check, c->arg);
	AtEOXact_GUC(true, nestlevel);
}

static void
run_check(Health *h, const char *check, CheckFn fn, void *arg, const char *arn)
{
	CheckCall	call = {h, check, fn, arg};
	ErrorData  *ed = sm_subxact_run(check_call, &call);
	StringInfoData buf;
	char	   *missing;

	if (ed == NULL)
		return;
	initStringInfo(&buf);
	appendStringInfoString(&buf, ed->message);
	if (ed->detail)
		appendStringInfo(&buf, " %s", ed->detail);
	if ((missing = missing_statement(ed, arn)) != NULL)
		appendStringInfo(&buf, " Missing IAM statement: %s", missing);
	if (ed->hint)
		appendStringInfo(&buf, " Hint: %s", ed->hint);
	report(h, check, "FAIL", buf.data);
	FreeErrorData(ed);
}

/* configuration: region, endpoint, TLS, proxy. */
static void
check_configuration(Health *h, const char *check, void *arg)
{
	const char *region = sm_region_get();
	const char *endpoint = sm_client_endpoint();
	bool		plain = strncmp(endpoint, "http://", 7) == 0;
	struct stat st;
	char	   *proxy;
	const char *proxy_var;
	const char *proxy_invalid;

	if (sm_guc_ca_file && sm_guc_ca_file[0] && stat(sm_guc_ca_file, &st) != 0)
	{
		report(h, check, "FAIL",
			   psprintf("\"secretsmgr.ca_file\" (%s) cannot be read: TLS verification will fail. Hint: fix the path or empty the setting to use the system's trust store.",
						sm_guc_ca_file));
		return;
	}
	proxy = sm_http_proxy_for(endpoint, &proxy_var, &proxy_invalid);
	if (proxy_invalid != NULL)
	{
		report(h, check, "FAIL",
			   psprintf("%s: requests to the endpoint will fail. Hint: set it to http://host:port (or https://) or unset it.",
						proxy_invalid));
		return;
	}
	report(h, check, plain ? "WARN" : "OK",
		   psprintf("region %s, endpoint %s%s%s", region, endpoint,
					plain ? " (plain HTTP, accepted on loopback only: a test set-up, not AWS)" :
					", TLS peer and host verified",
					proxy ? psprintf(", through the proxy %s of %s",
									 sm_http_url_redacted(proxy), proxy_var) : ""));
}

/* credentials: where they come from and when they expire. */
static void
check_credentials(Health *h, const char *check, void *arg)
{
	SmCredentials c;
	char	   *detail;

	sm_credentials_get(&c);
	if (c.expiration > 0)
		detail = psprintf("source %s, temporary credentials expiring in %ld min",
						  c.source, (long) (c.expiration - time(NULL)) / 60);
	else
		detail = psprintf("source %s, long-term keys", c.source);
	sm_credentials_free(&c);
	report(h, check, "OK", detail);
}

/* endpoint: one signed call; any AWS answer proves reachability. */
static void
check_endpoint(Health *h, const char *check, void *arg)
{
	json_t	   *req = json_pack("{s:i}", "PasswordLength", 16);
	SmAwsError	err;
	json_t	   *res = sm_client_try_call("GetRandomPassword", req, &err);

	if (res != NULL)
	{
		json_decref(res);
		report(h, check, "OK", "reachable, request signature accepted");
		return;
	}
	if (err.transport == SM_HTTP_OK && err.type &&
		(strcmp(err.type, "AccessDeniedException") == 0))
	{
		report(h, check, "WARN", "reachable, request signature accepted, but GetRandomPassword is denied: the IAM policy is not the one secretsmgr_iam_policy('database') generates. Hint: attach that policy to the database host's principal.");
		return;
	}
	sm_client_raise("GetRandomPassword", &err, NULL);
}

/* secret <id>: exists (and note which versions hold AWSCURRENT / AWSPENDING). */
static void
check_secret_exists(Health *h, const char *check, void *arg)
{
	SecretState *st = arg;
	SmManaged  *r = st->r;
	SmSecretDescription desc;
	const char *current;
	const char *pending;

	sm_client_describe(r->secret_arn ? r->secret_arn : r->secret_id, &desc);
	current = sm_description_holder(&desc, "AWSCURRENT");
	pending = sm_description_holder(&desc, "AWSPENDING");
	st->current = current ? pstrdup(current) : NULL;
	st->pending = pending ? pstrdup(pending) : NULL;
	st->described = true;
	if (desc.deleted)
		report(h, check, "FAIL", "the secret is scheduled for deletion. Hint: restore it (RestoreSecret) or unbind it with secretsmgr_unmanage().");
	else
		report(h, check, "OK", psprintf("exists, AWSCURRENT is version %s", st->current ? st->current : "(none)"));
}

/* secret <id>: AWSCURRENT logs in as the bound role. */
static void
check_secret_verifies(Health *h, const char *check, void *arg)
{
	SmManaged  *r = arg;

	if (sm_rotation_verify(r->secret_arn ? r->secret_arn : r->secret_id, "AWSCURRENT"))
		report(h, check, "OK", psprintf("logs in as role %s", r->role_name));
	else
		report(h, check, "FAIL", "the AWSCURRENT password does not log in as the bound role. Hint: SELECT secretsmgr_reconcile(...) repairs drift after a crash; see docs/rotation.md.");
}

/* secret <id>: no AWSPENDING left on a version that is not AWSCURRENT. */
static void
check_secret_pending(Health *h, const char *check, void *arg)
{
	SecretState *st = arg;

	if (st->pending && (st->current == NULL || strcmp(st->pending, st->current) != 0))
		report(h, check, "WARN", psprintf("version %s holds AWSPENDING but not AWSCURRENT: a rotation Lambda started and did not finish. Hint: let Secrets Manager retry the rotation, or remove the label with UpdateSecretVersionStage (RemoveFromVersionId).", st->pending));
	else
		report(h, check, "OK", "no unfinished rotation");
}

/* secret <id>: last successful rotation against rotation_interval. */
static void
check_secret_age(Health *h, const char *check, void *arg)
{
	SmManaged  *r = arg;
	char	   *interval;
	TimestampTz due;

	if (!r->has_interval)
	{
		report(h, check, "OK", r->has_last ?
			   psprintf("last rotated %s, no rotation interval", timestamptz_to_str(r->last_rotated)) :
			   "never rotated, no rotation interval");
		return;
	}
	interval = DatumGetCString(DirectFunctionCall1(interval_out,
												   IntervalPGetDatum(&r->rotation_interval)));
	if (!r->has_last)
	{
		report(h, check, "WARN", psprintf("never rotated, interval %s. Hint: SELECT secretsmgr_rotate(...) or schedule secretsmgr_rotate_due().", interval));
		return;
	}
	due = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												  TimestampTzGetDatum(r->last_rotated),
												  IntervalPGetDatum(&r->rotation_interval)));
	if (due < GetCurrentTransactionStartTimestamp())
		report(h, check, "WARN", psprintf("last rotated %s, interval %s: overdue. Hint: schedule secretsmgr_rotate_due().",
										 timestamptz_to_str(r->last_rotated), interval));
	else
		report(h, check, "OK", psprintf("last rotated %s, interval %s",
									   timestamptz_to_str(r->last_rotated), interval));
}

/*
 * secret <id>: version churn.  Secrets Manager keeps the 100 newest versions
 * plus every version of the last 24 hours; more than one new version per
 * ten minutes, sustained, runs into its version quota.
 */
static void
check_secret_versions(Health *h, const char *check, void *arg)
{
	SmManaged  *r = arg;
	int			total;
	int			recent;

	sm_client_count_versions(r->secret_arn ? r->secret_arn : r->secret_id,
							 (double) time(NULL) - 86400.0, &total, &recent);
	if (recent > 72)
		report(h, check, "WARN",
			   psprintf("%d versions, %d of them created in the last 24 hours: more than one every 20 minutes. Hint: rotate less often; Secrets Manager's version quota counts every version of the last 24 hours.",
						total, recent));
	else
		report(h, check, "OK", psprintf("%d versions, %d of them created in the last 24 hours", total, recent));
}

/* secret <id>: the clone role of an alternating binding exists and logs in. */
static void
check_secret_clone(Health *h, const char *check, void *arg)
{
	SmManaged  *r = arg;
	HeapTuple	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(r->clone_role));
	bool		canlogin;

	if (!HeapTupleIsValid(tup))
	{
		report(h, check, "FAIL", psprintf("role %s does not exist. Hint: run secretsmgr_manage(..., 'alternating') again to create it.", r->clone_role));
		return;
	}
	canlogin = ((Form_pg_authid) GETSTRUCT(tup))->rolcanlogin;
	ReleaseSysCache(tup);
	if (canlogin)
		report(h, check, "OK", psprintf("role %s exists and can log in", r->clone_role));
	else
		report(h, check, "FAIL", psprintf("role %s cannot log in. Hint: ALTER ROLE ... LOGIN.", r->clone_role));
}

/* The drift guard (guard.c), and stale clients of every managed secret (stale.c). */
static void
check_watch(Health *h, const char *check, void *arg)
{
	const char *status;
	char	   *detail;

	sm_guard_health(&status, &detail);
	report(h, check, status, detail);
	sm_stale_health(h->rsinfo);
}

/*
 * Add the report's rows (check_name, status, detail) to rsinfo's
 * tuplestore (set up by InitMaterializedSRF).
 */
void
sm_health_report(ReturnSetInfo *rsinfo)
{
	Health		h;
	List	   *rows = NIL;
	ListCell   *lc;

	h.rsinfo = rsinfo;

	run_check(&h, "configuration", check_configuration, NULL, NULL);
	run_check(&h, "credentials", check_credentials, NULL, NULL);
	run_check(&h, "endpoint", check_endpoint, NULL, NULL);
	{
		const char *status;
		char	   *detail;

		sm_cstats_health(&status, &detail);
		report(&h, "cluster statistics", status, detail);
	}

	rows = sm_registry_managed();
	if (rows == NIL)
		report(&h, "managed secrets", "OK", "none: secretsmgr_manage() binds a secret to a role");
	foreach(lc, rows)
	{
		SmManaged  *r = lfirst(lc);
		SecretState st = {r, false, NULL, NULL};

		run_check(&h, psprintf("secret %s: exists", r->secret_id), check_secret_exists, &st,
				  r->secret_arn);
		if (!st.described)
			continue;
		run_check(&h, psprintf("secret %s: AWSCURRENT verifies", r->secret_id),
				  check_secret_verifies, r, r->secret_arn);
		run_check(&h, psprintf("secret %s: no stale AWSPENDING", r->secret_id),
				  check_secret_pending, &st, NULL);
		run_check(&h, psprintf("secret %s: rotation age", r->secret_id),
				  check_secret_age, r, NULL);
		run_check(&h, psprintf("secret %s: version churn", r->secret_id),
				  check_secret_versions, r, r->secret_arn);
		if (r->clone_role)
			run_check(&h, psprintf("secret %s: clone role", r->secret_id),
					  check_secret_clone, r, NULL);
	}
	run_check(&h, "drift guard", check_watch, NULL, NULL);
}
