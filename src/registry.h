/*
 * registry.h
 *		Which secret may rotate which role: the secretsmgr_managed table.
 */
#ifndef SECRETSMGR_REGISTRY_H
#define SECRETSMGR_REGISTRY_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* One row of secretsmgr_managed (strings palloc'd). */
typedef struct SmBinding
{
	char	   *secret_id;		/* as registered */
	char	   *secret_arn;		/* resolved at registration; may be NULL */
	char	   *role_name;
	char	   *clone_role;		/* NULL unless alternating */
	char	   *strategy;		/* "single" or "alternating" */
	bool		alternating;
	bool		has_interval;	/* rotation_interval is not NULL */
	Interval	rotation_interval;
} SmBinding;

/*
 * Find the binding whose secret_id or secret_arn equals secret_id_or_arn
 * (or whose ARN names that secret).  Reads the latest committed state plus
 * this transaction's own changes.  False when there is none.
 */
extern bool sm_registry_lookup(const char *secret_id_or_arn, SmBinding *out);

/* The same for the binding whose role_name or clone_role is role_name. */
extern bool sm_registry_lookup_role(const char *role_name, SmBinding *out);
/* A binding with its schedule: what health and the scheduler look at. */
typedef struct SmManaged
{
	char	   *secret_id;
	char	   *secret_arn;		/* may be NULL */
	char	   *role_name;
	char	   *clone_role;		/* may be NULL */
	char	   *strategy;
	bool		has_interval;
	Interval	rotation_interval;
	bool		has_last;		/* a successful rotation is recorded */
	TimestampTz last_rotated;
} SmManaged;

/* Every binding (SmBinding *), ordered by secret_id, read like sm_registry_lookup. */
extern List *sm_registry_list(void);

/*
 * Every binding (SmManaged *), ordered by secret_id, with its last
 * successful rotation from the history.
 */
extern List *sm_registry_managed(void);

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

/*
 * Serialise with every rotation of the secret whose ARN (or, without one,
 * registered id) is key, until the end of the transaction.
 */
extern void sm_registry_lock_key(const char *key);

#endif							/* SECRETSMGR_REGISTRY_H */
