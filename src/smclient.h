/*
 * smclient.h
 *		Secrets Manager JSON 1.1 client, retries and the AWS error map.
 */
#ifndef SECRETSMGR_SMCLIENT_H
#define SECRETSMGR_SMCLIENT_H

#include "postgres.h"

#include "compat.h"
#include "http.h"
#include "parse.h"

/*
 * jansson's value type, declared without <jansson.h> so that this header
 * mixes with utils/builtins.h; files that call jansson include smjson.h.
 */
typedef struct json_t json_t;

/* What a failed call left behind (all strings palloc'd; never a body). */
typedef struct SmAwsError
{
	SmHttpStatus transport;		/* SM_HTTP_OK when an HTTP response came */
	long		http_status;
	char	   *type;			/* AWS error type, e.g. "ThrottlingException";
								 * "HttpError" / "ConnectionError" / "Timeout" /
								 * "ResponseTooLarge" / "MalformedResponse" */
	char	   *message;		/* AWS's message, sanitised, or NULL */
	char	   *request_id;		/* x-amzn-requestid or "" */
	int			attempts;
} SmAwsError;

/* A secret version (strings palloc'd; the value in a secret buffer). */
typedef struct SmSecretValue
{
	char	   *arn;
	char	   *name;
	char	   *version_id;
	char	   *secret_string;	/* NULL when the secret is binary */
	char	   *secret_binary;	/* decoded bytes, or NULL */
	size_t		binary_len;
	char	  **stages;
	int			nstages;
	double		created_date;	/* epoch seconds */
	char	   *jsonb;			/* the value as a jsonb varlena, when it is
								 * JSON (set by the read path before caching;
								 * a secret buffer), else NULL */
	size_t		jsonb_len;
} SmSecretValue;

/* Who calls an operation: the database host's principal, the rotation Lambda. */
#define SM_NEED_DATABASE	0x01
#define SM_NEED_LAMBDA		0x02
#define SM_NEED_READ		0x04	/* reading or binding a secret not yet
									 * managed */

/*
 * One Secrets Manager operation: who needs it, whether IAM scopes it to the
 * secret's ARN (else its resource is "*"), and what Secrets Manager asks KMS
 * on the caller's behalf when the secret has a customer-managed key.
 * sm_client_try_call() calls only operations of this table, and
 * secretsmgr_iam_policy() is built from it, so the policy cannot miss an
 * operation the client uses.
 */
typedef struct SmOperation
{
	const char *name;			/* "GetSecretValue" */
	int			needed_by;		/* SM_NEED_* bits */
	bool		secret_scoped;	/* the resource is the secret's ARN */
	const char *kms_action;		/* "kms:Decrypt", ... or NULL */
} SmOperation;

extern const SmOperation sm_operations[];
extern const int sm_noperations;

/*
 * Call operation with request (stolen: freed here, whatever happens, so the
 * caller needs no PG_TRY around the call), retrying throttling, 5xx and
 * transport errors up to secretsmgr.max_attempts with full-jitter backoff
 * that sleeps on the latch.  Returns the parsed response (caller json_decref)
 * or NULL with *err filled.  Interrupts are raised, never returned.
 */
extern json_t *sm_client_try_call(const char *operation, json_t *request, SmAwsError *err);

/* As sm_client_try_call (request stolen), but raises the mapped error on failure. */
extern json_t *sm_client_call(const char *operation, json_t *request, const char *secret_id);

/*
 * Call operation once for each of requests[0..n-1] (not stolen),
 * concurrently: at most secretsmgr.max_concurrent_requests in flight
 * (sm_http_perform_many).  The contract, for every caller:
 *
 * - results[i] is the parsed response to requests[i] (caller json_decref),
 *   or NULL with errs[i] filled exactly as sm_client_try_call fills it;
 *   a failed request never hides the others' results, and no failure is
 *   raised: the caller decides per request (sm_client_raise).
 * - Every attempt is signed afresh; throttling, HTTP 5xx, connection errors
 *   and timeouts are retried up to secretsmgr.max_attempts, the failed
 *   requests of one round together after one full-jitter backoff on the
 *   latch; an expired session token renews the credentials once.  A request
 *   whose answer was lost may so reach Secrets Manager twice: use it only
 *   for operations that are idempotent as sent (reads; puts under a
 *   ClientRequestToken).
 * - A cancel, statement_timeout, terminate or lost client is raised at once
 *   from the wait, in flight or in the backoff, with every transfer
 *   detached and its buffers zeroed; nothing is returned then.
 * - Counted in secretsmgr_stats() as n calls of operation.
 */
extern void sm_client_call_many(const char *operation, json_t *const *requests, int n,
								json_t **results, SmAwsError *errs);

/* One PutSecretValue of sm_client_put_secret_value_many. */
typedef struct SmPutRequest
{
	const char *secret_id;
	const char *client_request_token;	/* the new version's id */
	const char *secret_string;
	const char *stage;			/* the one label it gets, e.g. AWSCURRENT */
} SmPutRequest;

/*
 * PutSecretValue of puts[0..n-1], concurrently (sm_client_call_many, whose
 * contract holds: idempotent under each token, interrupts raised at once):
 * ok[i] is true when puts[i] succeeded, else errs[i] says why (raise it with
 * sm_client_raise).  The requests, which hold the values, are zeroed.
 */
extern void sm_client_put_secret_value_many(const SmPutRequest *puts, int n, bool *ok,
											SmAwsError *errs);

/*
 * Raise err as a PostgreSQL error: SQLSTATE, message, detail (AWS type and
 * request id) and hint from the error map.  secret_id names the secret in the
 * message (may be NULL).
 */
pg_noreturn extern void sm_client_raise(const char *operation, const SmAwsError *err,
										 const char *secret_id);

/*
 * sm_client_raise for a failed GetSecretValue of version_stage and
 * version_id (either may be NULL): a version id asked for with a stage it
 * does not hold is reported as such (42704), whichever error type the
 * implementation used.
 */
pg_noreturn extern void sm_client_raise_get_secret_value(const SmAwsError *err, const char *secret_id,
											 const char *version_stage,
											 const char *version_id);

/*
 * Is err transient (throttling, HTTP 5xx, connection error, timeout), the
 * kind worth retrying or riding out with a stale cached value?
 */
extern bool sm_client_error_is_transient(const SmAwsError *err);

/* Is this AWS error type ResourceNotFoundException? */
extern bool sm_client_error_is_not_found(const SmAwsError *err);

/*
 * GetSecretValue.  version_stage and version_id may each be NULL (at least
 * one is sent; AWSCURRENT when both are NULL).  When missing_ok and the
 * version does not exist, returns false; other failures raise.
 */
extern bool sm_client_get_secret_value(const char *secret_id, const char *version_stage,
									   const char *version_id, bool missing_ok,
									   SmSecretValue *out);

/* As sm_client_get_secret_value, but a failed call returns false with *err. */
extern bool sm_client_try_get_secret_value(const char *secret_id, const char *version_stage,
										   const char *version_id, SmSecretValue *out,
										   SmAwsError *err);

/* One requested id of a BatchGetSecretValue call and what came back for it. */
typedef struct SmBatchItem
{
	const char *secret_id;		/* as requested */
	bool		found;
	SmSecretValue value;		/* when found */
	char	   *error_code;		/* AWS ErrorCode when not found, else NULL */
} SmBatchItem;

/* Most ids one BatchGetSecretValue call takes. */
#define SM_BATCH_MAX 20

/*
 * BatchGetSecretValue of items[0..n-1].secret_id (n <= SM_BATCH_MAX): the
 * AWSCURRENT versions.  Per-secret failures land in the items; a failure of
 * the whole call returns false with *err.
 */
extern bool sm_client_batch_get_secret_value(SmBatchItem *items, int n, SmAwsError *err);

/*
 * BatchGetSecretValue of items[0..n-1].secret_id, any n: SM_BATCH_MAX ids a
 * call, the calls through sm_client_call_many.  Per-secret failures land in
 * the items (error_code); when the call that carried items[k] failed as a
 * whole, errs[k] says why (errs[k].type NULL otherwise).  Raises only an
 * interrupt or out of memory.
 */
extern void sm_client_batch_get_secret_value_many(SmBatchItem *items, int n, SmAwsError *errs);

/* Deep copy / scrub of an SmSecretValue (copy lands in CurrentMemoryContext). */
extern void sm_secret_value_copy(SmSecretValue *dst, const SmSecretValue *src);
extern void sm_secret_value_scrub(SmSecretValue *v);

/* Does v carry the staging label stage? */
extern bool sm_secret_value_has_stage(const SmSecretValue *v, const char *stage);

/* DescribeSecret: the parsed response (caller json_decref). */
extern json_t *sm_client_describe_secret(const char *secret_id);

/*
 * DescribeSecret, typed by parse.c and copied into CurrentMemoryContext.
 * Raises the mapped error when the call fails.
 */
extern void sm_client_describe(const char *secret_id, SmSecretDescription *out);

/*
 * The guard every paginated call goes through: given the NextToken of the
 * page just read (bad_token when parse.c found it malformed), true to fetch
 * the page of pager->token, false when the list is complete.  Raises on a
 * malformed or repeated token and past the pager's page cap.
 */
extern bool sm_client_next_page(SmPager *pager, const char *operation,
								const char *token, bool bad_token,
								const char *secret_id);

/*
 * PutSecretValue of secret_string under client_request_token with the given
 * stages (NULL/0 = AWS default, i.e. AWSCURRENT).  Returns the VersionId.
 */
extern char *sm_client_put_secret_value(const char *secret_id, const char *client_request_token,
										const char *secret_string,
										const char *const *stages, int nstages);

/*
 * UpdateSecretVersionStage: move stage to move_to (may be NULL) and off
 * remove_from (may be NULL).
 */
extern void sm_client_update_secret_version_stage(const char *secret_id, const char *stage,
												  const char *move_to, const char *remove_from);

/*
 * ListSecretVersionIds (deprecated versions included), every page: how many
 * versions the secret has, and how many were created at or after since
 * (epoch seconds).
 */
extern void sm_client_count_versions(const char *secret_id, double since,
									 int *total, int *recent);

/* The endpoint URL in use (secretsmgr.endpoint, env overrides, or AWS's), without its userinfo. */
extern const char *sm_client_endpoint(void);

/* Check a secret id / stage / version id argument, raising 22023 when bad. */
extern void sm_client_check_secret_id(const char *secret_id);
extern void sm_client_check_version_stage(const char *stage);
extern void sm_client_check_version_id(const char *version_id);

#endif							/* SECRETSMGR_SMCLIENT_H */
