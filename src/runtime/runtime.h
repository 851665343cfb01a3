/* SPDX-License-Identifier: MIT */
/*
 * Internal interfaces of the runtime (liblpatch.so), the part of lpatch that
 * lives inside the target process and owns all patch state, as the kernel's
 * kernel/livepatch/ does.  Structure and names follow the kernel's.
 */
#ifndef LP_RUNTIME_H
#define LP_RUNTIME_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lpatch.h>

#include "arch/x86_64/lp_arch.h"
#include "common/list.h"

#define LP_ERR_MAX  512
#define LP_NAME_MAX 64

/* Per-thread patch state, read by the trampolines' slow stub. */
enum lp_task_state {
	LP_TASK_IDLE = 0,
	LP_TASK_UNPATCHED = 1,
	LP_TASK_PATCHED = 2,
};

/* The pending byte: who may change the thread's state right now. */
enum lp_task_pending {
	LP_PENDING_NONE = 0,  /* switched, or no transition */
	LP_PENDING = 1,	      /* must still switch to the transition's target */
	LP_PENDING_AGENT = 2, /* the agent is switching it: the thread waits */
	LP_PENDING_SELF = 3,  /* the thread is checking its own stack */
};

/*
 * A thread's part in the consistency model (kernel: task->patch_state and
 * TIF_PATCH_PENDING).  The first two bytes are read by the stubs.
 */
struct lp_task {
	_Atomic uint8_t state;	 /* enum lp_task_state */
	_Atomic uint8_t pending; /* enum lp_task_pending */
	bool attached;		 /* known to the registry (task.c) */
	/* Failed self-checks: each one sent the thread into a function its
	 * state forbade switching away from.  The agent's verdicts on older
	 * snapshots of the stack are void once this moves. */
	_Atomic uint32_t fails;
	uintptr_t stack_lo, stack_hi; /* the thread's stack, for its own check */
	uintptr_t fail_at;	      /* where its own last check found a suspect word */
};

/* Initial-exec TLS: a fixed %fs offset the stubs can read directly. */
extern __thread struct lp_task lp_current __attribute__((tls_model("initial-exec")));

/* %fs-relative offset of a field of lp_current, the same in every thread. */
int32_t lp_task_tpoff(const void *field);

/* One original function redirected by one or more patches (kernel: klp_ops). */
struct lp_ops {
	struct list_head node;	     /* in lp_ops_list */
	struct list_head func_stack; /* struct lp_func_rt, newest first */
	struct lp_prologue prologue;
	uintptr_t stubs; /* the trampoline's code */
	struct lp_stub_offsets off;
	uintptr_t orig; /* relocated displaced bytes + jump back */
	uint8_t insn_map[LP_MAX_INSNS];
	uintptr_t *slots; /* target, patched, unpatched, switch */
	bool installed;	  /* the entry jump is in place */
	bool hook;	  /* the runtime's own redirect (lp_ops_hook()) */
};

/* A function of a patch (kernel: klp_func). */
struct lp_func_rt {
	struct list_head stack_node; /* in ops->func_stack */
	const struct lp_func *desc;  /* NULL for a nop */
	struct lp_patch_rt *patch;
	char *name;
	unsigned long sympos;
	uintptr_t old_addr;
	size_t old_size;
	void *new_func;
	size_t new_size;       /* 0: unknown, the patch's whole text stands for it */
	uint32_t new_clobbers; /* call-clobbered registers new_func may change (regs.c) */
	struct lp_ops *ops;
	bool nop;
	bool patched;
	bool transition;
};

/* An object of a patch: the main program or a library (kernel: klp_object). */
struct lp_object_rt {
	struct lp_object *desc;
	struct lp_patch_rt *patch;
	char *name;	       /* NULL: the main program */
	struct lp_module *mod; /* the loaded object it is bound to; NULL while none */
	char *path;	       /* while bound */
	char *build_id;
	uintptr_t bias;
	struct lp_func_rt *funcs;
	size_t nfuncs;
	bool patched;
	bool pre_patch_done; /* its pre_patch succeeded: post_unpatch is owed */
	bool dynamic;	     /* made for nops only (replace.c); its desc is ours */
	char *error;	     /* why its loaded library is not patched, or NULL */
};

struct lp_patch_rt {
	struct list_head node; /* in lp_patches, enable order */
	struct lp_patch *desc;
	char name[LP_NAME_MAX];
	char *path;
	void *handle;	/* dlopen handle */
	int fd;		/* the file, open while loaded: see core.c */
	uintptr_t bias; /* load bias of the patch's shared object */
	uintptr_t text_lo, text_hi;
	struct lp_object_rt *objs;
	size_t nobjs;
	bool enabled;
	bool forced;
	char *coming_failure; /* a library that could not take it during its transition */
};

/* core.c: the patch list and its mutex (kernel: klp_mutex). */
extern pthread_mutex_t lp_mutex;
extern struct list_head lp_patches;
void lp_lock(void);
void lp_unlock(void);
bool lp_locked_by_me(void);
int lp_apply_patch(int fd, const char *path, char *name, bool *waiting, char *err, size_t errlen);
int lp_revert_patch(const char *name, bool *waiting, char *err, size_t errlen);
int lp_force(char *msg, size_t len);
bool lp_transition_info(char *name, size_t len, int *target);
void lp_reap_retired(void);
bool lp_have_retired(void);

/* How a transition ended, for whoever waits for it (the agent's clients). */
struct lp_transition_end {
	char name[LP_NAME_MAX];
	int target;  /* LP_TASK_PATCHED or LP_TASK_UNPATCHED */
	bool forced; /* lpatch force ended it */
	bool reversed;
	char failure[LP_ERR_MAX]; /* a library that came meanwhile could not take it */
};
/* Kernel: klp_transition_work_fn().  True when the transition ended: @end says how. */
bool lp_transition_work(bool signal_all, struct lp_transition_end *end);

/* object.c: resolving a patch's object in the loaded object it names. */
int lp_object_bind(struct lp_object_rt *obj, struct lp_module *mod, char *err, size_t errlen);
void lp_object_release(struct lp_object_rt *obj);

/* callbacks.c: the patch author's callbacks, with the kernel's rules. */
int lp_pre_patch_callback(struct lp_object_rt *obj, char *err, size_t errlen);
void lp_post_patch_callback(struct lp_object_rt *obj);
void lp_pre_unpatch_callback(struct lp_object_rt *obj);
void lp_post_unpatch_callback(struct lp_object_rt *obj);

/* loader.c: the objects the loader has loaded (kernel: the module list). */
struct link_map;
struct lp_module {
	struct list_head node; /* in lp_modules, load order */
	struct link_map *map;
	uintptr_t bias;
	char *path; /* as loaded; the executable's file for the main program */
	char *file; /* the base name of its real path, once needed */
	bool main;
	bool alive;	       /* patches apply to it (kernel: klp_alive) */
	bool coming;	       /* being loaded: none of its code has run yet */
	bool opened;	       /* dlopen() was asked for it: it has a search list */
	bool patch_file;       /* a patch's own shared object */
	bool going;	       /* the loader unmaps it next */
	struct link_map *root; /* whose symbol lookups watch it; NULL: none */
	char probe[128];       /* an exported symbol of its own ... */
	uintptr_t probe_addr;  /* ... at this address; 0: none found */
};
extern struct list_head lp_modules;
/* tls.c: this thread's dynamic TLS, allocated before it takes lp_mutex. */
void lp_tls_touch_all(void);

/* This thread is dlopen()ing a patch. */
extern __thread bool lp_loading_patch __attribute__((tls_model("initial-exec")));
int lp_loader_init(char *err, size_t errlen);
void lp_loader_watch_earlier(void);
struct lp_module *lp_module_find(const char *name);
bool lp_module_matches(struct lp_module *mod, const char *name);

/* coming.c: patches and the libraries that come and go (under lp_mutex). */
void lp_module_coming(struct lp_module *mod);
void lp_module_going(struct lp_module *mod, bool gone);
void lp_module_foreign(const char *path, long lmid);

/* patch.c: func stacks and redirects (kernel: patch.c). */
int lp_func_analyse(uintptr_t addr, size_t size, struct lp_prologue *p, char *why, size_t len);
/* How code is restored: while it may run, before its unmap, or after it. */
enum lp_unpatch {
	LP_UNPATCH_LIVE,
	LP_UNPATCH_GOING,
	LP_UNPATCH_GONE,
};
int lp_patch_object(struct lp_object_rt *obj, bool fresh, char *err, size_t errlen);
void lp_unpatch_object(struct lp_object_rt *obj, enum lp_unpatch how);
void lp_unpatch_func(struct lp_func_rt *func);
uint8_t *lp_func_original_code(uintptr_t addr, size_t size);
int lp_ops_hook(uintptr_t addr, size_t size, void *handler, char *err, size_t errlen);
/* Which of an lp_ops's slots its stubs jump through, by the stubs' purpose. */
struct lp_ops_slots {
	unsigned int target, patched, unpatched, self_switch;
};
int lp_ops_write_code(struct lp_ops *ops, const struct lp_ops_slots *slots, uintptr_t target,
		      uintptr_t self_switch, char *err, size_t errlen);

/* regs.c: a replacement may change no register its original leaves alone. */
struct lp_elf;
uint32_t lp_new_func_clobbers(const struct lp_func_rt *func);
int lp_check_clobbers(const struct lp_func_rt *func, struct lp_elf *elf, char *why, size_t len);

/* replace.c: atomic replace (kernel: nops, klp_unpatch_replaced_patches()). */
int lp_add_nops(struct lp_patch_rt *patch);
void lp_unpatch_replaced(const struct lp_patch_rt *patch);
void lp_discard_nops(struct lp_patch_rt *patch);

/* state.c: system states (kernel: state.c). */
int lp_states_compatible(const struct lp_patch_rt *patch, char *err, size_t errlen);
void lp_ops_update(struct lp_ops *ops);
struct lp_func_rt *lp_func_below(const struct lp_func_rt *func);
uintptr_t lp_func_impl(const struct lp_ops *ops, const struct lp_func_rt *func);

/* task.c: the threads of the process (kernel: the task list). */
struct lp_thread {
	struct list_head node;	/* in lp_thread_list */
	pid_t tid;		/* 0 until the thread runs */
	struct lp_task *task;	/* its lp_current; NULL until it runs */
	uint8_t state, pending; /* a thread not running yet: what it starts with */
	const char *blocking;	/* last check: the function that kept it, or NULL */
	bool unanswered;	/* last check: it did not answer the visit signal */
	bool adopted;		/* registered after it started (injected runtime) */
	char reason[96];	/* last check: why it has not switched, or "" */
};
extern pthread_mutex_t lp_threads_lock;
extern struct list_head lp_thread_list;
int lp_tasks_init(void);
void lp_task_attach_self(void);
void lp_tasks_atfork_prepare(void);
void lp_tasks_atfork_parent(void);
void lp_tasks_atfork_child(void);
/* Under lp_threads_lock: */
int lp_thread_state(const struct lp_thread *t);
int lp_thread_pending(const struct lp_thread *t);
void lp_thread_set(struct lp_thread *t, int state, int pending);
void lp_thread_mark_pending(struct lp_thread *t, int target);
struct lp_thread *lp_thread_find(pid_t tid, const struct lp_task *task);
struct lp_thread *lp_thread_find_tid(pid_t tid);
void lp_thread_forget(struct lp_thread *t);
int lp_tasks_hook_create(char *err, size_t errlen);
/* Under lp_mutex; takes lp_threads_lock.  1 registered, 0 known already, -1 no memory. */
int lp_task_adopt(pid_t tid, uintptr_t tp, uintptr_t stack_lo, uintptr_t stack_hi);
void lp_tasks_prune(void);

/* hook.c: a function redirected to one of ours for good. */
int lp_hook(uintptr_t func, size_t size, void *to, void *_Atomic *orig, char *err, size_t errlen);

/* injected.c: a runtime loaded by dlopen() into a running process. */
extern bool lp_injected;
void lp_injected_init(bool preloaded);
void lp_injected_setup(void);
char *lp_injected_info(void);
int lp_injected_adopt(char *records, char *msg, size_t len);

/* forbidden.c: the code a switching thread must not be running. */
struct lp_range {
	uintptr_t lo, hi;
	const char *name; /* the replaced function's name */
};
struct lp_forbidden {
	struct lp_forbidden *older; /* replaced during the transition, freed after it */
	size_t n;
	struct lp_range r[]; /* sorted, disjoint */
};
struct lp_forbidden *lp_forbidden_build(const struct lp_patch_rt *patch, int target);
const struct lp_range *lp_forbidden_find(const struct lp_forbidden *f, uintptr_t addr);

/* transition.c: the consistency model (kernel: transition.c). */
extern struct lp_patch_rt *lp_transition_patch;
extern int lp_target_state;
extern _Atomic int lp_switch_target;
extern struct lp_forbidden *_Atomic lp_switch_forbidden;
void lp_transition_setup(void);
void lp_init_transition(struct lp_patch_rt *patch, int state);
void lp_start_transition(void);
bool lp_try_complete_transition(bool signal_all);
void lp_reverse_transition(void);
int lp_force_transition(void);
void lp_cancel_transition(void);
void lp_transition_objects_changed(void);
void lp_transition_counts(size_t *total, size_t *pending);

/* check.c: the agent's checks of other threads' stacks. */
size_t lp_check_threads(const struct lp_forbidden *f, int target, bool signal_all);
size_t lp_check_signalled(void);
void lp_check_release(void);
void lp_check_quiesce(void);

/* selfswitch.c: a pending thread switching itself at a function's entry. */
void lp_task_self_switch(uintptr_t sp);
const uintptr_t *lp_stack_words_find(const struct lp_forbidden *f, const uintptr_t *from,
				     const uintptr_t *end);

/* tramp.c: trampoline memory within reach of a function. */
int lp_tramp_alloc(uintptr_t near, uintptr_t *code, uintptr_t **slots, char *err, size_t errlen);
void lp_tramp_free(uintptr_t code, uintptr_t *slots);
bool lp_tramp_contains(uintptr_t addr);
#define LP_TRAMP_CODE_SIZE 128
#define LP_TRAMP_SLOTS	   4

/* text.c: writing code while other threads run it. */
int lp_text_init(void);
int lp_text_write(uintptr_t addr, const void *bytes, size_t len);
int lp_text_sync(void);
int lp_text_install_jump(struct lp_ops *ops, char *err, size_t errlen);
int lp_text_set_jump_idle(struct lp_ops *ops, bool install, char *err, size_t errlen);
void lp_text_remove_jump(struct lp_ops *ops);

/* stopper.c: threads that block SIGTRAP, stopped while code is written. */
struct lp_stopper;
int lp_stop_trap_blockers(const struct lp_ops *ops, struct lp_stopper **out, char *err,
			  size_t errlen);
void lp_stopper_release(struct lp_stopper *s);

/* threads.c: running code against every other thread's interrupted context. */
struct lp_thread_ctx {
	pid_t tid;
	long nr; /* the system call it is blocked in, -1 outside one (from /proc) */
	uintptr_t pc, sp;
	void *ucontext;		/* ucontext_t of a thread held in the visit signal; NULL
				   when pc and sp come from /proc (blocked in the kernel) */
	unsigned long switches; /* times it had a CPU, when pc and sp were read */
};
typedef int (*lp_visit_fn)(struct lp_thread_ctx *ctx, void *arg);
int lp_threads_init(void);
int lp_visit_signal(void);
pid_t lp_self_tid(void);
int lp_threads_visit(lp_visit_fn fn, uintptr_t lo, uintptr_t hi, void *arg, bool runs, char *err,
		     size_t errlen);
bool lp_thread_read_blocked(struct lp_thread_ctx *ctx);
bool lp_thread_gone(pid_t pid, pid_t tid);
bool lp_thread_blocked_now(pid_t tid);
uint64_t lp_thread_sigset(pid_t tid, const char *field);
bool lp_syscall_interruptible(long nr);
bool lp_thread_still_blocked(const struct lp_thread_ctx *ctx);
struct lp_stops {
	uint64_t count, longest_ns, longest_cpu_ns;
	int most_at_once;
};
void lp_threads_stops(struct lp_stops *s);
int lp_threads_scan_stacks(uintptr_t lo, uintptr_t hi, pid_t *holder, char *err, size_t errlen);

/* A copy of a thread's registers and stack, taken by the thread itself in the visit signal. */
struct lp_snapshot {
	pid_t tid;
	bool arrived;
	struct lp_task *task; /* the thread's lp_current */
	uint32_t fails;	      /* its lp_current.fails when the copy was taken */
	uint64_t gregs[23];   /* ucontext gregs (REG_R8 ... REG_CR2) */
	uintptr_t stack_lo;   /* the copy holds [stack_lo, stack_lo + stack_len) */
	size_t stack_len;
	bool stack_whole; /* ... up to the top of the thread's stack */
	uint8_t *buf;
	size_t bufsize;
};
int lp_threads_snapshot(struct lp_snapshot *snaps, size_t n, int timeout_ms, char *err,
			size_t errlen);

/* log.c: the event log (kernel: the "livepatch:" lines in dmesg). */
void lp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *lp_log_dump(size_t *len);
void lp_log_atfork_child(void);

/* shadow.c: shadow variables (lpatch.h); the table is whole in a forked child. */
void lp_shadow_atfork_prepare(void);
void lp_shadow_atfork_parent(void);
void lp_shadow_atfork_child(void);

/* status.c */
char *lp_status_json(bool threads);

/* agent.c */
int lp_agent_start(void);
void lp_agent_atfork_child(void);
void lp_agent_kick(void);

#endif /* LP_RUNTIME_H */
