/*
 * asan_first.c
 *		Preloaded after the ASan runtime: start ASan before any library's
 *		constructor runs.
 *
 * A preloaded ASan runtime is initialised lazily, by the first malloc it
 * intercepts.  In PostgreSQL's executables that first malloc comes from
 * libp11-kit's constructor (through libldap and GnuTLS), inside glibc's
 * newlocale(), which holds the setlocale lock; ASan's initialisation then
 * calls dlerror(), whose gettext releases that lock a second time, and the
 * process hangs at exit in freelocale().  This object is marked "initfirst"
 * (-z initfirst), so its constructor runs before every other one, and its
 * malloc starts ASan while no glibc lock is held.
 */
#include <stdlib.h>

/* volatile: the compiler may not drop the malloc/free pair */
void	   *volatile sm_asan_first_block;

__attribute__((constructor))
static void
sm_asan_first(void)
{
	sm_asan_first_block = malloc(1);
	free(sm_asan_first_block);
}
