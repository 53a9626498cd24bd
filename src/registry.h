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

/* The extension's user id switch, for writing the tables it owns. */
typedef struct SmOwnerSwitch
{
	Oid			save_userid;
	int			save_sec_context;
} SmOwnerSwitch;

/*
 * Find the binding whose secret_id or secret_arn equals secret_id_or_arn
 * (or whose ARN names that secret).  Reads the latest committed state plus
 * this transaction's own changes.  False when there is none.
 */
extern bool sm_registry_lookup(const char *secret_id_or_arn, SmBinding *out);

/*
 * OIDs of the roles (role and clone) bound to secret_id, at most max.
 * Returns 0 at once when the registry is empty or the extension is absent.
 */
extern int	sm_registry_bound_roles(const char *secret_id, Oid *out, int max);

/*
 * Register (or update) a binding: checks the role, resolves the ARN,
 * creates or adopts the clone role for "alternating".  The caller's right
 * to alter role_name is checked by the SQL entry point.
 */
extern void sm_registry_manage(const char *secret_id, const char *role_name,
							   const char *strategy, Datum rotation_interval,
							   bool interval_isnull);

/* Delete the binding of secret_id (or its ARN); true if one was deleted. */
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

/*
 * Run as the extension's owner until sm_registry_restore_user (an error
 * restores the user id through the (sub)transaction abort).
 */
extern void sm_registry_become_owner(SmOwnerSwitch *sw);
extern void sm_registry_restore_user(const SmOwnerSwitch *sw);

#endif							/* SECRETSMGR_REGISTRY_H */
