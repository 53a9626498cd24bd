/*
 * secretbuf.h
 *		Buffers that hold a secret, and jansson's zeroing allocator.
 */
#ifndef SECRETSMGR_SECRETBUF_H
#define SECRETSMGR_SECRETBUF_H

#include "postgres.h"

/* Free a string returned by json_dumps (jansson blocks are zeroed on free). */
extern void sm_json_free_string(char *s);

/* Zero a buffer that held a secret (not optimised away). */
extern void sm_secure_zero(void *p, size_t len);

/*
 * Buffers that hold a secret: allocated in CurrentMemoryContext and zeroed
 * when that context is reset or deleted (a reset callback), so an error that
 * unwinds the call still scrubs them.  Zero early with sm_secure_zero when
 * done; never pfree them by hand (the callback still points at them).
 */
extern char *sm_secret_alloc(size_t len);
extern char *sm_secret_strdup(const char *s);
extern char *sm_secret_strndup(const char *s, size_t len);

/* Zero and pfree a string that held a secret, leaving NULL behind. */
extern void sm_secret_free_string(char **s);

/* Make jansson allocate through the zeroing allocator (from _PG_init). */
extern void sm_secretbuf_init(void);

#endif							/* SECRETSMGR_SECRETBUF_H */
