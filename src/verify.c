/*
 * verify.c
 *		Does a password log in as a role?
 *
 * The answer comes from PostgreSQL's own code: the role's pg_authid row read
 * through the syscache and plain_crypt_verify(), which checks a plain
 * password against a SCRAM-SHA-256 or MD5 verifier exactly as the
 * authentication code does.  Nothing here re-implements SCRAM or MD5.
 *
 * sm_verify_built_password() is the rotation's testSecret: it checks a
 * password whose verifier this backend has just built (scram.c, byte for
 * byte what PostgreSQL's pg_be_scram_build_secret() builds) and stored, by comparing the stored verifier
 * with the built one instead of running PBKDF2 over the password once more
 * (the argument is at the function).
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
#include "common/scram-common.h"
#include "libpq/crypt.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "secretbuf.h"
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

/*
 * Is shadow exactly the verifier built, and a SCRAM-SHA-256 secret that
 * PostgreSQL's own parser accepts?  Zeroes what the parser handed back.
 */
static bool
is_built_verifier(const char *shadow, const char *built)
{
	int			iterations = 0;
	pg_cryptohash_type hash_type = PG_SHA256;
	int			key_length = 0;
	char	   *salt = NULL;
	uint8		stored_key[SCRAM_MAX_KEY_LEN];
	uint8		server_key[SCRAM_MAX_KEY_LEN];
	bool		ok;

	if (built == NULL || strcmp(shadow, built) != 0)
		return false;
	ok = get_password_type(shadow) == PASSWORD_TYPE_SCRAM_SHA_256 &&
		parse_scram_secret(shadow, &iterations, &hash_type, &key_length, &salt,
						   stored_key, server_key) &&
		hash_type == PG_SHA256 && key_length == SCRAM_SHA_256_KEY_LEN &&
		iterations > 0 && salt != NULL && salt[0] != '\0';
	sm_secure_zero(stored_key, sizeof(stored_key));
	sm_secure_zero(server_key, sizeof(server_key));
	if (salt)
		pfree(salt);
	return ok;
}

/*
 * As sm_verify_password, for a password whose verifier this backend has
 * just built with sm_scram_build_secret(password) and handed to
 * ALTER ROLE: built is that verifier string.
 *
 * Why comparing verifiers proves the password, without a second PBKDF2:
 *
 * - built is what PostgreSQL's own code derives from this password (scram.c
 *   computes PBKDF2 with OpenSSL, the rest with PostgreSQL's functions, and
 *   the regress suite proves it identical to pg_be_scram_build_secret()): SASLprep
 *   (the raw password when SASLprep refuses it), a random salt, the
 *   iteration count, SaltedPassword = PBKDF2-HMAC-SHA-256
 *   (scram_SaltedPassword), StoredKey = H(HMAC(SaltedPassword, "Client
 *   Key")), ServerKey = HMAC(SaltedPassword, "Server Key"), in the
 *   "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" form.  It is
 *   the very string ALTER ROLE ... PASSWORD '<plain>' would have stored.
 * - Whether a password logs in depends only on the stored string: SCRAM
 *   authentication and plain_crypt_verify() parse iterations, salt,
 *   StoredKey and ServerKey out of it (parse_scram_secret) and re-derive the
 *   keys from the offered password with the same deterministic functions,
 *   the same salt and the same iteration count (the scram_iterations
 *   setting of the session that built it, from PostgreSQL 16; 4096 before).
 * - So when pg_authid now holds built byte for byte, and PostgreSQL's
 *   parser accepts it as a SCRAM-SHA-256 secret, that re-derivation yields
 *   the stored keys for this password: plain_crypt_verify() would return
 *   STATUS_OK.  Running it would only repeat the PBKDF2 that produced
 *   built.
 * - What the check exists to catch is still caught: anything that left
 *   pg_authid holding something else (ALTER ROLE clearing the password as
 *   empty, a hook that rewrote the statement, a concurrent change) fails
 *   the comparison.  The role's login state is checked as always.
 *
 * When the stored verifier is not built (e.g. an MD5 verifier, or one a
 * hook re-salted), the answer comes from plain_crypt_verify() as in
 * sm_verify_password: this function never answers differently from it.
 */
SmVerifyResult
sm_verify_built_password(const char *role, const char *password,
						 const char *built)
{
	SmVerifyResult state;
	char	   *shadow;
	const char *logdetail = NULL;
	bool		matched;

	state = read_role(role, &shadow);
	if (state == SM_VERIFY_NO_ROLE)
		return state;
	if (shadow == NULL || shadow[0] == '\0')
		return SM_VERIFY_NO_PASSWORD;

	matched = is_built_verifier(shadow, built) ||
		plain_crypt_verify(role, shadow, password, &logdetail) == STATUS_OK;
	sm_secure_zero(shadow, strlen(shadow));

	if (!matched)
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
