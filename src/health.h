/*
 * health.h
 *		The health report behind secretsmgr_health().
 */
#ifndef SECRETSMGR_HEALTH_H
#define SECRETSMGR_HEALTH_H

#include "postgres.h"

#include "nodes/execnodes.h"

/*
 * One row (check_name, status, detail) per check into a materialized SRF's
 * tuplestore; never raises for a failing check.
 */
extern void sm_health_report(ReturnSetInfo *rsinfo);

#endif							/* SECRETSMGR_HEALTH_H */
