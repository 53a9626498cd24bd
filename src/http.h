/*
 * http.h
 *		libcurl transport: one reused handle per backend, cancellable waits.
 */
#ifndef SECRETSMGR_HTTP_H
#define SECRETSMGR_HTTP_H

#include "postgres.h"

typedef enum SmHttpStatus
{
	SM_HTTP_OK = 0,				/* a response arrived (any HTTP status) */
	SM_HTTP_CONNECT_ERROR,		/* could not resolve or connect, or dropped */
	SM_HTTP_TIMEOUT,			/* connect_timeout or request_timeout passed */
	SM_HTTP_TOO_LARGE,			/* body over max_body bytes */
	SM_HTTP_TLS_ERROR,			/* certificate or handshake failure */
	SM_HTTP_OTHER_ERROR
} SmHttpStatus;

/* Which check refused an endpoint's TLS certificate (SM_HTTP_TLS_ERROR). */
typedef enum SmHttpTlsFailure
{
	SM_TLS_NONE = 0,
	SM_TLS_UNTRUSTED,			/* chain not signed by a trusted CA */
	SM_TLS_HOST_MISMATCH,		/* certificate for another host name */
	SM_TLS_CA_FILE,				/* secretsmgr.ca_file could not be loaded */
	SM_TLS_HANDSHAKE			/* any other handshake failure */
} SmHttpTlsFailure;

typedef struct SmHttpHeader
{
	const char *name;
	const char *value;
} SmHttpHeader;

typedef struct SmHttpRequest
{
	const char *method;			/* "GET", "PUT", "POST" */
	const char *url;
	const SmHttpHeader *headers;
	int			nheaders;
	const char *body;			/* may be NULL */
	size_t		body_len;
	long		connect_timeout_ms;
	long		timeout_ms;			/* whole request */
	size_t		max_body;		/* response cap */
	bool		no_proxy;		/* never through a proxy of the environment */
} SmHttpRequest;

typedef struct SmHttpResponse
{
	long		status;			/* HTTP status, 0 if none */
	char	   *body;			/* palloc'd, NUL-terminated, may hold a secret */
	size_t		body_len;
	char		request_id[128];	/* x-amzn-requestid, "" if none */
	char		error[256];		/* transport error text (never a body) */
	SmHttpTlsFailure tls_failure;	/* why, for SM_HTTP_TLS_ERROR */
} SmHttpResponse;

/*
 * Perform one request.  Waits in 50 ms slices and raises the pending
 * interrupt (statement_timeout, pg_cancel_backend, terminate) after leaving
 * libcurl cleanly.  Transport failures are returned, not raised.  A body is
 * kept only when the result is SM_HTTP_OK.
 */
extern SmHttpStatus sm_http_perform(const SmHttpRequest *req, SmHttpResponse *resp);

/* Most requests sm_http_perform_many keeps in flight at once. */
#define SM_HTTP_MAX_IN_FLIGHT	64

/*
 * Perform reqs[0..n-1] concurrently over libcurl's multi interface, at most
 * max_in_flight (clamped to 1..SM_HTTP_MAX_IN_FLIGHT) at a time; a request
 * starts as soon as a slot frees.  The contract:
 *
 * - resps[i] and statuses[i] mean for reqs[i] what sm_http_perform's
 *   response and result mean: transport failures are returned per request,
 *   never raised; a body (a secret buffer of CurrentMemoryContext, zero it
 *   with sm_http_response_free) is kept only when statuses[i] is SM_HTTP_OK.
 * - The requests' URLs, headers and bodies must stay valid until it
 *   returns; nothing is retried or signed here (sm_client_call_many does
 *   that), and completion order is not request order.
 * - The wait is sm_http_perform's: 50 ms slices, the client looked at once
 *   a second, and statement_timeout, pg_cancel_backend, terminate or a lost
 *   client raised at once, after every transfer in flight has been detached,
 *   its connection dropped and its buffers zeroed.  Requests not yet
 *   started then never start.
 * - Connections stay alive between calls; any transport error drops the
 *   failed request's connection.
 */
extern void sm_http_perform_many(const SmHttpRequest *reqs, int n, int max_in_flight,
								 SmHttpResponse *resps, SmHttpStatus *statuses);

/* Zero resp->body now and forget it (its buffer goes with its context). */
extern void sm_http_response_free(SmHttpResponse *resp);

/*
 * Is url acceptable as an endpoint: https, or http on a loopback address
 * (127.0.0.0/8, localhost, [::1])?  extra_http_hosts lets the credentials
 * chain allow the documented link-local metadata addresses.
 */
extern bool sm_http_url_allowed(const char *url, const char *const *extra_http_hosts);

/* url with any userinfo replaced by "***", for messages (palloc'd). */
extern char *sm_http_url_redacted(const char *url);

/*
 * The proxy of the server's environment a request to url goes through
 * (https_proxy/HTTPS_PROXY, http_proxy/HTTP_PROXY, all_proxy/ALL_PROXY,
 * unless no_proxy/NO_PROXY covers the host), or NULL for a direct
 * connection.  *varname: the variable used; *invalid: set when that
 * variable holds no usable http:// or https:// URL.  The result may hold a
 * password: show it only through sm_http_url_redacted.
 */
extern char *sm_http_proxy_for(const char *url, const char **varname,
							   const char **invalid);

/* Drop the cached connection (after a transport error or on demand). */
extern void sm_http_reset(void);

/* May an endpoint setting hold value?  See http.c. */
extern bool sm_http_endpoint_setting_ok(const char *value);

#endif							/* SECRETSMGR_HTTP_H */
