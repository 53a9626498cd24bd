/*
 * region.h
 *		The AWS region.
 */
#ifndef SECRETSMGR_REGION_H
#define SECRETSMGR_REGION_H

/* The region: secretsmgr.region, AWS_REGION, AWS_DEFAULT_REGION; else error. */
extern const char *sm_region_get(void);

#endif							/* SECRETSMGR_REGION_H */
