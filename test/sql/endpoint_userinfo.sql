-- endpoint_userinfo: an endpoint URL written with userinfo
-- ("user:password@host") is never echoed with it, neither in errors nor in
-- secretsmgr_health(); "***@" says that something was left out.
\pset format unaligned
\! test/emulator/smctl create url/app '{"username":"regress_url_app","password":"Url-Pw-1"}'
SET secretsmgr.cache_ttl = 0;
SET secretsmgr.max_attempts = 1;
SET secretsmgr.connect_timeout = '200ms';
CREATE FUNCTION url_error(query text, OUT first_line text, OUT userinfo_shown boolean)
LANGUAGE sql AS $$
	SELECT split_part(e, E'\n', 1), e ~ '(endpoint-user|Endpoint-Pw-7Q)'
	FROM sm_error(query) e
$$;

-- plain http to a host that is not loopback: refused when used (the
-- setting's own check would quote the value whole)
SET secretsmgr.endpoint = 'http://endpoint-user:Endpoint-Pw-7Q@192.0.2.1/';
SELECT * FROM url_error($$SELECT secretsmgr_get_secret('url/app')$$);
-- an endpoint that does not answer
SET secretsmgr.endpoint = 'https://endpoint-user:Endpoint-Pw-7Q@127.0.0.1:1/';
SELECT * FROM url_error($$SELECT secretsmgr_get_secret('url/app')$$);
-- no userinfo without a password either
SET secretsmgr.endpoint = 'https://endpoint-user@127.0.0.1:1/';
SELECT * FROM url_error($$SELECT secretsmgr_get_secret('url/app')$$);

-- health: the configuration row and the endpoint check's failure
SET secretsmgr.endpoint = 'https://endpoint-user:Endpoint-Pw-7Q@127.0.0.1:1/';
SELECT detail FROM secretsmgr_health() WHERE check_name = 'configuration';
SELECT count(*) AS rows, count(*) FILTER (WHERE detail ~ '(endpoint-user|Endpoint-Pw-7Q)') AS rows_with_userinfo,
       count(*) FILTER (WHERE check_name = 'endpoint' AND status = 'FAIL' AND detail LIKE '%https://***@127.0.0.1:1/%') AS endpoint_fails_redacted
FROM secretsmgr_health();
RESET secretsmgr.endpoint;
SELECT secretsmgr_get_secret('url/app') ->> 'username' AS reads_again;
DROP FUNCTION url_error(text);
