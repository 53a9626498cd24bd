/*
 * scram.h
 *		SCRAM-SHA-256 verifiers built with OpenSSL's PBKDF2.
 */
#ifndef SECRETSMGR_SCRAM_H
#define SECRETSMGR_SCRAM_H

#include "postgres.h"

/* Salt length of a verifier secretsmgr builds: PostgreSQL's (16 bytes). */
#define SM_SCRAM_SALT_LEN	16

/*
 * The SCRAM-SHA-256 verifier of password, as ALTER ROLE ... PASSWORD
 * '<plain>' would store it in this session: SASLprep'ed as PostgreSQL does
 * (the raw password when SASLprep refuses it), a fresh random salt, the
 * server's iteration count (scram_iterations from 16).  Returned in a secret
 * buffer of CurrentMemoryContext.
 */
extern char *sm_scram_build_secret(const char *password);

/*
 * The same for a given salt and iteration count: byte for byte the string
 * PostgreSQL's scram_build_secret() returns for the SASLprep'ed password.
 */
extern char *sm_scram_build_secret_salted(const char *password, const uint8 *salt,
										  int saltlen, int iterations);

#endif							/* SECRETSMGR_SCRAM_H */
