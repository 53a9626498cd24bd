/*
 * fuzz_credentials_json.c
 *		libFuzzer target: a document from the container credentials
 *		endpoint (ECS, EKS Pod Identity) or the EC2 instance metadata
 *		service, through sm_parse_credentials_json(), and its Expiration
 *		through sm_parse_iso8601().
 *
 * Checks: a document is accepted only with both keys well formed (they go
 * into HTTP headers: no space, no control character, no CR/LF); a rejected
 * one leaves nothing allocated; the instance metadata form (Expiration
 * required) never accepts what the container form rejects.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	SmParsedCreds c;
	const char *container;
	const char *imds;
	char	   *text;
	time_t		t;

	container = sm_parse_credentials_json((const char *) data, size, 0, &c);
	if (container == NULL)
	{
		CHECK(c.access_key_id && sm_parse_credential_text_ok(c.access_key_id));
		CHECK(c.secret_access_key && sm_parse_credential_text_ok(c.secret_access_key));
		CHECK(c.session_token == NULL || sm_parse_credential_text_ok(c.session_token));
		sm_parsed_creds_free(&c);
	}
	CHECK(c.access_key_id == NULL && c.secret_access_key == NULL &&
		  c.session_token == NULL);

	imds = sm_parse_credentials_json((const char *) data, size, 1, &c);
	CHECK(imds != NULL || container == NULL);
	if (imds == NULL)
	{
		CHECK(c.access_key_id && c.secret_access_key);
		sm_parsed_creds_free(&c);
	}

	/* the same bytes as a time string */
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (sm_parse_iso8601(text, &t))
		CHECK(strlen(text) >= 20);
	(void) sm_parse_credential_text_ok(text);
	free(text);
	return 0;
}
