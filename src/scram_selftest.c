/*-------------------------------------------------------------------------
 *
 * scram_selftest.c
 *		Proof that scram.c builds PostgreSQL's SCRAM verifiers byte for byte.
 *
 * secretsmgr_scram_selftest is not part of the extension's SQL surface: the
 * install script does not create it, and only a superuser can bind it
 * (CREATE FUNCTION ... LANGUAGE C), as the regress suite sql/scram.sql does.
 * It generates passwords from a seeded PRNG (printable ASCII; non-ASCII
 * text that SASLprep maps, leaves alone or refuses; invalid UTF-8), builds
 * each one's verifier twice in this backend, with scram.c and with
 * PostgreSQL's scram_build_secret() for the same salt and iteration count,
 * and counts the pairs that differ in any byte.  Every full_every-th
 * password also goes through PostgreSQL's whole path,
 * pg_be_scram_build_secret() (its own SASLprep rule, random salt and the
 * server's iteration count), and scram.c is run again with the salt and
 * count read back from that verifier.  No password leaves this file.
 * secretsmgr_scram_bench, test-only as well, times both builders for
 * make bench.
 *
 * src/scram_selftest.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/pg_prng.h"
#include "common/saslprep.h"
#include "common/scram-common.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"

#include "compat.h"
#include "scram.h"
#include "backend.h"
#include "secretbuf.h"
#include "settings.h"
#include "stats.h"

/* declared here for the reason given in compat.h (libpq/scram.h's headers) */
extern char *pg_be_scram_build_secret(const char *password);

/* Longest generated password, in bytes (a code point takes at most 4). */
#define SELFTEST_MAX_CHARS	40
#define SELFTEST_BUF		(SELFTEST_MAX_CHARS * 8 + 16)

/* Code points SASLprep maps to something else (RFC 4013 B.1, C.1.2, NFKC). */
static const uint32 mapped_cps[] = {
	0x00A0, 0x00AD, 0x2002, 0x200B, 0x3000, 0xFB01, 0xFF21, 0x2163,
	0x2126, 0x00BD, 0x212B, 0x1E9B
};

/* Code points SASLprep leaves as they are. */
static const uint32 plain_cps[] = {
	0x00E9, 0x00FC, 0x00DF, 0x4E2D, 0x0436, 0x03B1, 0x00C5, 0x0101, 0xAC00
};

/* Code points SASLprep refuses (C.2.2, C.3, C.6, C.7, C.8, A.1 unassigned). */
static const uint32 prohibited_cps[] = {
	0x0085, 0xE000, 0xFFFD, 0x2FF0, 0x200E, 0x0340, 0x0221
};

/* Byte sequences that are not UTF-8 (stray, truncated, surrogate, overlong). */
static const char *const invalid_seqs[] = {
	"\xC3\x28", "\xFF", "\xE2\x82", "\xED\xA0\x80", "\xC0\xAF", "\x80"
};

/* Append code point cp to buf at *len as UTF-8. */
static void
put_cp(char *buf, int *len, uint32 cp)
{
	unsigned char *p = (unsigned char *) buf + *len;

	if (cp < 0x80)
	{
		p[0] = cp;
		*len += 1;
	}
	else if (cp < 0x800)
	{
		p[0] = 0xC0 | (cp >> 6);
		p[1] = 0x80 | (cp & 0x3F);
		*len += 2;
	}
	else if (cp < 0x10000)
	{
		p[0] = 0xE0 | (cp >> 12);
		p[1] = 0x80 | ((cp >> 6) & 0x3F);
		p[2] = 0x80 | (cp & 0x3F);
		*len += 3;
	}
	else
	{
		p[0] = 0xF0 | (cp >> 18);
		p[1] = 0x80 | ((cp >> 12) & 0x3F);
		p[2] = 0x80 | ((cp >> 6) & 0x3F);
		p[3] = 0x80 | (cp & 0x3F);
		*len += 4;
	}
}

/* A random element of an array. */
#define PICK(st, arr) ((arr)[pg_prng_uint64_range((st), 0, lengthof(arr) - 1)])

/*
 * Password number i into buf: a printable ASCII base (the empty string
 * included) with, by i, no extra, a mapped code point, a plain non-ASCII
 * one, a prohibited one, an invalid byte sequence, or Hebrew letters (RandAL
 * alone is allowed, mixed with Latin letters it is not).
 */
static void
generate(pg_prng_state *st, int i, char *buf)
{
	int			nchars = (int) pg_prng_uint64_range(st, 0, SELFTEST_MAX_CHARS);
	int			kind = i % 6;
	int			at = nchars > 0 ? (int) pg_prng_uint64_range(st, 0, nchars) : 0;
	int			len = 0;

	if (kind == 5 && pg_prng_bool(st))
	{
		/* Hebrew only: a right-to-left string SASLprep accepts */
		for (int k = 0; k < Max(nchars, 1); k++)
			put_cp(buf, &len, 0x05D0 + (uint32) pg_prng_uint64_range(st, 0, 26));
		buf[len] = '\0';
		return;
	}
	for (int k = 0; k <= nchars; k++)
	{
		if (k == at)
		{
			switch (kind)
			{
				case 1:
					if (pg_prng_uint64_range(st, 0, 3) == 0)
					{
						/* a decomposed A-ring that NFKC composes */
						put_cp(buf, &len, 'A');
						put_cp(buf, &len, 0x030A);
					}
					else
						put_cp(buf, &len, PICK(st, mapped_cps));
					break;
				case 2:
					put_cp(buf, &len, PICK(st, plain_cps));
					break;
				case 3:
					put_cp(buf, &len, PICK(st, prohibited_cps));
					break;
				case 4:
					{
						const char *seq = PICK(st, invalid_seqs);

						memcpy(buf + len, seq, strlen(seq));
						len += strlen(seq);
					}
					break;
				case 5:
					put_cp(buf, &len, 0x05D0);
					break;
				default:
					break;
			}
		}
		if (k < nchars)
			put_cp(buf, &len, (uint32) pg_prng_uint64_range(st, 0x20, 0x7E));
	}
	buf[len] = '\0';
}

/* Has s a byte outside ASCII? */
static bool
has_non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s >= 0x80)
			return true;
	return false;
}

/*
 * Build PostgreSQL's whole-path verifier of password and scram.c's with the
 * same salt and count; true when they are the same string.  *iterations
 * gets the count PostgreSQL used.
 */
static bool
full_path_same(const char *password, int *iterations)
{
	char	   *theirs = pg_be_scram_build_secret(password);
	int			iter = 0;
	pg_cryptohash_type hash_type;
	int			key_length;
	char	   *salt_b64 = NULL;
	uint8		stored_key[SCRAM_MAX_KEY_LEN];
	uint8		server_key[SCRAM_MAX_KEY_LEN];
	uint8		salt[64];
	int			saltlen;
	char	   *ours;
	bool		same;

	if (!parse_scram_secret(theirs, &iter, &hash_type, &key_length, &salt_b64,
							stored_key, server_key))
		elog(ERROR, "PostgreSQL built a SCRAM verifier its own parser refuses");
	saltlen = pg_b64_decode(salt_b64, strlen(salt_b64), salt, sizeof(salt));
	if (saltlen <= 0)
		elog(ERROR, "could not decode the salt of a SCRAM verifier");
	ours = sm_scram_build_secret_salted(password, salt, saltlen, iter);
	same = strcmp(ours, theirs) == 0;
	*iterations = iter;
	sm_secure_zero(theirs, strlen(theirs));
	pfree(theirs);
	sm_secure_zero(ours, strlen(ours));
	return same;
}

PG_FUNCTION_INFO_V1(secretsmgr_scram_selftest);

/*
 * secretsmgr_scram_selftest(count int, seed bigint, full_every int) ->
 * (passwords, ascii, saslprep_changed, non_ascii_unchanged, saslprep_refused,
 * full_path, full_path_at_setting, differing): see the file banner.
 * Iteration counts of the direct comparison run from 1 to 64, so that ten
 * thousand passwords take seconds; the whole-path ones use the server's.
 */
Datum
secretsmgr_scram_selftest(PG_FUNCTION_ARGS)
{
	int32		count = PG_GETARG_INT32(0);
	int64		seed = PG_GETARG_INT64(1);
	int32		full_every = PG_GETARG_INT32(2);
	pg_prng_state st;
	MemoryContext cxt;
	MemoryContext old;
	int32		n_ascii = 0;
	int32		n_changed = 0;
	int32		n_unchanged = 0;
	int32		n_refused = 0;
	int32		n_full = 0;
	int32		n_full_setting = 0;
	int32		n_differing = 0;
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (count < 0 || full_every < 0)
		elog(ERROR, "count and full_every must not be negative");

	pg_prng_seed(&st, (uint64) seed);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "secretsmgr scram selftest",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);

	for (int i = 0; i < count; i++)
	{
		char		password[SELFTEST_BUF];
		uint8		salt[SM_SCRAM_SALT_LEN];
		int			iterations = 1 + (int) pg_prng_uint64_range(&st, 0, 63);
		char	   *prep = NULL;
		pg_saslprep_rc rc;
		const char *errstr = NULL;
		char	   *theirs;
		char	   *ours;

		CHECK_FOR_INTERRUPTS();
		generate(&st, i, password);
		for (int k = 0; k < SM_SCRAM_SALT_LEN; k++)
			salt[k] = (uint8) pg_prng_uint64_range(&st, 0, 255);

		/* what SASLprep makes of it, as PostgreSQL's builder decides */
		rc = pg_saslprep(password, &prep);
		if (rc != SASLPREP_SUCCESS)
			n_refused++;
		else if (strcmp(prep, password) != 0)
			n_changed++;
		else if (has_non_ascii(password))
			n_unchanged++;
		else
			n_ascii++;

		theirs = sm_pg_scram_build_secret(salt, SM_SCRAM_SALT_LEN, iterations,
										  rc == SASLPREP_SUCCESS ? prep : password,
										  &errstr);
		if (theirs == NULL)
			elog(ERROR, "scram_build_secret failed: %s", errstr ? errstr : "?");
		ours = sm_scram_build_secret_salted(password, salt, SM_SCRAM_SALT_LEN,
											iterations);
		if (strcmp(ours, theirs) != 0)
			n_differing++;

		if (full_every > 0 && i % full_every == 0)
		{
			int			used = 0;

			if (!full_path_same(password, &used))
				n_differing++;
			n_full++;
			if (used == SM_SCRAM_ITERATIONS)
				n_full_setting++;
		}

		sm_secure_zero(password, sizeof(password));
		MemoryContextReset(cxt);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);

	values[0] = Int32GetDatum(count);
	values[1] = Int32GetDatum(n_ascii);
	values[2] = Int32GetDatum(n_changed);
	values[3] = Int32GetDatum(n_unchanged);
	values[4] = Int32GetDatum(n_refused);
	values[5] = Int32GetDatum(n_full);
	values[6] = Int32GetDatum(n_full_setting);
	values[7] = Int32GetDatum(n_differing);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

PG_FUNCTION_INFO_V1(secretsmgr_scram_bench);

/*
 * secretsmgr_scram_bench(n int, openssl bool) -> float8: microseconds per
 * verifier over n builds at the server's iteration count, by scram.c
 * (openssl) or by PostgreSQL's pg_be_scram_build_secret().  Test-only, like
 * secretsmgr_scram_selftest: make bench binds it for its PBKDF2 row.
 */
Datum
secretsmgr_scram_bench(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bool		openssl = PG_GETARG_BOOL(1);
	MemoryContext cxt;
	MemoryContext old;
	instr_time	start;
	instr_time	elapsed;

	if (n <= 0)
		elog(ERROR, "n must be positive");
	cxt = AllocSetContextCreate(CurrentMemoryContext, "secretsmgr scram bench",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	INSTR_TIME_SET_CURRENT(start);
	for (int i = 0; i < n; i++)
	{
		char		password[32];
		char	   *v;

		CHECK_FOR_INTERRUPTS();
		snprintf(password, sizeof(password), "Bench-Password-%08d", i);
		v = openssl ? sm_scram_build_secret(password) : pg_be_scram_build_secret(password);
		sm_secure_zero(v, strlen(v));
		MemoryContextReset(cxt);
	}
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	PG_RETURN_FLOAT8(INSTR_TIME_GET_MICROSEC(elapsed) / n);
}
