/*
 * sqlapi_ops.c
 *		SQL entry points for operating secretsmgr: statistics, health and the
 *		IAM policy.
 *
 * Argument and privilege checks and result building only; the work is done
 * by the module that owns it (stats.c, health.c, policy.c).
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "cache.h"
#include "health.h"
#include "policy.h"
#include "stats.h"

PG_FUNCTION_INFO_V1(secretsmgr_stats);

/* secretsmgr_stats(): every counter of this backend, one row each. */
Datum
secretsmgr_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, true};

	InitMaterializedSRF(fcinfo, 0);

	values[0] = CStringGetTextDatum("cache");
	values[1] = CStringGetTextDatum("entries");
	values[2] = Int64GetDatum(sm_cache_size());
	values[3] = (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	sm_stats_put_rows(rsinfo);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(secretsmgr_stats_reset);

/* secretsmgr_stats_reset(): zero this backend's counters. */
Datum
secretsmgr_stats_reset(PG_FUNCTION_ARGS)
{
	sm_stats_reset();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(secretsmgr_iam_policy);

/*
 * secretsmgr_iam_policy(purpose DEFAULT 'database', admin_secret DEFAULT
 * NULL, secrets DEFAULT NULL) -> jsonb: the least-privilege policy the
 * database host ("database") or the rotation Lambda ("lambda", which also
 * reads admin_secret) needs for the managed secrets, with exact ARNs; for
 * the database, also reading (and binding) the secrets named.
 */
Datum
secretsmgr_iam_policy(PG_FUNCTION_ARGS)
{
	char	   *purpose = PG_ARGISNULL(0) ? "database" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *admin_arn = PG_NARGS() > 1 && !PG_ARGISNULL(1) ?
		text_to_cstring(PG_GETARG_TEXT_PP(1)) : NULL;
	char	   *text;

	text = sm_policy_document(purpose, admin_arn,
							  PG_NARGS() > 2 && !PG_ARGISNULL(2) ? PG_GETARG_ARRAYTYPE_P(2) : NULL);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

PG_FUNCTION_INFO_V1(secretsmgr_health);

/* secretsmgr_health() -> TABLE(check_name, status, detail); never raises for a check. */
Datum
secretsmgr_health(PG_FUNCTION_ARGS)
{
	InitMaterializedSRF(fcinfo, 0);
	sm_health_report((ReturnSetInfo *) fcinfo->resultinfo);
	return (Datum) 0;
}
