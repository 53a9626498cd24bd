/*
 * secretbuf.c
 *		Secret-buffer hygiene: the two mechanisms that keep secret bytes from
 *		outliving their use.
 *
 * - sm_secret_alloc() buffers are zeroed by a memory-context reset callback,
 *   so an error that unwinds a call still scrubs them;
 * - jansson allocates through a wrapper that zeroes every block on free, so
 *   parsed values and serialised request bodies are scrubbed too
 *   (sm_secretbuf_init installs it at module load).
 *
 * Ground floor: calls nothing else of secretsmgr.
 */
#include "postgres.h"

#include "smjson.h"

#include <string.h>

#include "utils/memutils.h"

#include "secretbuf.h"

/* A secret buffer and the reset callback that scrubs it. */
typedef struct SmSecretBuf
{
	MemoryContextCallback cb;
	char	   *ptr;
	size_t		len;
} SmSecretBuf;

/* Zero len bytes at p in a way the compiler may not elide. */
void
sm_secure_zero(void *p, size_t len)
{
	if (p != NULL && len > 0)
		explicit_bzero(p, len);
}

/* Reset callback: scrub the buffer before its context releases it. */
static void
secret_buf_scrub(void *arg)
{
	SmSecretBuf *buf = (SmSecretBuf *) arg;

	sm_secure_zero(buf->ptr, buf->len);
}

/* A zeroed buffer of len bytes that is scrubbed when its context goes. */
char *
sm_secret_alloc(size_t len)
{
	SmSecretBuf *buf;

	buf = palloc(sizeof(SmSecretBuf));
	buf->ptr = palloc0(len);
	buf->len = len;
	buf->cb.func = secret_buf_scrub;
	buf->cb.arg = buf;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &buf->cb);
	return buf->ptr;
}

/* Copy of len bytes of s, NUL-terminated, in a scrubbed buffer. */
char *
sm_secret_strndup(const char *s, size_t len)
{
	char	   *copy = sm_secret_alloc(len + 1);

	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

/* Copy of the string s in a scrubbed buffer. */
char *
sm_secret_strdup(const char *s)
{
	return sm_secret_strndup(s, strlen(s));
}

/*
 * jansson allocator: a size header in front of every block so free can zero
 * the whole block.  jansson calls these from inside its own frames, so they
 * must not ereport; malloc failure is reported to jansson as NULL.
 */
typedef union SmJsonHeader
{
	size_t		size;
	max_align_t align;
} SmJsonHeader;

static void *
json_zeroing_malloc(size_t size)
{
	SmJsonHeader *h = malloc(sizeof(SmJsonHeader) + size);

	if (h == NULL)
		return NULL;
	h->size = size;
	return h + 1;
}

static void
json_zeroing_free(void *p)
{
	SmJsonHeader *h;

	if (p == NULL)
		return;
	h = ((SmJsonHeader *) p) - 1;
	explicit_bzero(p, h->size);
	free(h);
}

/* Free a string that json_dumps returned (zeroed like every jansson block). */
void
sm_json_free_string(char *s)
{
	json_zeroing_free(s);
}

/* Route every jansson allocation through the zeroing allocator. */
void
sm_secretbuf_init(void)
{
	json_set_alloc_funcs(json_zeroing_malloc, json_zeroing_free);
}

/* Zero and pfree a string that held a secret, leaving NULL behind. */
void
sm_secret_free_string(char **s)
{
	if (*s != NULL)
	{
		sm_secure_zero(*s, strlen(*s));
		pfree(*s);
	}
	*s = NULL;
}
