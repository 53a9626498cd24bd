/*
 * extension.h
 *		Where secretsmgr is installed in this database: its schema and owner.
 */
#ifndef SECRETSMGR_EXTENSION_H
#define SECRETSMGR_EXTENSION_H

#include "postgres.h"

/*
 * The schema (nspid) and owner of the extension, either may be NULL; false
 * when it is not installed in this database.
 */
extern bool sm_extension_find(Oid *nspid, Oid *owner);

/*
 * The schema the extension lives in (quoted, for SPI text) and its owner;
 * both raise when the extension is not installed.
 */
extern char *sm_extension_schema_quoted(void);
extern Oid	sm_extension_owner(void);

#endif							/* SECRETSMGR_EXTENSION_H */
