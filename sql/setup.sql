-- setup: helpers the other suites share.
-- sm_error(query) runs a query and shows the error it raises as
--   SQLSTATE: message / DETAIL / HINT
-- with request ids masked, so expected files hold no random or
-- line-number-dependent text.  It never sees a secret: queries name secrets.
CREATE FUNCTION sm_error(query text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hnt text;
BEGIN
	EXECUTE query;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	det := regexp_replace(det, 'request id [0-9a-fA-F-]+', 'request id <id>', 'g');
	det := regexp_replace(det, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g');
	msg := regexp_replace(msg, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g');
	RETURN st || ': ' || msg
		|| coalesce(E'\nDETAIL: ' || nullif(det, ''), '')
		|| coalesce(E'\nHINT: ' || nullif(hnt, ''), '');
END
$$;
SELECT sm_error('SELECT 1/0');
SELECT sm_error('SELECT 1');
