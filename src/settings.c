/*
 * settings.c
 *		The variables behind every secretsmgr.* setting.
 *
 * The settings are defined, with their check hooks, in _PG_init
 * (secretsmgr.c); the values here are their boot values, read by every
 * module.  Ground floor: calls nothing else of secretsmgr.
 */
#include "postgres.h"

#include <stdlib.h>

#include "settings.h"

char	   *sm_guc_region = NULL;
char	   *sm_guc_endpoint = NULL;
char	   *sm_guc_access_key_id = NULL;
char	   *sm_guc_secret_access_key = NULL;
char	   *sm_guc_session_token = NULL;
char	   *sm_guc_profile = NULL;
char	   *sm_guc_ca_file = NULL;
char	   *sm_guc_password_exclude_characters = NULL;
char	   *sm_guc_preload = NULL;
int			sm_guc_connect_timeout_ms = 2000;
int			sm_guc_request_timeout_ms = 10000;
int			sm_guc_max_attempts = 3;
int			sm_guc_max_concurrent_requests = 8;
int			sm_guc_retry_base_delay_ms = 1000;
int			sm_guc_cache_ttl_s = 300;
int			sm_guc_cache_max_entries = 100;
int			sm_guc_cache_max_stale_s = 0;
int			sm_guc_cache_pending_ttl_s = 5;
int			sm_guc_password_length = 32;
bool		sm_guc_allow_privileged_roles = false;

/*
 * A variable of the server's environment (the postmaster's, inherited by
 * every backend), with an empty value taken as unset.
 */
const char *
sm_env_get(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}
