/*
 * settings.h
 *		The secretsmgr.* settings, read by every module.
 *
 * Defined in _PG_init (secretsmgr.c); the variables live in settings.c.
 */
#ifndef SECRETSMGR_SETTINGS_H
#define SECRETSMGR_SETTINGS_H

#include "postgres.h"

/* Largest response body accepted from any endpoint (a value is <= 64 KiB). */
#define SM_MAX_RESPONSE_BYTES	(1024 * 1024)

/* Settings (secretsmgr.*) */
extern char *sm_guc_region;
extern char *sm_guc_endpoint;
extern char *sm_guc_access_key_id;
extern char *sm_guc_secret_access_key;
extern char *sm_guc_session_token;
extern char *sm_guc_profile;
extern char *sm_guc_ca_file;
extern char *sm_guc_password_exclude_characters;
extern char *sm_guc_preload;
extern int	sm_guc_connect_timeout_ms;
extern int	sm_guc_request_timeout_ms;
extern int	sm_guc_max_attempts;
extern int	sm_guc_max_concurrent_requests;
extern int	sm_guc_retry_base_delay_ms;
extern int	sm_guc_cache_ttl_s;
extern int	sm_guc_cache_max_entries;
extern int	sm_guc_cache_max_stale_s;
extern int	sm_guc_cache_pending_ttl_s;
extern int	sm_guc_password_length;
extern bool sm_guc_allow_privileged_roles;

/* A variable of the server's environment; NULL when unset or empty. */
extern const char *sm_env_get(const char *name);

#endif							/* SECRETSMGR_SETTINGS_H */
