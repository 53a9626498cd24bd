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
 * - The proxy of every request is chosen here (sm_http_proxy_for: the AWS
 *   SDKs' environment variables and NO_PROXY), never by libcurl reading the
 *   environment on its own, and never for the credentials endpoints.  A
 *   proxy URL may hold a password: only its redacted form is ever shown.
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
#include <openssl/x509_vfy.h>

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
	CURLcode	result;			/* libcurl's result of the transfer */
	char	   *proxy;			/* proxy URL in use (palloc'd), or NULL */
	const char *proxy_var;		/* the variable it came from */
	const char *proxy_invalid;	/* why the variable's proxy is unusable */
} SmTransfer;

static char *proxy_choose(const char *url, const char **varname,
						  const char **invalid);

static bool curl_initialized = false;
static CURL *easy_handle = NULL;
static CURLM *multi_handle = NULL;

/*
 * There is only ever one transfer at a time in a backend, so its state is
 * file-level: the PG_CATCH cleanup then needs no volatile locals.
 */
static SmTransfer xfer;

static void many_abandon(void);

/* Zero and free the body and the header list of transfer t. */
static void
transfer_scrub_one(SmTransfer *t)
{
	if (t->body != NULL)
	{
		sm_secure_zero(t->body, t->body_cap);
		free(t->body);
	}
	t->body = NULL;
	t->body_len = 0;
	t->body_cap = 0;

	if (t->headers != NULL)
	{
		struct curl_slist *h;

		for (h = t->headers; h != NULL; h = h->next)
		{
			if (h->data != NULL)
				sm_secure_zero(h->data, strlen(h->data));
		}
		curl_slist_free_all(t->headers);
	}
	t->headers = NULL;
}

/* The same for the current single transfer. */
static void
transfer_scrub(void)
{
	transfer_scrub_one(&xfer);
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
 * Build the request header list in t->headers.  Values may be tokens, so
 * the formatted line is built in a secret buffer; curl_slist_append takes
 * its own malloc'd copy, scrubbed by transfer_scrub_one().
 */
static bool
build_headers(SmTransfer *t, const SmHttpRequest *req)
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
		l = curl_slist_append(t->headers, line);
		sm_secure_zero(line, len);
		if (l == NULL)
			return false;
		t->headers = l;
	}

	/* no "Expect: 100-continue" round trip; no form content type by default */
	t->headers = curl_slist_append(t->headers, "Expect:");
	if (t->headers != NULL && !has_content_type)
		t->headers = curl_slist_append(t->headers, "Content-Type:");
	return t->headers != NULL;
}

/* Apply every option of one request, transfer t, to the easy handle h. */
static bool
set_options(CURL *h, SmTransfer *t, const SmHttpRequest *req)
{
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
	SETOPT(CURLOPT_ERRORBUFFER, t->errbuf);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
	SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms);
	SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(CURLOPT_WRITEDATA, t);
	SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(CURLOPT_HEADERDATA, t);
	SETOPT(CURLOPT_URL, req->url);
	SETOPT(CURLOPT_HTTPHEADER, t->headers);
	/*
	 * The proxy is always chosen here (sm_http_proxy_for), never by libcurl
	 * reading the environment itself: "" is a direct connection.
	 * Credentials endpoints are link-local or loopback and answer with keys,
	 * so a proxy of the environment never sees them (req->no_proxy).
	 */
	SETOPT(CURLOPT_PROXY, t->proxy ? t->proxy : "");

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
 * Which TLS check refused the endpoint, for the message and hint.  With
 * peer verification on, an untrusted chain fails the handshake and leaves
 * OpenSSL's reason in the verify result.  A trusted certificate for another
 * name passes the chain check and is refused by the host check: libcurl's
 * own (the verify result then still holds the "not yet known" value it
 * starts from, X509_V_ERR_UNSPECIFIED, or X509_V_OK) or OpenSSL's (a
 * mismatch code).
 */
static SmHttpTlsFailure
classify_tls_failure(CURL *h, CURLcode rc)
{
	long		verify = X509_V_OK;

	if (rc == CURLE_SSL_CACERT_BADFILE)
		return SM_TLS_CA_FILE;
	if (rc != CURLE_PEER_FAILED_VERIFICATION)
		return SM_TLS_HANDSHAKE;
	if (curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT,
						  &verify) != CURLE_OK)
		return SM_TLS_HANDSHAKE;
	switch (verify)
	{
		case X509_V_OK:
		case X509_V_ERR_UNSPECIFIED:
		case X509_V_ERR_HOSTNAME_MISMATCH:
		case X509_V_ERR_IP_ADDRESS_MISMATCH:
			return SM_TLS_HOST_MISMATCH;
		default:
			return SM_TLS_UNTRUSTED;
	}
}

/*
 * Say in resp->error which proxy a failed request went through, and make
 * sure the proxy's userinfo (a password, maybe) is not in it: libcurl's
 * messages may quote the proxy URL.
 */
static void
note_proxy(SmHttpResponse *resp, const char *proxy, const char *varname)
{
	char	   *shown = sm_http_url_redacted(proxy);
	CURLU	   *u = curl_url();
	char	   *user = NULL;
	char	   *password = NULL;
	bool		leak = false;

	if (u != NULL && curl_url_set(u, CURLUPART_URL, proxy,
								  CURLU_GUESS_SCHEME) == CURLUE_OK)
	{
		if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK &&
			user[0] != '\0' && strstr(resp->error, user) != NULL)
			leak = true;
		if (curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK &&
			password[0] != '\0' && strstr(resp->error, password) != NULL)
			leak = true;
	}
	if (strchr(proxy, '@') != NULL && strstr(resp->error, proxy) != NULL)
		leak = true;
	if (leak)
		snprintf(resp->error, sizeof(resp->error), "the proxy refused or failed the request");
	{
		size_t		len = strlen(resp->error);

		snprintf(resp->error + len, sizeof(resp->error) - len,
				 " (through the proxy %s of %s)", shown, varname);
	}
	if (password != NULL)
		sm_secure_zero(password, strlen(password));
	curl_free(user);
	curl_free(password);
	if (u != NULL)
		curl_url_cleanup(u);
	pfree(shown);
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
	xfer.result = CURLE_OK;
	if (!req->no_proxy)
		xfer.proxy = proxy_choose(req->url, &xfer.proxy_var,
								  &xfer.proxy_invalid);
	xfer.max_body = req->max_body > 0 ? req->max_body : SM_MAX_RESPONSE_BYTES;

	PG_TRY();
	{
		if (xfer.proxy_invalid != NULL)
		{
			snprintf(resp->error, sizeof(resp->error), "%s",
					 xfer.proxy_invalid);
			status = SM_HTTP_OTHER_ERROR;
		}
		else if (!build_headers(&xfer, req))
		{
			snprintf(resp->error, sizeof(resp->error),
					 "invalid or unbuildable request header");
			status = SM_HTTP_OTHER_ERROR;
		}
		else if (!set_options(easy_handle, &xfer, req))
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
			xfer.result = run_transfer(resp, &status);
			if (status == SM_HTTP_OK)
				status = map_curl_result(xfer.result);
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
						 xfer.errbuf[0] ? xfer.errbuf : curl_easy_strerror(xfer.result));
			{
				/* drop curl's trailing newline, if any */
				size_t		len = strlen(resp->error);

				while (len > 0 && (resp->error[len - 1] == '\n' ||
								   resp->error[len - 1] == '\r'))
					resp->error[--len] = '\0';
			}
			if (status == SM_HTTP_TLS_ERROR)
				resp->tls_failure = classify_tls_failure(easy_handle, xfer.result);
			if (xfer.proxy != NULL)
				note_proxy(resp, xfer.proxy, xfer.proxy_var);
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

	if (xfer.proxy != NULL)
		pfree(xfer.proxy);
	xfer.proxy = NULL;
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

/* getenv, with an empty value taken as unset. */
static const char *
env_value(const char *name)
{
	const char *v = getenv(name);

	return (v != NULL && v[0] != '\0') ? v : NULL;
}

/*
 * Does the NO_PROXY entry (of length len) cover host?  "*" covers every
 * host; an address or CIDR block ("10.0.0.0/8", "fd00::/8") covers the
 * addresses in it; a name covers itself and its subdomains, with or without
 * a leading "." or "*." (".example.com", "example.com").
 */
static bool
no_proxy_entry_matches(const char *entry, size_t len, const char *host)
{
	char		e[256];
	char	   *slash;
	unsigned char haddr[sizeof(struct in6_addr)];
	unsigned char eaddr[sizeof(struct in6_addr)];
	int			hfamily;
	int			efamily;
	size_t		hlen;

	if (len == 0 || len >= sizeof(e))
		return false;
	memcpy(e, entry, len);
	e[len] = '\0';
	if (strcmp(e, "*") == 0)
		return true;

	hfamily = parse_ip_literal(host, haddr);
	slash = strchr(e, '/');
	if (slash != NULL)
		*slash = '\0';
	efamily = parse_ip_literal(e, eaddr);
	if (efamily != AF_UNSPEC)
	{
		int			nbytes = efamily == AF_INET ? 4 : 16;
		int			bits = nbytes * 8;

		if (hfamily != efamily)
			return false;
		if (slash != NULL)
		{
			char	   *end;
			long		b = strtol(slash + 1, &end, 10);

			if (*end != '\0' || end == slash + 1 || b < 0 || b > bits)
				return false;
			bits = (int) b;
		}
		for (int i = 0; i < nbytes && bits > 0; i++, bits -= 8)
		{
			unsigned char mask = bits >= 8 ? 0xff : (unsigned char) (0xff << (8 - bits));

			if ((haddr[i] & mask) != (eaddr[i] & mask))
				return false;
		}
		return true;
	}
	if (slash != NULL || hfamily != AF_UNSPEC)
		return false;

	/* a name: itself or a subdomain */
	entry = e;
	if (strncmp(entry, "*.", 2) == 0)
		entry += 2;
	else if (entry[0] == '.')
		entry += 1;
	len = strlen(entry);
	hlen = strlen(host);
	if (len == 0 || len > hlen)
		return false;
	if (pg_strcasecmp(host + hlen - len, entry) != 0)
		return false;
	return hlen == len || host[hlen - len - 1] == '.';
}

/* Does the comma (or space) separated list cover host? */
static bool
no_proxy_covers(const char *list, const char *host)
{
	const char *p = list;

	while (*p != '\0')
	{
		size_t		len;

		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len > 0 && no_proxy_entry_matches(p, len, host))
			return true;
		p += len;
	}
	return false;
}

/* Is value an http:// or https:// URL with a host (no scheme: http://)? */
static bool
proxy_url_ok(const char *value)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	bool		ok = false;

	if (u == NULL)
		return false;
	if ((strstr(value, "://") == NULL ||
		 pg_strncasecmp(value, "http://", 7) == 0 ||
		 pg_strncasecmp(value, "https://", 8) == 0) &&
		curl_url_set(u, CURLUPART_URL, value, CURLU_GUESS_SCHEME) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		host[0] != '\0' &&
		(pg_strcasecmp(scheme, "http") == 0 || pg_strcasecmp(scheme, "https") == 0))
		ok = true;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/*
 * The proxy a request to url goes through, from the server's environment:
 * see sm_http_proxy_for.  *invalid is set (and NULL returned) when the
 * variable holds no usable proxy URL; the text names the variable, never
 * its value.  Without any proxy variable (the common case) the URL is not
 * even parsed.
 */
static char *
proxy_choose(const char *url, const char **varname, const char **invalid)
{
	static const char *const https_vars[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
	static const char *const http_vars[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
	const char *const *vars;
	const char *value = NULL;
	const char *exempt;

	*varname = NULL;
	*invalid = NULL;

	vars = pg_strncasecmp(url, "https://", 8) == 0 ? https_vars : http_vars;
	for (int i = 0; i < lengthof(https_vars) && value == NULL; i++)
	{
		value = env_value(vars[i]);
		if (value != NULL)
			*varname = vars[i];
	}
	if (value == NULL)
		return NULL;

	exempt = env_value("no_proxy");
	if (exempt == NULL)
		exempt = env_value("NO_PROXY");
	if (exempt != NULL)
	{
		CURLU	   *u = curl_url();
		char	   *host = NULL;
		bool		covered = false;

		if (u != NULL &&
			curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
			curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
			covered = no_proxy_covers(exempt, host);
		curl_free(host);
		if (u != NULL)
			curl_url_cleanup(u);
		if (covered)
		{
			*varname = NULL;
			return NULL;
		}
	}

	if (!proxy_url_ok(value))
	{
		*invalid = psprintf("the proxy named in %s is not an http:// or https:// URL",
							*varname);
		return NULL;
	}
	return pstrdup(value);
}

/*
 * The proxy of the server's environment that a request to url goes through,
 * as the AWS SDKs and libcurl choose it: https_proxy or HTTPS_PROXY for an
 * https URL (http_proxy or HTTP_PROXY for http), then all_proxy or
 * ALL_PROXY, lower case first; none when no_proxy or NO_PROXY covers the
 * host.  Returns NULL for a direct connection, else the proxy URL (palloc'd;
 * it may hold a password: show it only through sm_http_url_redacted) and
 * the variable it came from in *varname.  An unusable value is reported
 * through *invalid.  sm_http_perform applies it to every request but those
 * marked no_proxy; health and messages call it to say which proxy is used.
 */
char *
sm_http_proxy_for(const char *url, const char **varname, const char **invalid)
{
	return proxy_choose(url, varname, invalid);
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
	many_abandon();
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

/*
 * Concurrent requests (sm_http_perform_many).  They have a multi handle of
 * their own, which keeps the connections it opened alive between calls
 * (libcurl pools connections per multi handle), and one easy handle per
 * slot.  The state is file-level for the same reason as xfer: the PG_CATCH
 * cleanup needs no volatile locals.  Only one call runs at a time in a
 * backend.
 */
static CURLM *many_multi = NULL;
static CURL *many_easy[SM_HTTP_MAX_IN_FLIGHT];
static SmTransfer many_xfer[SM_HTTP_MAX_IN_FLIGHT];
static int	many_index[SM_HTTP_MAX_IN_FLIGHT];	/* request in a slot, -1 */

/* Detach a slot's transfer and scrub its buffers; keep its connection. */
static void
many_slot_release(int slot)
{
	if (many_xfer[slot].active && many_multi != NULL && many_easy[slot] != NULL)
		curl_multi_remove_handle(many_multi, many_easy[slot]);
	many_xfer[slot].active = false;
	transfer_scrub_one(&many_xfer[slot]);
	many_index[slot] = -1;
}

/*
 * Leave every transfer in flight: detach and scrub them, and drop the
 * handles with their connections (mid-request, they cannot be reused).
 * Safe to call more than once.
 */
static void
many_abandon(void)
{
	for (int slot = 0; slot < SM_HTTP_MAX_IN_FLIGHT; slot++)
	{
		many_slot_release(slot);
		if (many_easy[slot] != NULL)
			curl_easy_cleanup(many_easy[slot]);
		many_easy[slot] = NULL;
	}
	if (many_multi != NULL)
		curl_multi_cleanup(many_multi);
	many_multi = NULL;
}

/* Record a failure of request i that never produced a response. */
static void
many_fail(SmHttpResponse *resp, SmHttpStatus *status, SmHttpStatus st,
		  const char *why)
{
	*status = st;
	snprintf(resp->error, sizeof(resp->error), "%s", why);
}

/*
 * Start request i in slot: its handle, headers and options.  False (with
 * the failure recorded) when it could not start.
 */
static bool
many_start(int slot, int i, const SmHttpRequest *req, SmHttpResponse *resp,
		   SmHttpStatus *status)
{
	SmTransfer *t = &many_xfer[slot];

	memset(t, 0, sizeof(*t));
	t->max_body = req->max_body > 0 ? req->max_body : SM_MAX_RESPONSE_BYTES;
	if (!req->no_proxy)
		t->proxy = proxy_choose(req->url, &t->proxy_var, &t->proxy_invalid);
	if (many_easy[slot] == NULL && (many_easy[slot] = curl_easy_init()) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	many_index[slot] = i;

	if (req->method == NULL ||
		(strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0 &&
		 strcmp(req->method, "PUT") != 0))
		many_fail(resp, status, SM_HTTP_OTHER_ERROR, "unsupported HTTP method");
	else if (t->proxy_invalid != NULL)
		many_fail(resp, status, SM_HTTP_OTHER_ERROR, t->proxy_invalid);
	else if (!build_headers(t, req))
		many_fail(resp, status, SM_HTTP_OTHER_ERROR, "invalid or unbuildable request header");
	else if (!set_options(many_easy[slot], t, req) ||
			 curl_easy_setopt(many_easy[slot], CURLOPT_PRIVATE, (void *) t) != CURLE_OK)
		many_fail(resp, status, SM_HTTP_OTHER_ERROR, "could not set request options");
	else if (curl_multi_add_handle(many_multi, many_easy[slot]) != CURLM_OK)
		many_fail(resp, status, SM_HTTP_OTHER_ERROR, "could not start the request");
	else
	{
		t->active = true;
		return true;
	}
	many_slot_release(slot);
	return false;
}

/*
 * A slot's transfer ended with rc: fill its response (the body copied into
 * a secret buffer of CurrentMemoryContext) and free the slot.
 */
static void
many_complete(int slot, CURLcode rc, SmHttpResponse *resp, SmHttpStatus *status)
{
	SmTransfer *t = &many_xfer[slot];
	CURL	   *h = many_easy[slot];
	SmHttpStatus st = map_curl_result(rc);
	long		code = 0;

	if ((st == SM_HTTP_TIMEOUT || st == SM_HTTP_OTHER_ERROR) && t->too_large)
		st = SM_HTTP_TOO_LARGE;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	resp->status = code;
	strlcpy(resp->request_id, t->request_id, sizeof(resp->request_id));
	*status = st;

	if (st == SM_HTTP_OK)
	{
		char	   *body = sm_secret_alloc(t->body_len + 1);

		if (t->body_len > 0)
			memcpy(body, t->body, t->body_len);
		body[t->body_len] = '\0';
		resp->body = body;
		resp->body_len = t->body_len;
		many_slot_release(slot);
		return;
	}

	if (st == SM_HTTP_TOO_LARGE)
		snprintf(resp->error, sizeof(resp->error),
				 "response body exceeds %zu bytes", t->max_body);
	else
	{
		size_t		len;

		snprintf(resp->error, sizeof(resp->error), "%s",
				 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
		len = strlen(resp->error);
		while (len > 0 && (resp->error[len - 1] == '\n' || resp->error[len - 1] == '\r'))
			resp->error[--len] = '\0';
	}
	if (st == SM_HTTP_TLS_ERROR)
		resp->tls_failure = classify_tls_failure(h, rc);
	if (t->proxy != NULL)
		note_proxy(resp, t->proxy, t->proxy_var);
	/* a connection that failed mid-request is not reused */
	many_slot_release(slot);
	curl_easy_cleanup(many_easy[slot]);
	many_easy[slot] = NULL;
}

/* The slot whose transfer t is, or -1. */
static int
many_slot_of(const SmTransfer *t)
{
	for (int slot = 0; slot < SM_HTTP_MAX_IN_FLIGHT; slot++)
		if (&many_xfer[slot] == t && many_index[slot] >= 0)
			return slot;
	return -1;
}

/*
 * Perform reqs[0..n-1] concurrently; see http.h for the contract.  The wait
 * loop is run_transfer's: 50 ms slices of curl_multi_poll, the client looked
 * at between them, and a pending cancel, timeout or terminate raised after
 * every transfer has been detached and scrubbed.
 */
void
sm_http_perform_many(const SmHttpRequest *reqs, int n, int max_in_flight,
					 SmHttpResponse *resps, SmHttpStatus *statuses)
{
	volatile int next = 0;
	volatile int active = 0;

	Assert(n >= 0);
	for (int i = 0; i < n; i++)
	{
		memset(&resps[i], 0, sizeof(SmHttpResponse));
		statuses[i] = SM_HTTP_OTHER_ERROR;
	}
	if (n == 0)
		return;
	max_in_flight = Max(1, Min(max_in_flight, SM_HTTP_MAX_IN_FLIGHT));

	ensure_handles();			/* curl_global_init */
	if (many_multi == NULL && (many_multi = curl_multi_init()) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	for (int slot = 0; slot < SM_HTTP_MAX_IN_FLIGHT; slot++)
		many_index[slot] = -1;

	PG_TRY();
	{
		while (next < n || active > 0)
		{
			int			running = 0;
			CURLMcode	mc;
			CURLMsg    *msg;
			int			queued;

			/* fill the free slots */
			for (int slot = 0; slot < max_in_flight && next < n; slot++)
			{
				if (many_index[slot] >= 0)
					continue;
				if (many_start(slot, next, &reqs[next], &resps[next], &statuses[next]))
					active++;
				next++;
			}
			if (active == 0)
				continue;

			mc = curl_multi_perform(many_multi, &running);
			while (mc == CURLM_OK &&
				   (msg = curl_multi_info_read(many_multi, &queued)) != NULL)
			{
				SmTransfer *t = NULL;
				int			slot;

				if (msg->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
				slot = many_slot_of(t);
				if (slot < 0)
					continue;
				many_complete(slot, msg->data.result, &resps[many_index[slot]],
							  &statuses[many_index[slot]]);
				active--;
			}
			if (mc == CURLM_OK && active > 0 && running == 0)
				mc = CURLM_INTERNAL_ERROR;	/* ended without a result */
			if (mc == CURLM_OK && active > 0)
				mc = curl_multi_poll(many_multi, NULL, 0, SM_HTTP_SLICE_MS, NULL);
			if (mc != CURLM_OK)
			{
				/* the multi handle is unusable: fail what is in flight */
				for (int slot = 0; slot < SM_HTTP_MAX_IN_FLIGHT; slot++)
					if (many_index[slot] >= 0)
						many_fail(&resps[many_index[slot]], &statuses[many_index[slot]],
								  SM_HTTP_OTHER_ERROR,
								  mc == CURLM_INTERNAL_ERROR ? "transfer ended without a result" :
								  curl_multi_strerror(mc));
				many_abandon();
				active = 0;
				if ((many_multi = curl_multi_init()) == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_OUT_OF_MEMORY),
							 errmsg("could not create a libcurl multi handle")));
				for (int slot = 0; slot < SM_HTTP_MAX_IN_FLIGHT; slot++)
					many_index[slot] = -1;
			}

			(void) sm_backend_client_gone();
			if (INTERRUPTS_PENDING_CONDITION())
			{
				if ((QueryCancelPending || ProcDiePending || ClientConnectionLost) &&
					INTERRUPTS_CAN_BE_PROCESSED())
				{
					/* leave libcurl before the error unwinds past us */
					many_abandon();
					CHECK_FOR_INTERRUPTS();

					/* absorbed without an error: what is left fails */
					for (int i = 0; i < n; i++)
						if (resps[i].body == NULL && resps[i].error[0] == '\0' &&
							resps[i].status == 0)
							many_fail(&resps[i], &statuses[i], SM_HTTP_OTHER_ERROR,
									  "request interrupted");
					break;
				}
				/* anything else raised here is cleaned up by our PG_CATCH */
				CHECK_FOR_INTERRUPTS();
			}
		}
	}
	PG_CATCH();
	{
		many_abandon();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * The check of an endpoint setting (secretsmgr.endpoint, sts_endpoint):
 * empty, https, or http on a loopback address.  A URL with userinfo
 * passes here and is checked where it is used, because PostgreSQL's
 * message for a refused value would quote it whole, password and all.
 */
bool
sm_http_endpoint_setting_ok(const char *value)
{
	char	   *shown;
	bool		userinfo;

	if (value == NULL || value[0] == '\0')
		return true;
	shown = sm_http_url_redacted(value);
	userinfo = strcmp(shown, value) != 0;
	pfree(shown);
	return userinfo || sm_http_url_allowed(value, NULL);
}
