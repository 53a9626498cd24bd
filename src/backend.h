/*
 * backend.h
 *		A lost client, and per-item subtransactions that let a cancel through.
 */
#ifndef SECRETSMGR_BACKEND_H
#define SECRETSMGR_BACKEND_H

#include "postgres.h"

/*
 * Run fn(arg) in an internal subtransaction.  NULL when it returned; when it
 * raised, the subtransaction is rolled back and the error is returned (in
 * the caller's memory context) instead of propagated, unless it must end
 * the statement: a query cancel, statement timeout, terminate, lost client
 * or anything else interrupt processing raised is re-raised at once.
 */
extern struct ErrorData *sm_subxact_run(void (*fn) (void *arg), void *arg);

/*
 * Has the client gone away (socket polled at most once a second)?  When it
 * has, the next CHECK_FOR_INTERRUPTS ends the session.
 */
extern bool sm_backend_client_gone(void);

/* CHECK_FOR_INTERRUPTS, noticing a lost client too. */
extern void sm_backend_check_interrupts(void);

#endif							/* SECRETSMGR_BACKEND_H */
