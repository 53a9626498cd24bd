/*
 * registry.h
 *		Which secret may rotate which role: the secretsmgr_managed table.
 */
#ifndef SECRETSMGR_REGISTRY_H
#define SECRETSMGR_REGISTRY_H

#include "postgres.h"

/* One row of secretsmgr_managed (strings palloc'd). */
typedef struct SmBinding
{
	char	   *secret_id;		/* as registered */
	char	   *secret_arn;		/* resolved at registration; may be NULL */
	char	   *role_name;
	char	   *clone_role;		/* NULL unless alternating */
	char	   *strategy;		/* "single" or "alternating" */
	bool		alternating;
} SmBinding;

/*
 * Find the binding whose secret_id or secret_arn equals secret_id_or_arn
 * (or whose ARN names that secret).  Reads the latest committed state plus
 * this transaction's own changes.  False when there is none.
 */
extern bool sm_registry_lookup(const char *secret_id_or_arn, SmBinding *out);

/* The same for the binding whose role_name or clone_role is role_name. */
extern bool sm_registry_lookup_role(const char *role_name, SmBinding *out);

/*
 * OIDs of the roles (role and clone) bound to secret_id, at most max, and
 * (if role_version_id is not NULL) the version whose password secretsmgr
 * last gave one of them, from the rotation history, or NULL.  Returns 0
 * at once when the registry is empty or the extension is absent.
 */
extern int	sm_registry_bound_roles(const char *secret_id, Oid *out, int max,
									char **role_version_id);


/*
 * Register (or update) a binding: checks the role, resolves the ARN,
 * creates or adopts the clone role for "alternating".  The caller's right
 * to alter role_name is checked by the SQL entry point.
 */
extern void sm_registry_manage(const char *secret_id, const char *role_name,
							   const char *strategy, Datum rotation_interval,
							   bool interval_isnull);

/*
 * Delete the binding registered as secret_id (the secret_id of the row
 * sm_registry_lookup found); true if one was deleted.
 */
extern bool sm_registry_unmanage(const char *secret_id);

/*
 * Refuse a role that is privileged (SUPERUSER, REPLICATION, BYPASSRLS,
 * CREATEROLE, or a member through any chain of such a role or of a
 * predefined role reaching the server's files, programs or all data) unless
 * secretsmgr.allow_privileged_roles is on.  Raises when the role is absent.
 */
extern void sm_registry_check_unprivileged(const char *role_name);

/* The schema the extension lives in (quoted, for SPI text) and its owner. */
extern char *sm_registry_schema_quoted(void);
extern Oid	sm_registry_extension_owner(void);

#endif							/* SECRETSMGR_REGISTRY_H */
