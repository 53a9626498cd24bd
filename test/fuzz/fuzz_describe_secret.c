/*
 * fuzz_describe_secret.c
 *		libFuzzer target: a 200 response to DescribeSecret.
 *
 * The body goes through what attempt_call() in smclient.c does with every
 * 200 answer (json_loadb with JSON_REJECT_DUPLICATES, must be an object),
 * then through sm_parse_describe_secret() and the look-ups the health check,
 * the registry and the rotation code make on its result.
 *
 * Checks: every listed version has an id and a NULL-terminated list of
 * string labels; the holder of a label carries it; a version found by id
 * is that version; freeing leaves the description empty.
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
	static const char *const labels[] = {"AWSCURRENT", "AWSPENDING", "AWSPREVIOUS", ""};
	json_t	   *root;
	json_error_t jerr;
	SmSecretDescription d;

	root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return 0;
	if (!json_is_object(root))
	{
		json_decref(root);
		return 0;
	}

	if (sm_parse_describe_secret(root, &d) == 0)
	{
		CHECK(d.nversions >= 0);
		CHECK(d.nversions == 0 || d.versions != NULL);
		CHECK(d.deleted == 0 || d.deleted == 1);
		for (int i = 0; i < d.nversions; i++)
		{
			const SmVersionStages *vs = &d.versions[i];

			CHECK(vs->version_id != NULL);
			CHECK(vs->stages != NULL && vs->stages[vs->nstages] == NULL);
			for (int k = 0; k < vs->nstages; k++)
				CHECK(vs->stages[k] != NULL);
			CHECK(sm_description_version(&d, vs->version_id) != NULL);
			CHECK(strcmp(sm_description_version(&d, vs->version_id)->version_id,
						 vs->version_id) == 0);
		}
		for (size_t l = 0; l < sizeof(labels) / sizeof(labels[0]); l++)
		{
			const char *holder = sm_description_holder(&d, labels[l]);

			if (holder != NULL)
			{
				const SmVersionStages *vs = sm_description_version(&d, holder);

				CHECK(vs != NULL && sm_stages_have(vs->stages, vs->nstages, labels[l]));
			}
		}
		sm_secret_description_free(&d);
		CHECK(d.arn == NULL && d.versions == NULL && d.nversions == 0);
	}

	json_decref(root);
	return 0;
}
