/*-------------------------------------------------------------------------
 *
 * credentials.c
 *		The AWS credentials provider chain, and the region.
 *
 * Credentials are resolved the way the AWS SDKs do, first match wins:
 *
 *	1. the settings secretsmgr.access_key_id / secret_access_key /
 *	   session_token (superuser-only, may change per session);
 *	2. the server's environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *	   AWS_SESSION_TOKEN;
 *	2a. web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (sts.c),
 *	   where the Java and Go SDKs put it;
 *	3. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 *	   ~/.aws/credentials of the server's OS user), profile secretsmgr.profile,
 *	   else AWS_PROFILE, else "default";
 *	4. the container credentials endpoint (ECS, EKS Pod Identity), when
 *	   AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI is set;
 *	5. the EC2 instance metadata service (IMDSv2), unless
 *	   AWS_EC2_METADATA_DISABLED is "true".
 *
 * When secretsmgr.role_arn is set, that role is assumed (AssumeRole, sts.c)
 * with whatever the chain produced.
 *
 * Static credentials (1-3) are read on every call, since a setting may change
 * at any time; the parsed shared file is kept while its path, profile, inode,
 * size and modification time stay the same.  Temporary credentials (4-5) are
 * kept until 10 minutes before they expire; when a refresh fails while the
 * kept ones have more than a minute left, they are used and a WARNING is
 * emitted once.
 *
 * Invariants:
 *
 * - Every copy of a key or token is zeroed when it is replaced or dropped:
 *   the backend-local caches live in their own context under
 *   TopMemoryContext and are scrubbed field by field; per-call copies are
 *   secret buffers (sm_secret_alloc) of the caller's context; the file read
 *   buffer and endpoint responses are secret buffers too, and jansson zeroes
 *   its blocks on free (secretsmgr.c).  The documents and the file are
 *   parsed by parse.c (no PostgreSQL header, fuzzed on its own), whose
 *   malloc'd copies are zeroed as soon as they are copied here.
 *
 * - No key, token, response body or file content reaches an error message or
 *   a log line.  Errors name the source, the setting or variable, the HTTP
 *   status and libcurl's transport error text, never a value.
 *
 * - The region and the credential endpoints are validated before use: http
 *   is accepted only towards loopback or the documented link-local
 *   addresses of the container and instance metadata services.
 *
 * src/credentials.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "smjson.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "credentials.h"
#include "http.h"
#include "parse.h"
#include "secretbuf.h"
#include "settings.h"
#include "stats.h"
#include "sts.h"

/* Largest shared credentials file read. */
#define SM_CRED_FILE_MAX		(1024 * 1024)

/* Largest container authorization token file read. */
#define SM_TOKEN_FILE_MAX		(16 * 1024)

/* Largest credentials document accepted from an endpoint. */
#define SM_CRED_BODY_MAX		(64 * 1024)

/* Refresh temporary credentials this long before they expire. */
#define SM_CRED_REFRESH_S		600

/* A failed refresh may fall back on kept credentials with this much left. */
#define SM_CRED_GRACE_S			60

/* How long credentials without an Expiration are kept. */
#define SM_CRED_NO_EXPIRY_S		900

/* The SDKs' timeouts: container endpoint 2 s, instance metadata 1 s. */
#define SM_CONTAINER_TIMEOUT_MS 2000
#define SM_IMDS_TIMEOUT_MS		1000

#define SM_CONTAINER_HOST_URL	"http://169.254.170.2"
#define SM_IMDS_DEFAULT_URL		"http://169.254.169.254"
#define SM_IMDS_TOKEN_TTL		"21600"
#define SM_IMDS_CREDS_PATH		"/latest/meta-data/iam/security-credentials/"

/* Source names (SmCredentials.source); compared by address. */
static const char SRC_SETTINGS[] = "settings";
static const char SRC_ENVIRONMENT[] = "environment";
static const char SRC_SHARED_FILE[] = "shared-file";
static const char SRC_CONTAINER[] = "container";
static const char SRC_IMDS[] = "imds";

/* Hosts that may be reached over plain http, besides loopback. */
static const char *const container_http_hosts[] = {
	"169.254.170.2", "169.254.170.23", "[fd00:ec2::23]", NULL
};
static const char *const imds_http_hosts[] = {
	"169.254.169.254", "[fd00:ec2::254]", NULL
};

/* Credentials as parsed, before they are copied for the caller. */
typedef struct SmCredValues
{
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;	/* NULL if none */
	time_t		expiration;		/* 0 if none */
} SmCredValues;

/* Why a credentials endpoint did not deliver (no secret in it). */
typedef struct SmFetchFailure
{
	int			sqlerrcode;
	char		what[64];		/* short kind, for the counters */
	char		detail[512];	/* a full sentence */
} SmFetchFailure;

/* Kept temporary credentials (container or instance metadata). */
typedef struct SmTempCache
{
	bool		valid;
	const char *source;
	SmCredValues v;				/* strings in cred_context */
	time_t		refresh_at;		/* fetch again from then on */
	bool		warned;			/* the stale-use WARNING was emitted */
} SmTempCache;

/* The role keys of a profile (no secret; external_id is not one either). */
typedef struct SmFileRole
{
	char	   *role_arn;
	char	   *source_profile;
	char	   *credential_source;
	char	   *web_identity_token_file;
	char	   *role_session_name;
	char	   *external_id;
} SmFileRole;

/* The last parse of the shared credentials file, and what keyed it. */
typedef struct SmFileCache
{
	bool		valid;
	char	   *path;
	char	   *profile;
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	time_t		mtime;
	time_t		ctime;
	SmCredFileResult result;
	SmCredValues v;				/* strings in cred_context */
	SmFileRole role;			/* strings in cred_context */
} SmFileCache;

static MemoryContext cred_context = NULL;
static SmTempCache temp_cache;
static SmFileCache file_cache;

/* When the instance metadata service last failed us (0: never). */
static time_t imds_failed_at = 0;

/* Is s set to something? */
static inline bool
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* The context that holds the caches, created on first use. */
static MemoryContext
get_cred_context(void)
{
	if (cred_context == NULL)
		cred_context = AllocSetContextCreate(TopMemoryContext,
											 "secretsmgr credentials",
											 ALLOCSET_SMALL_SIZES);
	return cred_context;
}

/* Copy s (or NULL) into the cache context. */
static char *
cache_strdup(const char *s)
{
	return s ? MemoryContextStrdup(get_cred_context(), s) : NULL;
}

/* Zero and drop every string of cached values. */
static void
scrub_cache_values(SmCredValues *v)
{
	sm_secret_free_string(&v->access_key_id);
	sm_secret_free_string(&v->secret_access_key);
	sm_secret_free_string(&v->session_token);
	v->expiration = 0;
}

/* Forget the kept temporary credentials. */
static void
temp_cache_clear(void)
{
	scrub_cache_values(&temp_cache.v);
	temp_cache.valid = false;
	temp_cache.source = NULL;
	temp_cache.refresh_at = 0;
	temp_cache.warned = false;
}

/* Forget the last parse of the shared credentials file. */
static void
file_cache_clear(void)
{
	scrub_cache_values(&file_cache.v);
	sm_secret_free_string(&file_cache.role.role_arn);
	sm_secret_free_string(&file_cache.role.source_profile);
	sm_secret_free_string(&file_cache.role.credential_source);
	sm_secret_free_string(&file_cache.role.web_identity_token_file);
	sm_secret_free_string(&file_cache.role.role_session_name);
	sm_secret_free_string(&file_cache.role.external_id);
	if (file_cache.path)
		pfree(file_cache.path);
	if (file_cache.profile)
		pfree(file_cache.profile);
	file_cache.path = NULL;
	file_cache.profile = NULL;
	file_cache.valid = false;
}

/* Check the three values of one source, raising an error naming it. */
static void
validate_values(const SmCredValues *v, const char *source_desc)
{
	if (!sm_parse_credential_text_ok(v->access_key_id) ||
		!sm_parse_credential_text_ok(v->secret_access_key) ||
		(v->session_token != NULL && !sm_parse_credential_text_ok(v->session_token)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("malformed AWS credentials in %s", source_desc),
				 errdetail("An access key id, secret access key or session token is empty, too long, or holds spaces or control characters.")));
}

/* Give the caller secret-buffer copies of v, from source. */
static void
copy_out(SmCredentials *out, const SmCredValues *v, const char *source)
{
	out->access_key_id = sm_secret_strdup(v->access_key_id);
	out->secret_access_key = sm_secret_strdup(v->secret_access_key);
	out->session_token = v->session_token ? sm_secret_strdup(v->session_token) : NULL;
	out->source = source;
	out->expiration = v->expiration;
}

/*
 * Provider 1: the secretsmgr.* settings.  Half a key pair is a mistake worth
 * an error rather than a silent fall-through to another identity.
 */
static bool
from_settings(SmCredentials *out)
{
	bool		has_id = nonempty(sm_guc_access_key_id);
	bool		has_secret = nonempty(sm_guc_secret_access_key);
	bool		has_token = nonempty(sm_guc_session_token);
	SmCredValues v;

	if (!has_id && !has_secret && !has_token)
		return false;

	if (!has_id || !has_secret)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("\"%s\" is set but \"%s\" is not",
						has_id ? "secretsmgr.access_key_id" :
						has_secret ? "secretsmgr.secret_access_key" :
						"secretsmgr.session_token",
						has_id ? "secretsmgr.secret_access_key" :
						"secretsmgr.access_key_id"),
				 errhint("Set both \"secretsmgr.access_key_id\" and \"secretsmgr.secret_access_key\", or neither to use the server's environment, shared credentials file or IAM role.")));

	v.access_key_id = sm_guc_access_key_id;
	v.secret_access_key = sm_guc_secret_access_key;
	v.session_token = has_token ? sm_guc_session_token : NULL;
	v.expiration = 0;
	validate_values(&v, "the secretsmgr.* settings");
	copy_out(out, &v, SRC_SETTINGS);
	return true;
}

/* Provider 2: the server's environment, as every AWS SDK reads it. */
static bool
from_environment(SmCredentials *out)
{
	const char *id = sm_env_get("AWS_ACCESS_KEY_ID");
	const char *secret = sm_env_get("AWS_SECRET_ACCESS_KEY");
	SmCredValues v;

	if (id == NULL && secret == NULL)
		return false;
	if (id == NULL || secret == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("environment variable %s is set but %s is not",
						id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
						id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID"),
				 errhint("Set both in the environment the server is started with, or neither.")));

	v.access_key_id = (char *) id;
	v.secret_access_key = (char *) secret;
	v.session_token = (char *) sm_env_get("AWS_SESSION_TOKEN");
	v.expiration = 0;
	validate_values(&v, "the server's environment");
	copy_out(out, &v, SRC_ENVIRONMENT);
	return true;
}

/* The server's OS user's home directory: HOME, else the password database. */
static const char *
home_directory(void)
{
	const char *home = sm_env_get("HOME");
	struct passwd *pw;

	if (home != NULL)
		return home;
	pw = getpwuid(geteuid());
	if (pw != NULL && nonempty(pw->pw_dir))
		return pw->pw_dir;
	return NULL;
}

/* Path of the shared credentials file (palloc'd), or NULL if there is none. */
static char *
shared_file_path(void)
{
	const char *env = sm_env_get("AWS_SHARED_CREDENTIALS_FILE");
	const char *home;

	if (env != NULL && !(env[0] == '~' && (env[1] == '/' || env[1] == '\0')))
		return pstrdup(env);

	home = home_directory();
	if (home == NULL)
		return NULL;
	if (env != NULL)
		return psprintf("%s%s", home, env + 1);
	return psprintf("%s/.aws/credentials", home);
}

/*
 * The profile to read, and which setting or variable named it (NULL when it
 * is the implicit "default").
 */
static const char *
shared_file_profile(const char **named_by)
{
	const char *env;

	if (nonempty(sm_guc_profile))
	{
		*named_by = "secretsmgr.profile";
		return sm_guc_profile;
	}
	env = sm_env_get("AWS_PROFILE");
	if (env != NULL)
	{
		*named_by = "AWS_PROFILE";
		return env;
	}
	*named_by = NULL;
	return "default";
}

/*
 * Look profile up in the shared credentials file at path, through the cache
 * when the file has not changed.  A missing file is SM_FILE_ABSENT; a file
 * that exists but cannot be read is an error.  On SM_FILE_FOUND, *v points
 * at the cached strings, on SM_FILE_ROLE *role does (if not NULL); both are
 * valid until the next lookup.
 */
static SmCredFileResult
shared_file_lookup(const char *path, const char *profile, SmCredValues *v,
				   SmFileRole *role)
{
	struct stat st;
	int			fd;
	char	   *buf;
	size_t		len = 0;
	SmCredFileValues parsed;
	SmCredFileResult result;
	MemoryContext oldcxt;

	memset(v, 0, sizeof(*v));
	if (role != NULL)
		memset(role, 0, sizeof(*role));

	if (stat(path, &st) != 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
		{
			file_cache_clear();
			return SM_FILE_ABSENT;
		}
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not access shared credentials file \"%s\": %m",
						path)));
	}

	if (file_cache.valid &&
		strcmp(file_cache.path, path) == 0 &&
		strcmp(file_cache.profile, profile) == 0 &&
		file_cache.dev == st.st_dev && file_cache.ino == st.st_ino &&
		file_cache.size == st.st_size && file_cache.mtime == st.st_mtime &&
		file_cache.ctime == st.st_ctime)
	{
		*v = file_cache.v;
		if (role != NULL)
			*role = file_cache.role;
		return file_cache.result;
	}

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
		{
			file_cache_clear();
			return SM_FILE_ABSENT;
		}
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open shared credentials file \"%s\": %m",
						path)));
	}
	if (fstat(fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat shared credentials file \"%s\": %m",
						path)));
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("shared credentials file \"%s\" is not a regular file",
						path)));
	if (st.st_size > SM_CRED_FILE_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("shared credentials file \"%s\" is too large", path),
				 errdetail("The file has %lld bytes; at most %d are read.",
						   (long long) st.st_size, SM_CRED_FILE_MAX)));

	/* a secret buffer: scrubbed with the caller's context if we error out */
	buf = sm_secret_alloc(SM_CRED_FILE_MAX + 1);
	for (;;)
	{
		ssize_t		n = read(fd, buf + len, SM_CRED_FILE_MAX - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read shared credentials file \"%s\": %m",
							path)));
		if (n == 0)
			break;
		len += n;
		if (len >= SM_CRED_FILE_MAX)
			break;
	}
	CloseTransientFile(fd);
	buf[len] = '\0';

	result = sm_parse_credentials_file(buf, profile, &parsed);

	/* keep what was found, keyed on what the file was when read */
	file_cache_clear();
	oldcxt = MemoryContextSwitchTo(get_cred_context());
	file_cache.path = pstrdup(path);
	file_cache.profile = pstrdup(profile);
	MemoryContextSwitchTo(oldcxt);
	file_cache.v.access_key_id = cache_strdup(parsed.access_key_id);
	file_cache.v.secret_access_key = cache_strdup(parsed.secret_access_key);
	file_cache.v.session_token = cache_strdup(parsed.session_token);
	file_cache.role.role_arn = cache_strdup(parsed.role_arn);
	file_cache.role.source_profile = cache_strdup(parsed.source_profile);
	file_cache.role.credential_source = cache_strdup(parsed.credential_source);
	file_cache.role.web_identity_token_file = cache_strdup(parsed.web_identity_token_file);
	file_cache.role.role_session_name = cache_strdup(parsed.role_session_name);
	file_cache.role.external_id = cache_strdup(parsed.external_id);
	file_cache.dev = st.st_dev;
	file_cache.ino = st.st_ino;
	file_cache.size = st.st_size;
	file_cache.mtime = st.st_mtime;
	file_cache.ctime = st.st_ctime;
	file_cache.result = result;

	/*
	 * A file modified within the second we read it could change again with
	 * the same size and timestamp: only trust the cache for older files.
	 */
	file_cache.valid = (st.st_mtime < time(NULL) - 1 &&
						st.st_ctime < time(NULL) - 1);

	sm_secure_zero(buf, SM_CRED_FILE_MAX + 1);

	*v = file_cache.v;
	if (role != NULL)
		*role = file_cache.role;
	return result;
}

static void from_role_profile(SmCredentials *out, const char *path,
							  const char *profile, const SmFileRole *role);

/*
 * Provider 3: the shared credentials file.  A missing file, or a missing
 * "default" profile, passes to the next provider; a profile that was named
 * explicitly must exist.  A profile with role_arn is a role profile.
 */
static bool
from_shared_file(SmCredentials *out, StringInfo tried)
{
	char	   *path = shared_file_path();
	const char *named_by;
	const char *profile = shared_file_profile(&named_by);
	SmCredValues v;
	SmFileRole role;
	SmCredFileResult result;
	char	   *desc;

	if (path == NULL)
	{
		appendStringInfoString(tried, " The shared credentials file was not looked for: the server's OS user has no home directory.");
		return false;
	}

	result = shared_file_lookup(path, profile, &v, &role);
	switch (result)
	{
		case SM_FILE_ABSENT:
			if (named_by != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_CONFIG_FILE_ERROR),
						 errmsg("shared credentials file \"%s\" does not exist",
								path),
						 errdetail("Profile \"%s\" was named by \"%s\".",
								   profile, named_by),
						 errhint("Create the file, point AWS_SHARED_CREDENTIALS_FILE at it in the server's environment, or unset \"%s\".",
								 named_by)));
			appendStringInfo(tried, " The shared credentials file \"%s\" does not exist.",
							 path);
			return false;

		case SM_FILE_NO_PROFILE:
			if (named_by != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_CONFIG_FILE_ERROR),
						 errmsg("profile \"%s\" not found in shared credentials file \"%s\"",
								profile, path),
						 errdetail("The profile was named by \"%s\".", named_by),
						 errhint("Add a [%s] section to the file, or change \"%s\".",
								 profile, named_by)));
			appendStringInfo(tried, " The shared credentials file \"%s\" has no profile \"%s\".",
							 path, profile);
			return false;

		case SM_FILE_NO_KEYS:
			if (named_by != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_CONFIG_FILE_ERROR),
						 errmsg("profile \"%s\" of shared credentials file \"%s\" has no keys",
								profile, path),
						 errdetail("secretsmgr reads aws_access_key_id, aws_secret_access_key and aws_session_token, or role_arn, from the shared credentials file; SSO and process profiles are not supported."),
						 errhint("Add the keys to the profile, or change \"%s\".",
								 named_by)));
			appendStringInfo(tried, " Profile \"%s\" of the shared credentials file \"%s\" has no keys.",
							 profile, path);
			return false;

		case SM_FILE_PARTIAL:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("profile \"%s\" of shared credentials file \"%s\" has only one of aws_access_key_id and aws_secret_access_key",
							profile, path),
					 errhint("Set both keys in the profile.")));
			break;

		case SM_FILE_FOUND:
			break;

		case SM_FILE_ROLE:
			from_role_profile(out, path, profile, &role);
			return true;
	}

	desc = psprintf("profile \"%s\" of shared credentials file \"%s\"",
					profile, path);
	validate_values(&v, desc);
	copy_out(out, &v, SRC_SHARED_FILE);
	return true;
}

/*
 * Parse a credentials document (container endpoint or instance metadata)
 * with parse.c.  Returns NULL on success, else a reason that names fields,
 * never values.  The strings are secret buffers of CurrentMemoryContext.
 */
static const char *
parse_credentials_json(const char *body, size_t len, bool need_expiration,
					   SmCredValues *v)
{
	SmParsedCreds pc;
	const char *reason;

	memset(v, 0, sizeof(*v));
	reason = sm_parse_credentials_json(body, len, need_expiration, &pc);
	if (reason != NULL)
		return reason;
	PG_TRY();
	{
		v->access_key_id = sm_secret_strdup(pc.access_key_id);
		v->secret_access_key = sm_secret_strdup(pc.secret_access_key);
		v->session_token = pc.session_token ? sm_secret_strdup(pc.session_token) : NULL;
		v->expiration = pc.expiration;
	}
	PG_FINALLY();
	{
		sm_parsed_creds_free(&pc);
	}
	PG_END_TRY();
	return NULL;
}

/* Fill a failure record with a printf-style detail sentence. */
static void
fetch_failed(SmFetchFailure *f, int sqlerrcode, const char *what,
			 const char *fmt,...) pg_attribute_printf(4, 5);

static void
fetch_failed(SmFetchFailure *f, int sqlerrcode, const char *what,
			 const char *fmt,...)
{
	va_list		ap;

	f->sqlerrcode = sqlerrcode;
	strlcpy(f->what, what, sizeof(f->what));
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
}

/* Record why an HTTP exchange with a credentials endpoint failed. */
static void
http_failed(SmFetchFailure *f, const char *endpoint, SmHttpStatus st,
			const SmHttpResponse *resp)
{
	switch (st)
	{
		case SM_HTTP_OK:
			fetch_failed(f, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
						 "HTTP", "The %s answered with HTTP status %ld.",
						 endpoint, resp->status);
			break;
		case SM_HTTP_TIMEOUT:
			fetch_failed(f, ERRCODE_CONNECTION_FAILURE, "Timeout",
						 "The %s did not answer in time: %s.",
						 endpoint, resp->error);
			break;
		case SM_HTTP_CONNECT_ERROR:
			fetch_failed(f, ERRCODE_CONNECTION_FAILURE, "ConnectionError",
						 "The %s could not be reached: %s.",
						 endpoint, resp->error);
			break;
		case SM_HTTP_TLS_ERROR:
			fetch_failed(f, ERRCODE_CONNECTION_FAILURE, "TlsError",
						 "The TLS handshake with the %s failed: %s.",
						 endpoint, resp->error);
			break;
		case SM_HTTP_TOO_LARGE:
			fetch_failed(f, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
						 "ResponseTooLarge",
						 "The %s sent a response larger than %d bytes.",
						 endpoint, SM_CRED_BODY_MAX);
			break;
		case SM_HTTP_OTHER_ERROR:
			fetch_failed(f, ERRCODE_CONNECTION_FAILURE, "TransportError",
						 "The request to the %s failed: %s.",
						 endpoint, resp->error);
			break;
	}
}

/* One GET or PUT to a credentials endpoint, with the endpoint's timeout. */
static SmHttpStatus
endpoint_request(const char *method, const char *url,
				 const SmHttpHeader *headers, int nheaders, long timeout_ms,
				 SmHttpResponse *resp)
{
	SmHttpRequest req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.nheaders = nheaders;
	req.body = NULL;
	req.body_len = 0;
	req.connect_timeout_ms = timeout_ms;
	req.timeout_ms = timeout_ms;
	req.max_body = SM_CRED_BODY_MAX;
	req.no_proxy = true;
	return sm_http_perform(&req, resp);
}

/* Is a container endpoint configured in the server's environment? */
static bool
container_configured(void)
{
	return sm_env_get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != NULL ||
		sm_env_get("AWS_CONTAINER_CREDENTIALS_FULL_URI") != NULL;
}

/*
 * The container endpoint's Authorization value, from the token file or the
 * variable, as a secret buffer; NULL when neither is set.  A token that
 * would split the header is refused.
 */
static char *
container_authorization(void)
{
	const char *path = sm_env_get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *env;
	char	   *token;
	size_t		len;

	if (path != NULL)
	{
		int			fd;
		char	   *buf;

		fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open container authorization token file \"%s\": %m",
							path),
					 errdetail("The file is named by AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.")));
		buf = sm_secret_alloc(SM_TOKEN_FILE_MAX + 1);
		len = 0;
		for (;;)
		{
			ssize_t		n = read(fd, buf + len, SM_TOKEN_FILE_MAX - len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read container authorization token file \"%s\": %m",
								path)));
			if (n == 0 || (len += n) >= SM_TOKEN_FILE_MAX)
				break;
		}
		CloseTransientFile(fd);
		if (len >= SM_TOKEN_FILE_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("container authorization token file \"%s\" is too large",
							path),
					 errdetail("At most %d bytes are accepted.",
							   SM_TOKEN_FILE_MAX - 1)));
		buf[len] = '\0';
		/* a final newline is an editor's habit, not part of the token */
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = '\0';
		token = buf;
	}
	else if ((env = sm_env_get("AWS_CONTAINER_AUTHORIZATION_TOKEN")) != NULL)
	{
		token = sm_secret_strdup(env);
		len = strlen(token);
	}
	else
		return NULL;

	if (strchr(token, '\r') != NULL || strchr(token, '\n') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("container authorization token contains a line break"),
				 errdetail("The token comes from %s.",
						   path ? "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" :
						   "AWS_CONTAINER_AUTHORIZATION_TOKEN")));
	if (len == 0)
		return NULL;
	return token;
}

/*
 * Fetch from the container endpoint.  A misconfiguration (endpoint not
 * allowed, unreadable or malformed token) is raised; a failed exchange is
 * returned in *f so that kept credentials may still serve.
 */
static bool
container_fetch(SmCredValues *v, SmFetchFailure *f)
{
	const char *relative = sm_env_get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = sm_env_get("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *endpoint = "container credentials endpoint";
	char	   *url;
	char	   *auth;
	SmHttpHeader headers[2];
	int			nheaders = 0;
	SmHttpResponse resp;
	SmHttpStatus st;
	const char *reason;

	if (relative != NULL)
	{
		url = psprintf("%s%s", SM_CONTAINER_HOST_URL, relative);
		if (relative[0] != '/' ||
			!sm_http_url_allowed(url, container_http_hosts))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
					 errdetail("The value must be a path beginning with \"/\".")));
	}
	else
	{
		url = pstrdup(full);
		if (!sm_http_url_allowed(url, container_http_hosts))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("AWS_CONTAINER_CREDENTIALS_FULL_URI is not an allowed container credentials endpoint"),
					 errdetail("Only https URLs, or http URLs to a loopback address, 169.254.170.2, 169.254.170.23 or [fd00:ec2::23], are accepted.")));
	}

	headers[nheaders].name = "Accept";
	headers[nheaders].value = "application/json";
	nheaders++;
	auth = container_authorization();
	if (auth != NULL)
	{
		headers[nheaders].name = "Authorization";
		headers[nheaders].value = auth;
		nheaders++;
	}

	st = endpoint_request("GET", url, headers, nheaders,
						  SM_CONTAINER_TIMEOUT_MS, &resp);
	if (auth != NULL)
		sm_secure_zero(auth, strlen(auth));

	if (st != SM_HTTP_OK || resp.status != 200)
	{
		http_failed(f, endpoint, st, &resp);
		sm_http_response_free(&resp);
		return false;
	}

	reason = parse_credentials_json(resp.body, resp.body_len, false, v);
	sm_http_response_free(&resp);
	if (reason != NULL)
	{
		fetch_failed(f, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					 "MalformedResponse",
					 "The %s sent an unusable credentials document: %s.",
					 endpoint, reason);
		return false;
	}
	return true;
}

/* Is the instance metadata service switched off by AWS_EC2_METADATA_DISABLED? */
static bool
imds_disabled(void)
{
	const char *v = sm_env_get("AWS_EC2_METADATA_DISABLED");

	return v != NULL && pg_strcasecmp(v, "true") == 0;
}

/* Is a role name safe to put in a URL path (IAM's character set)? */
static bool
role_name_ok(const char *s)
{
	size_t		n = 0;

	for (; *s; s++, n++)
	{
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
			  (*s >= '0' && *s <= '9') || strchr("+=,.@_-", *s) != NULL))
			return false;
	}
	return n > 0 && n <= 128;
}

/*
 * Fetch from the EC2 instance metadata service, IMDSv2: a session token,
 * the role name, then the role's credentials.  One attempt of 1 s per step,
 * so that a server off EC2 learns quickly that there is nothing there.
 */
static bool
imds_fetch(SmCredValues *v, SmFetchFailure *f)
{
	const char *endpoint = "EC2 instance metadata service";
	const char *base_env = sm_env_get("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	char	   *base;
	size_t		blen;
	char	   *url;
	char	   *token;
	char	   *role;
	char	   *nl;
	SmHttpHeader hdr;
	SmHttpResponse resp;
	SmHttpStatus st;
	const char *reason;

	base = pstrdup(base_env ? base_env : SM_IMDS_DEFAULT_URL);
	blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		base[--blen] = '\0';
	if (!sm_http_url_allowed(base, imds_http_hosts))
	{
		fetch_failed(f, ERRCODE_INVALID_PARAMETER_VALUE, "EndpointNotAllowed",
					 "AWS_EC2_METADATA_SERVICE_ENDPOINT is not an https URL, nor an http URL to a loopback address, 169.254.169.254 or [fd00:ec2::254].");
		return false;
	}

	/* session token */
	url = psprintf("%s/latest/api/token", base);
	hdr.name = "x-aws-ec2-metadata-token-ttl-seconds";
	hdr.value = SM_IMDS_TOKEN_TTL;
	st = endpoint_request("PUT", url, &hdr, 1, SM_IMDS_TIMEOUT_MS, &resp);
	if (st != SM_HTTP_OK || resp.status != 200)
	{
		http_failed(f, endpoint, st, &resp);
		sm_http_response_free(&resp);
		return false;
	}
	token = resp.body;			/* a secret buffer */
	if (!sm_parse_credential_text_ok(token))
	{
		sm_http_response_free(&resp);
		fetch_failed(f, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					 "MalformedResponse",
					 "The %s sent a malformed session token.", endpoint);
		return false;
	}

	/* role name: the first line of the listing */
	url = psprintf("%s%s", base, SM_IMDS_CREDS_PATH);
	hdr.name = "x-aws-ec2-metadata-token";
	hdr.value = token;
	st = endpoint_request("GET", url, &hdr, 1, SM_IMDS_TIMEOUT_MS, &resp);
	if (st != SM_HTTP_OK || resp.status != 200)
	{
		if (st == SM_HTTP_OK && resp.status == 404)
			fetch_failed(f, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
						 "NoRole",
						 "The %s reports no IAM role attached to the instance.",
						 endpoint);
		else
			http_failed(f, endpoint, st, &resp);
		sm_http_response_free(&resp);
		sm_secure_zero(token, strlen(token));
		return false;
	}
	role = pstrdup(resp.body);
	sm_http_response_free(&resp);
	nl = strpbrk(role, "\r\n");
	if (nl != NULL)
		*nl = '\0';
	role = sm_parse_trim(role);
	if (!role_name_ok(role))
	{
		sm_secure_zero(token, strlen(token));
		fetch_failed(f, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					 role[0] == '\0' ? "NoRole" : "MalformedResponse",
					 role[0] == '\0' ?
					 "The %s reports no IAM role attached to the instance." :
					 "The %s sent a malformed IAM role name.", endpoint);
		return false;
	}

	/* the role's credentials */
	url = psprintf("%s%s%s", base, SM_IMDS_CREDS_PATH, role);
	st = endpoint_request("GET", url, &hdr, 1, SM_IMDS_TIMEOUT_MS, &resp);
	sm_secure_zero(token, strlen(token));
	if (st != SM_HTTP_OK || resp.status != 200)
	{
		http_failed(f, endpoint, st, &resp);
		sm_http_response_free(&resp);
		return false;
	}
	reason = parse_credentials_json(resp.body, resp.body_len, true, v);
	sm_http_response_free(&resp);
	if (reason != NULL)
	{
		fetch_failed(f, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					 "MalformedResponse",
					 "The %s sent an unusable credentials document for role \"%s\": %s.",
					 endpoint, role, reason);
		return false;
	}
	return true;
}

/* When should credentials expiring at exp be fetched again? */
static time_t
refresh_time(time_t exp, time_t now)
{
	if (exp == 0)
		return now + SM_CRED_NO_EXPIRY_S;
	if (exp - now > SM_CRED_REFRESH_S)
		return exp - SM_CRED_REFRESH_S;
	/* short-lived already: ask again soon, but not on every call */
	if (exp - now > 2 * SM_CRED_GRACE_S)
		return now + SM_CRED_GRACE_S;
	return now;
}

/*
 * Temporary credentials from source (container or instance metadata): the
 * kept ones while fresh, else a fetch.  On a failed fetch, kept credentials
 * with more than a minute left are used (with one WARNING); otherwise false
 * is returned with *f filled.
 */
static bool
temporary_credentials(const char *source, SmCredentials *out,
					  SmFetchFailure *f)
{
	time_t		now = time(NULL);
	MemoryContext fetchcxt;
	MemoryContext oldcxt;
	SmCredValues v;
	bool		ok;
	instr_time	start;
	instr_time	duration;
	const char *statname = (source == SRC_CONTAINER) ?
		"ContainerCredentials" : "InstanceMetadataCredentials";

	if (temp_cache.valid && temp_cache.source == source &&
		now < temp_cache.refresh_at)
	{
		copy_out(out, &temp_cache.v, source);
		return true;
	}

	/* responses and parsed copies are secret buffers, scrubbed with this */
	fetchcxt = AllocSetContextCreate(CurrentMemoryContext,
									 "secretsmgr credentials fetch",
									 ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(fetchcxt);

	INSTR_TIME_SET_CURRENT(start);
	if (source == SRC_CONTAINER)
		ok = container_fetch(&v, f);
	else
		ok = imds_fetch(&v, f);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	sm_stats_count(SM_STAT_API_CALL, statname,
				   INSTR_TIME_GET_MILLISEC(duration));

	if (ok)
	{
		temp_cache_clear();
		temp_cache.v.access_key_id = cache_strdup(v.access_key_id);
		temp_cache.v.secret_access_key = cache_strdup(v.secret_access_key);
		temp_cache.v.session_token = cache_strdup(v.session_token);
		temp_cache.v.expiration = v.expiration;
		temp_cache.source = source;
		temp_cache.refresh_at = refresh_time(v.expiration, now);
		temp_cache.valid = true;
		if (source == SRC_IMDS)
			imds_failed_at = 0;
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(fetchcxt);

	if (ok)
	{
		copy_out(out, &temp_cache.v, source);
		return true;
	}

	{
		char		statkey[128];

		snprintf(statkey, sizeof(statkey), "%s:%s", statname, f->what);
		sm_stats_count(SM_STAT_API_ERROR, statkey, 0);
	}
	if (source == SRC_IMDS)
		imds_failed_at = now;

	/* kept credentials still good for a while: better than nothing */
	if (temp_cache.valid && temp_cache.source == source &&
		(temp_cache.v.expiration == 0 ||
		 temp_cache.v.expiration - now > SM_CRED_GRACE_S))
	{
		if (!temp_cache.warned)
		{
			ereport(WARNING,
					(errmsg("could not refresh AWS credentials from the %s, using the current ones until they expire",
							source == SRC_CONTAINER ?
							"container credentials endpoint" :
							"EC2 instance metadata service"),
					 errdetail("%s", f->detail)));
			temp_cache.warned = true;
		}
		copy_out(out, &temp_cache.v, source);
		return true;
	}
	return false;
}

/* A copy of a cached role string (or NULL), for use after another lookup. */
static char *
role_strdup(const char *s)
{
	return s ? pstrdup(s) : NULL;
}

/*
 * A role profile of the shared credentials file: web_identity_token_file
 * (web identity), else role_arn assumed with the keys of source_profile or
 * with what credential_source names (Environment, Ec2InstanceMetadata,
 * EcsContainer), as the AWS SDKs read it.  Any failure is raised: a
 * profile that names a role never falls through to another identity.
 */
static void
from_role_profile(SmCredentials *out, const char *path, const char *profile,
				  const SmFileRole *cached)
{
	SmFileRole r;
	char	   *desc = psprintf("profile \"%s\" of shared credentials file \"%s\"",
							   profile, path);
	SmCredentials base;
	SmFetchFailure f;

	/* the cached strings go with the next lookup: copy them first */
	r.role_arn = role_strdup(cached->role_arn);
	r.source_profile = role_strdup(cached->source_profile);
	r.credential_source = role_strdup(cached->credential_source);
	r.web_identity_token_file = role_strdup(cached->web_identity_token_file);
	r.role_session_name = role_strdup(cached->role_session_name);
	r.external_id = role_strdup(cached->external_id);

	if (r.web_identity_token_file != NULL)
	{
		SmWebIdentity wi;

		wi.token_file = r.web_identity_token_file;
		wi.role_arn = r.role_arn;
		wi.session_name = r.role_session_name;
		wi.configured_by = psprintf("web_identity_token_file of %s", desc);
		sm_sts_web_identity(&wi, out);
		return;
	}

	memset(&base, 0, sizeof(base));
	memset(&f, 0, sizeof(f));
	if (r.source_profile != NULL && r.credential_source != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s has both source_profile and credential_source", desc),
				 errhint("Keep one of them: the credentials role_arn is assumed with come from one source.")));
	if (r.source_profile != NULL)
	{
		SmCredValues v;
		SmCredFileResult result = shared_file_lookup(path, r.source_profile, &v, NULL);
		char	   *src_desc = psprintf("profile \"%s\" of shared credentials file \"%s\"",
										r.source_profile, path);

		if (result != SM_FILE_FOUND)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("source_profile \"%s\" of %s has no keys",
							r.source_profile, desc),
					 errdetail("%s",
							   result == SM_FILE_ROLE ?
							   "The source profile is itself a role profile; chains of role profiles are not supported." :
							   result == SM_FILE_NO_PROFILE ?
							   "There is no section of that name in the file." :
							   "The source profile must hold aws_access_key_id and aws_secret_access_key."),
					 errhint("Point source_profile at a profile with keys, or use credential_source.")));
		validate_values(&v, src_desc);
		copy_out(&base, &v, SRC_SHARED_FILE);
	}
	else if (r.credential_source != NULL &&
			 strcmp(r.credential_source, "Environment") == 0)
	{
		if (!from_environment(&base))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("credential_source Environment of %s finds no keys", desc),
					 errhint("Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the server's environment.")));
	}
	else if (r.credential_source != NULL &&
			 (strcmp(r.credential_source, "EcsContainer") == 0 ||
			  strcmp(r.credential_source, "Ec2InstanceMetadata") == 0))
	{
		bool		ecs = strcmp(r.credential_source, "EcsContainer") == 0;

		if (ecs && !container_configured())
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("credential_source EcsContainer of %s finds no container credentials endpoint", desc),
					 errhint("Set AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI in the server's environment.")));
		if (!temporary_credentials(ecs ? SRC_CONTAINER : SRC_IMDS, &base, &f))
			ereport(ERROR,
					(errcode(f.sqlerrcode),
					 errmsg("could not get the credentials credential_source %s of %s names",
							r.credential_source, desc),
					 errdetail("%s", f.detail)));
	}
	else if (r.credential_source != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("credential_source \"%s\" of %s is not supported",
						r.credential_source, desc),
				 errhint("Use Environment, Ec2InstanceMetadata or EcsContainer.")));
	else
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s has role_arn but no source of credentials", desc),
				 errhint("Add source_profile, credential_source or web_identity_token_file to the profile.")));

	sm_sts_assume_role_as(&base, r.role_arn, r.external_id,
						  r.role_session_name, desc, false, out);
	sm_credentials_free(&base);
}

/*
 * Resolve credentials through the chain.  The copies are secret buffers of
 * CurrentMemoryContext.
 */
static void
chain_credentials(SmCredentials *out)
{
	StringInfoData tried;
	SmFetchFailure f;
	SmWebIdentity wi;

	memset(out, 0, sizeof(*out));
	memset(&f, 0, sizeof(f));

	if (from_settings(out))
		return;
	if (from_environment(out))
		return;
	if (sm_sts_web_identity_from_env(&wi))
	{
		sm_sts_web_identity(&wi, out);
		return;
	}

	initStringInfo(&tried);
	appendStringInfoString(&tried, "Neither \"secretsmgr.access_key_id\" nor AWS_ACCESS_KEY_ID is set.");
	if (from_shared_file(out, &tried))
		return;

	if (container_configured())
	{
		if (temporary_credentials(SRC_CONTAINER, out, &f))
			return;
		/* the server was told to use the container endpoint: say why not */
		ereport(ERROR,
				(errcode(f.sqlerrcode),
				 errmsg("could not get AWS credentials from the container credentials endpoint"),
				 errdetail("%s", f.detail),
				 errhint("Check AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI, and the authorization token, in the server's environment.")));
	}
	appendStringInfoString(&tried, " No container credentials endpoint is configured.");

	if (imds_disabled())
		appendStringInfoString(&tried, " The EC2 instance metadata service is disabled by AWS_EC2_METADATA_DISABLED.");
	else
	{
		if (temporary_credentials(SRC_IMDS, out, &f))
			return;
		appendStringInfoString(&tried, " The EC2 instance metadata service gave no credentials.");
	}

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("no AWS credentials found"),
			 errdetail("%s", tried.data),
			 f.detail[0] ? errdetail_log("%s %s", tried.data, f.detail) : 0,
			 errhint("Set \"secretsmgr.access_key_id\" and \"secretsmgr.secret_access_key\", the AWS_* environment variables of the server, a shared credentials file, or run on an instance or container with an IAM role.")));
}

/*
 * Resolve credentials; see credentials.h.  With secretsmgr.role_arn set, the
 * chain's credentials only serve to assume that role.
 */
void
sm_credentials_get(SmCredentials *out)
{
	SmCredentials base;

	if (!sm_sts_assume_role_configured())
	{
		chain_credentials(out);
		return;
	}
	chain_credentials(&base);
	sm_sts_assume_role(&base, out);
	sm_credentials_free(&base);
}

/*
 * Zero the strings of a copy.  They are secret buffers of the caller's
 * context, released (and zeroed again) with it: freeing them by hand would
 * leave their reset callbacks pointing at freed memory.
 */
void
sm_credentials_free(SmCredentials *creds)
{
	if (creds == NULL)
		return;
	if (creds->access_key_id)
		sm_secure_zero(creds->access_key_id, strlen(creds->access_key_id));
	if (creds->secret_access_key)
		sm_secure_zero(creds->secret_access_key, strlen(creds->secret_access_key));
	if (creds->session_token)
		sm_secure_zero(creds->session_token, strlen(creds->session_token));
	creds->access_key_id = NULL;
	creds->secret_access_key = NULL;
	creds->session_token = NULL;
	creds->expiration = 0;
}

/*
 * Forget kept credentials, e.g. after ExpiredTokenException: temporary ones
 * and the last parse of the shared file are both dropped and scrubbed.
 */
void
sm_credentials_invalidate(void)
{
	temp_cache_clear();
	file_cache_clear();
	sm_sts_invalidate();
}
