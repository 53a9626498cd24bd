/*
 * fuzz_sigv4.c
 *		libFuzzer target: SigV4 canonicalisation and signing of arbitrary
 *		requests through sm_sigv4_sign().
 *
 * The input is split at NUL bytes into: method, path, query, X-Amz-Date
 * (empty: a valid fixed date), region (empty: us-east-1), an output buffer
 * size selector, then header name/value pairs; what follows the last full
 * pair is the body (any bytes).  So every string the signer canonicalises
 * (path, query, header names and values) is attacker-chosen.
 *
 * Checks: the result is -1 with empty outputs, or 0 with a 64 lower-case
 * hex digit signature, an Authorization value that ends with it and fits
 * the buffer, and a canonical request; signing again with the day's key
 * (sm_sigv4_sign_with_key, as smclient.c does) gives the same signature.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

#define MAX_FIELDS	40
#define MAX_HEADERS 16

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *copy;
	char	   *fields[MAX_FIELDS];
	int			nfields = 0;
	size_t		pos = 0;
	size_t		body_at;
	SmSigV4Header headers[MAX_HEADERS];
	int			nheaders = 0;
	SmSigV4Request req;
	char		auth[2048];
	size_t		auth_len;
	char		sig[65];
	char		sig2[65];
	char		auth2[2048];
	char	   *creq = NULL;
	unsigned char key[32];
	int			rc;

	/* NUL-terminated copy, so each field is a C string */
	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	while (pos <= size && nfields < 6 + 2 * MAX_HEADERS)
	{
		char	   *nul = memchr(copy + pos, '\0', size + 1 - pos);

		if (nul == NULL || (size_t) (nul - copy) >= size)
			break;
		fields[nfields++] = copy + pos;
		pos = (size_t) (nul - copy) + 1;
	}
	body_at = pos;
	if (nfields < 6)
	{
		/* too short to split: sign it as a body alone */
		nfields = 0;
		body_at = 0;
	}

	memset(&req, 0, sizeof(req));
	req.method = nfields > 0 ? fields[0] : "POST";
	req.path = nfields > 1 ? fields[1] : "/";
	req.query = nfields > 2 ? fields[2] : NULL;
	req.amz_date = (nfields > 3 && fields[3][0]) ? fields[3] : "20150830T123600Z";
	req.region = (nfields > 4 && fields[4][0]) ? fields[4] : "us-east-1";
	auth_len = sizeof(auth);
	if (nfields > 5 && fields[5][0])
		auth_len = (unsigned char) fields[5][0] * 8;	/* 0..2040: small ones too */
	for (int i = 6; i + 1 < nfields && nheaders < MAX_HEADERS; i += 2)
	{
		headers[nheaders].name = fields[i];
		headers[nheaders].value = fields[i + 1];
		nheaders++;
	}
	if (nheaders == 0)
	{
		headers[0].name = "Host";
		headers[0].value = "secretsmanager.us-east-1.amazonaws.com";
		nheaders = 1;
	}
	req.headers = headers;
	req.nheaders = nheaders;
	req.body = copy + body_at;
	req.body_len = size - (body_at <= size ? body_at : size);
	req.service = "secretsmanager";
	req.access_key_id = "AKIDEXAMPLE";
	req.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

	rc = sm_sigv4_sign(&req, auth, auth_len, sig, &creq);
	CHECK(rc == 0 || rc == -1);
	if (rc == -1)
	{
		CHECK(auth_len == 0 || auth[0] == '\0');
		CHECK(sig[0] == '\0');
		CHECK(creq == NULL);
	}
	else
	{
		size_t		alen = strlen(auth);

		CHECK(strlen(sig) == 64);
		CHECK(strspn(sig, "0123456789abcdef") == 64);
		CHECK(alen < auth_len);
		CHECK(strncmp(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 40) == 0);
		CHECK(alen > 64 && strcmp(auth + alen - 64, sig) == 0);
		CHECK(creq != NULL);

		/* the day's key, as smclient.c caches it, signs the same */
		sm_sigv4_signing_key(req.secret_access_key, "20150830", req.region,
							 req.service, key);
		if (strncmp(req.amz_date, "20150830", 8) == 0)
		{
			CHECK(sm_sigv4_sign_with_key(&req, key, auth2, sizeof(auth2), sig2, NULL) == 0);
			CHECK(strcmp(sig, sig2) == 0);
		}
	}
	free(creq);
	free(copy);
	return 0;
}
