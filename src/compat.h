/*
 * compat.h
 *		Every PostgreSQL, libcurl and OpenSSL version guard of secretsmgr.
 *
 * Feature tests come before version numbers; nothing outside this file
 * compares PG_VERSION_NUM or LIBCURL_VERSION_NUM.
 */
#ifndef SECRETSMGR_COMPAT_H
#define SECRETSMGR_COMPAT_H

#include "postgres.h"

#include <curl/curl.h>

/*
 * What each PostgreSQL major changed that secretsmgr uses.  The code is
 * written against the newest API (18); each block below maps it onto the
 * majors before the one that changed it, so 16 and 17 take the right branch
 * although only 15 and 18 are built and tested.  15 is the oldest major
 * supported: what older ones named otherwise (pg_be_scram_build_secret,
 * MarkGUCPrefixReserved) is used under its 15 name, unguarded.  Headers whose functions are
 * renamed by a macro here are included first, so that their declarations are
 * not rewritten.
 */
#if PG_VERSION_NUM < 150000
#error "secretsmgr needs PostgreSQL 15 or later"
#endif

#include "common/base64.h"
#include "common/jsonapi.h"
#include "common/scram-common.h"
#include "utils/guc.h"

/*
 * 18: pg_noreturn (C11 _Noreturn) goes before the declaration and replaces
 * pg_attribute_noreturn(), which went after it.  GCC and clang accept the
 * attribute in front as well.
 */
#if PG_VERSION_NUM < 180000
#define pg_noreturn pg_attribute_noreturn()
#endif

/* 18: base64 works on uint8 buffers (char before). */
#if PG_VERSION_NUM < 180000
#define pg_b64_decode(src, len, dst, dstlen) \
	(pg_b64_decode)((src), (len), (char *) (dst), (dstlen))
#define pg_b64_encode(src, len, dst, dstlen) \
	(pg_b64_encode)((const char *) (src), (len), (dst), (dstlen))
#endif

/*
 * 17: makeJsonLexContextCstringLen takes the context to fill first (NULL:
 * allocate one) and a size_t length.
 */
#if PG_VERSION_NUM < 170000
#define makeJsonLexContextCstringLen(lex, json, len, encoding, need_escapes) \
	(AssertMacro((lex) == NULL), \
	 (makeJsonLexContextCstringLen)((json), (int) (len), (encoding), (need_escapes)))
#endif

/*
 * 17: RestrictSearchPath() sets search_path to "pg_catalog, pg_temp" at the
 * current GUC nest level, as maintenance commands do before running code
 * that is not theirs.  The same call for older majors.
 */
#if PG_VERSION_NUM < 170000
static inline void
RestrictSearchPath(void)
{
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}
#endif

/*
 * 16: SCRAM secrets carry a hash type and a key length, and the number of
 * iterations is the scram_iterations setting (4096 fixed before).
 * scram.c reads that setting (SM_SCRAM_ITERATIONS, below), so a verifier
 * built by secretsmgr has the same iteration count as one ALTER ROLE ...
 * PASSWORD 'plain' would store.  parse_scram_secret() returns the hash type and key
 * length; older majors know SCRAM-SHA-256 only.  (libpq/scram.h would pull
 * in libpq-be.h and the GSSAPI headers: the one function is declared here.)
 */
#if PG_VERSION_NUM >= 160000
extern bool parse_scram_secret(const char *secret, int *iterations,
							   pg_cryptohash_type *hash_type, int *key_length,
							   char **salt, uint8 *stored_key, uint8 *server_key);
#else
#define SCRAM_SHA_256_KEY_LEN	SCRAM_KEY_LEN
#define SCRAM_MAX_KEY_LEN		SCRAM_KEY_LEN
extern bool parse_scram_secret(const char *secret, int *iterations, char **salt,
							   uint8 *stored_key, uint8 *server_key);
#define parse_scram_secret(secret, iterations, hash_type, key_length, salt, stored_key, server_key) \
	(*(hash_type) = PG_SHA256, *(key_length) = SCRAM_KEY_LEN, \
	 (parse_scram_secret)((secret), (iterations), (salt), (stored_key), (server_key)))
#endif

/*
 * 16: the iteration count of a new SCRAM verifier is the scram_iterations
 * setting (4096 fixed before), and scram_build_secret() takes the hash type
 * and key length; 18: its salt is a uint8 buffer (char before), which the
 * cast through void covers.  secretsmgr builds verifiers with OpenSSL
 * (scram.c) and uses PostgreSQL's builder only to prove them identical.
 */
#if PG_VERSION_NUM >= 160000
extern PGDLLIMPORT int scram_sha_256_iterations;
#define SM_SCRAM_ITERATIONS		scram_sha_256_iterations
#define sm_pg_scram_build_secret(salt, saltlen, iterations, password, errstr) \
	scram_build_secret(PG_SHA256, SCRAM_SHA_256_KEY_LEN, (const void *) (salt), \
					   (saltlen), (iterations), (password), (errstr))
#else
#define SM_SCRAM_ITERATIONS		SCRAM_DEFAULT_ITERATIONS
#define sm_pg_scram_build_secret(salt, saltlen, iterations, password, errstr) \
	scram_build_secret((const char *) (salt), (saltlen), (iterations), \
					   (password), (errstr))
#endif

/*
 * 16: CREATEROLE alone no longer lets a role alter another role (its
 * password included): it also needs ADMIN OPTION on that role, which the
 * role that created it has.  Superuser roles need a superuser everywhere.
 */
#if PG_VERSION_NUM >= 160000
#define SM_CREATEROLE_NEEDS_ADMIN	true
#else
#define SM_CREATEROLE_NEEDS_ADMIN	false
#endif

/*
 * 17: pgstat_fetch_stat_local_beentry() became
 * pgstat_get_local_beentry_by_index(); both count from 1.
 */
#if PG_VERSION_NUM < 170000
#define pgstat_get_local_beentry_by_index(idx) pgstat_fetch_stat_local_beentry(idx)
#endif

/*
 * ProcessUtility_hook and ClientAuthentication_hook have had the same
 * signatures from 14 to 18; shmem_request_hook exists since 15.
 */

/* 17: IsBackgroundWorker gave way to AmBackgroundWorkerProcess(). */
#if PG_VERSION_NUM < 170000
#define AmBackgroundWorkerProcess() (IsBackgroundWorker)
#endif

/*
 * 16: a membership has INHERIT and SET options besides ADMIN, and one row
 * in pg_auth_members per grantor.  An alternating binding's clone is given
 * each group membership with the role's options: SM_AUTHMEM_INHERIT/SET
 * read them from a pg_auth_members row (true before 16, where every
 * membership inherits and allows SET ROLE), and SM_GRANT_HAS_INHERIT_SET
 * says whether GRANT takes them.
 */
#if PG_VERSION_NUM >= 160000
#define SM_AUTHMEM_INHERIT(m)		((m)->inherit_option)
#define SM_AUTHMEM_SET(m)			((m)->set_option)
#define SM_GRANT_HAS_INHERIT_SET	true
#else
#define SM_AUTHMEM_INHERIT(m)		true
#define SM_AUTHMEM_SET(m)			true
#define SM_GRANT_HAS_INHERIT_SET	false
#endif

/* CURLOPT_PROTOCOLS_STR (7.85) replaces the deprecated bitmask option. */
#if LIBCURL_VERSION_NUM >= 0x075500
#define SM_CURL_SET_PROTOCOLS(h) \
	curl_easy_setopt((h), CURLOPT_PROTOCOLS_STR, "http,https")
#else
#define SM_CURL_SET_PROTOCOLS(h) \
	curl_easy_setopt((h), CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS))
#endif

/* curl_multi_poll (7.66) does not busy-loop when there is nothing to wait on. */
#if LIBCURL_VERSION_NUM < 0x074200
#define curl_multi_poll curl_multi_wait
#endif

#endif							/* SECRETSMGR_COMPAT_H */
