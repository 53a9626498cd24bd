/*
 * fuzz_error_body.c
 *		libFuzzer target: an AWS error response body, as smclient.c hands it
 *		to sm_parse_error_body() for any non-200 answer.
 *
 * Checks, beyond "no crash, no sanitizer report": the error type holds only
 * [A-Za-z0-9_.:-] and at most 96 characters, with nothing of a "#" prefix
 * left; the message is printable ASCII of at most 256 characters.  A type
 * or message that broke these could carry control characters into the
 * server log or an SQL error detail.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop the run (libFuzzer saves the input) when an invariant fails. */
#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	SmParsedError e;
	int			rc = sm_parse_error_body((const char *) data, size, &e);

	CHECK(rc >= -1 && rc <= 1);
	if (rc != 1)
	{
		CHECK(e.type == NULL && e.message == NULL);
		return 0;
	}
	if (e.type)
	{
		size_t		n = strlen(e.type);

		CHECK(n <= 96);
		CHECK(strchr(e.type, '#') == NULL);
		for (size_t i = 0; i < n; i++)
		{
			unsigned char c = (unsigned char) e.type[i];

			CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				  (c >= '0' && c <= '9') || c == '_' || c == '.' ||
				  c == '-' || c == ':');
		}
	}
	if (e.message)
	{
		size_t		n = strlen(e.message);

		CHECK(n <= 256);
		for (size_t i = 0; i < n; i++)
			CHECK((unsigned char) e.message[i] >= 0x20 &&
				  (unsigned char) e.message[i] < 0x7f);
	}
	sm_parsed_error_free(&e);
	CHECK(e.type == NULL && e.message == NULL);
	return 0;
}
