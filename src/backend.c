/*
 * backend.c
 *		What a long call needs from the backend: noticing a lost client, and
 *		running one item in a subtransaction without swallowing a cancel.
 *
 * Ground floor: calls nothing else of secretsmgr.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "backend.h"
#include "compat.h"

/*
 * From libpq/libpq.h, declared here because that header includes
 * libpq/libpq-be.h, which needs the GSSAPI headers of the server's build.
 */
extern bool pq_check_connection(void);

/* How often a long wait or loop looks at the client's socket. */
#define SM_CLIENT_CHECK_INTERVAL_MS 1000

/*
 * Has the client gone away?  The socket is polled (pq_check_connection, as
 * client_connection_check_interval does, whatever that setting is) at most
 * once a second, so a wait may call this every slice.  When the client is
 * gone, ClientConnectionLost and InterruptPending are set: the caller's next
 * CHECK_FOR_INTERRUPTS ends the session ("connection to client lost"), and
 * nothing more is sent to Secrets Manager for a client that cannot read
 * the answer.  Background workers have no client and always get false.
 */
bool
sm_backend_client_gone(void)
{
	static TimestampTz last_check = 0;
	TimestampTz now;

	if (ClientConnectionLost)
		return true;
	if (whereToSendOutput != DestRemote || AmBackgroundWorkerProcess() || IsParallelWorker())
		return false;
	now = GetCurrentTimestamp();
	if (last_check != 0 &&
		!TimestampDifferenceExceeds(last_check, now, SM_CLIENT_CHECK_INTERVAL_MS))
		return false;
	last_check = now;
	if (pq_check_connection())
		return false;
	ClientConnectionLost = true;
	InterruptPending = true;
	return true;
}

/* CHECK_FOR_INTERRUPTS, a lost client included: for per-item loops. */
void
sm_backend_check_interrupts(void)
{
	(void) sm_backend_client_gone();
	CHECK_FOR_INTERRUPTS();
}

/*
 * Must an error caught around one item end the whole statement instead?
 * Yes for what interrupt processing raises (query cancel, statement
 * timeout, terminate, a lost client, a recovery conflict), known by its
 * code or by the function that raised it, and after the client was found
 * gone: swallowing one would turn a cancel into a FAIL row and let the
 * statement go on.
 */
static bool
error_ends_statement(const ErrorData *edata)
{
	switch (edata->sqlerrcode)
	{
		case ERRCODE_QUERY_CANCELED:
		case ERRCODE_ADMIN_SHUTDOWN:
		case ERRCODE_CRASH_SHUTDOWN:
		case ERRCODE_CANNOT_CONNECT_NOW:
		case ERRCODE_DATABASE_DROPPED:
		case ERRCODE_IDLE_SESSION_TIMEOUT:
			return true;
		default:
			break;
	}
	if (edata->funcname != NULL &&
		(strcmp(edata->funcname, "ProcessInterrupts") == 0 ||
		 strcmp(edata->funcname, "ProcessRecoveryConflictInterrupt") == 0))
		return true;
	return ClientConnectionLost;
}

/*
 * Run fn(arg) in a subtransaction; the error it raised, or NULL.  An error
 * that must end the statement (see error_ends_statement) is re-raised once
 * the subtransaction is rolled back, and an interrupt that arrived while
 * the item failed otherwise is processed before its error is returned.
 */
ErrorData *
sm_subxact_run(void (*fn) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	sm_backend_check_interrupts();
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		if (error_ends_statement(edata))
		{
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			ReThrowError(edata);
		}
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	sm_backend_check_interrupts();
	return edata;
}

/*
 * Describe a one-shot worker of this library for this backend: it
 * connects to a database once recovery is over, is never restarted, and
 * gets main_arg (a dynamic shared memory handle).  function is the entry
 * point's name, what the worker does ("history writer", ...) its type.
 */
void
sm_backend_worker_describe(BackgroundWorker *w, const char *function,
						   const char *what, Datum main_arg, pid_t notify_pid)
{
	memset(w, 0, sizeof(*w));
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	w->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(w->bgw_library_name, BGW_MAXLEN, "secretsmgr");
	snprintf(w->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(w->bgw_name, BGW_MAXLEN, "secretsmgr %s for PID %d", what, MyProcPid);
	snprintf(w->bgw_type, BGW_MAXLEN, "secretsmgr %s", what);
	w->bgw_main_arg = main_arg;
	w->bgw_notify_pid = notify_pid;
}
