/*
 * rotation.h
 *		The rotation engine: secretsmgr_rotate, the Lambda steps, verify and
 *		reconcile, all in the caller's transaction.
 */
#ifndef SECRETSMGR_ROTATION_H
#define SECRETSMGR_ROTATION_H

#include "postgres.h"

/*
 * Rotate the secret's role end to end in two Secrets Manager calls
 * (GetSecretValue now; the new version's PutSecretValue, made AWSCURRENT, at
 * pre-commit).  Returns the new VersionId.  via ("sql", "scheduler") is
 * recorded in the history.
 */
extern char *sm_rotation_rotate(const char *secret_id, const char *via);

/*
 * The same with AWSCURRENT already read by BatchGetSecretValue (current;
 * err: how the call that carried it failed, type NULL if it did not), under
 * the secret's rotation lock, by secretsmgr_rotate_due.
 */
struct SmBatchItem;
struct SmAwsError;
extern char *sm_rotation_rotate_prefetched(const char *secret_id, const char *via,
										   const struct SmBatchItem *current,
										   const struct SmAwsError *err);

/* The Lambda's setSecret: apply the AWSPENDING version named by token. */
extern void sm_rotation_set_secret(const char *secret_id, const char *token);

/* The Lambda's testSecret: does the version named by token log in? */
extern bool sm_rotation_test_secret(const char *secret_id, const char *token);

/* Does the version with version_stage log in as the bound role? */
extern bool sm_rotation_verify(const char *secret_id, const char *version_stage);

/*
 * Bring the role and AWSCURRENT back together when AWSCURRENT does not log
 * in but AWSPENDING or AWSPREVIOUS does.  Returns AWSCURRENT's VersionId.
 */
extern char *sm_rotation_reconcile(const char *secret_id);

/*
 * A new password from the CSPRNG: length characters from upper and lower
 * case letters, digits and punctuation, minus exclude, with at least one of
 * each class left.  Returned in a secret buffer.
 */
extern char *sm_rotation_generate_password(int length, const char *exclude);

/* A fresh random (version 4) UUID, as AWS uses for ClientRequestToken. */
extern char *sm_rotation_new_token(void);

#endif							/* SECRETSMGR_ROTATION_H */
