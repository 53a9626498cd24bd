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

/* Fill *w for a one-shot database worker of this library (see backend.c). */
struct BackgroundWorker;
extern void sm_backend_worker_describe(struct BackgroundWorker *w, const char *function,
									   const char *what, Datum main_arg, pid_t notify_pid);

#endif							/* SECRETSMGR_BACKEND_H */
