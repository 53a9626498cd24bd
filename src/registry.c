/*
 * registry.c
 *		Which secret may rotate which role: the secretsmgr_managed table.
 *
 * Only a row here lets a secret change a role.  The secret's own "username"
 * never decides which role changes: the rotation engine checks it against
 * the binding and refuses a secret that names another role.
 *
 * Invariants kept here:
 * - a bound role exists, can log in, and is neither SUPERUSER, REPLICATION
 *   nor BYPASSRLS unless secretsmgr.allow_privileged_roles is on (checked at
 *   registration; the rotation checks the role again);
 * - a role (or clone) is bound to at most one secret, and a secret (by ARN)
 *   to at most one row, so two bindings never fight over one password;
 * - for "alternating", <role>_clone exists, can log in and is a member of
 *   every role <role> is a member of.
 *
 * The tables stay revoked from PUBLIC: rows are written through SPI under
 * the extension owner's user id (SECURITY_LOCAL_USERID_CHANGE), while the
 * clone role is created and granted under the caller's own id, so
 * PostgreSQL's own privilege checks apply to it.  No SQL text built here
 * ever carries a password.
 *
 * Reads scan the table directly (no SPI, no planning): the read path calls
 * sm_registry_bound_roles() on every cache store, and an empty registry
 * must cost next to nothing.
 */
#include "postgres.h"

#include "smjson.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"


#include "compat.h"
#include "registry.h"
#include "secretsmgr.h"
#include "smclient.h"
#include "verify.h"

#define SM_EXTENSION_NAME	"secretsmgr"
#define SM_MANAGED_TABLE	"secretsmgr_managed"
#define SM_CLONE_SUFFIX		"_clone"

/* pg_extension facts about secretsmgr; false when it is not installed. */
static bool
extension_info(Oid *nspid, Oid *owner)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(SM_EXTENSION_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_extension ext = (Form_pg_extension) GETSTRUCT(tup);

		if (nspid)
			*nspid = ext->extnamespace;
		if (owner)
			*owner = ext->extowner;
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* The extension must be installed for anything that writes its tables. */
static void
require_extension(Oid *nspid, Oid *owner)
{
	if (!extension_info(nspid, owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" is not installed in this database",
						SM_EXTENSION_NAME),
				 errhint("Run CREATE EXTENSION %s.", SM_EXTENSION_NAME)));
}

/* Schema of the extension, quoted for SPI text. */
char *
sm_registry_schema_quoted(void)
{
	Oid			nspid;
	char	   *nspname;

	require_extension(&nspid, NULL);
	nspname = get_namespace_name(nspid);
	if (nspname == NULL)
		elog(ERROR, "cache lookup failed for namespace %u", nspid);
	return pstrdup(quote_identifier(nspname));
}

/* Owner of the extension (who CREATE EXTENSION ran as). */
Oid
sm_registry_extension_owner(void)
{
	Oid			owner;

	require_extension(NULL, &owner);
	return owner;
}

/* Switch to the extension owner's user id for writing its tables. */
void
sm_registry_become_owner(SmOwnerSwitch *sw)
{
	Oid			owner = sm_registry_extension_owner();

	GetUserIdAndSecContext(&sw->save_userid, &sw->save_sec_context);
	SetUserIdAndSecContext(owner,
						   sw->save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
}

/* Back to the user id saved by sm_registry_become_owner. */
void
sm_registry_restore_user(const SmOwnerSwitch *sw)
{
	SetUserIdAndSecContext(sw->save_userid, sw->save_sec_context);
}

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

/*
 * Scan the registry for the row matching key (by secret_id, ARN, or the
 * name inside the ARN).  The table is tiny; a sequential scan of the latest
 * snapshot is cheaper than planning a query.
 */
static bool
scan_registry(const char *key, SmBinding *out)
{
	Oid			nspid;
	Oid			relid;
	Relation	rel;
	Snapshot	snapshot;
	TableScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	a_id,
				a_arn,
				a_role,
				a_clone,
				a_strategy;
	bool		found = false;

	if (!extension_info(&nspid, NULL))
		return false;
	relid = get_relname_relid(SM_MANAGED_TABLE, nspid);
	if (!OidIsValid(relid))
		return false;

	rel = table_open(relid, AccessShareLock);
	if (RelationGetNumberOfBlocks(rel) == 0)
	{
		table_close(rel, AccessShareLock);
		return false;
	}

	a_id = column_number(rel, "secret_id");
	a_arn = column_number(rel, "secret_arn");
	a_role = column_number(rel, "role_name");
	a_clone = column_number(rel, "clone_role");
	a_strategy = column_number(rel, "strategy");

	snapshot = registry_snapshot();
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);

	while (!found && table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		char	   *id = slot_string(slot, a_id, TEXTOID);
		char	   *arn = slot_string(slot, a_arn, TEXTOID);

		if (strcmp(id, key) == 0 ||
			(arn && strcmp(arn, key) == 0) ||
			arn_names(arn, key))
		{
			found = true;
			if (out)
			{
				out->secret_id = id;
				out->secret_arn = arn;
				out->role_name = slot_string(slot, a_role, NAMEOID);
				out->clone_role = slot_string(slot, a_clone, NAMEOID);
				out->strategy = slot_string(slot, a_strategy, TEXTOID);
				out->alternating = strcmp(out->strategy, "alternating") == 0;
			}
		}
	}

	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return found;
}

/* Find the binding of a secret by its registered id, ARN or name. */
bool
sm_registry_lookup(const char *secret_id_or_arn, SmBinding *out)
{
	return scan_registry(secret_id_or_arn, out);
}

/* Roles whose password change must drop secret_id's cached values. */
int
sm_registry_bound_roles(const char *secret_id, Oid *out, int max)
{
	SmBinding	b;
	int			n = 0;
	Oid			oid;

	if (max <= 0 || !scan_registry(secret_id, &b))
		return 0;
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

/* Refuse a role with SUPERUSER, REPLICATION or BYPASSRLS unless allowed. */
void
sm_registry_check_unprivileged(const char *role_name)
{
	HeapTuple	tup;
	Form_pg_authid auth;
	const char *attr = NULL;

	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(role_name));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", role_name)));
	auth = (Form_pg_authid) GETSTRUCT(tup);
	if (auth->rolsuper)
		attr = "SUPERUSER";
	else if (auth->rolreplication)
		attr = "REPLICATION";
	else if (auth->rolbypassrls)
		attr = "BYPASSRLS";
	ReleaseSysCache(tup);

	if (attr && !sm_guc_allow_privileged_roles)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" is privileged and cannot be managed by secretsmgr",
						role_name),
				 errdetail("Role \"%s\" has the %s attribute.", role_name, attr),
				 errhint("Manage an unprivileged login role, or set \"secretsmgr.allow_privileged_roles\" to on.")));
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

/*
 * Refuse a binding that would share a role or an ARN with another secret's
 * binding (two secrets would then fight over one password).
 */
static void
check_no_conflict(const char *secret_id, const char *arn,
				  const char *role_name, const char *clone_role)
{
	Oid			nspid;
	Oid			relid;
	Relation	rel;
	Snapshot	snapshot;
	TableScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	a_id,
				a_arn,
				a_role,
				a_clone;

	if (!extension_info(&nspid, NULL) ||
		!OidIsValid(relid = get_relname_relid(SM_MANAGED_TABLE, nspid)))
		return;

	rel = table_open(relid, AccessShareLock);
	a_id = column_number(rel, "secret_id");
	a_arn = column_number(rel, "secret_arn");
	a_role = column_number(rel, "role_name");
	a_clone = column_number(rel, "clone_role");
	snapshot = registry_snapshot();
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		char	   *id = slot_string(slot, a_id, TEXTOID);
		char	   *other_arn = slot_string(slot, a_arn, TEXTOID);
		char	   *roles[2];

		if (strcmp(id, secret_id) == 0)
			continue;			/* the row being updated */

		if (arn && other_arn && strcmp(arn, other_arn) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("secret \"%s\" is already managed as \"%s\"", secret_id, id),
					 errdetail("Both names resolve to the secret with ARN \"%s\".", arn),
					 errhint("Call secretsmgr_unmanage('%s') first, or keep the existing binding.", id)));

		roles[0] = slot_string(slot, a_role, NAMEOID);
		roles[1] = slot_string(slot, a_clone, NAMEOID);
		for (int i = 0; i < 2; i++)
		{
			if (roles[i] == NULL)
				continue;
			if (strcmp(roles[i], role_name) == 0 ||
				(clone_role && strcmp(roles[i], clone_role) == 0))
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_OBJECT),
						 errmsg("role \"%s\" is already bound to secret \"%s\"", roles[i], id),
						 errdetail("A role can be rotated by one secret only."),
						 errhint("Call secretsmgr_unmanage('%s') first.", id)));
		}
	}

	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
}

/*
 * DescribeSecret: the secret must exist and not be scheduled for deletion.
 * Returns its ARN.
 */
static char *
resolve_arn(const char *secret_id)
{
	json_t	   *resp;
	json_t	   *arn;
	char	   *result;

	resp = sm_client_describe_secret(secret_id);
	if (json_object_get(resp, "DeletedDate") != NULL &&
		!json_is_null(json_object_get(resp, "DeletedDate")))
	{
		json_decref(resp);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("secret \"%s\" is scheduled for deletion", secret_id),
				 errhint("Restore it with RestoreSecret, or manage another secret.")));
	}
	arn = json_object_get(resp, "ARN");
	if (!json_is_string(arn))
	{
		json_decref(resp);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("DescribeSecret returned no ARN for secret \"%s\"", secret_id)));
	}
	result = pstrdup(json_string_value(arn));
	json_decref(resp);
	return result;
}

/* Run one utility statement as the current user (no password in it). */
static void
spi_exec(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
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
	Datum		args[2];
	Oid			argtypes[2] = {OIDOID, OIDOID};
	int			rc;

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

	/* Every group of role that the clone is not yet a member of. */
	args[0] = ObjectIdGetDatum(roleoid);
	args[1] = ObjectIdGetDatum(cloneoid);
	rc = SPI_execute_with_args(
							   "SELECT g.rolname, " SM_GRANT_OPTIONS_SQL
							   "  FROM pg_catalog.pg_auth_members m"
							   "  JOIN pg_catalog.pg_authid g ON g.oid = m.roleid"
							   " WHERE m.member = $1 AND m.roleid <> $2"
							   "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members c"
							   "                    WHERE c.member = $2 AND c.roleid = m.roleid)"
							   " GROUP BY g.rolname ORDER BY g.rolname",
							   2, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));

	if (SPI_processed > 0)
	{
		uint64		n = SPI_processed;
		SPITupleTable *tuptable = SPI_tuptable;
		List	   *grants = NIL;
		ListCell   *lc;

		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	row = tuptable->vals[i];
			char	   *group = SPI_getvalue(row, tuptable->tupdesc, 1);
			char	   *options = SPI_getvalue(row, tuptable->tupdesc, 2);

			grants = lappend(grants,
							 psprintf("GRANT %s TO %s%s", quote_identifier(group),
									  quote_identifier(clone_name), options));
		}
		foreach(lc, grants)
			spi_exec((char *) lfirst(lc));
	}

	SPI_finish();
	CommandCounterIncrement();
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
	SmOwnerSwitch sw;
	Oid			argtypes[7] = {TEXTOID, TEXTOID, NAMEOID, NAMEOID, TEXTOID, INTERVALOID, NAMEOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;

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
	schema = sm_registry_schema_quoted();
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

	sm_registry_become_owner(&sw);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args(sql, 7, argtypes, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	SPI_finish();
	sm_registry_restore_user(&sw);

	CommandCounterIncrement();
}

/* Delete the binding of secret_id (by id or ARN). */
bool
sm_registry_unmanage(const char *secret_id)
{
	SmOwnerSwitch sw;
	char	   *sql;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			rc;
	bool		deleted;

	sql = psprintf("DELETE FROM %s.secretsmgr_managed"
				   " WHERE secret_id = $1 OR secret_arn = $1",
				   sm_registry_schema_quoted());
	values[0] = CStringGetTextDatum(secret_id);

	sm_registry_become_owner(&sw);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args(sql, 1, argtypes, values, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	deleted = SPI_processed > 0;
	SPI_finish();
	sm_registry_restore_user(&sw);

	CommandCounterIncrement();
	return deleted;
}
