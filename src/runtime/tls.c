// SPDX-License-Identifier: MIT
/*
 * A thread's first use of a module's dynamic TLS allocates its block, and
 * glibc's __tls_get_addr() takes the loader's TLS lock to do it: the lock
 * dlopen() holds while it calls the loader hook, which waits for lp_mutex.
 * A thread holding lp_mutex must therefore never be the first to touch a
 * module's TLS, so the agent touches every block it may use before it
 * takes lp_mutex: when it starts, and after it loads a patch (whose
 * callbacks run under lp_mutex, and which may bring libraries of its
 * own).  With `lpatch run` the runtime's libraries sit in static TLS; an
 * injected runtime brought libdw, libelf and the rest in by dlopen(), and
 * their TLS is dynamic.  The runtime's own TLS is initial-exec and never
 * goes through __tls_get_addr().
 */
#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/* The x86-64 ABI's argument of __tls_get_addr(). */
struct tls_index {
	unsigned long module;
	/* cppcheck-suppress unusedStructMember ; read by __tls_get_addr() */
	unsigned long offset;
};

extern void *__tls_get_addr(struct tls_index *ti);

/* Allocate this thread's TLS block of the object @handle, which it keeps loaded. */
static void touch(void *handle)
{
	struct tls_index ti = {0, 0};
	void *data = NULL;

	if (dlinfo(handle, RTLD_DI_TLS_DATA, &data) == 0 && data)
		return;
	if (dlinfo(handle, RTLD_DI_TLS_MODID, &ti.module) == 0 && ti.module)
		__tls_get_addr(&ti);
}

struct untouched {
	char **names;
	size_t n, cap;
};

/* Under the loader's write lock: only note the names, touch nothing. */
static int untouched_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct untouched *u = arg;
	char **grown;

	if (size < offsetof(struct dl_phdr_info, dlpi_tls_data) + sizeof(info->dlpi_tls_data) ||
	    !info->dlpi_tls_modid || info->dlpi_tls_data || !info->dlpi_name[0])
		return 0;
	if (u->n == u->cap) {
		grown = realloc(u->names, (u->cap * 2 + 8) * sizeof(*grown));
		if (!grown)
			return 1;
		u->names = grown;
		u->cap = u->cap * 2 + 8;
	}
	u->names[u->n] = strdup(info->dlpi_name);
	if (u->names[u->n])
		u->n++;
	return 0;
}

/*
 * Every loaded object with TLS this thread has not touched yet.  Each is
 * held by a dlopen() of its own while it is touched: the program may be
 * unloading it, and a module id whose object went is not to be used.
 */
void lp_tls_touch_all(void)
{
	struct untouched u = {NULL, 0, 0};

	dl_iterate_phdr(untouched_cb, &u);
	for (size_t i = 0; i < u.n; i++) {
		void *handle = dlopen(u.names[i], RTLD_LAZY | RTLD_NOLOAD);
		if (handle) {
			touch(handle);
			dlclose(handle);
		}
		free(u.names[i]);
	}
	free(u.names);
}
