/*
 * events.h
 *		NOTIFY secretsmgr_rotation at the commit of every rotation.
 */
#ifndef SECRETSMGR_EVENTS_H
#define SECRETSMGR_EVENTS_H

#include "postgres.h"

#include "history.h"

/* The channel listeners LISTEN on. */
#define SM_EVENTS_CHANNEL "secretsmgr_rotation"

/*
 * Queue the event of the role password change that row records; it is
 * delivered when the transaction commits, and never if it rolls back.
 */
extern void sm_events_rotation(const SmHistoryRow *row);

#endif							/* SECRETSMGR_EVENTS_H */
