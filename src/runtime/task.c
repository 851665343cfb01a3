// SPDX-License-Identifier: MIT
/*
 * The threads of the process (kernel: the task list).  Each thread the
 * runtime knows has an entry here pointing at its lp_current.  Threads come
 * from pthread_create(), which the runtime wraps: the new thread copies the
 * creating thread's state and pending flag (kernel: klp_copy_process()),
 * and does so under lp_threads_lock, the lock every change of those flags by
 * the agent takes too.  So a transition started, reversed or forced while a
 * thread is being created reaches the new thread either through its entry
 * (when the entry was there first) or through the creator's copy (when the
 * creator's flags were changed first): never neither (seed 000).
 *
 * Threads only hold lp_threads_lock for a few loads and stores, and never
 * while they allocate, so the agent may take it at any time.
 *
 * A runtime injected into a running process (src/inject) is not
 * interposed on the program's pthread_create(): libc's own is redirected
 * to the wrapper instead (lp_tasks_hook_create()), and the threads that
 * were already running are registered after the fact (lp_task_adopt()).
 * Those exit without telling us, so their entries are dropped once they
 * are gone (lp_tasks_prune()), or as soon as a new thread reuses their
 * thread-local storage.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

pthread_mutex_t lp_threads_lock = PTHREAD_MUTEX_INITIALIZER;
struct list_head lp_thread_list = LIST_HEAD_INIT(lp_thread_list);

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
/*
 * libc's: the next definition for a preloaded runtime; for an injected one,
 * the relocated prologue of the redirected entry, set before the redirect
 * is (RTLD_NEXT would find the entry itself, or a sanitizer's interceptor
 * that leads back to it).
 */
static pthread_create_fn _Atomic real_pthread_create;
/* Entries registered by lp_task_adopt() still in the list. */
static size_t adopted;
/*
 * Set while this thread is inside the wrapper: when both the interposed
 * symbol and the redirected libc entry lead to it, the inner call goes
 * straight to libc.
 */
static __thread bool in_create __attribute__((tls_model("initial-exec")));

struct start {
	void *(*fn)(void *);
	void *arg;
	struct lp_thread *thread;
};

static pid_t gettid_raw(void)
{
	return (pid_t)syscall(SYS_gettid);
}

int lp_thread_state(const struct lp_thread *t)
{
	return t->task ? atomic_load(&t->task->state) : t->state;
}

int lp_thread_pending(const struct lp_thread *t)
{
	return t->task ? atomic_load(&t->task->pending) : t->pending;
}

/*
 * Set a thread's flags.  A thread checking its own stack owns them until it
 * is done: wait for that, it takes a few microseconds.
 */
void lp_thread_set(struct lp_thread *t, int state, int pending)
{
	uint8_t p;

	if (!t->task) {
		t->state = (uint8_t)state;
		t->pending = (uint8_t)pending;
		return;
	}
	for (;;) {
		p = atomic_load(&t->task->pending);
		if (p != LP_PENDING_SELF &&
		    atomic_compare_exchange_weak(&t->task->pending, &p, LP_PENDING_AGENT))
			break;
		sched_yield();
	}
	atomic_store(&t->task->state, (uint8_t)state);
	atomic_store(&t->task->pending, (uint8_t)pending);
}

/* Kernel: klp_start_transition() marks every task not yet in the target state. */
void lp_thread_mark_pending(struct lp_thread *t, int target)
{
	int state = lp_thread_state(t);

	lp_thread_set(t, state, state == target ? LP_PENDING_NONE : LP_PENDING);
}

struct lp_thread *lp_thread_find(pid_t tid, const struct lp_task *task)
{
	struct lp_thread *t;

	list_for_each_entry (t, &lp_thread_list, node)
		if (t->tid == tid && t->task == task)
			return t;
	return NULL;
}

struct lp_thread *lp_thread_find_tid(pid_t tid)
{
	struct lp_thread *t;

	list_for_each_entry (t, &lp_thread_list, node)
		if (t->tid == tid && t->task)
			return t;
	return NULL;
}

/*
 * Drop the entry of a thread that exited without going through
 * thread_start()'s cleanup: the main thread after pthread_exit().
 */
void lp_thread_forget(struct lp_thread *t)
{
	list_del(&t->node);
	adopted -= t->adopted;
	free(t);
}

/* The calling thread's stack, for its own checks. */
static void note_stack(struct lp_task *task)
{
	pthread_attr_t attr;
	size_t size;
	void *lo;

	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return;
	if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
		task->stack_lo = (uintptr_t)lo;
		task->stack_hi = (uintptr_t)lo + size;
	}
	pthread_attr_destroy(&attr);
}

/*
 * Under lp_threads_lock: an adopted entry for @task belongs to a thread
 * that is gone, since its storage is ours now.  It is unlinked and
 * returned, to be freed once the lock is dropped.
 */
static struct lp_thread *take_stale(const struct lp_thread *keep, const struct lp_task *task)
{
	struct lp_thread *t;

	if (!adopted)
		return NULL;
	list_for_each_entry (t, &lp_thread_list, node) {
		if (t != keep && t->task == task) {
			list_del(&t->node);
			adopted--;
			return t;
		}
	}
	return NULL;
}

/* The running thread takes over its entry and the flags it inherited. */
static void attach(struct lp_thread *t)
{
	struct lp_task *task = &lp_current;
	struct lp_thread *stale;

	note_stack(task);
	pthread_mutex_lock(&lp_threads_lock);
	stale = take_stale(t, task);
	atomic_store(&task->state, t->state);
	atomic_store(&task->pending, t->pending);
	task->attached = true;
	t->task = task;
	t->tid = gettid_raw();
	pthread_mutex_unlock(&lp_threads_lock);
	free(stale);
}

static void detach(void *arg)
{
	struct lp_thread *t = arg;

	pthread_mutex_lock(&lp_threads_lock);
	list_del(&t->node);
	lp_current.attached = false;
	pthread_mutex_unlock(&lp_threads_lock);
	free(t);
}

/* Register the calling thread if it is not yet, with the flags of no transition. */
void lp_task_attach_self(void)
{
	struct lp_thread *t;

	if (lp_current.attached)
		return;
	t = calloc(1, sizeof(*t));
	if (!t)
		return;
	pthread_mutex_lock(&lp_threads_lock);
	list_add_tail(&t->node, &lp_thread_list);
	pthread_mutex_unlock(&lp_threads_lock);
	attach(t);
}

static void *thread_start(void *arg)
{
	struct start s = *(struct start *)arg;
	void *ret;

	free(arg);
	attach(s.thread);
	pthread_cleanup_push(detach, s.thread);
	ret = s.fn(s.arg);
	pthread_cleanup_pop(1);
	return ret;
}

/* The entry of a thread about to be created: the creator's flags, copied now. */
static struct lp_thread *prepare_child(void)
{
	struct lp_thread *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_mutex_lock(&lp_threads_lock);
	t->state = atomic_load(&lp_current.state);
	t->pending = atomic_load(&lp_current.pending) ? LP_PENDING : LP_PENDING_NONE;
	list_add_tail(&t->node, &lp_thread_list);
	pthread_mutex_unlock(&lp_threads_lock);
	return t;
}

static void drop_child(struct lp_thread *t)
{
	pthread_mutex_lock(&lp_threads_lock);
	list_del(&t->node);
	pthread_mutex_unlock(&lp_threads_lock);
	free(t);
}

/* Every thread starts in thread_start(), with its entry prepared by its creator. */
static int create_thread(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *),
			 void *arg)
{
	pthread_create_fn real = atomic_load(&real_pthread_create);
	struct start *s;
	int ret;

	if (!real && !lp_injected)
		atomic_store(&real_pthread_create,
			     real = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create"));
	if (!real)
		return EAGAIN;
	if (in_create)
		return real(thread, attr, fn, arg);
	s = malloc(sizeof(*s));
	if (!s)
		return EAGAIN;
	*s = (struct start){.fn = fn, .arg = arg, .thread = prepare_child()};
	if (!s->thread) {
		free(s);
		return EAGAIN;
	}
	in_create = true;
	ret = real(thread, attr, thread_start, s);
	in_create = false;
	if (ret != 0) {
		drop_child(s->thread);
		free(s);
	}
	return ret;
}

/* The runtime's pthread_create(), which a preloaded runtime interposes on the program's. */
__attribute__((visibility("default"))) int
pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	return create_thread(thread, attr, fn, arg);
}

/*
 * An injected runtime: the program calls libc's pthread_create() directly.
 * Its entry jumps to the wrapper from now on, and the wrapper calls the
 * original through the relocated prologue.  It is looked up before
 * lp_mutex is taken: the loader's lock comes first.
 */
int lp_tasks_hook_create(char *err, size_t errlen)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD), *entry;
	const ElfW(Sym) *sym = NULL;
	Dl_info info;
	int ret;

	entry = libc ? dlsym(libc, "pthread_create") : NULL;
	if (libc)
		dlclose(libc);
	if (!entry || !dladdr1(entry, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym) {
		snprintf(err, errlen, "cannot find libc's pthread_create()");
		return -1;
	}
	/* lp_mutex keeps fork() out until the redirect is whole. */
	lp_lock();
	ret = lp_hook((uintptr_t)entry, sym->st_size, (void *)create_thread,
		      (void *_Atomic *)&real_pthread_create, err, errlen);
	lp_unlock();
	return ret;
}

/*
 * Register a thread that was running before the runtime came: its
 * lp_current lies at the same offset from its thread pointer @tp as ours.
 * It starts with the flags a thread created now would get.  Under lp_mutex.
 */
int lp_task_adopt(pid_t tid, uintptr_t tp, uintptr_t stack_lo, uintptr_t stack_hi)
{
	struct lp_task *task =
	    (struct lp_task *)(tp + (uintptr_t)(intptr_t)lp_task_tpoff(&lp_current));
	bool transition = lp_target_state != LP_TASK_IDLE;
	struct lp_thread *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	pthread_mutex_lock(&lp_threads_lock);
	if (task->attached || lp_thread_find_tid(tid)) {
		pthread_mutex_unlock(&lp_threads_lock);
		free(t);
		return 0;
	}
	task->stack_lo = stack_lo;
	task->stack_hi = stack_hi;
	task->attached = true;
	t->tid = tid;
	t->task = task;
	t->adopted = true;
	adopted++;
	list_add_tail(&t->node, &lp_thread_list);
	if (transition)
		lp_thread_set(
		    t, lp_target_state == LP_TASK_PATCHED ? LP_TASK_UNPATCHED : LP_TASK_PATCHED,
		    LP_PENDING);
	pthread_mutex_unlock(&lp_threads_lock);
	return 1;
}

/* Adopted threads leave no word when they exit: drop the entries of those gone. */
void lp_tasks_prune(void)
{
	struct lp_thread *t, *tmp;

	pthread_mutex_lock(&lp_threads_lock);
	if (adopted) {
		list_for_each_entry_safe (t, tmp, &lp_thread_list, node)
			if (t->adopted && lp_thread_gone(0, t->tid))
				lp_thread_forget(t);
	}
	pthread_mutex_unlock(&lp_threads_lock);
}

int lp_tasks_init(void)
{
	if (!lp_injected)
		atomic_store(&real_pthread_create,
			     (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create"));
	lp_task_attach_self();
	return lp_current.attached ? 0 : -1;
}

/* lp_mutex is taken before, so no transition changes flags meanwhile. */
void lp_tasks_atfork_prepare(void)
{
	pthread_mutex_lock(&lp_threads_lock);
}

void lp_tasks_atfork_parent(void)
{
	pthread_mutex_unlock(&lp_threads_lock);
}

/*
 * The child has one thread: the one that forked, whose flags it copied
 * with its memory.  Every other entry is a thread of the parent.
 */
void lp_tasks_atfork_child(void)
{
	struct lp_thread *t, *tmp;

	list_for_each_entry_safe (t, tmp, &lp_thread_list, node) {
		if (t->task == &lp_current) {
			adopted = t->adopted;
			t->tid = gettid_raw();
			t->blocking = NULL;
			t->reason[0] = '\0';
			continue;
		}
		list_del(&t->node);
		free(t);
	}
	pthread_mutex_unlock(&lp_threads_lock);
}
