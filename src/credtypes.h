/*
 * credtypes.h
 *		One set of AWS credentials, as the chain (credentials.c) and STS
 *		(sts.c) hand them over.
 */
#ifndef SECRETSMGR_CREDTYPES_H
#define SECRETSMGR_CREDTYPES_H

#include <time.h>

typedef struct SmCredentials
{
	char	   *access_key_id;	/* palloc'd in the caller's context */
	char	   *secret_access_key;
	char	   *session_token;	/* NULL for long-term keys */
	const char *source;			/* "settings", "environment", "shared-file",
								 * "container", "imds" (static string), or
								 * "web identity (<role>)", "assumed role
								 * (<role>) over <source>" (palloc'd) */
	time_t		expiration;		/* 0 = does not expire */
} SmCredentials;

#endif							/* SECRETSMGR_CREDTYPES_H */
