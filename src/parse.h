/*
 * parse.h
 *		Parsers of what the network and the file system hand us: AWS error
 *		bodies, GetSecretValue, BatchGetSecretValue, DescribeSecret and
 *		ListSecretVersionIds responses, the secret's own credentials JSON,
 *		credential endpoint documents and the shared credentials file.
 *
 * Plain C and jansson, no PostgreSQL header, so each parser builds alone
 * into a libFuzzer target (test/fuzz/).  Outputs are malloc'd and released
 * with the matching free function, which zeroes what may hold a secret.
 * Nothing here calls jansson's json_object(): see smjson.h.
 */
#ifndef SECRETSMGR_PARSE_H
#define SECRETSMGR_PARSE_H

#include <stddef.h>
#include <time.h>

/* jansson's value type (see smclient.h for why it is declared here). */
typedef struct json_t json_t;

/* The AWS error body fields we use (malloc'd, or NULL). */
typedef struct SmParsedError
{
	char	   *type;			/* "__type" (else "code") as the SDKs read it:
								 * after the last '#', before any ':', kept to
								 * [A-Za-z0-9_.:-], at most 96 characters */
	char	   *message;		/* "message" (else "Message"): printable ASCII,
								 * others as '?', at most 256 characters */
} SmParsedError;

/*
 * Parse an error response body: a JSON object ("__type"/"code",
 * "message"/"Message"), or an XML ErrorResponse whose Error has a Code (what
 * the query-protocol front ends answer to authentication failures).
 * Returns 1 when it is one (the fields are then filled, each may be NULL),
 * 0 when it is not, -1 when out of memory.  Release with
 * sm_parsed_error_free.
 */
extern int	sm_parse_error_body(const char *body, size_t len, SmParsedError *out);
extern void sm_parsed_error_free(SmParsedError *e);

/* Keep [A-Za-z0-9_.:-] of s, at most maxlen characters (malloc'd). */
extern char *sm_parse_sanitize_token(const char *s, size_t maxlen);

/* s for the server log: printable ASCII, others as '?', at most 256 (malloc'd). */
extern char *sm_parse_sanitize_message(const char *s);

/* One secret version as a response carries it (all malloc'd, or NULL). */
typedef struct SmParsedSecret
{
	char	   *arn;
	char	   *name;
	char	   *version_id;
	char	   *secret_string;	/* when SecretString is a string */
	size_t		secret_string_len;
	char	   *secret_binary_b64;	/* SecretBinary's base64 text, when there
									 * is no SecretString */
	size_t		secret_binary_b64_len;
	char	  **stages;			/* the string members of VersionStages */
	int			nstages;
	double		created_date;	/* CreatedDate when a number, else 0 */
} SmParsedSecret;

/*
 * Extract the fields of a GetSecretValue response (or of one member of
 * BatchGetSecretValue's SecretValues).  Fields of the wrong JSON type are
 * left empty; the caller decides what is required.  Returns 0, or -1 when
 * out of memory (out is then empty).  Release with sm_parsed_secret_free.
 */
extern int	sm_parse_secret_value(const json_t *obj, SmParsedSecret *out);
extern void sm_parsed_secret_free(SmParsedSecret *s);

/* What a BatchGetSecretValue response says about one requested id. */
typedef struct SmParsedBatchItem
{
	int			found;
	SmParsedSecret value;		/* when found */
	char	   *error_code;		/* when not found: the sanitised ErrorCode,
								 * "UnknownError" or "NotReturned" */
} SmParsedBatchItem;

/*
 * Match the response's SecretValues (by ARN or Name) and Errors (by
 * SecretId) to ids[0..n-1], the first unanswered item taking each.  An item
 * that nothing answered gets error_code "NotReturned".  Returns 0, or -1 when
 * out of memory (items are then empty).  Release with sm_parsed_batch_free.
 */
extern int	sm_parse_batch(const json_t *root, const char *const *ids, int n,
						   SmParsedBatchItem *items);
extern void sm_parsed_batch_free(SmParsedBatchItem *items, int n);

/* One version and its staging labels, as DescribeSecret lists them. */
typedef struct SmVersionStages
{
	char	   *version_id;
	char	  **stages;			/* the string labels, NULL-terminated */
	int			nstages;
} SmVersionStages;

/* What DescribeSecret says about a secret (all malloc'd, or NULL / 0). */
typedef struct SmSecretDescription
{
	char	   *arn;
	char	   *name;
	char	   *kms_key_id;
	int			rotation_enabled;	/* RotationEnabled is true */
	char	   *rotation_lambda_arn;
	long long	rotation_after_days;	/* RotationRules.AutomaticallyAfterDays,
										 * 0 when absent */
	char	   *rotation_schedule;	/* RotationRules.ScheduleExpression */
	int			deleted;		/* DeletedDate is present and not null */
	double		deleted_date;	/* DeletedDate when a number, else 0 */
	SmVersionStages *versions;	/* VersionIdsToStages, in document order */
	int			nversions;
} SmSecretDescription;

/*
 * Extract a DescribeSecret response.  Every field is optional (the API
 * reference marks none as always present); fields of the wrong JSON type are
 * left empty, labels that are not strings are skipped.  Returns 0, or -1
 * when out of memory (out is then empty).  Release with
 * sm_secret_description_free.
 */
extern int	sm_parse_describe_secret(const json_t *root, SmSecretDescription *out);
extern void sm_secret_description_free(SmSecretDescription *d);

/* The labels of version_id in d, or NULL when d does not list it. */
extern const SmVersionStages *sm_description_version(const SmSecretDescription *d,
													 const char *version_id);

/* The version of d that carries stage, or NULL. */
extern const char *sm_description_holder(const SmSecretDescription *d,
										 const char *stage);

/* Does the list of labels carry stage? */
extern int	sm_stages_have(char *const *stages, int nstages, const char *stage);

/* One entry of ListSecretVersionIds' Versions. */
typedef struct SmVersionEntry
{
	char	   *version_id;		/* NULL when absent */
	char	  **stages;			/* NULL-terminated, or NULL when absent */
	int			nstages;
	int			has_created_date;	/* CreatedDate is a number */
	double		created_date;
} SmVersionEntry;

/* Longest NextToken the API accepts back (ListSecretVersionIds). */
#define SM_PARSE_MAX_NEXT_TOKEN 4096

/* One page of ListSecretVersionIds (all malloc'd). */
typedef struct SmVersionsPage
{
	SmVersionEntry *versions;
	int			nversions;
	char	   *next_token;		/* NULL when the answer has none, or an
								 * empty one: botocore treats an empty
								 * string as no token */
	int			bad_next_token; /* NextToken is not a string, or longer than
								 * SM_PARSE_MAX_NEXT_TOKEN */
} SmVersionsPage;

/*
 * Extract one ListSecretVersionIds page.  Versions that are not objects are
 * skipped.  Returns 0, or -1 when out of memory (out is then empty).
 * Release with sm_versions_page_free.
 */
extern int	sm_parse_versions_page(const json_t *root, SmVersionsPage *out);
extern void sm_versions_page_free(SmVersionsPage *p);

/*
 * Paging over a remote list: the guard every paginated call goes through.
 * sm_pager_next is given the token of the page just read (NULL or "" when
 * it had none) and says whether to stop, go on, or fail.
 */
typedef enum SmPageStep
{
	SM_PAGE_DONE,				/* no token: the list is complete */
	SM_PAGE_NEXT,				/* fetch the page of pager->token */
	SM_PAGE_REPEATED,			/* the same token as the page before */
	SM_PAGE_TOO_MANY,			/* more than max_pages pages */
	SM_PAGE_NO_MEMORY
} SmPageStep;

typedef struct SmPager
{
	int			max_pages;
	int			pages;			/* pages read so far */
	char	   *token;			/* the token to send next (malloc'd) */
} SmPager;

extern void sm_pager_init(SmPager *p, int max_pages);
extern SmPageStep sm_pager_next(SmPager *p, const char *token);
extern void sm_pager_free(SmPager *p);

/* The login a secret's JSON holds: {"username": ..., "password": ...}. */
typedef enum SmLoginStatus
{
	SM_LOGIN_OK = 0,
	SM_LOGIN_NOT_JSON,			/* not JSON, or not a JSON object */
	SM_LOGIN_NO_USERNAME,		/* "username" absent, empty or not a string */
	SM_LOGIN_NO_PASSWORD,		/* "password" absent, empty or not a string */
	SM_LOGIN_NO_MEMORY
} SmLoginStatus;

typedef struct SmParsedLogin
{
	char	   *username;
	char	   *password;		/* zeroed by sm_parsed_login_free */
	size_t		password_len;
	int			nother;			/* members besides username and password
								 * (engine, host, port, dbname, ...) */
} SmParsedLogin;

/*
 * Parse a secret's JSON value (len bytes, duplicate keys rejected as
 * RDS's and the SDKs' readers would not agree on them).  On SM_LOGIN_OK the
 * fields are set; otherwise out is empty.  Release with
 * sm_parsed_login_free.
 */
extern SmLoginStatus sm_parse_login(const char *json, size_t len, SmParsedLogin *out);
extern void sm_parsed_login_free(SmParsedLogin *l);

/*
 * The value json with "password" set to password and, when username is not
 * NULL, "username" set to username; every other member passes through.
 * Compact JSON, malloc'd, *out_len set; NULL when json is not a JSON object
 * or out of memory.  The caller zeroes and frees it.
 */
extern char *sm_parse_login_replace(const char *json, size_t len,
									const char *username, const char *password,
									size_t *out_len);

/* Credentials from a container or instance metadata document (malloc'd). */
typedef struct SmParsedCreds
{
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;	/* NULL if none */
	time_t		expiration;		/* 0 if none */
} SmParsedCreds;

/*
 * Parse a credentials document (AccessKeyId, SecretAccessKey, Token,
 * Expiration, Code).  Returns NULL on success, else a static reason that
 * names fields, never values (out is then empty).  Release with
 * sm_parsed_creds_free.
 */
extern const char *sm_parse_credentials_json(const char *body, size_t len,
											 int need_expiration,
											 SmParsedCreds *out);
extern void sm_parsed_creds_free(SmParsedCreds *c);

/*
 * Is a credential string well formed: printable ASCII without spaces, 1 to
 * 8192 characters?  The values end up in HTTP headers, so this also keeps
 * CR/LF out of them.
 */
extern int	sm_parse_credential_text_ok(const char *s);

/*
 * An ISO 8601 UTC time as the credential endpoints send it:
 * "YYYY-MM-DDTHH:MM:SSZ", optionally with fractional seconds and with a
 * numeric offset instead of "Z".  Returns 1 and sets *out, or 0.
 */
extern int	sm_parse_iso8601(const char *s, time_t *out);

/* Outcome of looking a profile up in the shared credentials file. */
typedef enum SmCredFileResult
{
	SM_FILE_ABSENT,				/* no such file (decided by the caller) */
	SM_FILE_NO_PROFILE,			/* file has no section of that name */
	SM_FILE_NO_KEYS,			/* section has neither key */
	SM_FILE_PARTIAL,			/* section has one key of the two */
	SM_FILE_FOUND,
	SM_FILE_ROLE				/* section has role_arn: a role profile */
} SmCredFileResult;

/* The keys of one profile: pointers into the parsed buffer, or NULL. */
typedef struct SmCredFileValues
{
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;
	/* a role profile (the SDKs' assume-role and web identity keys) */
	char	   *role_arn;
	char	   *source_profile;
	char	   *credential_source;
	char	   *web_identity_token_file;
	char	   *role_session_name;
	char	   *external_id;
} SmCredFileValues;

/*
 * Parse a shared credentials file held in the NUL-terminated buf (modified
 * in place) the way botocore's configparser reads it: "[name]" sections,
 * "key = value" or "key: value", whole-line comments with '#' or ';', keys
 * compared without case.  Points v's fields into buf.  A section with
 * role_arn is SM_FILE_ROLE, whatever keys it also holds (as botocore).
 */
extern SmCredFileResult sm_parse_credentials_file(char *buf, const char *profile,
												  SmCredFileValues *v);

/* Trim ASCII whitespace at both ends of s, in place. */
extern char *sm_parse_trim(char *s);

#endif							/* SECRETSMGR_PARSE_H */
