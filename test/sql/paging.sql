-- paging: every paginated call ends on an absent or empty NextToken, refuses
-- a token repeated from the page before, and stops at a page cap.  The
-- emulator's dialect switches answer as other implementations do; its call
-- counters show how many pages were asked for.  statement_timeout bounds
-- each query, so a client that loops fails here instead of hanging.
\! test/emulator/smctl reset --state
\! test/emulator/smctl create page/app '{"username":"regress_page_app","password":"Page-Initial-Pw-1x"}'
\! test/emulator/smctl put page/app '{"username":"regress_page_app","password":"Page-Second-Pw-2x"}'
CREATE ROLE regress_page_app LOGIN;
SELECT secretsmgr_manage('page/app', 'regress_page_app') IS NOT NULL AS managed;

-- the answer AWS gives: no NextToken on the last page
\! test/emulator/smctl reset
SET statement_timeout = '10s';
SELECT status, regexp_replace(detail, '-[A-Za-z0-9]{6}"', '-XXXXXX"') AS detail
FROM secretsmgr_health() WHERE check_name = 'secret page/app: version churn';
RESET statement_timeout;
\! test/emulator/smctl calls ListSecretVersionIds

-- "NextToken": "" on the last page (valid; botocore reads it as no token),
-- where a request with an empty token would read the first page again
\! test/emulator/smctl dialect add empty-next-token
\! test/emulator/smctl reset
SET statement_timeout = '10s';
SELECT status, regexp_replace(detail, '-[A-Za-z0-9]{6}"', '-XXXXXX"') AS detail
FROM secretsmgr_health() WHERE check_name = 'secret page/app: version churn';
RESET statement_timeout;
\! test/emulator/smctl calls ListSecretVersionIds
\! test/emulator/smctl dialect remove empty-next-token

-- an endpoint that names the page just read as the next one: an error
-- after two calls, not a loop
\! test/emulator/smctl dialect add repeated-next-token
\! test/emulator/smctl reset
SET statement_timeout = '10s';
SELECT status, regexp_replace(detail, '-[A-Za-z0-9]{6}"', '-XXXXXX"') AS detail
FROM secretsmgr_health() WHERE check_name = 'secret page/app: version churn';
RESET statement_timeout;
\! test/emulator/smctl calls ListSecretVersionIds
\! test/emulator/smctl dialect remove repeated-next-token

-- an endpoint that names a new token on every page: stopped at the page cap
\! test/emulator/smctl dialect add endless-next-token
\! test/emulator/smctl reset
SET statement_timeout = '10s';
SELECT status, regexp_replace(detail, '-[A-Za-z0-9]{6}"', '-XXXXXX"') AS detail
FROM secretsmgr_health() WHERE check_name = 'secret page/app: version churn';
RESET statement_timeout;
\! test/emulator/smctl calls ListSecretVersionIds
\! test/emulator/smctl dialect remove endless-next-token

SELECT secretsmgr_unmanage('page/app');
DROP ROLE regress_page_app;
