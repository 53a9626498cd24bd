/*
 * undo.c
 *		Moving AWSCURRENT back when a transaction that moved it at pre-commit
 *		does not commit.
 *
 * secretsmgr_rotate moves AWSCURRENT in an XACT_EVENT_PRE_COMMIT callback.
 * The commit can still fail after that: a later stage move of the same
 * transaction (several secrets rotated at once, secretsmgr_rotate_due()), a
 * serialization failure under SERIALIZABLE (checked after every pre-commit
 * callback), a full NOTIFY queue, another extension's pre-commit callback.
 * The roles then keep their old passwords while AWSCURRENT names the new
 * ones.
 *
 * An abort callback must not fail, so everything the way back needs is made
 * ready at pre-commit, before the first move: a pinned dynamic shared memory
 * segment holding the moves, the database, the extension owner, and the
 * settings a Secrets Manager call depends on (endpoint, region, credentials,
 * timeouts), since a session may have set them with SET.  At abort, if any
 * move was performed, the callback marks which ones and registers a
 * short-lived dynamic background worker (as the history writer does), which
 * needs no shared_preload_libraries, only a free max_worker_processes slot.
 * The worker, for each performed move, in a transaction of its own:
 *
 * - takes the secret's rotation lock, so it never interleaves with a new
 *   rotation of the secret;
 * - moves AWSCURRENT back to the version it left, only if AWSCURRENT is
 *   still on the version this transaction put it on (so running it twice,
 *   or after a new rotation, changes nothing);
 * - records the rotation as failed in secretsmgr_rotation_history, with the
 *   reason the commit failed and what it did about the label.
 *
 * Without a free worker slot a WARNING says so and secretsmgr_reconcile()
 * repairs the secret, as after a crash in the same window.
 *
 * The segment holds AWS credentials when they come from settings: both the
 * worker and the backend zero it before letting it go.
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "backend.h"
#include "extension.h"
#include "history.h"
#include "registry.h"
#include "runas.h"
#include "secretbuf.h"
#include "smclient.h"
#include "undo.h"

#define SM_UNDO_REASON_LEN	512

/* The settings a Secrets Manager call depends on, passed to the worker. */
static const char *const client_settings[] = {
	"secretsmgr.region",
	"secretsmgr.endpoint",
	"secretsmgr.access_key_id",
	"secretsmgr.secret_access_key",
	"secretsmgr.session_token",
	"secretsmgr.profile",
	"secretsmgr.ca_file",
	"secretsmgr.connect_timeout",
	"secretsmgr.request_timeout",
	"secretsmgr.max_attempts",
	"secretsmgr.retry_base_delay",
	"secretsmgr.role_arn",
	"secretsmgr.external_id",
	"secretsmgr.role_session_name",
	"secretsmgr.sts_endpoint",
	"secretsmgr.use_fips_endpoint"
};

/* String fields of one move, in the order they are serialised. */
#define SM_UNDO_NFIELDS		9

/*
 * The segment: a fixed header, then per move a "performed" byte, then per
 * move its start time, then NUL-terminated strings: the settings' values
 * (in client_settings order), then each move's fields.
 */
typedef struct SmUndoShared
{
	Oid			dboid;
	Oid			owner;
	int			nmoves;
	int			sqlerrcode;		/* why the commit failed, 0 if unknown */
	char		reason[SM_UNDO_REASON_LEN];
	Size		datalen;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} SmUndoShared;

static dsm_segment *undo_seg = NULL;
static SmUndoShared *undo_shared = NULL;
static int	undo_performed = 0;
static BackgroundWorker undo_worker;

/* Performed flags of the segment's moves. */
static inline char *
performed_flags(SmUndoShared *s)
{
	return s->data;
}

/* Scrub and let go of this backend's segment (never raises). */
static void
release_segment(bool unpin)
{
	dsm_handle	handle;

	if (undo_seg == NULL)
		return;
	handle = dsm_segment_handle(undo_seg);
	if (unpin)
	{
		sm_secure_zero(undo_shared->data, undo_shared->datalen);
		dsm_unpin_segment(handle);
	}
	dsm_detach(undo_seg);
	undo_seg = NULL;
	undo_shared = NULL;
	undo_performed = 0;
}

/* Append s (NULL as an empty string) and its NUL. */
static void
append_string(StringInfo buf, const char *s)
{
	appendBinaryStringInfo(buf, s ? s : "", s ? strlen(s) : 0);
	appendStringInfoChar(buf, '\0');
}

/*
 * Pre-commit, before the first move: the segment, pinned, and the worker's
 * description, so that the abort path has nothing left that can fail.
 */
void
sm_undo_prepare(const SmUndoMove *moves, int nmoves)
{
	StringInfoData buf;
	Size		size;
	dsm_segment *seg;
	Oid			owner = sm_extension_owner();

	release_segment(true);

	initStringInfo(&buf);
	for (int i = 0; i < nmoves; i++)
		appendStringInfoChar(&buf, '\0');
	for (int i = 0; i < nmoves; i++)
		appendBinaryStringInfo(&buf, (const char *) &moves[i].started_at,
							   sizeof(TimestampTz));
	for (int i = 0; i < lengthof(client_settings); i++)
		append_string(&buf, GetConfigOption(client_settings[i], true, false));
	for (int i = 0; i < nmoves; i++)
	{
		const SmUndoMove *m = &moves[i];

		append_string(&buf, m->api_id);
		append_string(&buf, m->secret_id);
		append_string(&buf, m->lock_key);
		append_string(&buf, m->role_name);
		append_string(&buf, m->strategy);
		append_string(&buf, m->new_version_id);
		append_string(&buf, m->old_version_id);
		append_string(&buf, m->executed_by);
		append_string(&buf, m->via);
	}

	size = offsetof(SmUndoShared, data) + buf.len;
	seg = dsm_create(size, 0);
	/* mapped until the transaction ends; kept until the worker unpins it */
	dsm_pin_mapping(seg);
	undo_shared = dsm_segment_address(seg);
	undo_shared->dboid = MyDatabaseId;
	undo_shared->owner = owner;
	undo_shared->nmoves = nmoves;
	undo_shared->sqlerrcode = 0;
	undo_shared->reason[0] = '\0';
	undo_shared->datalen = buf.len;
	memcpy(undo_shared->data, buf.data, buf.len);
	sm_secure_zero(buf.data, buf.len);
	pfree(buf.data);
	dsm_pin_segment(seg);
	undo_seg = seg;
	undo_performed = 0;

	sm_backend_worker_describe(&undo_worker, "sm_undo_worker_main", "stage undo",
							   UInt32GetDatum(dsm_segment_handle(seg)), 0);
}

/* Move i reached Secrets Manager: it is to be moved back on abort. */
void
sm_undo_performed(int i)
{
	if (undo_shared == NULL || i < 0 || i >= undo_shared->nmoves)
		return;
	if (!performed_flags(undo_shared)[i])
		undo_performed++;
	performed_flags(undo_shared)[i] = 1;
}

/* Move i was refused: nothing to move back for it. */
void
sm_undo_not_performed(int i)
{
	if (undo_shared == NULL || i < 0 || i >= undo_shared->nmoves)
		return;
	if (performed_flags(undo_shared)[i])
		undo_performed--;
	performed_flags(undo_shared)[i] = 0;
}

/* The first reason given wins; the history rows carry it. */
void
sm_undo_set_reason(int sqlerrcode, const char *message)
{
	if (undo_shared == NULL || undo_shared->reason[0] != '\0' || message == NULL)
		return;
	undo_shared->sqlerrcode = sqlerrcode;
	strlcpy(undo_shared->reason, message, SM_UNDO_REASON_LEN);
}

/*
 * Transaction end: let the segment go, or hand it to a worker when the
 * transaction aborted after a move.  Never raises.
 */
bool
sm_undo_finish(bool committed)
{
	if (undo_seg == NULL)
		return true;
	if (committed || undo_performed == 0)
	{
		release_segment(true);
		return true;
	}
	if (!RegisterDynamicBackgroundWorker(&undo_worker, NULL))
	{
		release_segment(true);
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not move AWSCURRENT back after a rotation that did not commit"),
				 errdetail("No background worker slot is free."),
				 errhint("Run secretsmgr_reconcile() on the secrets this transaction rotated; raise \"max_worker_processes\".")));
		return false;
	}
	/* the worker unpins the segment */
	release_segment(false);
	return true;
}

/* What the worker found and did for one move. */
typedef enum SmUndoOutcome
{
	SM_UNDO_MOVED_BACK,
	SM_UNDO_MOVED_ON,
	SM_UNDO_NEVER_MOVED			/* a put sent, answer unknown, that did not land */
} SmUndoOutcome;

/* One move as the worker reads it. */
typedef struct SmUndoWork
{
	const char *f[SM_UNDO_NFIELDS];
	TimestampTz started_at;
	SmUndoOutcome outcome;
} SmUndoWork;

/*
 * Under the secret's rotation lock: move AWSCURRENT back if it is still
 * where the aborted transaction put it.
 */
static void
undo_call(void *arg)
{
	SmUndoWork *w = (SmUndoWork *) arg;
	const char *api_id = w->f[0];
	const char *new_version = w->f[5];
	const char *old_version = w->f[6];
	SmSecretValue cur;
	bool		still_there;
	bool		never_moved;

	sm_registry_lock_key(w->f[2]);
	sm_client_get_secret_value(api_id, "AWSCURRENT", NULL, false, &cur);
	still_there = cur.version_id && strcmp(cur.version_id, new_version) == 0;
	never_moved = cur.version_id && strcmp(cur.version_id, old_version) == 0;
	sm_secret_value_scrub(&cur);
	if (!still_there)
	{
		w->outcome = never_moved ? SM_UNDO_NEVER_MOVED : SM_UNDO_MOVED_ON;
		return;
	}
	sm_client_update_secret_version_stage(api_id, "AWSCURRENT", old_version, new_version);
	w->outcome = SM_UNDO_MOVED_BACK;
}

/* Undo one move and record it, in a transaction of its own. */
static void
undo_one(SmUndoWork *w, const SmUndoShared *s)
{
	ErrorData  *edata;
	SmHistoryRow row;
	const char *reason = s->reason[0] ? s->reason : "the transaction did not commit";
	char	   *error;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "moving AWSCURRENT back after a rotation that did not commit");

	edata = sm_subxact_run(undo_call, w);
	if (edata != NULL)
		error = psprintf("the transaction did not commit after AWSCURRENT moved: %s; moving AWSCURRENT back to version \"%s\" failed: %s",
						 reason, w->f[6], edata->message);
	else if (w->outcome == SM_UNDO_MOVED_BACK)
		error = psprintf("the transaction did not commit after AWSCURRENT moved: %s; AWSCURRENT was moved back to version \"%s\"",
						 reason, w->f[6]);
	else if (w->outcome == SM_UNDO_NEVER_MOVED)
		error = psprintf("the transaction did not commit: %s; version \"%s\" never became AWSCURRENT, which is still version \"%s\"",
						 reason, w->f[5], w->f[6]);
	else
		error = psprintf("the transaction did not commit after AWSCURRENT moved: %s; AWSCURRENT had left version \"%s\" since, so it was not moved",
						 reason, w->f[5]);

	memset(&row, 0, sizeof(row));
	row.secret_id = w->f[1];
	row.role_name = w->f[3];
	row.strategy = w->f[4];
	row.new_version_id = w->f[5];
	row.previous_version_id = w->f[6];
	row.executed_by = w->f[7];
	row.via = w->f[8];
	row.step = "finishSecret";
	row.status = "failed";
	row.started_at = w->started_at;
	row.finished_at = GetCurrentTimestamp();
	row.sqlstate = s->sqlerrcode ? unpack_sql_state(s->sqlerrcode) : NULL;
	row.error = error;
	(void) sm_history_insert(&row);

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	ereport(LOG,
			(errmsg("secretsmgr: rotate of secret \"%s\" failed at step finishSecret: %s",
					w->f[1], error),
			 edata != NULL ? errhint("Run secretsmgr_reconcile('%s').", w->f[1]) : 0));
}

/*
 * The worker: copy the segment, scrub and unpin it, connect as the
 * extension owner with the rotating session's client settings, undo each
 * performed move, exit.
 */
void
sm_undo_worker_main(Datum main_arg)
{
	SmUndoShared *copy = sm_history_take_segment(main_arg, "stage undo");
	const char *p;
	const char *values[lengthof(client_settings)];

	sm_runas_worker_connect(copy->dboid, copy->owner);

	p = copy->data + copy->nmoves + copy->nmoves * sizeof(TimestampTz);
	for (int i = 0; i < lengthof(client_settings); i++)
	{
		values[i] = p;
		p += strlen(p) + 1;
	}
	for (int i = 0; i < lengthof(client_settings); i++)
		SetConfigOption(client_settings[i], values[i], PGC_SUSET, PGC_S_SESSION);

	for (int i = 0; i < copy->nmoves; i++)
	{
		SmUndoWork	w;

		for (int k = 0; k < SM_UNDO_NFIELDS; k++)
		{
			w.f[k] = p;
			p += strlen(p) + 1;
		}
		memcpy(&w.started_at, copy->data + copy->nmoves + i * sizeof(TimestampTz),
			   sizeof(TimestampTz));
		if (copy->data[i])
			undo_one(&w, copy);
	}

	sm_secure_zero(copy->data, copy->datalen);
	proc_exit(0);
}
