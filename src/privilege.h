/*
 * privilege.h
 *		Privilege checks for SQL callers, and the read-only refusal.
 */
#ifndef SECRETSMGR_PRIVILEGE_H
#define SECRETSMGR_PRIVILEGE_H

#include "postgres.h"

/*
 * May the current user change role_name: bind it (fname secretsmgr_manage
 * or secretsmgr_unmanage) or change its password (any other fname)?  Raises
 * 42501 with what is missing.
 */
extern void sm_privilege_check_alter_role(const char *role_name, const char *fname);

/* May the current user change the password of every role bound to secret_id? */
extern void sm_privilege_check_rotate(const char *secret_id, const char *fname);

/*
 * Refuse fname(), which changes something, on a standby or in a read-only
 * transaction (25006, with a detail and a hint).
 */
extern void sm_privilege_refuse_read_only(const char *fname);

#endif							/* SECRETSMGR_PRIVILEGE_H */
