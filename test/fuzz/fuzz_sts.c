/*
 * fuzz_sts.c
 *		libFuzzer target: an answer of AWS STS (AssumeRole,
 *		AssumeRoleWithWebIdentity, or an ErrorResponse) through
 *		sm_parse_sts_credentials() and sm_parse_sts_error() (libxml2).
 *
 * Checks: credentials are accepted only with all three values well formed
 * (they go into HTTP headers) and an expiration; a rejected answer leaves
 * nothing allocated; an error code is never empty and holds only
 * [A-Za-z0-9_.:-]; nothing leaks (libFuzzer's leak check).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "parse_sts.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const actions[] = {"AssumeRole", "AssumeRoleWithWebIdentity"};
	SmParsedSts p;
	int			rc;

	for (int i = 0; i < 2; i++)
	{
		const char *reason = sm_parse_sts_credentials((const char *) data, size,
													  actions[i], &p);

		if (reason == NULL)
		{
			CHECK(p.access_key_id && sm_parse_credential_text_ok(p.access_key_id));
			CHECK(p.secret_access_key && sm_parse_credential_text_ok(p.secret_access_key));
			CHECK(p.session_token && sm_parse_credential_text_ok(p.session_token));
			CHECK(p.error_code == NULL);
			sm_parsed_sts_free(&p);
		}
		CHECK(p.access_key_id == NULL && p.secret_access_key == NULL &&
			  p.session_token == NULL && p.assumed_role_arn == NULL);
	}

	rc = sm_parse_sts_error((const char *) data, size, &p);
	CHECK(rc >= -1 && rc <= 1);
	if (rc == 1)
	{
		CHECK(p.error_code != NULL && p.error_code[0] != '\0');
		CHECK(strspn(p.error_code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") ==
			  strlen(p.error_code));
		CHECK(p.error_message == NULL || strlen(p.error_message) <= 256);
		sm_parsed_sts_free(&p);
	}
	CHECK(p.error_code == NULL && p.error_message == NULL);
	return 0;
}
