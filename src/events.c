/*
 * events.c
 *		Rotation events: NOTIFY secretsmgr_rotation with a JSON payload.
 *
 * Poolers, sidecars and applications that LISTEN on secretsmgr_rotation
 * learn that a role's password changed without polling.  The notification
 * is queued with Async_Notify inside the transaction that changed the
 * password, so PostgreSQL delivers it when that transaction commits and
 * drops it when it (or the savepoint around the change) rolls back: a
 * listener never hears of a rotation that did not happen.  The payload
 * names the secret, the role, the version whose password the role now has,
 * the strategy, the step and who drove it; never a password, which no
 * caller of this file holds.
 */
#include "postgres.h"

#include "commands/async.h"
#include "lib/stringinfo.h"
#include "utils/json.h"

#include "events.h"

/* Append "key": value (a JSON string, or null) to buf. */
static void
add_field(StringInfo buf, const char *key, const char *value)
{
	if (buf->len > 1)
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	if (value != NULL)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

/* Queue the rotation event of row for delivery at commit. */
void
sm_events_rotation(const SmHistoryRow *row)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	add_field(&buf, "secret_id", row->secret_id);
	add_field(&buf, "role", row->role_name);
	add_field(&buf, "version_id", row->new_version_id);
	add_field(&buf, "previous_version_id", row->previous_version_id);
	add_field(&buf, "strategy", row->strategy);
	add_field(&buf, "step", row->step);
	add_field(&buf, "via", row->via);
	appendStringInfoChar(&buf, '}');
	Async_Notify(SM_EVENTS_CHANNEL, buf.data);
	pfree(buf.data);
}
