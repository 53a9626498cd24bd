/*
 * secretsmgr.h
 *		Settings and counters shared by every secretsmgr module.
 *
 * The settings are defined in secretsmgr.c (_PG_init).  The counters are
 * backend-local: secretsmgr_stats() reports what this backend has done.
 */
#ifndef SECRETSMGR_H
#define SECRETSMGR_H

#include "postgres.h"

/* Largest response body accepted from any endpoint (a value is <= 64 KiB). */
#define SM_MAX_RESPONSE_BYTES	(1024 * 1024)

/* Settings (secretsmgr.*) */
extern char *sm_guc_region;
extern char *sm_guc_endpoint;
extern char *sm_guc_access_key_id;
extern char *sm_guc_secret_access_key;
extern char *sm_guc_session_token;
extern char *sm_guc_profile;
extern char *sm_guc_ca_file;
extern char *sm_guc_password_exclude_characters;
extern char *sm_guc_preload;
extern int	sm_guc_connect_timeout_ms;
extern int	sm_guc_request_timeout_ms;
extern int	sm_guc_max_attempts;
extern int	sm_guc_max_concurrent_requests;
extern int	sm_guc_retry_base_delay_ms;
extern int	sm_guc_cache_ttl_s;
extern int	sm_guc_cache_max_entries;
extern int	sm_guc_cache_max_stale_s;
extern int	sm_guc_cache_pending_ttl_s;
extern int	sm_guc_password_length;
extern bool sm_guc_allow_privileged_roles;

/* Counters, reported by secretsmgr_stats() */
typedef enum SmStatKind
{
	SM_STAT_API_CALL,			/* name = operation; total_ms = latency */
	SM_STAT_API_ERROR,			/* name = "Operation:ErrorType" */
	SM_STAT_RETRY,				/* name = operation */
	SM_STAT_CACHE,				/* name = hit, miss, expired, evicted, invalidated */
	SM_STAT_ROTATION			/* name = "step:status", e.g. rotate:failed */
} SmStatKind;

extern void sm_stats_count(SmStatKind kind, const char *name, double ms);

/*
 * Run fn(arg) in an internal subtransaction.  NULL when it returned; when it
 * raised, the subtransaction is rolled back and the error is returned (in
 * the caller's memory context) instead of propagated, unless it must end
 * the statement: a query cancel, statement timeout, terminate, lost client
 * or anything else interrupt processing raised is re-raised at once.
 */
extern struct ErrorData *sm_subxact_run(void (*fn) (void *arg), void *arg);

/*
 * Has the client gone away (socket polled at most once a second)?  When it
 * has, the next CHECK_FOR_INTERRUPTS ends the session.
 */
extern bool sm_backend_client_gone(void);

/* CHECK_FOR_INTERRUPTS, noticing a lost client too. */
extern void sm_backend_check_interrupts(void);

/* Free a string returned by json_dumps (jansson blocks are zeroed on free). */
extern void sm_json_free_string(char *s);

/* Zero a buffer that held a secret (not optimised away). */
extern void sm_secure_zero(void *p, size_t len);

/*
 * Buffers that hold a secret: allocated in CurrentMemoryContext and zeroed
 * when that context is reset or deleted (a reset callback), so an error that
 * unwinds the call still scrubs them.  Zero early with sm_secure_zero when
 * done; never pfree them by hand (the callback still points at them).
 */
extern char *sm_secret_alloc(size_t len);
extern char *sm_secret_strdup(const char *s);
extern char *sm_secret_strndup(const char *s, size_t len);

#endif							/* SECRETSMGR_H */
