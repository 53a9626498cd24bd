/*
 * fuzz_login.c
 *		libFuzzer target: a secret's own value as the rotation code reads it
 *		(username and password), and the new value it builds from it.
 *
 * The input is the SecretString as GetSecretValue returned it.
 * sm_parse_login() extracts the login; sm_parse_login_replace() builds the
 * next version's value with a new password (and, as "alternating" does, a
 * new username), which must parse back to exactly those.
 *
 * Checks: a parsed login has a non-empty username and password of the
 * reported length; the rebuilt value parses back with the new login and
 * the same number of other members; a value that is not a JSON object is
 * never rebuilt.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char new_password[] = "N3w-pass\"word\\\x7f";
	static const char new_user[] = "app_user_2";
	SmParsedLogin login;
	SmParsedLogin again;
	SmLoginStatus st;
	char	   *built;
	size_t		len;

	st = sm_parse_login((const char *) data, size, &login);
	if (st != SM_LOGIN_OK)
	{
		CHECK(login.username == NULL && login.password == NULL);
		return 0;
	}
	CHECK(login.username != NULL && login.password != NULL);
	CHECK(login.password_len > 0);
	CHECK(login.password[login.password_len] == '\0');
	CHECK(login.nother >= 0);

	for (int alternating = 0; alternating < 2; alternating++)
	{
		built = sm_parse_login_replace((const char *) data, size,
									   alternating ? new_user : NULL,
									   new_password, &len);
		if (built == NULL)
			continue;			/* out of memory, or a value jansson will
								 * not write back (invalid UTF-8 kept) */
		CHECK(strlen(built) == len);
		CHECK(sm_parse_login(built, len, &again) == SM_LOGIN_OK);
		CHECK(again.password_len == strlen(new_password));
		CHECK(memcmp(again.password, new_password, again.password_len) == 0);
		if (alternating)
			CHECK(strcmp(again.username, new_user) == 0);
		else
			CHECK(strcmp(again.username, login.username) == 0);
		CHECK(again.nother == login.nother);
		sm_parsed_login_free(&again);
		free(built);
	}

	sm_parsed_login_free(&login);
	CHECK(login.password == NULL);
	return 0;
}
