/*
 * parse.h
 *		Parsers of what the network and the file system hand us: AWS error
 *		bodies, GetSecretValue and BatchGetSecretValue responses, credential
 *		endpoint documents and the shared credentials file.
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
 * Parse an error response body.  Returns 1 when it is a JSON object (the
 * fields are then filled, each may be NULL), 0 when it is not, -1 when out
 * of memory.  Release with sm_parsed_error_free.
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
	SM_FILE_FOUND
} SmCredFileResult;

/* The keys of one profile: pointers into the parsed buffer, or NULL. */
typedef struct SmCredFileValues
{
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;
} SmCredFileValues;

/*
 * Parse a shared credentials file held in the NUL-terminated buf (modified
 * in place) the way botocore's configparser reads it: "[name]" sections,
 * "key = value" or "key: value", whole-line comments with '#' or ';', keys
 * compared without case.  Points v's fields into buf.
 */
extern SmCredFileResult sm_parse_credentials_file(char *buf, const char *profile,
												  SmCredFileValues *v);

/* Trim ASCII whitespace at both ends of s, in place. */
extern char *sm_parse_trim(char *s);

#endif							/* SECRETSMGR_PARSE_H */
