/*-------------------------------------------------------------------------
 *
 * http.c
 *		libcurl transport for secretsmgr, run inside a backend.
 *
 * This file owns the backend's only libcurl state: the global
 * initialisation (done once, lazily), one easy handle reused by every request
 * so that connections to an endpoint stay alive, and one multi handle that
 * drives it.  The multi handle is what lets us wait in our own loop, in
 * 50 ms slices, and so notice statement_timeout, pg_cancel_backend() and
 * pg_terminate_backend() while a request hangs, and (once a second) a client
 * that has gone away.
 *
 * Invariants:
 *
 * - No ereport(ERROR) ever happens while a libcurl frame is on the stack.
 *   The callbacks only record what they saw and return an error code; the
 *   pending interrupt is raised from our own loop, after the transfer has been
 *   detached from the multi handle and its connection dropped.
 *
 * - A response body lives in malloc'd memory while libcurl writes it (curl's
 *   callbacks must not palloc), is copied into a secret buffer in
 *   CurrentMemoryContext when the transfer succeeds, and the malloc'd copy is
 *   zeroed before it is freed.  Every exit, including an error raised by
 *   CHECK_FOR_INTERRUPTS, goes through transfer_abandon() or
 *   transfer_finish(), which zero and free what the transfer held: the body,
 *   and the request header list (it may carry a token).
 *
 * - Options are applied afresh to every request (curl_easy_reset keeps the
 *   live connections), so nothing of one request leaks into the next: no stale
 *   body pointer, method or header list.  TLS verification is always on,
 *   redirects are never followed, only http and https are spoken, and
 *   CURLOPT_VERBOSE is never set (it would print the Authorization header).
 *
 * - After any transport error the connection cache is dropped, so the next
 *   request starts from a fresh connection.
 *
 * src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <curl/curl.h>

#include "miscadmin.h"

#include "backend.h"
#include "compat.h"
#include "http.h"
#include "secretbuf.h"
#include "settings.h"

#ifndef SECRETSMGR_VERSION
#define SECRETSMGR_VERSION "unknown"
#endif

/* How long one wait in libcurl may last before we look at interrupts. */
#define SM_HTTP_SLICE_MS		50

/* First allocation for a response body; grown by doubling up to max_body. */
#define SM_HTTP_INITIAL_BODY	4096

/* One transfer in progress: what the callbacks fill in, in malloc'd memory. */
typedef struct SmTransfer
{
	bool		active;			/* easy handle added to the multi handle */
	struct curl_slist *headers; /* request headers, may hold a token */
	char	   *body;			/* malloc'd response body */
	size_t		body_len;
	size_t		body_cap;
	size_t		max_body;
	bool		too_large;		/* the write callback refused more data */
	char		request_id[128];
	char		errbuf[CURL_ERROR_SIZE];
} SmTransfer;

static bool curl_initialized = false;
static CURL *easy_handle = NULL;
static CURLM *multi_handle = NULL;

/*
 * There is only ever one transfer at a time in a backend, so its state is
 * file-level: the PG_CATCH cleanup then needs no volatile locals.
 */
static SmTransfer xfer;

/* Zero and free the body and the header list of the current transfer. */
static void
transfer_scrub(void)
{
	if (xfer.body != NULL)
	{
		sm_secure_zero(xfer.body, xfer.body_cap);
		free(xfer.body);
	}
	xfer.body = NULL;
	xfer.body_len = 0;
	xfer.body_cap = 0;

	if (xfer.headers != NULL)
	{
		struct curl_slist *h;

		for (h = xfer.headers; h != NULL; h = h->next)
		{
			if (h->data != NULL)
				sm_secure_zero(h->data, strlen(h->data));
		}
		curl_slist_free_all(xfer.headers);
	}
	xfer.headers = NULL;
}

/*
 * Leave libcurl in the middle of a request: detach the handle, drop its
 * connection (it is mid-request and cannot be reused) and scrub buffers.
 * Safe to call more than once.
 */
static void
transfer_abandon(void)
{
	if (xfer.active && multi_handle != NULL && easy_handle != NULL)
		curl_multi_remove_handle(multi_handle, easy_handle);
	xfer.active = false;
	sm_http_reset();
	transfer_scrub();
}

/* Detach a transfer that ran to its end, keeping the connection alive. */
static void
transfer_finish(void)
{
	if (xfer.active)
		curl_multi_remove_handle(multi_handle, easy_handle);
	xfer.active = false;
	transfer_scrub();
}

/*
 * libcurl write callback: append to the malloc'd body, refusing to go past
 * max_body.  Never raises: a refusal makes libcurl fail with
 * CURLE_WRITE_ERROR, which we map to SM_HTTP_TOO_LARGE.
 */
static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	SmTransfer *t = (SmTransfer *) userdata;
	size_t		n = size * nmemb;

	if (n == 0)
		return 0;
	if (n > t->max_body || t->body_len > t->max_body - n)
	{
		t->too_large = true;
		return 0;
	}

	/* keep room for the terminating NUL */
	if (t->body_len + n + 1 > t->body_cap)
	{
		size_t		newcap = t->body_cap ? t->body_cap : SM_HTTP_INITIAL_BODY;
		char	   *newbuf;

		while (newcap < t->body_len + n + 1)
			newcap *= 2;
		if (newcap > t->max_body + 1)
			newcap = t->max_body + 1;

		/* not realloc: the old block must be zeroed, not left behind */
		newbuf = malloc(newcap);
		if (newbuf == NULL)
			return 0;
		if (t->body != NULL)
		{
			memcpy(newbuf, t->body, t->body_len);
			sm_secure_zero(t->body, t->body_cap);
			free(t->body);
		}
		t->body = newbuf;
		t->body_cap = newcap;
	}

	memcpy(t->body + t->body_len, data, n);
	t->body_len += n;
	t->body[t->body_len] = '\0';
	return n;
}

/*
 * libcurl header callback: keep x-amzn-requestid, sanitised to letters,
 * digits and dashes so it can go into a message as is.  A new status line
 * (e.g. after "100 Continue") starts over.
 */
static size_t
header_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	SmTransfer *t = (SmTransfer *) userdata;
	size_t		n = size * nmemb;
	static const char name[] = "x-amzn-requestid:";
	size_t		namelen = sizeof(name) - 1;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		t->request_id[0] = '\0';
	else if (n > namelen && pg_strncasecmp(data, name, namelen) == 0)
	{
		size_t		i;
		size_t		j = 0;

		for (i = namelen; i < n && j < sizeof(t->request_id) - 1; i++)
		{
			char		c = data[i];

			if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				(c >= '0' && c <= '9') || c == '-')
				t->request_id[j++] = c;
			else if (c == '\r' || c == '\n')
				break;
		}
		t->request_id[j] = '\0';
	}
	return n;
}

/* Initialise libcurl and create the handles, once per backend. */
static void
ensure_handles(void)
{
	if (!curl_initialized)
	{
		CURLcode	rc = curl_global_init(CURL_GLOBAL_DEFAULT);

		if (rc != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not initialize libcurl: %s",
							curl_easy_strerror(rc))));
		curl_initialized = true;
	}
	if (multi_handle == NULL)
	{
		multi_handle = curl_multi_init();
		if (multi_handle == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl multi handle")));
	}
	if (easy_handle == NULL)
	{
		easy_handle = curl_easy_init();
		if (easy_handle == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl handle")));
	}
}

/* Is a header name or value free of characters that would split a header? */
static bool
header_text_ok(const char *s)
{
	for (; *s; s++)
	{
		if (*s == '\r' || *s == '\n')
			return false;
	}
	return true;
}

/*
 * Build the request header list in xfer.headers.  Values may be tokens, so
 * the formatted line is built in a secret buffer; curl_slist_append takes
 * its own malloc'd copy, scrubbed by transfer_scrub().
 */
static bool
build_headers(const SmHttpRequest *req)
{
	bool		has_content_type = false;
	int			i;

	for (i = 0; i < req->nheaders; i++)
	{
		const char *name = req->headers[i].name;
		const char *value = req->headers[i].value ? req->headers[i].value : "";
		size_t		len;
		char	   *line;
		struct curl_slist *l;

		if (name == NULL || name[0] == '\0' || strchr(name, ':') != NULL ||
			!header_text_ok(name) || !header_text_ok(value))
			return false;
		if (pg_strcasecmp(name, "Content-Type") == 0)
			has_content_type = true;

		len = strlen(name) + 2 + strlen(value);
		line = sm_secret_alloc(len + 1);
		snprintf(line, len + 1, "%s: %s", name, value);
		l = curl_slist_append(xfer.headers, line);
		sm_secure_zero(line, len);
		if (l == NULL)
			return false;
		xfer.headers = l;
	}

	/* no "Expect: 100-continue" round trip; no form content type by default */
	xfer.headers = curl_slist_append(xfer.headers, "Expect:");
	if (xfer.headers != NULL && !has_content_type)
		xfer.headers = curl_slist_append(xfer.headers, "Content-Type:");
	return xfer.headers != NULL;
}

/* Apply every option of one request to the (freshly reset) easy handle. */
static bool
set_options(const SmHttpRequest *req)
{
	CURL	   *h = easy_handle;
	bool		ok = true;

	curl_easy_reset(h);

#define SETOPT(opt, val) \
	do { if (curl_easy_setopt(h, (opt), (val)) != CURLE_OK) ok = false; } while (0)

	SETOPT(CURLOPT_NOSIGNAL, 1L);
	if (SM_CURL_SET_PROTOCOLS(h) != CURLE_OK)
		ok = false;
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	if (sm_guc_ca_file != NULL && sm_guc_ca_file[0] != '\0')
		SETOPT(CURLOPT_CAINFO, sm_guc_ca_file);
	SETOPT(CURLOPT_USERAGENT, "secretsmgr/" SECRETSMGR_VERSION);
	SETOPT(CURLOPT_ERRORBUFFER, xfer.errbuf);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
	SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms);
	SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(CURLOPT_WRITEDATA, &xfer);
	SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(CURLOPT_HEADERDATA, &xfer);
	SETOPT(CURLOPT_URL, req->url);
	SETOPT(CURLOPT_HTTPHEADER, xfer.headers);
	/*
	 * Credentials endpoints are link-local or loopback and answer with keys:
	 * a proxy named in the server's environment (http_proxy, HTTPS_PROXY,
	 * ALL_PROXY) must never see them.  Other requests keep honouring it.
	 */
	if (req->no_proxy)
		SETOPT(CURLOPT_NOPROXY, "*");

	if (strcmp(req->method, "GET") == 0)
		SETOPT(CURLOPT_HTTPGET, 1L);
	else
	{
		/* POSTFIELDS does not copy: the caller's body outlives the call */
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE,
			   (curl_off_t) (req->body ? req->body_len : 0));
		SETOPT(CURLOPT_POSTFIELDS, req->body ? req->body : "");
		if (strcmp(req->method, "PUT") == 0)
			SETOPT(CURLOPT_CUSTOMREQUEST, "PUT");
	}

#undef SETOPT

	return ok;
}

/* Map a libcurl result to our status. */
static SmHttpStatus
map_curl_result(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_OK:
			return SM_HTTP_OK;
		case CURLE_OPERATION_TIMEDOUT:
			return SM_HTTP_TIMEOUT;
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_GOT_NOTHING:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_PARTIAL_FILE:
			return SM_HTTP_CONNECT_ERROR;
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_ENGINE_NOTFOUND:
		case CURLE_SSL_ENGINE_SETFAILED:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_ENGINE_INITFAILED:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_SHUTDOWN_FAILED:
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
		case CURLE_USE_SSL_FAILED:
			return SM_HTTP_TLS_ERROR;
		default:
			return SM_HTTP_OTHER_ERROR;
	}
}

/*
 * Drive the attached transfer to its end, waiting in short slices and
 * checking for interrupts between them.  Returns the transfer's libcurl
 * result; a multi-interface failure or an interrupt that could not be raised
 * comes back as *status other than SM_HTTP_OK with resp->error set.
 */
static CURLcode
run_transfer(SmHttpResponse *resp, SmHttpStatus *status)
{
	for (;;)
	{
		int			running = 0;
		CURLMcode	mc;
		CURLMsg    *msg;
		int			queued;

		mc = curl_multi_perform(multi_handle, &running);
		if (mc != CURLM_OK)
		{
			snprintf(resp->error, sizeof(resp->error), "%s",
					 curl_multi_strerror(mc));
			*status = SM_HTTP_OTHER_ERROR;
			return CURLE_OK;
		}

		while ((msg = curl_multi_info_read(multi_handle, &queued)) != NULL)
		{
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy_handle)
			{
				*status = SM_HTTP_OK;
				return msg->data.result;
			}
		}

		if (running == 0)
		{
			/* nothing left to drive, yet no completion message: give up */
			snprintf(resp->error, sizeof(resp->error),
					 "transfer ended without a result");
			*status = SM_HTTP_OTHER_ERROR;
			return CURLE_OK;
		}

		mc = curl_multi_poll(multi_handle, NULL, 0, SM_HTTP_SLICE_MS, NULL);
		if (mc != CURLM_OK)
		{
			snprintf(resp->error, sizeof(resp->error), "%s",
					 curl_multi_strerror(mc));
			*status = SM_HTTP_OTHER_ERROR;
			return CURLE_OK;
		}

		(void) sm_backend_client_gone();
		if (INTERRUPTS_PENDING_CONDITION())
		{
			if ((QueryCancelPending || ProcDiePending || ClientConnectionLost) &&
				INTERRUPTS_CAN_BE_PROCESSED())
			{
				/* leave libcurl before the error unwinds past us */
				transfer_abandon();
				CHECK_FOR_INTERRUPTS();

				/* the interrupt was absorbed without an error */
				snprintf(resp->error, sizeof(resp->error),
						 "request interrupted");
				*status = SM_HTTP_OTHER_ERROR;
				return CURLE_OK;
			}

			/* anything else raised here is cleaned up by our PG_CATCH */
			CHECK_FOR_INTERRUPTS();
		}
	}
}

/*
 * Perform one request; see http.h.  Transport failures are returned with a
 * short reason in resp->error; only the pending interrupt (and out of
 * memory) is raised.
 */
SmHttpStatus
sm_http_perform(const SmHttpRequest *req, SmHttpResponse *resp)
{
	SmHttpStatus status = SM_HTTP_OTHER_ERROR;
	CURLcode	rc = CURLE_OK;

	Assert(req != NULL && resp != NULL && req->url != NULL);

	memset(resp, 0, sizeof(*resp));

	if (req->method == NULL ||
		(strcmp(req->method, "GET") != 0 &&
		 strcmp(req->method, "POST") != 0 &&
		 strcmp(req->method, "PUT") != 0))
		elog(ERROR, "unsupported HTTP method \"%s\"",
			 req->method ? req->method : "(null)");

	ensure_handles();

	/* a previous transfer always ends clean, but be sure */
	transfer_scrub();
	memset(&xfer, 0, sizeof(xfer));
	xfer.max_body = req->max_body > 0 ? req->max_body : SM_MAX_RESPONSE_BYTES;

	PG_TRY();
	{
		if (!build_headers(req))
		{
			snprintf(resp->error, sizeof(resp->error),
					 "invalid or unbuildable request header");
			status = SM_HTTP_OTHER_ERROR;
		}
		else if (!set_options(req))
		{
			snprintf(resp->error, sizeof(resp->error),
					 "could not set request options");
			status = SM_HTTP_OTHER_ERROR;
		}
		else if (curl_multi_add_handle(multi_handle, easy_handle) != CURLM_OK)
		{
			snprintf(resp->error, sizeof(resp->error),
					 "could not start the request");
			status = SM_HTTP_OTHER_ERROR;
		}
		else
		{
			xfer.active = true;
			rc = run_transfer(resp, &status);
			if (status == SM_HTTP_OK)
				status = map_curl_result(rc);
			if (status == SM_HTTP_TIMEOUT || status == SM_HTTP_OTHER_ERROR)
			{
				/* CURLE_WRITE_ERROR after a refusal means "too large" */
				if (xfer.too_large)
					status = SM_HTTP_TOO_LARGE;
			}
		}

		if (status == SM_HTTP_OK)
		{
			long		code = 0;
			char	   *body;

			curl_easy_getinfo(easy_handle, CURLINFO_RESPONSE_CODE, &code);
			resp->status = code;

			/* copy, do not use sm_secret_strndup: the length is exact */
			body = sm_secret_alloc(xfer.body_len + 1);
			if (xfer.body_len > 0)
				memcpy(body, xfer.body, xfer.body_len);
			body[xfer.body_len] = '\0';
			resp->body = body;
			resp->body_len = xfer.body_len;
			strlcpy(resp->request_id, xfer.request_id,
					sizeof(resp->request_id));
			transfer_finish();
		}
		else
		{
			if (status == SM_HTTP_TOO_LARGE)
				snprintf(resp->error, sizeof(resp->error),
						 "response body exceeds %zu bytes", xfer.max_body);
			else if (resp->error[0] == '\0')
				snprintf(resp->error, sizeof(resp->error), "%s",
						 xfer.errbuf[0] ? xfer.errbuf : curl_easy_strerror(rc));
			{
				/* drop curl's trailing newline, if any */
				size_t		len = strlen(resp->error);

				while (len > 0 && (resp->error[len - 1] == '\n' ||
								   resp->error[len - 1] == '\r'))
					resp->error[--len] = '\0';
			}
			if (resp->status == 0 && easy_handle != NULL)
				curl_easy_getinfo(easy_handle, CURLINFO_RESPONSE_CODE,
								  &resp->status);
			strlcpy(resp->request_id, xfer.request_id,
					sizeof(resp->request_id));
			transfer_abandon();
		}
	}
	PG_CATCH();
	{
		transfer_abandon();
		PG_RE_THROW();
	}
	PG_END_TRY();

	return status;
}

/*
 * Zero resp->body.  The buffer itself is a secret buffer of the caller's
 * memory context and is released (again zeroed) when that context goes away;
 * freeing it by hand would leave its reset callback pointing at freed memory.
 */
void
sm_http_response_free(SmHttpResponse *resp)
{
	if (resp == NULL)
		return;
	if (resp->body != NULL)
		sm_secure_zero(resp->body, resp->body_len + 1);
	resp->body = NULL;
	resp->body_len = 0;
}

/*
 * Parse host as an IPv4 or IPv6 literal (brackets allowed) into buf,
 * returning its family, or AF_UNSPEC for a name.
 */
static int
parse_ip_literal(const char *host, unsigned char *buf)
{
	char		tmp[INET6_ADDRSTRLEN + 2];
	size_t		len = strlen(host);

	if (inet_pton(AF_INET, host, buf) == 1)
		return AF_INET;
	if (len > 2 && len < sizeof(tmp) && host[0] == '[' && host[len - 1] == ']')
	{
		memcpy(tmp, host + 1, len - 2);
		tmp[len - 2] = '\0';
		host = tmp;
	}
	if (inet_pton(AF_INET6, host, buf) == 1)
		return AF_INET6;
	return AF_UNSPEC;
}

/* Is host (as curl_url returns it, IPv6 in brackets) a loopback address? */
static bool
host_is_loopback(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];

	switch (parse_ip_literal(host, addr))
	{
		case AF_INET:
			return addr[0] == 127;
		case AF_INET6:
			return memcmp(addr, &in6addr_loopback, sizeof(struct in6_addr)) == 0;
		default:
			return pg_strcasecmp(host, "localhost") == 0;
	}
}

/*
 * Does host match an entry of extra?  Addresses are compared as addresses
 * (so "[FD00:EC2::0023]" is "[fd00:ec2::23]"), names without case.
 */
static bool
host_in_list(const char *host, const char *const *extra)
{
	unsigned char haddr[sizeof(struct in6_addr)];
	int			hfamily;

	if (extra == NULL)
		return false;
	hfamily = parse_ip_literal(host, haddr);
	for (; *extra != NULL; extra++)
	{
		unsigned char eaddr[sizeof(struct in6_addr)];
		int			efamily = parse_ip_literal(*extra, eaddr);

		if (hfamily != efamily)
			continue;
		if (hfamily == AF_INET && memcmp(haddr, eaddr, 4) == 0)
			return true;
		if (hfamily == AF_INET6 && memcmp(haddr, eaddr, 16) == 0)
			return true;
		if (hfamily == AF_UNSPEC && pg_strcasecmp(host, *extra) == 0)
			return true;
	}
	return false;
}

/*
 * url without its userinfo ("user:password@" before the host), for
 * messages: a password written into an endpoint URL must never be echoed.
 * Works on text, so it also cleans a URL libcurl cannot parse: the last
 * "@" before the path, query or fragment ends the userinfo.
 */
char *
sm_http_url_redacted(const char *url)
{
	const char *authority;
	const char *end;
	const char *at = NULL;

	if (url == NULL)
		return pstrdup("");
	authority = strstr(url, "://");
	authority = authority ? authority + 3 : url;
	end = authority + strcspn(authority, "/?#");
	for (const char *p = authority; p < end; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return pstrdup(url);
	return psprintf("%.*s***@%s", (int) (authority - url), url, at + 1);
}

/*
 * Is url an acceptable endpoint: https anywhere, http only to loopback or to
 * a host the caller lists (the credential endpoints' link-local addresses).
 */
bool
sm_http_url_allowed(const char *url, const char *const *extra_http_hosts)
{
	CURLU	   *u;
	char	   *scheme = NULL;
	char	   *host = NULL;
	bool		allowed = false;

	if (url == NULL || url[0] == '\0')
		return false;

	u = curl_url();
	if (u == NULL)
		return false;

	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		host[0] != '\0')
	{
		if (pg_strcasecmp(scheme, "https") == 0)
			allowed = true;
		else if (pg_strcasecmp(scheme, "http") == 0)
			allowed = host_is_loopback(host) ||
				host_in_list(host, extra_http_hosts);
	}

	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return allowed;
}

/*
 * Drop the handles and with them every cached connection; they are created
 * again by the next request.
 */
void
sm_http_reset(void)
{
	if (multi_handle != NULL && easy_handle != NULL && xfer.active)
		curl_multi_remove_handle(multi_handle, easy_handle);
	xfer.active = false;
	if (easy_handle != NULL)
		curl_easy_cleanup(easy_handle);
	easy_handle = NULL;
	if (multi_handle != NULL)
		curl_multi_cleanup(multi_handle);
	multi_handle = NULL;
}
