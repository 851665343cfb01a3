/* SPDX-License-Identifier: MIT */
/* Internal interfaces of the injector (inject.h is the public one). */
#ifndef LP_INJECT_INTERNAL_H
#define LP_INJECT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "common/err.h"
#include "inject/inject.h"

uint64_t lp_now_ns(void);
int lp_inject_boost(void);
void lp_inject_unboost(int old);

/* proc.c: /proc, read without disturbing anything. */
struct lp_map {
	uintptr_t lo, hi;
	unsigned long offset;
	bool exec;
	char *path; /* NULL for anything but a file */
};
struct lp_maps {
	struct lp_map *v;
	size_t n;
};
int lp_maps_read(pid_t pid, struct lp_maps *m, char *err, size_t errlen);
void lp_maps_free(struct lp_maps *m);
const struct lp_map *lp_maps_find(const struct lp_maps *m, uintptr_t addr);
int lp_proc_tasks(pid_t pid, pid_t **tids, size_t *n);
bool lp_tid_in(pid_t tid, const pid_t *sorted, size_t n);

struct lp_proc_sys {
	bool running;	  /* on a CPU or runnable: nothing more is known */
	long nr;	  /* the system call it is blocked in; -1 outside one */
	uint64_t args[6]; /* its arguments */
	uintptr_t sp, pc;
};
bool lp_proc_syscall(pid_t pid, pid_t tid, struct lp_proc_sys *s);
char lp_proc_state(pid_t pid, pid_t tid);
bool lp_proc_status(pid_t pid, pid_t tid, const char *key, char *val, size_t len);
uint64_t lp_proc_sigset(pid_t pid, pid_t tid, const char *key);
bool lp_proc_sigsets(pid_t pid, pid_t tid, const char *const *keys, size_t n, uint64_t *sets);

/* tracee.c: one thread stopped for a moment. */
enum lp_stop_kind {
	LP_STOP_INTERRUPT, /* our PTRACE_INTERRUPT */
	LP_STOP_GROUP,	   /* a group stop (SIGSTOP and the like) */
	LP_STOP_SIGNAL,	   /* a signal about to be delivered: t->sig */
	LP_STOP_EXITED,
};
struct lp_tracee {
	pid_t pid, tid;
	int mem; /* /proc/PID/mem */
	struct lp_inject_stats *st;
	bool seized, stopped;
	enum lp_stop_kind stop;
	int sig;		      /* to deliver when it goes on */
	uint64_t since;		      /* the stop was seen */
	struct user_regs_struct regs; /* at the last stop */
};
void lp_tracee_init(struct lp_tracee *t, pid_t pid, pid_t tid, int mem, struct lp_inject_stats *st);
int lp_tracee_interrupt(struct lp_tracee *t);
int lp_tracee_stop(struct lp_tracee *t, uint64_t deadline);
int lp_tracee_wait(struct lp_tracee *t, uint64_t deadline);
int lp_tracee_resume(struct lp_tracee *t, const struct user_regs_struct *regs);
int lp_tracee_release(struct lp_tracee *t, const struct user_regs_struct *regs);
int lp_tracee_let_go(struct lp_tracee *t);
bool lp_tracee_restart_eintr(const struct lp_tracee *t, struct user_regs_struct *regs);
int lp_mem_read(int mem, uintptr_t addr, void *buf, size_t len);
int lp_mem_write(int mem, uintptr_t addr, const void *buf, size_t len);

/* target.c: what the injection needs to know about the process. */
struct lp_elf;
struct lp_target {
	pid_t pid;
	pid_t proc; /* the task to read /proc through: see lp_proc_live_thread() */
	int mem;
	struct lp_maps maps;
	const char *libc_path; /* as mapped */
	const char *ld_path;   /* the dynamic loader, as mapped */
	struct lp_elf *libc;   /* its symbols */
	uintptr_t dlopen, dlerror, errno_location;
	uintptr_t *safe; /* entries of the functions a thread may be borrowed in, sorted */
	size_t nsafe;
};
int lp_target_open(struct lp_target *tg, pid_t pid, const char *runtime, char *err, size_t errlen);
void lp_target_close(struct lp_target *tg);
enum lp_obj_kind { LP_OBJ_OTHER, LP_OBJ_LIBC, LP_OBJ_LOADER, LP_OBJ_NONE };
enum lp_obj_kind lp_target_kind(const struct lp_target *tg, uintptr_t pc);
/* The entry and name of the libc function holding @pc; false when unknown. */
bool lp_target_libc_func(const struct lp_target *tg, uintptr_t pc, uintptr_t *entry,
			 const char **name);
bool lp_target_is_safe(const struct lp_target *tg, uintptr_t entry);

/* stack.c: is a stopped thread at a safe point? */
struct lp_stack;
struct lp_stack *lp_stack_new(const struct lp_target *tg, char *err, size_t errlen);
void lp_stack_free(struct lp_stack *s);
/* True when it is; otherwise @why says why not.  @where gets what it is doing. */
bool lp_stack_safe(struct lp_stack *s, const struct user_regs_struct *regs, char *where,
		   size_t wherelen, char *why, size_t whylen);

/* borrow.c: one thread made to call dlopen(). */
int lp_borrow_load(const struct lp_target *tg, struct lp_tracee *t, const char *runtime, char *err,
		   size_t errlen);

#endif /* LP_INJECT_INTERNAL_H */
