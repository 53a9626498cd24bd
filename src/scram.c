/*-------------------------------------------------------------------------
 *
 * scram.c
 *		SCRAM-SHA-256 verifiers for ALTER ROLE, with OpenSSL's PBKDF2.
 *
 * A rotation stores a verifier, never a plain password, so that no SQL text
 * or hook sees the password.  PostgreSQL's own builder runs PBKDF2 as a loop
 * of HMAC calls (scram_SaltedPassword); OpenSSL's PKCS5_PBKDF2_HMAC computes
 * the same function about three times faster, and a rotation pays for it
 * once.  Everything around PBKDF2 is PostgreSQL's: SASLprep is its
 * pg_saslprep(), with its rule that a password SASLprep refuses (invalid
 * UTF-8, prohibited characters) is used as is; the salt length, the
 * iteration count (the scram_iterations setting from 16) and the text form
 * "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" are the ones
 * pg_be_scram_build_secret() uses.  The regress suite (sql/scram.sql, through
 * secretsmgr_scram_selftest in scram_selftest.c) proves the result byte for
 * byte identical to PostgreSQL's over ten thousand generated passwords.
 *
 * Invariant: every buffer that held the password, its SASLprep'ed form,
 * the salted password or a key derived from it is zeroed before this file
 * lets go of it; the verifier itself is returned in a secret buffer.
 *
 * src/scram.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "common/base64.h"
#include "common/saslprep.h"
#include "common/scram-common.h"

#include "compat.h"
#include "scram.h"
#include "backend.h"
#include "secretbuf.h"
#include "settings.h"
#include "stats.h"

/* HMAC-SHA-256(key, text) into out (SCRAM_SHA_256_KEY_LEN bytes). */
static bool
hmac_sha256(const uint8 *key, const char *text, uint8 *out)
{
	unsigned int outlen = 0;

	return HMAC(EVP_sha256(), key, SCRAM_SHA_256_KEY_LEN,
				(const unsigned char *) text, strlen(text),
				out, &outlen) != NULL && outlen == SCRAM_SHA_256_KEY_LEN;
}

/* Append the base64 form of src[0..len-1] at *p, advancing it. */
static void
append_b64(char **p, const uint8 *src, int len)
{
	int			n = pg_b64_encode(src, len, *p, pg_b64_enc_len(len));

	if (n < 0)
		elog(ERROR, "could not encode a SCRAM verifier");
	*p += n;
}

/*
 * The verifier of an already SASLprep'ed password (scram_build_secret's
 * input), computed with OpenSSL.  Raises only on an OpenSSL failure, with
 * every intermediate buffer zeroed.
 */
static char *
build_prepared(const char *prepared, const uint8 *salt, int saltlen,
			   int iterations)
{
	uint8		salted[SCRAM_SHA_256_KEY_LEN];
	uint8		client_key[SCRAM_SHA_256_KEY_LEN];
	uint8		stored_key[SCRAM_SHA_256_KEY_LEN];
	uint8		server_key[SCRAM_SHA_256_KEY_LEN];
	bool		ok;
	size_t		maxlen;
	char	   *result = NULL;
	char	   *p;

	ok = PKCS5_PBKDF2_HMAC(prepared, (int) strlen(prepared),
						   salt, saltlen, iterations, EVP_sha256(),
						   SCRAM_SHA_256_KEY_LEN, salted) == 1 &&
		hmac_sha256(salted, "Client Key", client_key) &&
		SHA256(client_key, SCRAM_SHA_256_KEY_LEN, stored_key) != NULL &&
		hmac_sha256(salted, "Server Key", server_key);
	sm_secure_zero(salted, sizeof(salted));
	sm_secure_zero(client_key, sizeof(client_key));

	if (ok)
	{
		maxlen = strlen("SCRAM-SHA-256") + 1 + 10 + 1 +
			pg_b64_enc_len(saltlen) + 1 +
			pg_b64_enc_len(SCRAM_SHA_256_KEY_LEN) + 1 +
			pg_b64_enc_len(SCRAM_SHA_256_KEY_LEN) + 1;
		result = sm_secret_alloc(maxlen);
		p = result + snprintf(result, maxlen, "SCRAM-SHA-256$%d:", iterations);
		append_b64(&p, salt, saltlen);
		*p++ = '$';
		append_b64(&p, stored_key, SCRAM_SHA_256_KEY_LEN);
		*p++ = ':';
		append_b64(&p, server_key, SCRAM_SHA_256_KEY_LEN);
		*p = '\0';
	}
	sm_secure_zero(stored_key, sizeof(stored_key));
	sm_secure_zero(server_key, sizeof(server_key));

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute a SCRAM-SHA-256 verifier"),
				 errdetail("OpenSSL's PBKDF2 or HMAC-SHA-256 failed.")));
	return result;
}

/* See scram.h: the verifier for a given salt and iteration count. */
char *
sm_scram_build_secret_salted(const char *password, const uint8 *salt,
							 int saltlen, int iterations)
{
	char	   *prep = NULL;
	char	   *volatile result = NULL;

	Assert(password != NULL && salt != NULL && saltlen > 0 && iterations > 0);

	/*
	 * PostgreSQL's rule (auth-scram.c): SASLprep when it can, else the
	 * password as given.  Only success hands back a (palloc'd) copy.
	 */
	if (pg_saslprep(password, &prep) != SASLPREP_SUCCESS)
		prep = NULL;

	PG_TRY();
	{
		result = build_prepared(prep ? prep : password, salt, saltlen,
								iterations);
	}
	PG_FINALLY();
	{
		if (prep != NULL)
		{
			sm_secure_zero(prep, strlen(prep));
			pfree(prep);
		}
	}
	PG_END_TRY();
	return result;
}

/* See scram.h: a new verifier with a random salt, at the server's count. */
char *
sm_scram_build_secret(const char *password)
{
	uint8		salt[SM_SCRAM_SALT_LEN];

	if (!pg_strong_random(salt, sizeof(salt)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random salt")));
	return sm_scram_build_secret_salted(password, salt, sizeof(salt),
										SM_SCRAM_ITERATIONS);
}
