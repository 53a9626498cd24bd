/*
 * fuzz_secret_value.c
 *		libFuzzer target: a 200 response to GetSecretValue,
 *		BatchGetSecretValue or DescribeSecret.
 *
 * The body goes through what attempt_call() in smclient.c does with every
 * 200 answer (json_loadb with JSON_REJECT_DUPLICATES, must be an object),
 * then through both extractors of parse.c: sm_parse_secret_value() as for
 * GetSecretValue, and sm_parse_batch() against a fixed list of requested
 * ids as for BatchGetSecretValue.  DescribeSecret answers are handed to SQL
 * as jansson's compact, sorted dump (sqlapi.c), which is done here too.
 *
 * Checks: lengths reported match the strings; stages are strings; every
 * requested batch id ends up either found or with a sanitised error code,
 * never both; a found item answers the id by ARN or Name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* The ids a batch asks for: names, an ARN, a duplicate, an odd one. */
static const char *const batch_ids[] = {
	"prod/app",
	"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
	"missing/x",
	"prod/app",
	"a",
	"",
};
#define NIDS ((int) (sizeof(batch_ids) / sizeof(batch_ids[0])))

/* The invariants of one extracted secret version. */
static void
check_secret(const SmParsedSecret *s)
{
	if (s->secret_string)
		CHECK(strlen(s->secret_string) == s->secret_string_len);
	else
		CHECK(s->secret_string_len == 0);
	if (s->secret_binary_b64)
	{
		CHECK(s->secret_string == NULL);
		CHECK(strlen(s->secret_binary_b64) == s->secret_binary_b64_len);
	}
	CHECK(s->nstages >= 0);
	CHECK(s->nstages == 0 || s->stages != NULL);
	for (int i = 0; i < s->nstages; i++)
		CHECK(s->stages[i] != NULL);
	if (s->stages)
		CHECK(s->stages[s->nstages] == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t	   *root;
	json_error_t jerr;
	SmParsedSecret ps;
	SmParsedBatchItem items[NIDS];
	char	   *dump;

	root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return 0;
	if (!json_is_object(root))
	{
		json_decref(root);
		return 0;
	}

	/* GetSecretValue */
	if (sm_parse_secret_value(root, &ps) == 0)
	{
		check_secret(&ps);
		sm_parsed_secret_free(&ps);
		CHECK(ps.secret_string == NULL && ps.stages == NULL);
	}

	/* BatchGetSecretValue */
	if (sm_parse_batch(root, batch_ids, NIDS, items) == 0)
	{
		for (int k = 0; k < NIDS; k++)
		{
			CHECK(items[k].found ? items[k].error_code == NULL
				  : items[k].error_code != NULL);
			if (items[k].found)
			{
				check_secret(&items[k].value);
				CHECK((items[k].value.arn && strcmp(items[k].value.arn, batch_ids[k]) == 0) ||
					  (items[k].value.name && strcmp(items[k].value.name, batch_ids[k]) == 0));
			}
			else
			{
				CHECK(strlen(items[k].error_code) <= 96);
				CHECK(strspn(items[k].error_code,
							 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")
					  == strlen(items[k].error_code));
			}
		}
		sm_parsed_batch_free(items, NIDS);
	}

	/* DescribeSecret, as secretsmgr_describe_secret() serialises it */
	dump = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	free(dump);

	json_decref(root);
	return 0;
}
