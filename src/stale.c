/*
 * stale.c
 *		Stale clients: who still uses a managed role's old password.
 *
 * Every rotation leaves one question open: which clients still hold the
 * old password?  Only the database sees them:
 *
 * - sessions still connected that began before the secret's last rotation
 *   (their backend_start against the newest succeeded rotation in
 *   secretsmgr_rotation_history), read from the backend status table;
 * - failed password logins since that rotation, counted by a
 *   ClientAuthentication_hook per managed role (and clone) and client
 *   address, in a shared memory segment of our own (preloaded only).
 *
 * The segment holds at most SM_STALE_MAX_ROLES roles and, per role,
 * SM_STALE_MAX_ADDRS addresses; failures from further addresses are counted
 * together.  A role is in it once a rotation of it committed, or once
 * secretsmgr_stale_clients() or secretsmgr_health() ran in the database that
 * binds it (after a server start the segment is empty: counting starts
 * there).  A successful login costs the hook one comparison; a failed
 * password login one scan of the segment under its lock.
 *
 * Nothing here ever holds a password: the hook sees only the role name, the
 * client address and whether authentication failed.
 */
#include "postgres.h"

#include <sys/socket.h>
#include <netdb.h>

#include "access/xact.h"
#include "common/ip.h"
#include "fmgr.h"
#include "funcapi.h"
/*
 * struct Port (libpq-be.h) includes the GSSAPI headers when the server was
 * built with GSSAPI, and they are not needed to build against it: without
 * ENABLE_GSS the struct keeps its layout (a void pointer stands in for the
 * GSSAPI state), and only the role name, address and HBA line are read.
 */
#ifdef ENABLE_GSS
#undef ENABLE_GSS
#include "libpq/libpq-be.h"
#define ENABLE_GSS 1
#else
#include "libpq/libpq-be.h"
#endif
#include "libpq/auth.h"
#include "libpq/hba.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "registry.h"
#include "backend.h"
#include "secretbuf.h"
#include "settings.h"
#include "stats.h"
#include "stale.h"

#define SM_STALE_MAX_ROLES		256
#define SM_STALE_MAX_ADDRS		8
#define SM_STALE_ADDR_LEN		64
#define SM_STALE_TRANCHE		"secretsmgr stale clients"

/* Failed logins of one role from one client address. */
typedef struct SmStaleAddr
{
	char		addr[SM_STALE_ADDR_LEN];
	int64		count;
	TimestampTz first;
	TimestampTz last;
} SmStaleAddr;

/* One managed role's failed logins since its password last changed. */
typedef struct SmStaleRole
{
	bool		used;
	NameData	role;
	Oid			dboid;			/* the database that published it */
	TimestampTz counting_since;
	int			naddrs;
	SmStaleAddr addrs[SM_STALE_MAX_ADDRS];
	SmStaleAddr other;			/* every further address together */
} SmStaleRole;

typedef struct SmStaleShared
{
	LWLock	   *lock;
	int			nused;			/* read without the lock by the hook */
	SmStaleRole roles[SM_STALE_MAX_ROLES];
} SmStaleShared;

static SmStaleShared *stale = NULL;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;
static ClientAuthentication_hook_type prev_client_auth = NULL;

/* Roles whose password this transaction changed, reset at its commit. */
typedef struct SmStalePending
{
	NameData	role;
	int			nest_level;
} SmStalePending;

static List *pending = NIL;
static bool callbacks_registered = false;

/* Reserve the segment and its lock. */
static void
stale_shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SmStaleShared)));
	RequestNamedLWLockTranche(SM_STALE_TRANCHE, 1);
}

/* Create (or, in a backend, attach) the segment. */
static void
stale_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	stale = ShmemInitStruct("secretsmgr stale clients", sizeof(SmStaleShared), &found);
	if (!found)
	{
		memset(stale, 0, sizeof(SmStaleShared));
		stale->lock = &(GetNamedLWLockTranche(SM_STALE_TRANCHE))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* The entry of role, or NULL (lock held). */
static SmStaleRole *
find_role(const char *role)
{
	for (int i = 0; i < SM_STALE_MAX_ROLES; i++)
		if (stale->roles[i].used && strcmp(NameStr(stale->roles[i].role), role) == 0)
			return &stale->roles[i];
	return NULL;
}

/* The entry of role, created (counting from now) if absent; NULL if full. */
static SmStaleRole *
find_or_add_role(const char *role, Oid dboid)
{
	SmStaleRole *e = find_role(role);

	if (e != NULL)
		return e;
	for (int i = 0; i < SM_STALE_MAX_ROLES; i++)
	{
		if (stale->roles[i].used)
			continue;
		e = &stale->roles[i];
		memset(e, 0, sizeof(SmStaleRole));
		namestrcpy(&e->role, role);
		e->dboid = dboid;
		e->counting_since = GetCurrentTimestamp();
		e->used = true;
		stale->nused++;
		return e;
	}
	return NULL;
}

/* Count one failure in slot a. */
static void
count_in(SmStaleAddr *a, TimestampTz now)
{
	if (a->count == 0)
		a->first = now;
	a->count++;
	a->last = now;
}

/*
 * The hook: a failed password login of a managed role is counted under its
 * client address.  Anything else returns at once.
 */
static void
stale_client_auth(Port *port, int status)
{
	UserAuth	method;
	SmStaleRole *e;

	if (prev_client_auth)
		prev_client_auth(port, status);
	if (status != STATUS_ERROR || stale == NULL || port->hba == NULL ||
		port->user_name == NULL || stale->nused == 0)
		return;
	method = port->hba->auth_method;
	if (method != uaPassword && method != uaMD5 && method != uaSCRAM)
		return;

	LWLockAcquire(stale->lock, LW_EXCLUSIVE);
	e = find_role(port->user_name);
	if (e != NULL)
	{
		const char *addr = port->remote_host ? port->remote_host : "";
		TimestampTz now = GetCurrentTimestamp();
		SmStaleAddr *slot = NULL;

		for (int i = 0; i < e->naddrs; i++)
			if (strcmp(e->addrs[i].addr, addr) == 0)
				slot = &e->addrs[i];
		if (slot == NULL && e->naddrs < SM_STALE_MAX_ADDRS)
		{
			slot = &e->addrs[e->naddrs++];
			strlcpy(slot->addr, addr, SM_STALE_ADDR_LEN);
		}
		count_in(slot ? slot : &e->other, now);
	}
	LWLockRelease(stale->lock);
}

/*
 * At commit, the roles whose password changed count from zero again; an
 * abort (or a PREPARE, whose outcome this backend does not see) forgets them.
 */
static void
stale_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	if (event == XACT_EVENT_COMMIT && pending != NIL && stale != NULL)
	{
		LWLockAcquire(stale->lock, LW_EXCLUSIVE);
		foreach(lc, pending)
		{
			SmStalePending *p = lfirst(lc);
			SmStaleRole *e = find_or_add_role(NameStr(p->role), MyDatabaseId);

			if (e == NULL)
				continue;
			e->naddrs = 0;
			memset(e->addrs, 0, sizeof(e->addrs));
			memset(&e->other, 0, sizeof(e->other));
			e->counting_since = GetCurrentTimestamp();
		}
		LWLockRelease(stale->lock);
	}
	list_free_deep(pending);
	pending = NIL;
}

/* A subtransaction that rolls back takes its password changes with it. */
static void
stale_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	List	   *keep = NIL;
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB || pending == NIL)
		return;
	foreach(lc, pending)
	{
		SmStalePending *p = lfirst(lc);

		if (p->nest_level >= level)
			pfree(p);
		else
			keep = lappend(keep, p);
	}
	list_free(pending);
	pending = keep;
}

/* Queue role's reset for the commit of this transaction. */
void
sm_stale_password_changed(const char *role)
{
	MemoryContext old;
	SmStalePending *p;

	if (stale == NULL)
		return;
	if (!callbacks_registered)
	{
		RegisterXactCallback(stale_xact_callback, NULL);
		RegisterSubXactCallback(stale_subxact_callback, NULL);
		callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	p = palloc(sizeof(SmStalePending));
	namestrcpy(&p->role, role);
	p->nest_level = GetCurrentTransactionNestLevel();
	pending = lappend(pending, p);
	MemoryContextSwitchTo(old);
}

/* Is failed-login counting on? */
bool
sm_stale_active(void)
{
	return stale != NULL;
}

/* Ask for shared memory and install the hook, when preloaded. */
void
sm_stale_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = stale_shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = stale_shmem_startup;
	prev_client_auth = ClientAuthentication_hook;
	ClientAuthentication_hook = stale_client_auth;
}

/* ---- what secretsmgr_stale_clients() and secretsmgr_health() report ---- */

/* One managed role, with its secret's last rotation. */
typedef struct StaleRole
{
	char	   *secret_id;
	char	   *role_name;
	bool		has_last;
	TimestampTz last_rotation;
} StaleRole;

/* One finding: a session older than the rotation, or failed logins. */
typedef struct StaleItem
{
	StaleRole  *role;
	bool		session;
	char	   *client_addr;	/* NULL: every further address */
	int			pid;
	TimestampTz backend_start;
	int64		count;
	TimestampTz first;
	TimestampTz last;
} StaleItem;

/*
 * Every managed role (role and clone) of this database, with the end of its
 * secret's newest succeeded rotation, ordered by secret and role (read
 * through the registry, as every read of secretsmgr_managed is).
 */
static List *
stale_roles(void)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, sm_registry_managed())
	{
		SmManaged  *m = lfirst(lc);
		const char *roles[2] = {m->role_name, m->clone_role};

		if (m->clone_role && strcmp(m->clone_role, m->role_name) < 0)
		{
			roles[0] = m->clone_role;
			roles[1] = m->role_name;
		}
		for (int i = 0; i < 2; i++)
		{
			StaleRole  *r;

			if (roles[i] == NULL)
				continue;
			r = palloc0(sizeof(StaleRole));
			r->secret_id = pstrdup(m->secret_id);
			r->role_name = pstrdup(roles[i]);
			r->has_last = m->has_last;
			r->last_rotation = m->last_rotated;
			result = lappend(result, r);
		}
	}
	return result;
}

/* The client address of a backend, as the hook sees it ("[local]" for Unix sockets). */
static char *
backend_addr(const PgBackendStatus *be)
{
	char		host[NI_MAXHOST];
	const SockAddr *sa = &be->st_clientaddr;

	if (sa->salen == 0)
		return NULL;
	if (sa->addr.ss_family == AF_UNIX)
		return pstrdup("[local]");
	if (pg_getnameinfo_all(&sa->addr, sa->salen, host, sizeof(host), NULL, 0,
						   NI_NUMERICHOST) != 0)
		return NULL;
	return pstrdup(host);
}

/* Sessions of r's role that began before its secret's last rotation. */
static List *
stale_sessions(List *items, StaleRole *r)
{
	Oid			roleid = get_role_oid(r->role_name, true);
	int			n;

	if (!r->has_last || !OidIsValid(roleid))
		return items;
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = pgstat_get_local_beentry_by_index(i);
		PgBackendStatus *be;
		StaleItem  *it;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_backendType != B_BACKEND || be->st_userid != roleid ||
			be->st_proc_start_timestamp >= r->last_rotation)
			continue;
		it = palloc0(sizeof(StaleItem));
		it->role = r;
		it->session = true;
		it->client_addr = backend_addr(be);
		it->pid = be->st_procpid;
		it->backend_start = be->st_proc_start_timestamp;
		items = lappend(items, it);
	}
	return items;
}

/* A failed-login finding of r from slot a. */
static List *
add_failed(List *items, StaleRole *r, const SmStaleAddr *a, bool other)
{
	StaleItem  *it;

	if (a->count == 0)
		return items;
	it = palloc0(sizeof(StaleItem));
	it->role = r;
	it->client_addr = other ? NULL : pstrdup(a->addr);
	it->count = a->count;
	it->first = a->first;
	it->last = a->last;
	return lappend(items, it);
}

/*
 * Publish this database's managed roles in the segment (roles it no longer
 * binds leave it), and copy out their failed logins.
 */
static List *
stale_failed(List *items, List *roles)
{
	ListCell   *lc;

	if (stale == NULL)
		return items;
	LWLockAcquire(stale->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SM_STALE_MAX_ROLES; i++)
	{
		SmStaleRole *e = &stale->roles[i];
		bool		bound = false;

		if (!e->used || e->dboid != MyDatabaseId)
			continue;
		foreach(lc, roles)
			if (strcmp(((StaleRole *) lfirst(lc))->role_name, NameStr(e->role)) == 0)
				bound = true;
		if (!bound)
		{
			e->used = false;
			stale->nused--;
		}
	}
	foreach(lc, roles)
	{
		StaleRole  *r = lfirst(lc);
		SmStaleRole *e = find_or_add_role(r->role_name, MyDatabaseId);

		if (e == NULL)
			continue;
		for (int i = 0; i < e->naddrs; i++)
			items = add_failed(items, r, &e->addrs[i], false);
		items = add_failed(items, r, &e->other, true);
	}
	LWLockRelease(stale->lock);
	return items;
}

/* Every finding, role by role: sessions first, then failed logins. */
static List *
stale_items(List *roles)
{
	List	   *items = NIL;
	List	   *failed;
	ListCell   *lc;

	foreach(lc, roles)
		items = stale_sessions(items, lfirst(lc));
	failed = stale_failed(NIL, roles);
	return list_concat(items, failed);
}

/* Say once per call that failed logins need the library preloaded. */
static void
notice_not_preloaded(void)
{
	ereport(NOTICE,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("failed logins are not counted"),
			 errdetail("secretsmgr is not in shared_preload_libraries, so its login hook is not installed; only sessions are listed."),
			 errhint("Add secretsmgr to shared_preload_libraries and restart the server.")));
}

PG_FUNCTION_INFO_V1(secretsmgr_stale_clients);

/*
 * secretsmgr_stale_clients(): per managed role, the sessions that began
 * before its secret's last rotation and the failed logins since it, by
 * client address.
 */
Datum
secretsmgr_stale_clients(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *items;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	if (stale == NULL)
		notice_not_preloaded();
	items = stale_items(stale_roles());
	foreach(lc, items)
	{
		StaleItem  *it = lfirst(lc);
		Datum		values[10];
		bool		nulls[10];

		memset(nulls, true, sizeof(nulls));
		values[0] = CStringGetTextDatum(it->role->secret_id);
		nulls[0] = false;
		values[1] = DirectFunctionCall1(namein, CStringGetDatum(it->role->role_name));
		nulls[1] = false;
		values[2] = CStringGetTextDatum(it->session ? "session" : "failed_login");
		nulls[2] = false;
		if (it->client_addr)
		{
			values[3] = CStringGetTextDatum(it->client_addr);
			nulls[3] = false;
		}
		if (it->session)
		{
			values[4] = Int32GetDatum(it->pid);
			values[5] = TimestampTzGetDatum(it->backend_start);
			nulls[4] = nulls[5] = false;
		}
		else
		{
			values[6] = Int64GetDatum(it->count);
			values[7] = TimestampTzGetDatum(it->first);
			values[8] = TimestampTzGetDatum(it->last);
			nulls[6] = nulls[7] = nulls[8] = false;
		}
		if (it->role->has_last)
		{
			values[9] = TimestampTzGetDatum(it->role->last_rotation);
			nulls[9] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Add one health row. */
static void
health_row(ReturnSetInfo *rsinfo, const char *check, const char *status,
		   const char *detail)
{
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = CStringGetTextDatum(check);
	values[1] = CStringGetTextDatum(status);
	values[2] = CStringGetTextDatum(detail);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* The stale-clients row of one secret; findings holds its warnings. */
static void
secret_row(ReturnSetInfo *rsinfo, const char *secret, StringInfo findings)
{
	const char *check = psprintf("secret %s: stale clients", secret);

	if (findings->len > 0)
		health_row(rsinfo, check, "WARN",
				   psprintf("%s. Hint: SELECT * FROM secretsmgr_stale_clients() lists them; see docs/runbook.md.",
							findings->data));
	else if (stale != NULL)
		health_row(rsinfo, check, "OK",
				   "no session older than the last rotation, no failed login since it");
	else
		health_row(rsinfo, check, "OK",
				   "no session older than the last rotation (failed logins are counted only with secretsmgr in shared_preload_libraries)");
}

/*
 * Health: per managed secret a row that warns about sessions older than
 * its last rotation and failed logins since it.
 */
void
sm_stale_health(ReturnSetInfo *rsinfo)
{
	List	   *roles = stale_roles();
	List	   *items = stale_items(roles);
	const char *secret = NULL;
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, roles)
	{
		StaleRole  *r = lfirst(lc);
		ListCell   *ic;
		int			sessions = 0;
		int64		failed = 0;
		StringInfoData addrs;

		if (secret == NULL || strcmp(secret, r->secret_id) != 0)
		{
			/* a new secret: close the previous one's row */
			if (secret != NULL)
				secret_row(rsinfo, secret, &buf);
			secret = r->secret_id;
			resetStringInfo(&buf);
		}
		initStringInfo(&addrs);
		foreach(ic, items)
		{
			StaleItem  *it = lfirst(ic);

			if (it->role != r)
				continue;
			if (it->session)
				sessions++;
			else
			{
				failed += it->count;
				appendStringInfo(&addrs, "%s%s (" INT64_FORMAT ")",
								 addrs.len > 0 ? ", " : "",
								 it->client_addr ? it->client_addr : "other addresses",
								 it->count);
			}
		}
		if (sessions > 0)
			appendStringInfo(&buf, "%srole %s: %d session%s began before the last rotation",
							 buf.len > 0 ? "; " : "", r->role_name, sessions,
							 sessions == 1 ? "" : "s");
		if (failed > 0)
			appendStringInfo(&buf, "%srole %s: " INT64_FORMAT " failed login%s since the last rotation, from %s",
							 buf.len > 0 ? "; " : "", r->role_name, failed,
							 failed == 1 ? "" : "s", addrs.data);
	}
	if (secret != NULL)
		secret_row(rsinfo, secret, &buf);
}
