/*
 * registry.c
 *		Which secret may rotate which role: the secretsmgr_managed table.
 *
 * Only a row here lets a secret change a role.  The secret's own "username"
 * never decides which role changes: the rotation engine checks it against
 * the binding and refuses a secret that names another role.
 *
 * Invariants kept here:
 * - a bound role exists, can log in, and is not privileged, itself or
 *   through any chain of memberships, unless secretsmgr.allow_privileged_roles
 *   is on (checked at registration; every password change checks again);
 * - a role (or clone) is bound to at most one secret, and a secret (by ARN)
 *   to at most one row, so two bindings never fight over one password;
 * - for "alternating", <role>_clone exists, can log in and is a member of
 *   every role <role> is a member of.
 *
 * The tables stay revoked from PUBLIC: rows are written through SPI as the
 * extension owner (sm_runas_owner, search_path pinned), while the
 * clone role is created and granted under the caller's own id, so
 * PostgreSQL's own privilege checks apply to it.  No SQL text built here
 * ever carries a password.
 *
 * Reads scan the table directly (no SPI, no planning): the read path calls
 * sm_registry_bound_roles() on every cache store, and an empty registry
 * must cost next to nothing.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_auth_members.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/relcache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"


#include "compat.h"
#include "extension.h"
#include "history.h"
#include "registry.h"
#include "runas.h"
#include "settings.h"
#include "smclient.h"
#include "verify.h"

#define SM_MANAGED_TABLE	"secretsmgr_managed"
#define SM_HISTORY_TABLE	"secretsmgr_rotation_history"
#define SM_CLONE_SUFFIX		"_clone"

/* Advisory lock namespace of secretsmgr rotations: "SMGR". */
#define SM_LOCK_CLASS	0x534D4752

/*
 * The snapshot registry reads use: the latest one, so a rotation that waited
 * for the secret's lock sees a binding committed meanwhile; inside a
 * parallel query (where no new snapshot may be taken) the active one.
 */
static Snapshot
registry_snapshot(void)
{
	if (IsInParallelMode() && ActiveSnapshotSet())
		return RegisterSnapshot(GetActiveSnapshot());
	return RegisterSnapshot(GetLatestSnapshot());
}

/* Attribute number of a column of rel by name (0 if absent). */
static AttrNumber
column_number(Relation rel, const char *colname)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), colname) == 0)
			return att->attnum;
	}
	elog(ERROR, "column \"%s\" of table \"%s\" is missing",
		 colname, RelationGetRelationName(rel));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/* A text or name column of the slot as a C string, or NULL. */
static char *
slot_string(TupleTableSlot *slot, AttrNumber attnum, Oid typid)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, attnum, &isnull);

	if (isnull)
		return NULL;
	if (typid == NAMEOID)
		return pstrdup(NameStr(*DatumGetName(d)));
	return TextDatumGetCString(d);
}

/*
 * Does an ARN name the secret called name?  An ARN ends in
 * ":secret:<name>-<6 random characters>".
 */
static bool
arn_names(const char *arn, const char *name)
{
	const char *p;
	size_t		len;

	if (arn == NULL || (p = strstr(arn, ":secret:")) == NULL)
		return false;
	p += strlen(":secret:");
	len = strlen(p);
	if (len < 8 || p[len - 7] != '-')
		return false;
	return strlen(name) == len - 7 && strncmp(p, name, len - 7) == 0;
}

/* One of the extension's tables, opened to read; NULL when it is absent. */
static Relation
open_extension_table(const char *relname)
{
	Oid			nspid;
	Oid			relid;

	if (!sm_extension_find(&nspid, NULL))
		return NULL;
	relid = get_relname_relid(relname, nspid);
	if (!OidIsValid(relid))
		return NULL;
	return table_open(relid, AccessShareLock);
}

/* The columns of secretsmgr_managed that registry_scan reads. */
enum
{
	COL_SECRET_ID, COL_SECRET_ARN, COL_ROLE_NAME, COL_CLONE_ROLE, COL_STRATEGY,
	COL_ROTATION_INTERVAL
};
static const char *const managed_columns[] = {
	"secret_id", "secret_arn", "role_name", "clone_role", "strategy",
	"rotation_interval"
};

/* Called with each row of secretsmgr_managed; true ends the scan. */
typedef bool (*RegistryVisitFn) (const SmBinding *row, void *arg);

/*
 * The one read of secretsmgr_managed: visit(row, arg) for every row, in the
 * latest snapshot (registry_snapshot), until it returns true.  The table
 * is tiny; a sequential scan is cheaper than planning a query, and an
 * empty one costs no more than a look at its size.  Returns true when
 * visit ended the scan; false when the extension or its table is absent
 * or every row was visited.
 */
static bool
registry_scan(RegistryVisitFn visit, void *arg)
{
	Relation	rel;
	Snapshot	snapshot;
	TableScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	att[lengthof(managed_columns)];
	bool		stopped = false;

	rel = open_extension_table(SM_MANAGED_TABLE);
	if (rel == NULL)
		return false;
	if (RelationGetNumberOfBlocks(rel) == 0)
	{
		table_close(rel, AccessShareLock);
		return false;
	}

	for (int i = 0; i < lengthof(managed_columns); i++)
		att[i] = column_number(rel, managed_columns[i]);

	snapshot = registry_snapshot();
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);

	while (!stopped && table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		SmBinding	row;
		bool		isnull;
		Datum		d;

		row.secret_id = slot_string(slot, att[COL_SECRET_ID], TEXTOID);
		row.secret_arn = slot_string(slot, att[COL_SECRET_ARN], TEXTOID);
		row.role_name = slot_string(slot, att[COL_ROLE_NAME], NAMEOID);
		row.clone_role = slot_string(slot, att[COL_CLONE_ROLE], NAMEOID);
		row.strategy = slot_string(slot, att[COL_STRATEGY], TEXTOID);
		row.alternating = row.strategy != NULL &&
			strcmp(row.strategy, "alternating") == 0;
		d = slot_getattr(slot, att[COL_ROTATION_INTERVAL], &isnull);
		row.has_interval = !isnull;
		if (isnull)
			memset(&row.rotation_interval, 0, sizeof(Interval));
		else
			row.rotation_interval = *DatumGetIntervalP(d);
		stopped = visit(&row, arg);
	}

	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return stopped;
}

/* What match_key looks for, and where it puts the row it found. */
typedef struct MatchKey
{
	const char *key;
	bool		by_role;		/* key is a role: the bound role or clone */
	SmBinding  *out;
} MatchKey;

/*
 * Is row the binding of key (its secret_id, its ARN, or the name in it; with
 * by_role, its role_name or clone_role)?
 */
static bool
match_key(const SmBinding *row, void *arg)
{
	MatchKey   *m = arg;

	if (m->by_role ?
		(strcmp(row->role_name, m->key) == 0 ||
		 (row->clone_role && strcmp(row->clone_role, m->key) == 0)) :
		(strcmp(row->secret_id, m->key) == 0 ||
		 (row->secret_arn && strcmp(row->secret_arn, m->key) == 0) ||
		 arn_names(row->secret_arn, m->key)))
	{
		if (m->out)
			*m->out = *row;
		return true;
	}
	return false;
}

/*
 * The row matching key (by secret_id, ARN, or the name inside the ARN;
 * with by_role, by role_name or clone_role).
 */
static bool
scan_registry(const char *key, bool by_role, SmBinding *out)
{
	MatchKey	m;

	m.key = key;
	m.by_role = by_role;
	m.out = out;
	return registry_scan(match_key, &m);
}

/* Find the binding of a secret by its registered id, ARN or name. */
bool
sm_registry_lookup(const char *secret_id_or_arn, SmBinding *out)
{
	return scan_registry(secret_id_or_arn, false, out);
}

/* Find the binding of a role, as its role or its clone. */
bool
sm_registry_lookup_role(const char *role_name, SmBinding *out)
{
	return scan_registry(role_name, true, out);
}

/* Add a copy of row to the list *arg. */
static bool
collect_row(const SmBinding *row, void *arg)
{
	List	  **rows = arg;
	SmBinding  *copy = palloc(sizeof(SmBinding));

	*copy = *row;
	*rows = lappend(*rows, copy);
	return false;
}

/* list_sort order: by secret_id, in the database's collation (as ORDER BY). */
static int
by_secret_id(const ListCell *a, const ListCell *b)
{
	const SmBinding *ra = lfirst(a);
	const SmBinding *rb = lfirst(b);

	return varstr_cmp(ra->secret_id, strlen(ra->secret_id),
					  rb->secret_id, strlen(rb->secret_id),
					  DEFAULT_COLLATION_OID);
}

/* Every binding, ordered by secret_id. */
List *
sm_registry_list(void)
{
	List	   *rows = NIL;

	(void) registry_scan(collect_row, &rows);
	list_sort(rows, by_secret_id);
	return rows;
}

/* Every binding with its rotation interval and last successful rotation. */
List *
sm_registry_managed(void)
{
	List	   *rows = NIL;
	ListCell   *lc;

	foreach(lc, sm_registry_list())
	{
		SmBinding  *b = lfirst(lc);
		SmManaged  *m = palloc0(sizeof(SmManaged));

		m->secret_id = b->secret_id;
		m->secret_arn = b->secret_arn;
		m->role_name = b->role_name;
		m->clone_role = b->clone_role;
		m->strategy = b->strategy;
		m->has_interval = b->has_interval;
		m->rotation_interval = b->rotation_interval;
		m->has_last = sm_history_last_rotated(b->secret_id, &m->last_rotated);
		rows = lappend(rows, m);
	}
	return rows;
}

/*
 * The version whose password secretsmgr last gave a role bound to secret_id
 * (its registered id), or NULL: new_version_id of the newest history row of
 * a rotation, a Lambda's setSecret or a reconcile that succeeded or found
 * nothing to do.  Those rows are written in the transaction that changes
 * the role, so they are visible exactly when the password is.  Read like
 * the registry, with the latest snapshot, by a backward scan of the
 * (secret_id, id) index: the newest rows come first, and at most
 * SM_ROLE_VERSION_SCAN of them are looked at.
 */
#define SM_ROLE_VERSION_SCAN	100

static char *
last_role_version(const char *secret_id)
{
	Relation	rel;
	Relation	idx = NULL;
	List	   *indexes;
	ListCell   *lc;
	AttrNumber	a_id,
				a_secret,
				a_version,
				a_step,
				a_status;
	Snapshot	snapshot;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *result = NULL;
	int			seen = 0;

	rel = open_extension_table(SM_HISTORY_TABLE);
	if (rel == NULL)
		return NULL;
	a_id = column_number(rel, "id");
	a_secret = column_number(rel, "secret_id");
	a_version = column_number(rel, "new_version_id");
	a_step = column_number(rel, "step");
	a_status = column_number(rel, "status");

	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	i = index_open(lfirst_oid(lc), AccessShareLock);

		if (i->rd_index->indnkeyatts == 2 &&
			i->rd_index->indkey.values[0] == a_secret &&
			i->rd_index->indkey.values[1] == a_id &&
			i->rd_rel->relam == BTREE_AM_OID)
		{
			idx = i;
			break;
		}
		index_close(i, AccessShareLock);
	}
	list_free(indexes);
	if (idx == NULL)
	{
		table_close(rel, AccessShareLock);
		return NULL;
	}

	ScanKeyEntryInitialize(&key, 0, a_secret, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ,
						   CStringGetTextDatum(secret_id));
	snapshot = registry_snapshot();
	scan = systable_beginscan_ordered(rel, idx, snapshot, 1, &key);
	while (result == NULL && seen++ < SM_ROLE_VERSION_SCAN &&
		   (tup = systable_getnext_ordered(scan, BackwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;
		char	   *step;
		char	   *status;

		d = heap_getattr(tup, a_status, desc, &isnull);
		if (isnull)
			continue;
		status = TextDatumGetCString(d);
		d = heap_getattr(tup, a_step, desc, &isnull);
		if (isnull)
			continue;
		step = TextDatumGetCString(d);
		if ((strcmp(status, "succeeded") == 0 || strcmp(status, "noop") == 0) &&
			(strcmp(step, "setSecret") == 0 || strcmp(step, "finishSecret") == 0 ||
			 strcmp(step, "reconcile") == 0))
		{
			d = heap_getattr(tup, a_version, desc, &isnull);
			if (!isnull)
				result = TextDatumGetCString(d);
			break;
		}
	}
	systable_endscan_ordered(scan);
	UnregisterSnapshot(snapshot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * Roles whose password change must drop secret_id's cached values, and (when
 * role_version_id is not NULL) the version whose password secretsmgr last
 * gave a bound role, or NULL.
 */
int
sm_registry_bound_roles(const char *secret_id, Oid *out, int max,
						char **role_version_id)
{
	SmBinding	b;
	int			n = 0;
	Oid			oid;

	if (role_version_id)
		*role_version_id = NULL;
	if (max <= 0 || !scan_registry(secret_id, false, &b))
		return 0;
	if (role_version_id)
		*role_version_id = last_role_version(b.secret_id);
	oid = get_role_oid(b.role_name, true);
	if (OidIsValid(oid) && n < max)
		out[n++] = oid;
	if (b.clone_role)
	{
		oid = get_role_oid(b.clone_role, true);
		if (OidIsValid(oid) && n < max)
			out[n++] = oid;
	}
	return n;
}

/*
 * What makes a role privileged by itself, for the error detail ("is a
 * superuser"); NULL when nothing does.  *attr is the attribute's keyword
 * (for the hint's ALTER ROLE ... NO<attr>), or NULL for a predefined role.
 * docs/security.md ("Privileged roles") says why each is on the list.
 */
static const char *
privilege_of(Oid roleid, const char **attr)
{
	HeapTuple	tup;
	Form_pg_authid auth;
	const char *why = NULL;

	*attr = NULL;
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(roleid));
	if (!HeapTupleIsValid(tup))
		return NULL;			/* dropped meanwhile: grants nothing */
	auth = (Form_pg_authid) GETSTRUCT(tup);
	if (auth->rolsuper)
		*attr = "SUPERUSER";
	else if (auth->rolreplication)
		*attr = "REPLICATION";
	else if (auth->rolbypassrls)
		*attr = "BYPASSRLS";
	else if (auth->rolcreaterole)
		*attr = "CREATEROLE";
	if (*attr)
		why = auth->rolsuper ? "is a superuser" :
			psprintf("has the %s attribute", *attr);
	ReleaseSysCache(tup);
	if (why)
		return why;

	switch (roleid)
	{
		case ROLE_PG_EXECUTE_SERVER_PROGRAM:
			return "runs programs as the server's operating system user";
		case ROLE_PG_READ_SERVER_FILES:
			return "reads any file the server's operating system user can read";
		case ROLE_PG_WRITE_SERVER_FILES:
			return "writes any file the server's operating system user can write";
		case ROLE_PG_READ_ALL_DATA:
			return "reads every table in every database";
		case ROLE_PG_WRITE_ALL_DATA:
			return "writes every table in every database";
	}
	return NULL;
}

/*
 * Refuse a role that is privileged, itself or through any chain of
 * memberships, unless secretsmgr.allow_privileged_roles is on: whoever
 * reads the secret logs in as the role and can SET ROLE to any role it is
 * a member of (INHERIT or not).  A breadth-first walk of pg_auth_members
 * through the syscache (no SQL: a CREATEROLE caller cannot read
 * pg_authid), so the path reported is a shortest one.  Runs at binding
 * time and again before every password change, since memberships change
 * after binding.
 */
void
sm_registry_check_unprivileged(const char *role_name)
{
	Oid			roleid;
	List	   *queue;
	List	   *parent;			/* parent[i]: index in queue of i's member */
	int			found = -1;
	const char *why = NULL;
	const char *attr = NULL;
	StringInfoData path;
	List	   *chain = NIL;

	roleid = get_role_oid(role_name, true);
	if (!OidIsValid(roleid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", role_name)));
	if (sm_guc_allow_privileged_roles)
		return;

	queue = list_make1_oid(roleid);
	parent = list_make1_int(-1);
	for (int i = 0; i < list_length(queue) && found < 0; i++)
	{
		Oid			member = list_nth_oid(queue, i);
		CatCList   *groups;

		CHECK_FOR_INTERRUPTS();
		why = privilege_of(member, &attr);
		if (why)
		{
			found = i;
			break;
		}

		groups = SearchSysCacheList1(AUTHMEMMEMROLE, ObjectIdGetDatum(member));
		for (int j = 0; j < groups->n_members; j++)
		{
			Form_pg_auth_members m = (Form_pg_auth_members)
			GETSTRUCT(&groups->members[j]->tuple);

			if (!list_member_oid(queue, m->roleid))
			{
				queue = lappend_oid(queue, m->roleid);
				parent = lappend_int(parent, i);
			}
		}
		ReleaseSysCacheList(groups);
	}
	if (found < 0)
		return;

	if (found == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" is privileged and cannot be managed by secretsmgr",
						role_name),
				 errdetail("Role \"%s\" %s.", role_name, why),
				 attr ?
				 errhint("Run ALTER ROLE %s NO%s, bind an unprivileged login role, or have a superuser turn on \"secretsmgr.allow_privileged_roles\".",
						 quote_identifier(role_name), attr) :
				 errhint("Bind an unprivileged login role, or have a superuser turn on \"secretsmgr.allow_privileged_roles\".")));

	/* the chain of memberships, from the role to the privileged group */
	for (int i = found; i >= 0; i = list_nth_int(parent, i))
		chain = lcons_oid(list_nth_oid(queue, i), chain);
	initStringInfo(&path);
	for (int i = 0; i < list_length(chain); i++)
		appendStringInfo(&path, "%s\"%s\"", i > 0 ? " -> " : "",
						 GetUserNameFromId(list_nth_oid(chain, i), false));

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("role \"%s\" is privileged and cannot be managed by secretsmgr",
					role_name),
			 errdetail("Role \"%s\" is a member of \"%s\" (%s), which %s.",
					   role_name,
					   GetUserNameFromId(list_nth_oid(queue, found), false),
					   path.data, why),
			 errhint("Run REVOKE %s FROM %s, bind an unprivileged login role, or have a superuser turn on \"secretsmgr.allow_privileged_roles\".",
					 quote_identifier(GetUserNameFromId(list_nth_oid(chain, 1), false)),
					 quote_identifier(role_name))));
}

/* The role must exist and be able to log in. */
static void
check_login_role(const char *role_name)
{
	HeapTuple	tup;
	bool		canlogin;

	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(role_name));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", role_name)));
	canlogin = ((Form_pg_authid) GETSTRUCT(tup))->rolcanlogin;
	ReleaseSysCache(tup);

	if (!canlogin)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("role \"%s\" cannot log in", role_name),
				 errdetail("Only a role with the LOGIN attribute can have its password rotated."),
				 errhint("Run ALTER ROLE %s LOGIN, or manage a login role.",
						 quote_identifier(role_name))));
}

/* The binding check_no_conflict compares every other row with. */
typedef struct NewBinding
{
	const char *secret_id;
	const char *arn;
	const char *role_name;
	const char *clone_role;
} NewBinding;

/* Raise if row (another secret's binding) shares a role or the ARN. */
static bool
refuse_conflict(const SmBinding *row, void *arg)
{
	NewBinding *nb = arg;
	const char *id = row->secret_id;
	const char *roles[2];

	if (strcmp(id, nb->secret_id) == 0)
		return false;			/* the row being updated */

	if (nb->arn && row->secret_arn && strcmp(nb->arn, row->secret_arn) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("secret \"%s\" is already managed as \"%s\"", nb->secret_id, id),
				 errdetail("Both names resolve to the secret with ARN \"%s\".", nb->arn),
				 errhint("Call secretsmgr_unmanage('%s') first, or keep the existing binding.", id)));

	roles[0] = row->role_name;
	roles[1] = row->clone_role;
	for (int i = 0; i < 2; i++)
	{
		if (roles[i] == NULL)
			continue;
		if (strcmp(roles[i], nb->role_name) == 0 ||
			(nb->clone_role && strcmp(roles[i], nb->clone_role) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("role \"%s\" is already bound to secret \"%s\"", roles[i], id),
					 errdetail("A role can be rotated by one secret only."),
					 errhint("Call secretsmgr_unmanage('%s') first.", id)));
	}
	return false;
}

/*
 * Refuse a binding that would share a role or an ARN with another secret's
 * binding (two secrets would then fight over one password).
 */
static void
check_no_conflict(const char *secret_id, const char *arn,
				  const char *role_name, const char *clone_role)
{
	NewBinding	nb;

	nb.secret_id = secret_id;
	nb.arn = arn;
	nb.role_name = role_name;
	nb.clone_role = clone_role;
	(void) registry_scan(refuse_conflict, &nb);
}

/*
 * DescribeSecret: the secret must exist and not be scheduled for deletion.
 * Returns its ARN.
 */
static char *
resolve_arn(const char *secret_id)
{
	SmSecretDescription desc;

	sm_client_describe(secret_id, &desc);
	if (desc.deleted)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("secret \"%s\" is scheduled for deletion", secret_id),
				 errhint("Restore it with RestoreSecret, or manage another secret.")));
	if (desc.arn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("DescribeSecret returned no ARN for secret \"%s\"", secret_id)));
	return desc.arn;
}

/* Run one utility statement as the current user (no password in it). */
static void
spi_exec(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
}

/* A membership the clone must be given: the group and its options. */
typedef struct SmGroupGrant
{
	Oid			roleid;
	char	   *name;
	bool		admin;
	bool		inherit;		/* from PostgreSQL 16 (compat.h) */
	bool		set;
} SmGroupGrant;

/* Order grants by group name, so GRANTs run in a stable order. */
static int
group_grant_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(((SmGroupGrant *) lfirst(a))->name,
				  ((SmGroupGrant *) lfirst(b))->name);
}

/*
 * The groups roleoid is a member of that cloneoid is not (cloneoid itself
 * left out), as a List of SmGroupGrant sorted by name.  Read through the
 * syscache, which needs no privilege on pg_authid.
 */
static List *
missing_groups(Oid roleoid, Oid cloneoid)
{
	CatCList   *of_role;
	CatCList   *of_clone;
	List	   *result = NIL;

	of_role = SearchSysCacheList1(AUTHMEMMEMROLE, ObjectIdGetDatum(roleoid));
	of_clone = SearchSysCacheList1(AUTHMEMMEMROLE, ObjectIdGetDatum(cloneoid));
	for (int i = 0; i < of_role->n_members; i++)
	{
		Form_pg_auth_members m = (Form_pg_auth_members)
		GETSTRUCT(&of_role->members[i]->tuple);
		bool		has = (m->roleid == cloneoid);
		SmGroupGrant *g = NULL;
		ListCell   *lc;

		/* one grant per group: from 16 each grantor's grant is a row */
		foreach(lc, result)
		{
			if (((SmGroupGrant *) lfirst(lc))->roleid == m->roleid)
				g = lfirst(lc);
		}
		for (int j = 0; j < of_clone->n_members && !has; j++)
			has = ((Form_pg_auth_members)
				   GETSTRUCT(&of_clone->members[j]->tuple))->roleid == m->roleid;
		if (has)
			continue;
		if (g == NULL)
		{
			g = palloc0(sizeof(SmGroupGrant));
			g->roleid = m->roleid;
			g->name = GetUserNameFromId(m->roleid, false);
			result = lappend(result, g);
		}
		g->admin |= m->admin_option;
		g->inherit |= SM_AUTHMEM_INHERIT(m);
		g->set |= SM_AUTHMEM_SET(m);
	}
	ReleaseSysCacheList(of_clone);
	ReleaseSysCacheList(of_role);
	list_sort(result, group_grant_cmp);
	return result;
}

/*
 * Create <role>_clone, or adopt an existing one, as a LOGIN role with the
 * memberships of role and their options (compat.h).  A new clone copies the
 * role's attributes (so both users hold the same privileges) but gets no
 * password: the first rotation gives it one.  Runs as the caller, so CREATE ROLE and GRANT apply their
 * own privilege checks.
 */
static void
ensure_clone(const char *role_name, const char *clone_name)
{
	HeapTuple	tup;
	StringInfoData sql;
	Oid			roleoid;
	Oid			cloneoid;
	ListCell   *lc;

	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(role_name));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for role \"%s\"", role_name);
	roleoid = ((Form_pg_authid) GETSTRUCT(tup))->oid;

	initStringInfo(&sql);
	cloneoid = get_role_oid(clone_name, true);
	if (!OidIsValid(cloneoid))
	{
		Form_pg_authid auth = (Form_pg_authid) GETSTRUCT(tup);

		appendStringInfo(&sql, "CREATE ROLE %s LOGIN", quote_identifier(clone_name));
		if (auth->rolsuper)
			appendStringInfoString(&sql, " SUPERUSER");
		if (auth->rolcreatedb)
			appendStringInfoString(&sql, " CREATEDB");
		if (auth->rolcreaterole)
			appendStringInfoString(&sql, " CREATEROLE");
		if (!auth->rolinherit)
			appendStringInfoString(&sql, " NOINHERIT");
		if (auth->rolreplication)
			appendStringInfoString(&sql, " REPLICATION");
		if (auth->rolbypassrls)
			appendStringInfoString(&sql, " BYPASSRLS");
		if (auth->rolconnlimit >= 0)
			appendStringInfo(&sql, " CONNECTION LIMIT %d", auth->rolconnlimit);
	}
	ReleaseSysCache(tup);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (OidIsValid(cloneoid))
	{
		/* Adopt: it must be as unprivileged as any managed role, and log in. */
		sm_registry_check_unprivileged(clone_name);
		if (sm_verify_role_usable(clone_name) == SM_VERIFY_CANNOT_LOGIN)
		{
			resetStringInfo(&sql);
			appendStringInfo(&sql, "ALTER ROLE %s LOGIN", quote_identifier(clone_name));
			spi_exec(sql.data);
		}
	}
	else
	{
		spi_exec(sql.data);
		CommandCounterIncrement();
		cloneoid = get_role_oid(clone_name, false);
	}

	/*
	 * Every group of role that the clone is not yet a member of, read from
	 * the syscache: pg_authid is not readable by a CREATEROLE caller.
	 */
	foreach(lc, missing_groups(roleoid, cloneoid))
	{
		SmGroupGrant *g = lfirst(lc);

		resetStringInfo(&sql);
		appendStringInfo(&sql, "GRANT %s TO %s", quote_identifier(g->name),
						 quote_identifier(clone_name));
		if (SM_GRANT_HAS_INHERIT_SET)
			appendStringInfo(&sql, " WITH ADMIN %s, INHERIT %s, SET %s",
							 g->admin ? "TRUE" : "FALSE",
							 g->inherit ? "TRUE" : "FALSE",
							 g->set ? "TRUE" : "FALSE");
		else if (g->admin)
			appendStringInfoString(&sql, " WITH ADMIN OPTION");
		spi_exec(sql.data);
	}

	SPI_finish();
	CommandCounterIncrement();
}

/* One write to the registry, done as the extension owner. */
typedef struct OwnerWrite
{
	const char *sql;			/* schema-qualified throughout */
	int			nargs;
	Oid		   *argtypes;
	Datum	   *values;
	const char *nulls;
	int			expect;			/* SPI_OK_INSERT or SPI_OK_DELETE */
	uint64		processed;		/* out */
} OwnerWrite;

/* Under sm_runas_owner: run the write, check its result code. */
static void
owner_write(void *arg)
{
	OwnerWrite *w = arg;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args(w->sql, w->nargs, w->argtypes, w->values,
							   w->nulls, false, 0);
	if (rc != w->expect)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	w->processed = SPI_processed;
	SPI_finish();
}

/* Run sql (with its arguments) as the extension owner; the rows it wrote. */
static uint64
owner_exec(const char *sql, int nargs, Oid *argtypes, Datum *values,
		   const char *nulls, int expect)
{
	OwnerWrite	call;

	call.sql = sql;
	call.nargs = nargs;
	call.argtypes = argtypes;
	call.values = values;
	call.nulls = nulls;
	call.expect = expect;
	sm_runas_owner(owner_write, &call);
	return call.processed;
}

/* Register (or update) the binding of secret_id to role_name. */
void
sm_registry_manage(const char *secret_id, const char *role_name,
				   const char *strategy, Datum rotation_interval,
				   bool interval_isnull)
{
	bool		alternating;
	char	   *clone_name = NULL;
	char	   *arn;
	char	   *schema;
	char	   *sql;
	char	   *created_by;
	Oid			argtypes[7] = {TEXTOID, TEXTOID, NAMEOID, NAMEOID, TEXTOID, INTERVALOID, NAMEOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	if (strcmp(strategy, "single") == 0)
		alternating = false;
	else if (strcmp(strategy, "alternating") == 0)
		alternating = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid rotation strategy \"%s\"", strategy),
				 errhint("Use \"single\" or \"alternating\".")));

	if (!interval_isnull)
	{
		Interval   *iv = DatumGetIntervalP(rotation_interval);

		if (iv->month < 0 || iv->day < 0 || iv->time < 0 ||
			(iv->month == 0 && iv->day == 0 && iv->time == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rotation interval must be positive")));
	}

	check_login_role(role_name);
	sm_registry_check_unprivileged(role_name);

	if (alternating)
	{
		if (strlen(role_name) + strlen(SM_CLONE_SUFFIX) > NAMEDATALEN - 1)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("role name \"%s\" is too long for the \"alternating\" strategy",
							role_name),
					 errdetail("The clone role \"%s%s\" would be longer than %d characters.",
							   role_name, SM_CLONE_SUFFIX, NAMEDATALEN - 1),
					 errhint("Use a role name of at most %d characters, or the \"single\" strategy.",
							 (int) (NAMEDATALEN - 1 - strlen(SM_CLONE_SUFFIX)))));
		clone_name = psprintf("%s%s", role_name, SM_CLONE_SUFFIX);
	}

	/* The secret must exist; remember its ARN (the Lambda passes the ARN). */
	arn = resolve_arn(secret_id);
	check_no_conflict(secret_id, arn, role_name, clone_name);

	if (alternating)
		ensure_clone(role_name, clone_name);

	created_by = GetUserNameFromId(GetUserId(), false);
	schema = sm_extension_schema_quoted();
	sql = psprintf("INSERT INTO %s.secretsmgr_managed AS m"
				   " (secret_id, secret_arn, role_name, clone_role, strategy,"
				   "  rotation_interval, created_by)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7)"
				   " ON CONFLICT (secret_id) DO UPDATE SET"
				   "  secret_arn = EXCLUDED.secret_arn,"
				   "  role_name = EXCLUDED.role_name,"
				   "  clone_role = EXCLUDED.clone_role,"
				   "  strategy = EXCLUDED.strategy,"
				   "  rotation_interval = EXCLUDED.rotation_interval",
				   schema);

	values[0] = CStringGetTextDatum(secret_id);
	values[1] = CStringGetTextDatum(arn);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(role_name));
	values[3] = clone_name ? DirectFunctionCall1(namein, CStringGetDatum(clone_name)) : (Datum) 0;
	nulls[3] = clone_name ? ' ' : 'n';
	values[4] = CStringGetTextDatum(strategy);
	values[5] = rotation_interval;
	nulls[5] = interval_isnull ? 'n' : ' ';
	values[6] = DirectFunctionCall1(namein, CStringGetDatum(created_by));

	(void) owner_exec(sql, 7, argtypes, values, nulls, SPI_OK_INSERT);

	CommandCounterIncrement();
}

/* Delete the binding registered as secret_id (its secret_id column). */
bool
sm_registry_unmanage(const char *secret_id)
{
	char	   *sql;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	bool		deleted;

	sql = psprintf("DELETE FROM %s.secretsmgr_managed"
				   " WHERE secret_id OPERATOR(pg_catalog.=) $1",
				   sm_extension_schema_quoted());
	values[0] = CStringGetTextDatum(secret_id);

	deleted = owner_exec(sql, 1, argtypes, values, NULL, SPI_OK_DELETE) > 0;

	CommandCounterIncrement();
	return deleted;
}

/* The rotation lock of the secret whose ARN (or registered id) is key. */
void
sm_registry_lock_key(const char *key)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, InvalidOid, SM_LOCK_CLASS,
						 hash_bytes((const unsigned char *) key, strlen(key)), 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}
