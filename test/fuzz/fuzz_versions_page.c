/*
 * fuzz_versions_page.c
 *		libFuzzer target: a 200 response to ListSecretVersionIds, and the
 *		paging guard fed with its NextToken.
 *
 * The body is read as attempt_call() in smclient.c reads every 200 answer,
 * then through sm_parse_versions_page(); its NextToken goes through the
 * pager as sm_client_count_versions() sends it, twice (the second time must
 * be refused as a repeat), and the pager must stop within its cap.
 *
 * Checks: an empty token is no token; a kept token is a NUL-free string of
 * at most SM_PARSE_MAX_NEXT_TOKEN characters; labels are NULL-terminated;
 * the same token twice is SM_PAGE_REPEATED; a pager never goes past its cap.
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
	json_t	   *root;
	json_error_t jerr;
	SmVersionsPage page;
	SmPager		pager;

	root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return 0;
	if (!json_is_object(root))
	{
		json_decref(root);
		return 0;
	}

	if (sm_parse_versions_page(root, &page) == 0)
	{
		CHECK(page.nversions >= 0);
		for (int i = 0; i < page.nversions; i++)
		{
			const SmVersionEntry *e = &page.versions[i];

			CHECK(e->nstages == 0 || e->stages != NULL);
			if (e->stages)
				CHECK(e->stages[e->nstages] == NULL);
			CHECK(e->has_created_date || e->created_date == 0);
		}
		if (page.next_token)
		{
			CHECK(!page.bad_next_token);
			CHECK(page.next_token[0] != '\0');
			CHECK(strlen(page.next_token) <= SM_PARSE_MAX_NEXT_TOKEN);
		}

		/* the guard: first answer, then the same answer again */
		sm_pager_init(&pager, 3);
		if (page.next_token == NULL)
			CHECK(sm_pager_next(&pager, NULL) == SM_PAGE_DONE);
		else
		{
			SmPageStep	step = sm_pager_next(&pager, page.next_token);

			CHECK(step == SM_PAGE_NEXT || step == SM_PAGE_NO_MEMORY);
			if (step == SM_PAGE_NEXT)
			{
				CHECK(strcmp(pager.token, page.next_token) == 0);
				CHECK(sm_pager_next(&pager, page.next_token) == SM_PAGE_REPEATED);
			}
		}
		CHECK(pager.pages <= pager.max_pages);
		sm_pager_free(&pager);
		sm_versions_page_free(&page);
		CHECK(page.versions == NULL && page.next_token == NULL);
	}

	json_decref(root);
	return 0;
}
