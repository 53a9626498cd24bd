/*
 * credentials.h
 *		The AWS credentials provider chain and the region.
 */
#ifndef SECRETSMGR_CREDENTIALS_H
#define SECRETSMGR_CREDENTIALS_H

#include "postgres.h"

typedef struct SmCredentials
{
	char	   *access_key_id;	/* palloc'd in the caller's context */
	char	   *secret_access_key;
	char	   *session_token;	/* NULL for long-term keys */
	const char *source;			/* "settings", "environment", "shared-file",
								 * "container", "imds" (static string) */
	time_t		expiration;		/* 0 = does not expire */
} SmCredentials;

/*
 * Resolve credentials, first match wins: secretsmgr.* settings, environment,
 * shared credentials file (profile secretsmgr.profile, AWS_PROFILE,
 * "default"), container endpoint, IMDSv2.  Temporary credentials are cached
 * backend-locally and refreshed 10 minutes before they expire.  Raises an
 * error (SQLSTATE 28000-class invalid authorization) when nothing provides
 * credentials.  The result is a copy in CurrentMemoryContext: the caller
 * releases it with sm_credentials_free.
 */
extern void sm_credentials_get(SmCredentials *out);

/* Zero the strings of a copy now and forget them (scrubbed buffers). */
extern void sm_credentials_free(SmCredentials *creds);

/* Forget cached temporary credentials (e.g. after ExpiredTokenException). */
extern void sm_credentials_invalidate(void);

/* The region: secretsmgr.region, AWS_REGION, AWS_DEFAULT_REGION; else error. */
extern const char *sm_region_get(void);

#endif							/* SECRETSMGR_CREDENTIALS_H */
