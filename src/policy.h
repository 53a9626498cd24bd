/*
 * policy.h
 *		The least-privilege IAM policy of the managed secrets.
 */
#ifndef SECRETSMGR_POLICY_H
#define SECRETSMGR_POLICY_H

#include "postgres.h"

#include "utils/array.h"

/*
 * The IAM policy (JSON text) the database host ("database") or the rotation
 * Lambda ("lambda", which also reads the administrator secret admin_arn,
 * given by its full ARN) needs for the managed secrets, with exact ARNs;
 * for the database also reading the secrets of secrets (text[] of ARNs or
 * "-??????" patterns; NULL for none).
 */
extern char *sm_policy_document(const char *purpose, const char *admin_arn,
								ArrayType *secrets);

#endif							/* SECRETSMGR_POLICY_H */
