/*
 * verify.h
 *		Does a password log in as a role?  PostgreSQL's own verifier check.
 */
#ifndef SECRETSMGR_VERIFY_H
#define SECRETSMGR_VERIFY_H

#include "postgres.h"

typedef enum SmVerifyResult
{
	SM_VERIFY_OK = 0,			/* the password would log in */
	SM_VERIFY_MISMATCH,			/* wrong password */
	SM_VERIFY_NO_ROLE,			/* no such role */
	SM_VERIFY_NO_PASSWORD,		/* the role has no password */
	SM_VERIFY_CANNOT_LOGIN,		/* right password, but NOLOGIN */
	SM_VERIFY_EXPIRED			/* right password, but rolvaliduntil passed */
} SmVerifyResult;

/*
 * Check password against role's verifier (SCRAM-SHA-256 or MD5) in
 * pg_authid, as this transaction sees it (own ALTER ROLE included).  The
 * password is checked first, so CANNOT_LOGIN and EXPIRED mean the password
 * itself matched.
 */
extern SmVerifyResult sm_verify_password(const char *role, const char *password);

/*
 * The same answer for a password whose SCRAM verifier this backend built
 * (scram.c, identical to pg_be_scram_build_secret()) and stored in this
 * transaction: built is
 * that verifier.  When pg_authid holds exactly it, the password is proved
 * without another PBKDF2 (see verify.c); otherwise as sm_verify_password.
 */
extern SmVerifyResult sm_verify_built_password(const char *role, const char *password,
											   const char *built);

/*
 * Could role log in at all (exists, LOGIN, not past rolvaliduntil)?
 * Returns SM_VERIFY_OK, NO_ROLE, CANNOT_LOGIN or EXPIRED.
 */
extern SmVerifyResult sm_verify_role_usable(const char *role);

/* Did the password itself match (whatever the role's login state)? */
#define SM_VERIFY_PASSWORD_MATCHED(r) \
	((r) == SM_VERIFY_OK || (r) == SM_VERIFY_CANNOT_LOGIN || (r) == SM_VERIFY_EXPIRED)

/* A sentence describing a result for role, for NOTICEs and details. */
extern char *sm_verify_describe(SmVerifyResult r, const char *role);

#endif							/* SECRETSMGR_VERIFY_H */
