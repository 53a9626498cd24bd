/*
 * parse_sts.h
 *		Parser of AWS STS answers (XML, Query protocol): the credentials of
 *		AssumeRole and AssumeRoleWithWebIdentity, and ErrorResponse bodies.
 *
 * Plain C and libxml2, no PostgreSQL header, so that it builds alone into a
 * libFuzzer target (test/fuzz/fuzz_sts.c).  The document is parsed with
 * neither network access nor DTD: a body with a document type declaration
 * or an entity declaration is refused before libxml2 sees it.  libxml2's
 * blocks are zeroed when it frees them (sm_parse_sts_init), and the
 * outputs are malloc'd and released with sm_parsed_sts_free, which zeroes
 * what may hold a secret.
 */
#ifndef SECRETSMGR_PARSE_STS_H
#define SECRETSMGR_PARSE_STS_H

#include <stddef.h>
#include <time.h>

/* Largest STS answer parsed (a real one is a few KiB). */
#define SM_STS_BODY_MAX			(64 * 1024)

/* What an STS answer says (all malloc'd, or NULL). */
typedef struct SmParsedSts
{
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;
	time_t		expiration;
	char	   *assumed_role_arn;	/* AssumedRoleUser/Arn, printable */
	char	   *error_code;		/* ErrorResponse: Error/Code, sanitised */
	char	   *error_message;	/* ErrorResponse: Error/Message, sanitised */
} SmParsedSts;

/*
 * Make libxml2 zero every block it frees.  Called once before the first
 * parse; harmless to call again.  Blocks stay compatible with malloc/free.
 */
extern void sm_parse_sts_init(void);

/*
 * Parse a successful answer of action ("AssumeRole" or
 * "AssumeRoleWithWebIdentity"): <actionResponse><actionResult><Credentials>
 * with AccessKeyId, SecretAccessKey, SessionToken and Expiration, in STS's
 * namespace.  Returns NULL, or a static reason naming elements, never
 * values (out is then empty).
 */
extern const char *sm_parse_sts_credentials(const char *body, size_t len,
											const char *action,
											SmParsedSts *out);

/*
 * Parse an ErrorResponse (<ErrorResponse><Error><Code>, <Message>).
 * Returns 1 when the body is one (error_code set), else 0; -1 when out of
 * memory.
 */
extern int	sm_parse_sts_error(const char *body, size_t len, SmParsedSts *out);

/* Zero and free every field. */
extern void sm_parsed_sts_free(SmParsedSts *p);

#endif							/* SECRETSMGR_PARSE_STS_H */
