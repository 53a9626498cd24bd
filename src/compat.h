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

/* PostgreSQL 14 and older named the SCRAM secret builder differently. */
#if PG_VERSION_NUM < 150000
#define pg_be_scram_build_secret(pw) pg_be_scram_build_verifier(pw)
#endif

/* MarkGUCPrefixReserved appeared in 15; EmitWarningsOnPlaceholders before. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
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

/*
 * RestrictSearchPath() (17) sets search_path to "pg_catalog, pg_temp" at the
 * current GUC nest level; before 17, the same set_config_option() call.
 */
#if PG_VERSION_NUM < 170000
#include "utils/guc.h"
static inline void
RestrictSearchPath(void)
{
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}
#endif

#endif							/* SECRETSMGR_COMPAT_H */
