/*
 * credentials.h
 *		The AWS credentials provider chain and the region.
 */
#ifndef SECRETSMGR_CREDENTIALS_H
#define SECRETSMGR_CREDENTIALS_H

#include "postgres.h"

#include "credtypes.h"
#include "region.h"

/*
 * Resolve credentials, first match wins: secretsmgr.* settings, environment,
 * web identity (AWS_WEB_IDENTITY_TOKEN_FILE), shared credentials file
 * (profile secretsmgr.profile, AWS_PROFILE, "default"), container endpoint,
 * IMDSv2; then, when secretsmgr.role_arn is set, AssumeRole with them.  Temporary credentials are cached
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

#endif							/* SECRETSMGR_CREDENTIALS_H */
