/*
 * sts.h
 *		Credentials from AWS STS: web identity (IRSA) and AssumeRole, the STS
 *		endpoint, and the FIPS endpoint choice.
 */
#ifndef SECRETSMGR_STS_H
#define SECRETSMGR_STS_H

#include "postgres.h"

#include "credtypes.h"
#include "region.h"

/* Settings (secretsmgr.*), defined by sm_sts_define_settings */
extern char *sm_guc_role_arn;
extern char *sm_guc_external_id;
extern char *sm_guc_role_session_name;
extern char *sm_guc_sts_endpoint;
extern bool sm_guc_use_fips_endpoint;

/* Define the settings above (from _PG_init, before the prefix is reserved). */
extern void sm_sts_define_settings(void);

/*
 * Are FIPS endpoints wanted: secretsmgr.use_fips_endpoint, or
 * AWS_USE_FIPS_ENDPOINT=true in the server's environment?
 */
extern bool sm_sts_use_fips(void);

/* Where a web identity is configured, and what it names (no secret here). */
typedef struct SmWebIdentity
{
	const char *token_file;
	const char *role_arn;
	const char *session_name;	/* NULL: one is made up */
	const char *configured_by;	/* "the server's environment", a profile */
} SmWebIdentity;

/*
 * Is a web identity configured in the server's environment
 * (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME)?  Half
 * of one (a token file without a role) is an error.
 */
extern bool sm_sts_web_identity_from_env(SmWebIdentity *wi);

/*
 * Credentials for wi through AssumeRoleWithWebIdentity, kept until shortly
 * before they expire; the token file is read again at every refresh.  Any
 * failure is raised: a configured web identity never falls back to another
 * principal.  The strings of *out are secret buffers of CurrentMemoryContext
 * and out->source describes the identity.
 */
extern void sm_sts_web_identity(const SmWebIdentity *wi, SmCredentials *out);

/* Is secretsmgr.role_arn set (AssumeRole layered on the chain's result)? */
extern bool sm_sts_assume_role_configured(void);

/*
 * Assume secretsmgr.role_arn with the base credentials (AssumeRole, signed
 * with base), kept until shortly before they expire.  *out as above.
 */
extern void sm_sts_assume_role(const SmCredentials *base, SmCredentials *out);

/*
 * Assume role_arn (with external_id and session_name, either may be NULL)
 * with base; named_by says where the role was configured.  layered: the
 * secretsmgr.role_arn layer, else a profile's (each keeps its own).
 */
extern void sm_sts_assume_role_as(const SmCredentials *base,
								  const char *role_arn,
								  const char *external_id,
								  const char *session_name,
								  const char *named_by, bool layered,
								  SmCredentials *out);

/* Forget every kept STS credential (scrubbed). */
extern void sm_sts_invalidate(void);

/* The STS endpoint URL that would be used, without userinfo (palloc'd). */
extern char *sm_sts_endpoint(void);

#endif							/* SECRETSMGR_STS_H */
