/*
 * verify.c
 *		Does a password log in as a role?
 *
 * The answer comes from PostgreSQL's own code: the role's pg_authid row read
 * through the syscache and plain_crypt_verify(), which checks a plain
 * password against a SCRAM-SHA-256 or MD5 verifier exactly as the
 * authentication code does.  Nothing here re-implements SCRAM or MD5.
 *
 * A CommandCounterIncrement() comes first, so the current transaction's own
 * ALTER ROLE (the rotation's setSecret step) is what gets checked.
 *
 * The password is never logged, copied or put into a message; the stored
 * verifier is copied only long enough to check it, then zeroed.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "libpq/crypt.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "secretsmgr.h"
#include "verify.h"

/* Role state from its pg_authid row; *shadow gets a copy of rolpassword. */
static SmVerifyResult
read_role(const char *role, char **shadow)
{
	HeapTuple	tup;
	Form_pg_authid authform;
	Datum		datum;
	bool		isnull;
	SmVerifyResult result = SM_VERIFY_OK;

	if (shadow)
		*shadow = NULL;

	/*
	 * See this transaction's own ALTER ROLE.  (A parallel query has made no
	 * change of its own to see, and may not start a command.)
	 */
	if (!IsInParallelMode())
		CommandCounterIncrement();

	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(role));
	if (!HeapTupleIsValid(tup))
		return SM_VERIFY_NO_ROLE;
	authform = (Form_pg_authid) GETSTRUCT(tup);

	if (!authform->rolcanlogin)
		result = SM_VERIFY_CANNOT_LOGIN;
	else
	{
		datum = SysCacheGetAttr(AUTHNAME, tup, Anum_pg_authid_rolvaliduntil, &isnull);
		if (!isnull && DatumGetTimestampTz(datum) < GetCurrentTimestamp())
			result = SM_VERIFY_EXPIRED;
	}

	if (shadow)
	{
		datum = SysCacheGetAttr(AUTHNAME, tup, Anum_pg_authid_rolpassword, &isnull);
		if (!isnull)
		{
			text	   *t = DatumGetTextPP(datum);

			*shadow = sm_secret_strndup(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		}
	}

	ReleaseSysCache(tup);
	return result;
}

/*
 * Check password against role's stored verifier.  The password is compared
 * first: a match on a role that cannot log in reports why it cannot.
 */
SmVerifyResult
sm_verify_password(const char *role, const char *password)
{
	SmVerifyResult state;
	char	   *shadow;
	const char *logdetail = NULL;
	int			rc;

	state = read_role(role, &shadow);
	if (state == SM_VERIFY_NO_ROLE)
		return state;
	if (shadow == NULL || shadow[0] == '\0')
		return SM_VERIFY_NO_PASSWORD;

	rc = plain_crypt_verify(role, shadow, password, &logdetail);
	sm_secure_zero(shadow, strlen(shadow));

	if (rc != STATUS_OK)
		return SM_VERIFY_MISMATCH;
	return state;
}

/* Could role log in at all, whatever its password? */
SmVerifyResult
sm_verify_role_usable(const char *role)
{
	return read_role(role, NULL);
}

/* A message fragment for r (lower case, no period); never the password. */
char *
sm_verify_describe(SmVerifyResult r, const char *role)
{
	switch (r)
	{
		case SM_VERIFY_OK:
			return psprintf("the password logs in as role \"%s\"", role);
		case SM_VERIFY_MISMATCH:
			return psprintf("the password does not match the password of role \"%s\"", role);
		case SM_VERIFY_NO_ROLE:
			return psprintf("role \"%s\" does not exist", role);
		case SM_VERIFY_NO_PASSWORD:
			return psprintf("role \"%s\" has no password", role);
		case SM_VERIFY_CANNOT_LOGIN:
			return psprintf("role \"%s\" is not allowed to log in", role);
		case SM_VERIFY_EXPIRED:
			return psprintf("the password of role \"%s\" has expired (VALID UNTIL has passed)", role);
	}
	return psprintf("role \"%s\" cannot be verified", role);
}
