/*
 * fuzz_credentials_file.c
 *		libFuzzer target: the shared credentials file (~/.aws/credentials),
 *		through sm_parse_credentials_file() as credentials.c calls it: the
 *		file's bytes in a NUL-terminated buffer, looked up for a profile.
 *
 * Checks: every value returned points inside the buffer and has no
 * surrounding whitespace nor a line break; the result agrees with which
 * keys were found.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* v points into [buf, buf+len], is trimmed, and is on one line. */
static void
check_value(const char *v, const char *buf, size_t len)
{
	size_t		n;

	if (v == NULL)
		return;
	CHECK(v >= buf && v <= buf + len);
	n = strlen(v);
	CHECK(n > 0);
	CHECK(v + n <= buf + len);
	CHECK(strchr(v, '\n') == NULL);
	CHECK(v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' && v[n - 1] != '\r');
}

/* Parse a fresh copy of data for one profile. */
static void
one_profile(const uint8_t *data, size_t size, const char *profile)
{
	char	   *buf = malloc(size + 1);
	SmCredFileValues v;
	SmCredFileResult r;

	if (buf == NULL)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	r = sm_parse_credentials_file(buf, profile, &v);
	check_value(v.access_key_id, buf, size);
	check_value(v.secret_access_key, buf, size);
	check_value(v.session_token, buf, size);
	check_value(v.role_arn, buf, size);
	check_value(v.source_profile, buf, size);
	check_value(v.credential_source, buf, size);
	check_value(v.web_identity_token_file, buf, size);
	check_value(v.role_session_name, buf, size);
	check_value(v.external_id, buf, size);
	switch (r)
	{
		case SM_FILE_FOUND:
			CHECK(v.access_key_id && v.secret_access_key);
			break;
		case SM_FILE_PARTIAL:
			CHECK((v.access_key_id == NULL) != (v.secret_access_key == NULL));
			break;
		case SM_FILE_NO_KEYS:
			CHECK(!v.access_key_id && !v.secret_access_key);
			break;
		case SM_FILE_NO_PROFILE:
			CHECK(!v.access_key_id && !v.secret_access_key && !v.session_token);
			CHECK(!v.role_arn);
			break;
		case SM_FILE_ROLE:
			CHECK(v.role_arn);
			break;
		default:
			CHECK(0);
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one_profile(data, size, "default");
	one_profile(data, size, "prod");
	one_profile(data, size, "");
	return 0;
}
