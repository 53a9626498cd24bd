/*
 * sigv4.h
 *		AWS Signature Version 4, standalone (OpenSSL only, no PostgreSQL).
 */
#ifndef SECRETSMGR_SIGV4_H
#define SECRETSMGR_SIGV4_H

#include <stddef.h>
#include <time.h>

typedef struct SmSigV4Header
{
	const char *name;			/* any case; canonicalised to lower case */
	const char *value;			/* trimmed, inner runs of spaces folded */
} SmSigV4Header;

typedef struct SmSigV4Request
{
	const char *method;			/* "GET", "POST" */
	const char *path;			/* "/" (already URI-encoded by the caller) */
	const char *query;			/* raw query without '?', or NULL */
	const SmSigV4Header *headers;	/* every header to sign, incl. host and x-amz-date */
	int			nheaders;
	const void *body;
	size_t		body_len;
	const char *amz_date;		/* YYYYMMDDTHHMMSSZ */
	const char *region;
	const char *service;
	const char *access_key_id;
	const char *secret_access_key;
} SmSigV4Request;

/* Hex SHA-256 of data: out gets 64 hex digits and a NUL. */
extern void sm_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* "YYYYMMDDTHHMMSSZ" for t (UTC). */
extern void sm_sigv4_amz_date(time_t t, char out[17]);

/* Signing key: HMAC chain "AWS4"+secret -> date8 -> region -> service -> aws4_request. */
extern void sm_sigv4_signing_key(const char *secret_access_key, const char *date8,
								 const char *region, const char *service,
								 unsigned char out[32]);

/*
 * Sign req.  On success returns 0, writes the whole Authorization header value
 * ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...") into
 * authorization (NUL-terminated) and, if signature is not NULL, the 64 hex
 * digit signature.  Returns -1 when authorization_len is too small or an
 * input is invalid.  If canonical_request is not NULL it receives a malloc'd
 * copy of the canonical request (for tests); the caller frees it.
 */
extern int	sm_sigv4_sign(const SmSigV4Request *req,
						  char *authorization, size_t authorization_len,
						  char signature[65], char **canonical_request);

/*
 * As sm_sigv4_sign, with a precomputed signing key for req->amz_date's day
 * (req->secret_access_key is then ignored).  Lets callers cache the key.
 */
extern int	sm_sigv4_sign_with_key(const SmSigV4Request *req,
								   const unsigned char signing_key[32],
								   char *authorization, size_t authorization_len,
								   char signature[65], char **canonical_request);

#endif							/* SECRETSMGR_SIGV4_H */
