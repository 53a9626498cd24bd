/*
 * extension.c
 *		Where secretsmgr is installed in this database: its schema and owner.
 *
 * Read from pg_extension with a catalog scan (no SPI).  The schema names
 * the extension's tables in SQL text; the owner is who the tables are
 * written as (runas.c).  Calls nothing else of secretsmgr.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "extension.h"

#define SM_EXTENSION_NAME	"secretsmgr"

/* pg_extension facts about secretsmgr; false when it is not installed. */
bool
sm_extension_find(Oid *nspid, Oid *owner)
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
	if (!sm_extension_find(nspid, owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" is not installed in this database",
						SM_EXTENSION_NAME),
				 errhint("Run CREATE EXTENSION %s.", SM_EXTENSION_NAME)));
}

/* Schema of the extension, quoted for SPI text. */
char *
sm_extension_schema_quoted(void)
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
sm_extension_owner(void)
{
	Oid			owner;

	require_extension(NULL, &owner);
	return owner;
}
