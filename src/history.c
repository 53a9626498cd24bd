/*
 * history.c
 *		secretsmgr_rotation_history: what every rotation did, failures
 *		included.
 *
 * A successful step is recorded in the caller's transaction: if the caller
 * rolls back, the rotation did not happen and neither does its row.
 *
 * A failure must outlive the transaction it aborts (a server log line alone
 * is not enough).  PostgreSQL has no autonomous transactions, so the row is
 * handed to a short-lived dynamic background worker through a pinned DSM
 * segment; the worker connects to this database as the extension owner
 * with search_path pinned to pg_catalog, pg_temp for its whole life (the
 * database's default search_path is whatever its owner set), inserts the
 * row in a transaction of its own and exits, and the caller
 * waits (bounded) for it to finish.  Dynamic workers need no
 * shared_preload_libraries, only a free max_worker_processes slot; without
 * one the failure is still logged and counted, with a WARNING.
 *
 * Rows never hold a password: the error text is one of our own messages or
 * PostgreSQL's, and neither ever carries a secret.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "backend.h"
#include "extension.h"
#include "history.h"
#include "runas.h"
#include "secretbuf.h"

/* How long a caller waits for the history worker. */
#define SM_HISTORY_WAIT_MS		10000

/* Longest error text kept in a row (bytes). */
#define SM_HISTORY_MAX_ERROR	2000

#define SM_HISTORY_NFIELDS		11

/* The row as it travels through DSM: fixed header, then the strings. */
typedef struct SmHistoryShared
{
	Oid			dboid;
	Oid			owner;
	TimestampTz started_at;
	TimestampTz finished_at;
	int32		offsets[SM_HISTORY_NFIELDS];	/* into data; -1 = NULL */
	char		data[FLEXIBLE_ARRAY_MEMBER];
} SmHistoryShared;

/* The string fields of a row, in column order. */
static void
row_fields(const SmHistoryRow *row, const char **f)
{
	f[0] = row->secret_id;
	f[1] = row->role_name;
	f[2] = row->new_version_id;
	f[3] = row->previous_version_id;
	f[4] = row->strategy;
	f[5] = row->step;
	f[6] = row->status;
	f[7] = row->via;
	f[8] = row->executed_by;
	f[9] = row->sqlstate;
	f[10] = row->error;
}

/* The error text, clipped to a sane size on a character boundary. */
static const char *
clip_error(const char *error)
{
	int			len;

	if (error == NULL)
		return NULL;
	len = strlen(error);
	if (len <= SM_HISTORY_MAX_ERROR)
		return error;
	len = pg_mbcliplen(error, len, SM_HISTORY_MAX_ERROR);
	return pnstrdup(error, len);
}

/*
 * INSERT the row through SPI (connected, as the extension owner): typed
 * parameters into the schema-qualified table, no operator or function.
 */
static void
insert_row_spi(const SmHistoryRow *row)
{
	const char *f[SM_HISTORY_NFIELDS];
	Oid			argtypes[SM_HISTORY_NFIELDS + 2];
	Datum		values[SM_HISTORY_NFIELDS + 2];
	char		nulls[SM_HISTORY_NFIELDS + 2];
	char	   *sql;
	int			rc;

	row_fields(row, f);
	f[10] = clip_error(f[10]);
	for (int i = 0; i < SM_HISTORY_NFIELDS; i++)
	{
		argtypes[i] = TEXTOID;
		values[i] = f[i] ? CStringGetTextDatum(f[i]) : (Datum) 0;
		nulls[i] = f[i] ? ' ' : 'n';
	}
	argtypes[11] = TIMESTAMPTZOID;
	values[11] = TimestampTzGetDatum(row->started_at);
	nulls[11] = ' ';
	argtypes[12] = TIMESTAMPTZOID;
	values[12] = TimestampTzGetDatum(row->finished_at);
	nulls[12] = ' ';

	sql = psprintf("INSERT INTO %s.secretsmgr_rotation_history"
				   " (secret_id, role_name, new_version_id, previous_version_id,"
				   "  strategy, step, status, via, executed_by, sqlstate, error,"
				   "  started_at, finished_at)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
				   sm_extension_schema_quoted());
	rc = SPI_execute_with_args(sql, SM_HISTORY_NFIELDS + 2, argtypes, values,
							   nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
}

/* Under sm_runas_owner: INSERT the row through SPI. */
static void
insert_row_owner(void *arg)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	insert_row_spi((const SmHistoryRow *) arg);
	SPI_finish();
}

/* Insert row in the current transaction, as the extension owner. */
bool
sm_history_insert(const SmHistoryRow *row)
{
	if (RecoveryInProgress() || XactReadOnly)
		return false;

	sm_runas_owner(insert_row_owner, (void *) row);
	return true;
}

/* sm_history_last_version's query and its answer. */
typedef struct LastVersionCall
{
	const char *sql;
	Datum		values[2];
	MemoryContext cxt;			/* where the answer is copied */
	char	   *result;
} LastVersionCall;

/* Under sm_runas_owner: run the last-version query through SPI. */
static void
last_version_owner(void *arg)
{
	LastVersionCall *call = arg;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(call->sql, 2, argtypes, call->values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read secretsmgr_rotation_history");
	if (SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (v != NULL)
			call->result = MemoryContextStrdup(call->cxt, v);
	}
	SPI_finish();
}

/*
 * The version secretsmgr last gave role_name's password from secret_id (a
 * succeeded setSecret, finishSecret or reconcile row), or NULL.  Read as
 * the extension owner, in the caller's snapshot.
 */
char *
sm_history_last_version(const char *secret_id, const char *role_name)
{
	LastVersionCall call;

	call.sql = psprintf("SELECT h.new_version_id FROM %s.secretsmgr_rotation_history h"
						" WHERE h.secret_id OPERATOR(pg_catalog.=) $1"
						"   AND h.role_name::pg_catalog.text OPERATOR(pg_catalog.=) $2"
						"   AND h.status OPERATOR(pg_catalog.=) 'succeeded'"
						"   AND h.step OPERATOR(pg_catalog.=) ANY ('{setSecret,finishSecret,reconcile}'::pg_catalog.text[])"
						"   AND h.new_version_id IS NOT NULL"
						" ORDER BY h.id DESC LIMIT 1",
						sm_extension_schema_quoted());
	call.values[0] = CStringGetTextDatum(secret_id);
	call.values[1] = CStringGetTextDatum(role_name);
	call.cxt = CurrentMemoryContext;
	call.result = NULL;
	sm_runas_owner(last_version_owner, &call);
	return call.result;
}

/* sm_history_last_rotated's query and its answer. */
typedef struct LastRotatedCall
{
	const char *sql;
	Datum		secret_id;
	bool		found;
	TimestampTz result;
} LastRotatedCall;

/* Under sm_runas_owner: run the last-rotated query through SPI. */
static void
last_rotated_owner(void *arg)
{
	LastRotatedCall *call = arg;
	Oid			argtypes[1] = {TEXTOID};
	bool		isnull;
	Datum		d;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(call->sql, 1, argtypes, &call->secret_id, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read secretsmgr_rotation_history");
	if (SPI_processed == 1)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
		{
			call->found = true;
			call->result = DatumGetTimestampTz(d);
		}
	}
	SPI_finish();
}

/*
 * When secret_id (its registered id) last rotated successfully: the latest
 * finished_at of its succeeded finishSecret, setSecret or reconcile rows.
 * False when there is none.  Read as the extension owner.
 */
bool
sm_history_last_rotated(const char *secret_id, TimestampTz *when)
{
	LastRotatedCall call;

	call.sql = psprintf("SELECT pg_catalog.max(h.finished_at)"
						"  FROM %s.secretsmgr_rotation_history h"
						" WHERE h.secret_id OPERATOR(pg_catalog.=) $1"
						"   AND h.status OPERATOR(pg_catalog.=) 'succeeded'"
						"   AND h.step OPERATOR(pg_catalog.=) ANY"
						"       (ARRAY['finishSecret', 'setSecret', 'reconcile']::pg_catalog.text[])",
						sm_extension_schema_quoted());
	call.secret_id = CStringGetTextDatum(secret_id);
	call.found = false;
	call.result = 0;
	sm_runas_owner(last_rotated_owner, &call);
	if (call.found)
		*when = call.result;
	return call.found;
}

/* Wait until the worker has stopped, at most SM_HISTORY_WAIT_MS. */
static BgwHandleStatus
wait_for_worker(BackgroundWorkerHandle *handle)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   SM_HISTORY_WAIT_MS);
	BgwHandleStatus status;
	pid_t		pid;

	for (;;)
	{
		long		left;

		status = GetBackgroundWorkerPid(handle, &pid);
		if (status == BGWH_STOPPED || status == BGWH_POSTMASTER_DIED)
			return status;

		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (left <= 0)
			return status;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(left, 100L), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Insert row in a transaction of its own, through a background worker. */
bool
sm_history_insert_autonomous(const SmHistoryRow *row)
{
	const char *f[SM_HISTORY_NFIELDS];
	Size		size = offsetof(SmHistoryShared, data);
	Size		pos = 0;
	dsm_segment *seg;
	dsm_handle	handle;
	SmHistoryShared *shared;
	BackgroundWorker worker;
	BackgroundWorkerHandle *bgw;
	BgwHandleStatus status;
	Oid			owner;

	if (RecoveryInProgress())
		return false;

	owner = sm_extension_owner();
	row_fields(row, f);
	f[10] = clip_error(f[10]);
	for (int i = 0; i < SM_HISTORY_NFIELDS; i++)
		if (f[i])
			size += strlen(f[i]) + 1;

	seg = dsm_create(size, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
	{
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not record the failure of secret \"%s\" in secretsmgr_rotation_history",
						row->secret_id),
				 errdetail("No dynamic shared memory segment is available.")));
		return false;
	}
	shared = dsm_segment_address(seg);
	shared->dboid = MyDatabaseId;
	shared->owner = owner;
	shared->started_at = row->started_at;
	shared->finished_at = row->finished_at;
	for (int i = 0; i < SM_HISTORY_NFIELDS; i++)
	{
		if (f[i] == NULL)
		{
			shared->offsets[i] = -1;
			continue;
		}
		shared->offsets[i] = (int32) pos;
		strcpy(shared->data + pos, f[i]);
		pos += strlen(f[i]) + 1;
	}

	/* The segment outlives this mapping; the worker unpins it. */
	handle = dsm_segment_handle(seg);
	dsm_pin_segment(seg);

	sm_backend_worker_describe(&worker, "sm_history_worker_main", "history writer",
							   UInt32GetDatum(handle), MyProcPid);

	if (!RegisterDynamicBackgroundWorker(&worker, &bgw))
	{
		dsm_unpin_segment(handle);
		dsm_detach(seg);
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not record the failure of secret \"%s\" in secretsmgr_rotation_history",
						row->secret_id),
				 errdetail("No background worker slot is free."),
				 errhint("Raise \"max_worker_processes\"; the failure is still in the server log and in secretsmgr_stats().")));
		return false;
	}

	status = wait_for_worker(bgw);
	dsm_detach(seg);
	pfree(bgw);

	if (status != BGWH_STOPPED)
	{
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("the failure of secret \"%s\" may not be recorded in secretsmgr_rotation_history yet",
						row->secret_id),
				 errdetail("The history writer did not finish within %d ms.", SM_HISTORY_WAIT_MS)));
		return false;
	}
	return true;
}

/* A string field of the shared row, or NULL. */
static const char *
shared_field(const SmHistoryShared *shared, int i)
{
	return shared->offsets[i] < 0 ? NULL : shared->data + shared->offsets[i];
}

/*
 * In a worker whose argument is a DSM handle (the history writer, the stage
 * undo): take the signals, copy the segment into TopMemoryContext, zero the
 * original (the undo's holds credentials), unpin and detach it.  what names
 * the worker in the error when the segment is gone.
 */
void *
sm_history_take_segment(Datum main_arg, const char *what)
{
	dsm_handle	handle = DatumGetUInt32(main_arg);
	dsm_segment *seg;
	Size		len;
	void	   *copy;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	seg = dsm_attach(handle);
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("secretsmgr %s could not map its shared memory segment", what)));
	len = dsm_segment_map_length(seg);
	copy = MemoryContextAlloc(TopMemoryContext, len);
	memcpy(copy, dsm_segment_address(seg), len);
	sm_secure_zero(dsm_segment_address(seg), len);
	dsm_unpin_segment(handle);
	dsm_detach(seg);
	return copy;
}

/*
 * The history writer: copy the row out of DSM, unpin it, connect as the
 * extension owner, insert the row in a transaction of its own, exit.
 */
void
sm_history_worker_main(Datum main_arg)
{
	SmHistoryShared *copy = sm_history_take_segment(main_arg, "history writer");
	const char *f[SM_HISTORY_NFIELDS];
	SmHistoryRow row;

	for (int i = 0; i < SM_HISTORY_NFIELDS; i++)
		f[i] = shared_field(copy, i);
	row.secret_id = f[0];
	row.role_name = f[1];
	row.new_version_id = f[2];
	row.previous_version_id = f[3];
	row.strategy = f[4];
	row.step = f[5];
	row.status = f[6];
	row.via = f[7];
	row.executed_by = f[8];
	row.sqlstate = f[9];
	row.error = f[10];
	row.started_at = copy->started_at;
	row.finished_at = copy->finished_at;

	sm_runas_worker_connect(copy->dboid, copy->owner);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "recording a failed secretsmgr rotation");

	sm_runas_owner(insert_row_owner, &row);

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	proc_exit(0);
}
