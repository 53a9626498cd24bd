/*
 * region.c
 *		The AWS region every request is signed for and sent to.
 *
 * Reads secretsmgr.region and the server's environment (settings.c),
 * and calls nothing else of secretsmgr.
 */
#include "postgres.h"

#include "region.h"
#include "settings.h"

/*
 * The region: secretsmgr.region, else AWS_REGION, else AWS_DEFAULT_REGION.
 * Its shape is checked because it goes into host names and the signature.
 */
const char *
sm_region_get(void)
{
	const char *region;
	const char *from;
	const char *p;

	if (sm_guc_region != NULL && sm_guc_region[0] != '\0')
	{
		region = sm_guc_region;
		from = "secretsmgr.region";
	}
	else if ((region = sm_env_get("AWS_REGION")) != NULL)
		from = "AWS_REGION";
	else if ((region = sm_env_get("AWS_DEFAULT_REGION")) != NULL)
		from = "AWS_DEFAULT_REGION";
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no AWS region configured"),
				 errhint("Set \"secretsmgr.region\", or AWS_REGION in the server's environment.")));

	for (p = region; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			break;
	}
	if (*p != '\0' || p - region > 32)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid AWS region in %s", from),
				 errdetail("A region name has only lower-case letters, digits and \"-\", and at most 32 characters.")));
	return region;
}
