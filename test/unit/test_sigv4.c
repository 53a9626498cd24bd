/*-------------------------------------------------------------------------
 *
 * test_sigv4.c
 *		Known-answer and behaviour tests for src/sigv4.c, run standalone.
 *
 * Every expected value below comes from AWS's published SigV4 material (the
 * signing-key derivation example, the IAM ListUsers example and the
 * aws-sig-v4-test-suite cases), except the Secrets Manager-shaped request,
 * whose answer was computed two independent ways (not a published vector).
 * Output is TAP-like ("ok N - name" / "not ok N - name") followed by a
 * "N passed, N failed" summary; the exit status is 1 if anything failed.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_HOST "example.amazonaws.com"
#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static int	ntests = 0;
static int	npassed = 0;
static int	nfailed = 0;

/* Record one assertion in TAP form. */
static void
check(int cond, const char *name)
{
	ntests++;
	if (cond)
	{
		npassed++;
		printf("ok %d - %s\n", ntests, name);
	}
	else
	{
		nfailed++;
		printf("not ok %d - %s\n", ntests, name);
	}
}

/* Compare strings, printing both on mismatch so a failure is diagnosable. */
static void
check_str(const char *got, const char *want, const char *name)
{
	int			ok = (got != NULL && strcmp(got, want) == 0);

	check(ok, name);
	if (!ok)
		printf("#   got:  \"%s\"\n#   want: \"%s\"\n",
			   got ? got : "(null)", want);
}

/* Lower-case hex of 32 bytes. */
static void
hex32(const unsigned char *in, char out[65])
{
	static const char digits[] = "0123456789abcdef";
	int			i;

	for (i = 0; i < 32; i++)
	{
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[64] = '\0';
}

/* A request with the test suite's common inputs; the caller sets the rest. */
static SmSigV4Request
suite_request(const char *method, const char *query,
			  const SmSigV4Header *headers, int nheaders,
			  const char *body)
{
	SmSigV4Request r;

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.path = "/";
	r.query = query;
	r.headers = headers;
	r.nheaders = nheaders;
	r.body = body;
	r.body_len = body ? strlen(body) : 0;
	r.amz_date = SUITE_DATE;
	r.region = "us-east-1";
	r.service = "service";
	r.access_key_id = AKID;
	r.secret_access_key = SECRET;
	return r;
}

/* Signature of req as hex, or "" if signing failed. */
static void
signature_of(const SmSigV4Request *req, char sig[65])
{
	char		auth[512];

	if (sm_sigv4_sign(req, auth, sizeof(auth), sig, NULL) != 0)
		sig[0] = '\0';
}

/* Sign a test-suite case and compare its signature and the whole header. */
static void
check_suite_case(const char *name, const SmSigV4Request *req,
				 const char *signed_headers, const char *want_sig)
{
	char		auth[512];
	char		sig[65];
	char		want_auth[512];
	char		label[160];
	int			rc;

	rc = sm_sigv4_sign(req, auth, sizeof(auth), sig, NULL);
	snprintf(label, sizeof(label), "%s: sign returns 0", name);
	check(rc == 0, label);
	snprintf(label, sizeof(label), "%s: signature", name);
	check_str(rc == 0 ? sig : NULL, want_sig, label);
	snprintf(want_auth, sizeof(want_auth),
			 "AWS4-HMAC-SHA256 Credential=%s/20150830/us-east-1/service/aws4_request, "
			 "SignedHeaders=%s, Signature=%s",
			 AKID, signed_headers, want_sig);
	snprintf(label, sizeof(label), "%s: authorization header", name);
	check_str(rc == 0 ? auth : NULL, want_auth, label);
}

/*
 * One-byte changes to the body, the secret and the date must each change
 * the signature: proves all three actually feed the HMAC.
 */
static void
check_mutations(const char *family, const SmSigV4Request *base)
{
	SmSigV4Request r;
	char		sig0[65];
	char		sig1[65];
	char		label[160];
	char	   *body;
	char	   *secret;
	char		date[17];

	signature_of(base, sig0);

	r = *base;
	body = malloc(base->body_len + 1);
	if (body == NULL)
	{
		check(0, "malloc");
		return;
	}
	if (base->body_len > 0)
	{
		memcpy(body, base->body, base->body_len);
		body[0] ^= 0x01;
		r.body_len = base->body_len;
	}
	else
	{
		body[0] = 'x';			/* an empty body can only grow by a byte */
		r.body_len = 1;
	}
	r.body = body;
	signature_of(&r, sig1);
	snprintf(label, sizeof(label), "%s: one body byte changes the signature",
			 family);
	check(sig0[0] != '\0' && sig1[0] != '\0' && strcmp(sig0, sig1) != 0, label);
	free(body);

	r = *base;
	secret = strdup(base->secret_access_key);
	if (secret == NULL)
	{
		check(0, "strdup");
		return;
	}
	secret[strlen(secret) - 1] ^= 0x01;
	r.secret_access_key = secret;
	signature_of(&r, sig1);
	snprintf(label, sizeof(label), "%s: one secret byte changes the signature",
			 family);
	check(sig0[0] != '\0' && sig1[0] != '\0' && strcmp(sig0, sig1) != 0, label);
	free(secret);

	r = *base;
	memcpy(date, base->amz_date, sizeof(date));
	date[14] = (date[14] == '0') ? '1' : '0';	/* seconds digit */
	r.amz_date = date;
	signature_of(&r, sig1);
	snprintf(label, sizeof(label), "%s: one date byte changes the signature",
			 family);
	check(sig0[0] != '\0' && sig1[0] != '\0' && strcmp(sig0, sig1) != 0, label);
}

/* Basic helpers: SHA-256, X-Amz-Date formatting, signing-key derivation. */
static void
test_helpers(void)
{
	char		hex[65];
	char		date[17];
	unsigned char key[32];
	unsigned char key2[32];

	sm_sigv4_sha256_hex("", 0, hex);
	check_str(hex, EMPTY_SHA256, "sha256 of the empty string");

	sm_sigv4_amz_date((time_t) 1440938160, date);
	check_str(date, "20150830T123600Z", "amz_date of epoch 1440938160");
	sm_sigv4_amz_date((time_t) 0, date);
	check_str(date, "19700101T000000Z", "amz_date of epoch 0");

	sm_sigv4_signing_key(SECRET, "20120215", "us-east-1", "iam", key);
	hex32(key, hex);
	check_str(hex,
			  "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d",
			  "signing key derivation example (iam, 20120215)");

	sm_sigv4_signing_key(SECRET, "20120216", "us-east-1", "iam", key2);
	check(memcmp(key, key2, 32) != 0,
		  "signing key: one date byte changes the key");
}

/* Headers of AWS's documented IAM ListUsers example. */
static const SmSigV4Header iam_headers[] = {
	{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
	{"Host", "iam.amazonaws.com"},
	{"X-Amz-Date", SUITE_DATE},
};

/* AWS's documented IAM ListUsers example: signing key and signature. */
static void
test_iam_example(void)
{
	SmSigV4Request iam_req;
	unsigned char key[32];
	char		hex[65];
	char		auth[512];
	char		sig[65];
	int			rc;

	sm_sigv4_signing_key(SECRET, "20150830", "us-east-1", "iam", key);
	hex32(key, hex);
	check_str(hex,
			  "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9",
			  "IAM ListUsers: signing key");

	iam_req = suite_request("GET", "Action=ListUsers&Version=2010-05-08",
							iam_headers, 3, NULL);
	iam_req.service = "iam";
	rc = sm_sigv4_sign(&iam_req, auth, sizeof(auth), sig, NULL);
	check(rc == 0, "IAM ListUsers: sign returns 0");
	check_str(rc == 0 ? sig : NULL,
			  "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
			  "IAM ListUsers: signature");
	check_str(rc == 0 ? auth : NULL,
			  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
			  "SignedHeaders=content-type;host;x-amz-date, "
			  "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
			  "IAM ListUsers: authorization header");

	check_mutations("IAM ListUsers", &iam_req);
}

/* Cases from AWS's aws-sig-v4-test-suite. */
static void
test_suite_cases(void)
{
	static const SmSigV4Header vanilla[] = {
		{"Host", SUITE_HOST},
		{"X-Amz-Date", SUITE_DATE},
	};
	static const SmSigV4Header form[] = {
		{"Content-Type", "application/x-www-form-urlencoded"},
		{"Host", SUITE_HOST},
		{"X-Amz-Date", SUITE_DATE},
	};
	static const SmSigV4Header trim[] = {
		{"Host", SUITE_HOST},
		{"My-Header1", " value1"},
		{"My-Header2", " \"a   b   c\""},
		{"X-Amz-Date", SUITE_DATE},
	};
	static const char trim_creq[] =
		"GET\n"
		"/\n"
		"\n"
		"host:example.amazonaws.com\n"
		"my-header1:value1\n"
		"my-header2:\"a b c\"\n"
		"x-amz-date:20150830T123600Z\n"
		"\n"
		"host;my-header1;my-header2;x-amz-date\n"
		EMPTY_SHA256;
	SmSigV4Request r;
	char		auth[512];
	char	   *creq = NULL;
	int			rc;

	r = suite_request("GET", NULL, vanilla, 2, NULL);
	check_suite_case("get-vanilla", &r, "host;x-amz-date",
					 "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");

	r = suite_request("POST", NULL, vanilla, 2, NULL);
	check_suite_case("post-vanilla", &r, "host;x-amz-date",
					 "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");

	r = suite_request("GET", "Param2=value2&Param1=value1", vanilla, 2, NULL);
	check_suite_case("get-vanilla-query-order-key-case", &r, "host;x-amz-date",
					 "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");

	r = suite_request("POST", "Param1=value1", vanilla, 2, NULL);
	check_suite_case("post-vanilla-query", &r, "host;x-amz-date",
					 "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11");

	r = suite_request("POST", NULL, form, 3, "Param1=value1");
	check_suite_case("post-x-www-form-urlencoded", &r,
					 "content-type;host;x-amz-date",
					 "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
	check_mutations("post-x-www-form-urlencoded", &r);

	r = suite_request("GET", NULL, trim, 4, NULL);
	check_suite_case("get-header-value-trim", &r,
					 "host;my-header1;my-header2;x-amz-date",
					 "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
	rc = sm_sigv4_sign(&r, auth, sizeof(auth), NULL, &creq);
	check(rc == 0 && creq != NULL,
		  "get-header-value-trim: canonical request returned");
	check_str(creq, trim_creq,
			  "get-header-value-trim: canonical request text is exact");
	free(creq);
}

/* Headers of the Secrets Manager-shaped request, in the order smclient sends. */
static const SmSigV4Header sm_headers[] = {
	{"Content-Type", "application/x-amz-json-1.1"},
	{"Host", "secretsmanager.us-east-1.amazonaws.com"},
	{"X-Amz-Date", SUITE_DATE},
	{"X-Amz-Target", "secretsmanager.GetSecretValue"},
};

#define SM_BODY "{\"SecretId\":\"MyTestSecret\"}"
#define SM_SIG "850e2e7bf5d9a27ceed85ab70fabb682bb6868d1dffca441f17dd9728b0f9786"

/* The request shape secretsmgr actually sends. */
static SmSigV4Request
sm_request(void)
{
	SmSigV4Request r = suite_request("POST", NULL, sm_headers, 4, SM_BODY);

	r.service = "secretsmanager";
	return r;
}

/* Secrets Manager GetSecretValue: payload hash, signature, key reuse. */
static void
test_secretsmanager(void)
{
	SmSigV4Request r = sm_request();
	unsigned char key[32];
	char		hash[65];
	char		auth1[512];
	char		auth2[512];
	char		sig1[65];
	char		sig2[65];
	char	   *creq1 = NULL;
	char	   *creq2 = NULL;
	int			rc1;
	int			rc2;

	sm_sigv4_sha256_hex(SM_BODY, strlen(SM_BODY), hash);
	check_str(hash,
			  "7b784e9ae61a973388a77975eda94c447ed810634deeeac9ec9db5825bb25567",
			  "secretsmanager: payload hash");

	rc1 = sm_sigv4_sign(&r, auth1, sizeof(auth1), sig1, &creq1);
	check(rc1 == 0, "secretsmanager: sign returns 0");
	check_str(rc1 == 0 ? sig1 : NULL, SM_SIG, "secretsmanager: signature");
	check_str(rc1 == 0 ? auth1 : NULL,
			  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/secretsmanager/aws4_request, "
			  "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
			  "Signature=" SM_SIG,
			  "secretsmanager: authorization header");

	/* with the key precomputed, everything must come out identical */
	sm_sigv4_signing_key(SECRET, "20150830", "us-east-1", "secretsmanager", key);
	r.secret_access_key = "ignored when the key is given";
	rc2 = sm_sigv4_sign_with_key(&r, key, auth2, sizeof(auth2), sig2, &creq2);
	check(rc2 == 0 && rc1 == 0 && strcmp(sig1, sig2) == 0 &&
		  strcmp(auth1, auth2) == 0 && creq1 && creq2 &&
		  strcmp(creq1, creq2) == 0,
		  "sign_with_key gives the same result as sign");
	free(creq1);
	free(creq2);

	r = sm_request();
	check_mutations("secretsmanager", &r);
}

/* Temporary credentials: the token header is signed, in sorted position. */
static void
test_security_token(void)
{
	static const SmSigV4Header headers[] = {
		{"Content-Type", "application/x-amz-json-1.1"},
		{"Host", "secretsmanager.us-east-1.amazonaws.com"},
		{"X-Amz-Date", SUITE_DATE},
		{"X-Amz-Target", "secretsmanager.GetSecretValue"},
		{"X-Amz-Security-Token", "FQoGZXIvYXdzEXAMPLETOKEN"},
	};
	SmSigV4Request r = sm_request();
	char		auth[512];
	char		sig[65];
	char	   *creq = NULL;
	int			rc;

	r.headers = headers;
	r.nheaders = 5;
	rc = sm_sigv4_sign(&r, auth, sizeof(auth), sig, &creq);
	check(rc == 0 &&
		  strstr(auth, ", SignedHeaders=content-type;host;x-amz-date;"
				 "x-amz-security-token;x-amz-target, ") != NULL,
		  "x-amz-security-token is in SignedHeaders in sorted position");
	check(rc == 0 && creq != NULL &&
		  strstr(creq, "x-amz-date:" SUITE_DATE "\n"
				 "x-amz-security-token:FQoGZXIvYXdzEXAMPLETOKEN\n"
				 "x-amz-target:secretsmanager.GetSecretValue\n") != NULL,
		  "x-amz-security-token is a canonical header in sorted position");
	check(rc == 0 && strcmp(sig, SM_SIG) != 0,
		  "x-amz-security-token changes the signature");
	free(creq);
}

/* Canonicalisation rules the vectors above do not reach. */
static void
test_canonical_rules(void)
{
	static const SmSigV4Header dup[] = {
		{"Host", SUITE_HOST},
		{"X-Dup", "b"},
		{"x-amz-date", SUITE_DATE},
		{"x-dup", "  a  "},
	};
	SmSigV4Request r;
	char		auth[512];
	char	   *creq = NULL;
	int			rc;

	r = suite_request("GET", "b=2&a&c=x y&a=%2f", dup, 4, NULL);
	rc = sm_sigv4_sign(&r, auth, sizeof(auth), NULL, &creq);
	check(rc == 0 && creq != NULL &&
		  strstr(creq, "\nx-dup:b,a\n") != NULL,
		  "duplicate header names joined with ',' in input order");
	check(rc == 0 && creq != NULL &&
		  strstr(creq, "\na=&a=%2F&b=2&c=x%20y\n") != NULL,
		  "query: no '=' gives an empty value, sorted, RFC 3986 encoded");
	check(rc == 0 &&
		  strstr(auth, "SignedHeaders=host;x-amz-date;x-dup,") != NULL,
		  "duplicate header names signed once");
	free(creq);
}

/* Output buffer too small, and invalid input, fail cleanly with -1. */
static void
test_failures(void)
{
	static const SmSigV4Header crlf[] = {
		{"Host", SUITE_HOST},
		{"X-Amz-Date", SUITE_DATE},
		{"X-Evil", "a\r\nX-Injected: 1"},
	};
	SmSigV4Request r = sm_request();
	char		auth[512];
	char		sig[65];
	char	   *creq = (char *) "untouched";
	size_t		need;
	int			rc;

	rc = sm_sigv4_sign(&r, auth, sizeof(auth), NULL, NULL);
	need = strlen(auth) + 1;
	check(rc == 0 && sm_sigv4_sign(&r, auth, need, NULL, NULL) == 0,
		  "authorization buffer of exactly the needed size succeeds");

	memset(sig, 'x', sizeof(sig));
	rc = sm_sigv4_sign(&r, auth, need - 1, sig, &creq);
	check(rc == -1, "too-small authorization buffer returns -1");
	check(auth[0] == '\0' && sig[0] == '\0' && creq == NULL,
		  "failed signing leaves no partial output");

	check(sm_sigv4_sign(&r, auth, 0, NULL, NULL) == -1,
		  "zero-length authorization buffer returns -1");

	r.amz_date = "2015-08-30T12:36";
	check(sm_sigv4_sign(&r, auth, sizeof(auth), NULL, NULL) == -1,
		  "malformed amz_date returns -1");

	r = suite_request("GET", NULL, crlf, 3, NULL);
	check(sm_sigv4_sign(&r, auth, sizeof(auth), NULL, NULL) == -1,
		  "header value with CR/LF returns -1");
}

int
main(void)
{
	test_helpers();
	test_iam_example();
	test_suite_cases();
	test_secretsmanager();
	test_security_token();
	test_canonical_rules();
	test_failures();

	printf("%d passed, %d failed\n", npassed, nfailed);
	return nfailed > 0 ? 1 : 0;
}
