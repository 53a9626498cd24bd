/*-------------------------------------------------------------------------
 *
 * sigv4.c
 *		AWS Signature Version 4 (AWS4-HMAC-SHA256) request signing.
 *
 * This file owns everything between "here is a request" and "here is its
 * Authorization header value": the canonical request, the string to sign,
 * the signing-key derivation and the final HMAC.  It deliberately includes
 * no PostgreSQL header and uses only libc and OpenSSL 3, so that it can be
 * unit-tested as a standalone program (test/unit/test_sigv4.c) against
 * AWS's published known-answer vectors, and linked unchanged into the
 * backend.
 *
 * Invariants:
 *	- Every buffer that ever holds the secret access key or a key derived
 *	  from it ("AWS4"+secret, kDate, kRegion, kService, kSigning) is wiped
 *	  with OPENSSL_cleanse before it goes out of scope or is freed, on the
 *	  error paths too.
 *	- No fixed-size buffer receives data of caller-controlled length: sizes
 *	  are computed with overflow checks and memory comes from malloc, whose
 *	  result is always checked.
 *	- Nothing here exits, aborts, raises or keeps global mutable state; a
 *	  failure (bad input, out of memory, OpenSSL error, output buffer too
 *	  small) is reported as -1 after freeing whatever was allocated, so the
 *	  caller decides how to report it.  That also makes the code safe to run
 *	  inside a backend, where allocation failure must not kill the process.
 *	- The request is signed exactly as given: the path is taken verbatim
 *	  (the caller encodes it), the body hash covers the exact body bytes.
 *
 * Portions of the canonical form follow AWS's "Create a canonical request
 * for Signature Version 4" documentation; see test/unit/README.md for the
 * vectors used to check it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L		/* gmtime_r under -std=c99 */
#endif

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_KEY_LEN 32
#define SIGV4_HEX_LEN 64

/* A growable, NUL-terminated string; "failed" latches the first error. */
struct sigbuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	int			failed;
};

/* One header, canonicalised, remembering its input position for stability. */
struct canon_header
{
	char	   *name;
	char	   *value;
	int			pos;
};

/* One query parameter, both halves already RFC 3986 encoded. */
struct canon_param
{
	char	   *name;
	char	   *value;
};

static const char hexdigits[] = "0123456789abcdef";
static const char hexupper[] = "0123456789ABCDEF";

/* Append n bytes, growing geometrically; on any failure just latch it. */
static void
buf_append(struct sigbuf *b, const char *s, size_t n)
{
	size_t		need;

	if (b->failed)
		return;
	if (n > SIZE_MAX - b->len - 1)
	{
		b->failed = 1;
		return;
	}
	need = b->len + n + 1;
	if (need > b->cap)
	{
		size_t		newcap = b->cap ? b->cap : 256;
		char	   *p;

		while (newcap < need)
		{
			if (newcap > SIZE_MAX / 2)
			{
				newcap = need;
				break;
			}
			newcap *= 2;
		}
		p = realloc(b->data, newcap);
		if (p == NULL)
		{
			b->failed = 1;
			return;
		}
		b->data = p;
		b->cap = newcap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* Append a NUL-terminated string. */
static void
buf_puts(struct sigbuf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

/* Append one character. */
static void
buf_putc(struct sigbuf *b, char c)
{
	buf_append(b, &c, 1);
}

/* Lower-case hex of n bytes into out (2n digits plus a NUL). */
static void
to_hex(const unsigned char *in, size_t n, char *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* SHA-256 of data as 64 hex digits; -1 if OpenSSL fails. */
static int
sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (data == NULL && len > 0)
		return -1;
	if (data == NULL)
		data = "";
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
		mdlen != SIGV4_KEY_LEN)
		return -1;
	to_hex(md, mdlen, out);
	return 0;
}

/* HMAC-SHA256(key, data) into out[32]; -1 if OpenSSL fails. */
static int
hmac_sha256(const unsigned char *key, size_t keylen,
			const void *data, size_t datalen, unsigned char out[32])
{
	unsigned int outlen = 0;

	if (keylen > INT_MAX)
		return -1;
	if (HMAC(EVP_sha256(), key, (int) keylen,
			 (const unsigned char *) data, datalen, out, &outlen) == NULL ||
		outlen != SIGV4_KEY_LEN)
	{
		OPENSSL_cleanse(out, SIGV4_KEY_LEN);
		return -1;
	}
	return 0;
}

/* The signing-key chain, reporting failure instead of hiding it. */
static int
derive_signing_key(const char *secret, const char *date8, const char *region,
				   const char *service, unsigned char out[32])
{
	unsigned char k1[SIGV4_KEY_LEN];
	unsigned char k2[SIGV4_KEY_LEN];
	char	   *seed;
	size_t		slen;
	int			rc = -1;

	if (secret == NULL || date8 == NULL || region == NULL || service == NULL)
		return -1;
	slen = strlen(secret);
	if (slen > SIZE_MAX - 5)
		return -1;
	seed = malloc(slen + 5);
	if (seed == NULL)
		return -1;
	memcpy(seed, "AWS4", 4);
	memcpy(seed + 4, secret, slen + 1);

	if (hmac_sha256((unsigned char *) seed, slen + 4,
					date8, strlen(date8), k1) == 0 &&
		hmac_sha256(k1, sizeof(k1), region, strlen(region), k2) == 0 &&
		hmac_sha256(k2, sizeof(k2), service, strlen(service), k1) == 0 &&
		hmac_sha256(k1, sizeof(k1), SIGV4_TERMINATOR,
					strlen(SIGV4_TERMINATOR), out) == 0)
		rc = 0;

	OPENSSL_cleanse(seed, slen + 5);
	free(seed);
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	return rc;
}

/* Hex SHA-256 of data; an empty string if hashing is impossible. */
void
sm_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	if (sha256_hex(data, len, out) != 0)
		out[0] = '\0';
}

/* X-Amz-Date form of t in UTC; an empty string if t is not representable. */
void
sm_sigv4_amz_date(time_t t, char out[17])
{
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL ||
		tm.tm_year < 0 - 1900 || tm.tm_year > 9999 - 1900 ||
		strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		out[0] = '\0';
}

/* Signing key for one day; all zeroes if it cannot be derived. */
void
sm_sigv4_signing_key(const char *secret_access_key, const char *date8,
					 const char *region, const char *service,
					 unsigned char out[32])
{
	if (derive_signing_key(secret_access_key, date8, region, service,
						   out) != 0)
		OPENSSL_cleanse(out, SIGV4_KEY_LEN);
}

/* True for RFC 3986 unreserved characters, which are never escaped. */
static int
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
		c == '~';
}

/* Value of a hex digit, or -1. */
static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Canonical RFC 3986 form of s[0..n): valid %XX escapes are decoded first,
 * so that a query already encoded on the wire is not encoded twice and the
 * result matches what the service computes from the wire form.
 */
static char *
uri_encode(const char *s, size_t n)
{
	char	   *out;
	size_t		i;
	size_t		o = 0;

	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(3 * n + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '%' && n - i > 2 &&
			hexval((unsigned char) s[i + 1]) >= 0 &&
			hexval((unsigned char) s[i + 2]) >= 0)
		{
			c = (unsigned char) (hexval((unsigned char) s[i + 1]) * 16 +
								 hexval((unsigned char) s[i + 2]));
			i += 2;
		}
		if (is_unreserved(c))
			out[o++] = (char) c;
		else
		{
			out[o++] = '%';
			out[o++] = hexupper[c >> 4];
			out[o++] = hexupper[c & 0x0f];
		}
	}
	out[o] = '\0';
	return out;
}

/* Order parameters by encoded name, then encoded value (byte order). */
static int
param_cmp(const void *a, const void *b)
{
	const struct canon_param *pa = a;
	const struct canon_param *pb = b;
	int			c = strcmp(pa->name, pb->name);

	return c != 0 ? c : strcmp(pa->value, pb->value);
}

/* Order headers by name, then input position, so duplicates keep order. */
static int
header_cmp(const void *a, const void *b)
{
	const struct canon_header *ha = a;
	const struct canon_header *hb = b;
	int			c = strcmp(ha->name, hb->name);

	if (c != 0)
		return c;
	return (ha->pos > hb->pos) - (ha->pos < hb->pos);
}

/* Append the canonical query string of query (may be NULL); -1 on failure. */
static int
append_canonical_query(struct sigbuf *b, const char *query)
{
	struct canon_param *params = NULL;
	size_t		nparams = 0;
	size_t		maxparams = 1;
	const char *p;
	size_t		i;
	int			rc = -1;

	if (query == NULL || query[0] == '\0')
		return 0;

	for (p = query; *p; p++)
		if (*p == '&')
			maxparams++;
	if (maxparams > SIZE_MAX / sizeof(*params))
		return -1;
	params = calloc(maxparams, sizeof(*params));
	if (params == NULL)
		return -1;

	p = query;
	for (;;)
	{
		const char *end = strchr(p, '&');
		size_t		seglen = end ? (size_t) (end - p) : strlen(p);

		/* "a&&b" and a trailing '&' carry no parameter */
		if (seglen > 0)
		{
			const char *eq = memchr(p, '=', seglen);
			size_t		nlen = eq ? (size_t) (eq - p) : seglen;

			params[nparams].name = uri_encode(p, nlen);
			params[nparams].value = eq ? uri_encode(eq + 1, seglen - nlen - 1)
				: uri_encode("", 0);
			nparams++;
			if (params[nparams - 1].name == NULL ||
				params[nparams - 1].value == NULL)
				goto done;
		}
		if (end == NULL)
			break;
		p = end + 1;
	}

	qsort(params, nparams, sizeof(*params), param_cmp);
	for (i = 0; i < nparams; i++)
	{
		if (i > 0)
			buf_putc(b, '&');
		buf_puts(b, params[i].name);
		buf_putc(b, '=');
		buf_puts(b, params[i].value);
	}
	rc = b->failed ? -1 : 0;

done:
	for (i = 0; i < nparams; i++)
	{
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
	return rc;
}

/* RFC 7230 token characters, the only ones allowed in a header name. */
static int
is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') ||
		(c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Lower-cased copy of a header name, or NULL if it is not a valid token. */
static char *
canon_header_name(const char *name)
{
	size_t		n = strlen(name);
	size_t		i;
	char	   *out;

	if (n == 0)
		return NULL;
	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char) name[i]))
			return NULL;
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++)
	{
		char		c = name[i];

		out[i] = (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
	}
	out[n] = '\0';
	return out;
}

/*
 * Trimmed copy of a header value with inner runs of spaces and tabs folded
 * to one space, or NULL if it holds a control character: CR or LF would let
 * one header smuggle in another.
 */
static char *
canon_header_value(const char *value)
{
	size_t		n = strlen(value);
	size_t		i;
	size_t		o = 0;
	int			pending_space = 0;
	char	   *out;

	for (i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) value[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return NULL;
	}
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++)
	{
		char		c = value[i];

		if (c == ' ' || c == '\t')
		{
			if (o > 0)
				pending_space = 1;
			continue;
		}
		if (pending_space)
		{
			out[o++] = ' ';
			pending_space = 0;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

/*
 * Append the canonical headers block (each "name:value\n") to b and the
 * signed-headers list to signed_list; -1 on invalid input or failure.
 */
static int
append_canonical_headers(struct sigbuf *b, struct sigbuf *signed_list,
						 const SmSigV4Header *headers, int nheaders)
{
	struct canon_header *hs;
	int			i;
	int			built = 0;
	int			rc = -1;

	if (nheaders <= 0 || headers == NULL ||
		(size_t) nheaders > SIZE_MAX / sizeof(*hs))
		return -1;
	hs = calloc((size_t) nheaders, sizeof(*hs));
	if (hs == NULL)
		return -1;

	for (i = 0; i < nheaders; i++)
	{
		if (headers[i].name == NULL || headers[i].value == NULL)
			goto done;
		hs[i].name = canon_header_name(headers[i].name);
		hs[i].value = canon_header_value(headers[i].value);
		hs[i].pos = i;
		built = i + 1;
		if (hs[i].name == NULL || hs[i].value == NULL)
			goto done;
	}

	qsort(hs, (size_t) nheaders, sizeof(*hs), header_cmp);
	for (i = 0; i < nheaders; i++)
	{
		int			first = (i == 0 || strcmp(hs[i].name, hs[i - 1].name) != 0);
		int			last = (i == nheaders - 1 ||
							strcmp(hs[i].name, hs[i + 1].name) != 0);

		if (first)
		{
			if (signed_list->len > 0)
				buf_putc(signed_list, ';');
			buf_puts(signed_list, hs[i].name);
			buf_puts(b, hs[i].name);
			buf_putc(b, ':');
		}
		else
			buf_putc(b, ',');
		buf_puts(b, hs[i].value);
		if (last)
			buf_putc(b, '\n');
	}
	rc = (b->failed || signed_list->failed) ? -1 : 0;

done:
	for (i = 0; i < built; i++)
	{
		free(hs[i].name);
		free(hs[i].value);
	}
	free(hs);
	return rc;
}

/* A credential-scope component: non-empty, printable, no '/', ' ' or ','. */
static int
valid_scope_part(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return 0;
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c <= 0x20 || c >= 0x7f || c == '/' || c == ',')
			return 0;
	}
	return 1;
}

/* Non-empty and free of whitespace and control characters. */
static int
valid_token(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return 0;
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c <= 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/* True if d has the exact shape YYYYMMDDTHHMMSSZ. */
static int
valid_amz_date(const char *d)
{
	int			i;

	if (d == NULL || strlen(d) != 16)
		return 0;
	for (i = 0; i < 16; i++)
	{
		if (i == 8)
		{
			if (d[i] != 'T')
				return 0;
		}
		else if (i == 15)
		{
			if (d[i] != 'Z')
				return 0;
		}
		else if (d[i] < '0' || d[i] > '9')
			return 0;
	}
	return 1;
}

/* Leave the outputs of a failed signing empty, so nothing half-done is used. */
static int
sign_failed(char *authorization, size_t authorization_len,
			char signature[65], char **canonical_request)
{
	if (authorization != NULL && authorization_len > 0)
		authorization[0] = '\0';
	if (signature != NULL)
		signature[0] = '\0';
	if (canonical_request != NULL)
		*canonical_request = NULL;
	return -1;
}

/* Shared body of both signing entry points; the key is only borrowed. */
static int
sign_request(const SmSigV4Request *req, const unsigned char key[32],
			 char *authorization, size_t authorization_len,
			 char signature[65], char **canonical_request)
{
	struct sigbuf creq = {0};
	struct sigbuf signed_list = {0};
	struct sigbuf scope = {0};
	struct sigbuf sts = {0};
	struct sigbuf auth = {0};
	char		hash[SIGV4_HEX_LEN + 1];
	char		sighex[SIGV4_HEX_LEN + 1];
	unsigned char mac[SIGV4_KEY_LEN];
	char		date8[9];
	int			rc = -1;

	if (req->method == NULL || req->path == NULL ||
		!valid_token(req->method) || !valid_token(req->path) ||
		(req->body == NULL && req->body_len > 0) ||
		!valid_amz_date(req->amz_date) ||
		!valid_scope_part(req->region) || !valid_scope_part(req->service) ||
		!valid_scope_part(req->access_key_id))
		goto done;
	memcpy(date8, req->amz_date, 8);
	date8[8] = '\0';

	/* canonical request */
	buf_puts(&creq, req->method);
	buf_putc(&creq, '\n');
	buf_puts(&creq, req->path);
	buf_putc(&creq, '\n');
	if (append_canonical_query(&creq, req->query) != 0)
		goto done;
	buf_putc(&creq, '\n');
	if (append_canonical_headers(&creq, &signed_list,
								 req->headers, req->nheaders) != 0)
		goto done;
	buf_putc(&creq, '\n');
	buf_puts(&creq, signed_list.data);
	buf_putc(&creq, '\n');
	if (sha256_hex(req->body, req->body_len, hash) != 0)
		goto done;
	buf_puts(&creq, hash);
	if (creq.failed)
		goto done;

	/* credential scope and string to sign */
	buf_puts(&scope, date8);
	buf_putc(&scope, '/');
	buf_puts(&scope, req->region);
	buf_putc(&scope, '/');
	buf_puts(&scope, req->service);
	buf_putc(&scope, '/');
	buf_puts(&scope, SIGV4_TERMINATOR);
	if (scope.failed || sha256_hex(creq.data, creq.len, hash) != 0)
		goto done;

	buf_puts(&sts, SIGV4_ALGORITHM "\n");
	buf_puts(&sts, req->amz_date);
	buf_putc(&sts, '\n');
	buf_puts(&sts, scope.data);
	buf_putc(&sts, '\n');
	buf_puts(&sts, hash);
	if (sts.failed ||
		hmac_sha256(key, SIGV4_KEY_LEN, sts.data, sts.len, mac) != 0)
		goto done;
	to_hex(mac, sizeof(mac), sighex);

	buf_puts(&auth, SIGV4_ALGORITHM " Credential=");
	buf_puts(&auth, req->access_key_id);
	buf_putc(&auth, '/');
	buf_puts(&auth, scope.data);
	buf_puts(&auth, ", SignedHeaders=");
	buf_puts(&auth, signed_list.data);
	buf_puts(&auth, ", Signature=");
	buf_puts(&auth, sighex);
	if (auth.failed || authorization == NULL || auth.len >= authorization_len)
		goto done;

	memcpy(authorization, auth.data, auth.len + 1);
	if (signature != NULL)
		memcpy(signature, sighex, sizeof(sighex));
	if (canonical_request != NULL)
	{
		*canonical_request = creq.data;
		creq.data = NULL;
	}
	rc = 0;

done:
	if (rc != 0)
		sign_failed(authorization, authorization_len, signature,
					canonical_request);
	OPENSSL_cleanse(mac, sizeof(mac));
	free(creq.data);
	free(signed_list.data);
	free(scope.data);
	free(sts.data);
	free(auth.data);
	return rc;
}

/* Sign req, deriving the day's signing key from the secret access key. */
int
sm_sigv4_sign(const SmSigV4Request *req,
			  char *authorization, size_t authorization_len,
			  char signature[65], char **canonical_request)
{
	unsigned char key[SIGV4_KEY_LEN];
	char		date8[9];
	int			rc;

	if (req == NULL || !valid_amz_date(req->amz_date) ||
		req->secret_access_key == NULL)
		return sign_failed(authorization, authorization_len, signature,
						   canonical_request);
	memcpy(date8, req->amz_date, 8);
	date8[8] = '\0';
	if (derive_signing_key(req->secret_access_key, date8, req->region,
						   req->service, key) != 0)
	{
		OPENSSL_cleanse(key, sizeof(key));
		return sign_failed(authorization, authorization_len, signature,
						   canonical_request);
	}
	rc = sign_request(req, key, authorization, authorization_len,
					  signature, canonical_request);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* Sign req with a signing key the caller derived (and may cache). */
int
sm_sigv4_sign_with_key(const SmSigV4Request *req,
					   const unsigned char signing_key[32],
					   char *authorization, size_t authorization_len,
					   char signature[65], char **canonical_request)
{
	if (req == NULL || signing_key == NULL)
		return sign_failed(authorization, authorization_len, signature,
						   canonical_request);
	return sign_request(req, signing_key, authorization, authorization_len,
						signature, canonical_request);
}
