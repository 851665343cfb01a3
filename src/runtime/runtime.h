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

struct lp_task {
	uint8_t state;	 /* enum lp_task_state */
	uint8_t pending; /* must still switch to the transition's target */
};

/* Initial-exec TLS: a fixed %fs offset the stubs can read directly. */
extern __thread struct lp_task lp_current __attribute__((tls_model("initial-exec")));

/* %fs-relative offset of lp_current.state, the same in every thread. */
int32_t lp_task_state_tpoff(void);

/* One original function redirected by one or more patches (kernel: klp_ops). */
struct lp_ops {
	struct list_head node;	     /* in lp_ops_list */
	struct list_head func_stack; /* struct lp_func_rt, newest first */
	struct lp_prologue prologue;
	uintptr_t stubs; /* the trampoline's code */
	struct lp_stub_offsets off;
	uintptr_t orig; /* relocated displaced bytes + jump back */
	uint8_t insn_map[LP_MAX_INSNS];
	uintptr_t *slots; /* target, patched, unpatched */
	bool installed;	  /* the entry jump is in place */
};

/* A function of a patch (kernel: klp_func). */
struct lp_func_rt {
	struct list_head stack_node; /* in ops->func_stack */
	const struct lp_func *desc;  /* NULL for a nop */
	char *name;
	unsigned long sympos;
	uintptr_t old_addr;
	size_t old_size;
	void *new_func;
	struct lp_ops *ops;
	bool nop;
	bool patched;
	bool transition;
};

/* An object of a patch: the main program or a library (kernel: klp_object). */
struct lp_object_rt {
	struct lp_object *desc;
	struct lp_patch_rt *patch;
	char *name; /* NULL: the main program */
	char *path; /* NULL while not loaded */
	char *build_id;
	uintptr_t bias;
	struct lp_func_rt *funcs;
	size_t nfuncs;
	bool loaded;
	bool patched;
	bool pre_patch_done; /* its pre_patch succeeded: post_unpatch is owed */
};

struct lp_patch_rt {
	struct list_head node; /* in lp_patches, enable order */
	struct lp_patch *desc;
	char name[LP_NAME_MAX];
	char *path;
	void *handle; /* dlopen handle */
	int fd;	      /* the file, open while loaded: see core.c */
	uintptr_t text_lo, text_hi;
	struct lp_object_rt *objs;
	size_t nobjs;
	bool enabled;
	bool forced;
};

/* core.c: the patch list and its mutex (kernel: klp_mutex). */
extern pthread_mutex_t lp_mutex;
extern struct list_head lp_patches;
int lp_apply_patch(int fd, const char *path, char *err, size_t errlen);
int lp_revert_patch(const char *name, char *err, size_t errlen);
void lp_reap_retired(void);
bool lp_have_retired(void);

/* object.c: finding and resolving the objects a patch names. */
int lp_object_resolve(struct lp_object_rt *obj, char *err, size_t errlen);
void lp_object_release(struct lp_object_rt *obj);

/* patch.c: func stacks and redirects (kernel: patch.c). */
int lp_patch_object(struct lp_object_rt *obj, char *err, size_t errlen);
void lp_unpatch_object(struct lp_object_rt *obj);
void lp_ops_update(struct lp_ops *ops);

/* transition.c: the consistency model (kernel: transition.c). */
extern struct lp_patch_rt *lp_transition_patch;
extern int lp_target_state;
void lp_init_transition(struct lp_patch_rt *patch, int state);
void lp_start_transition(void);
bool lp_try_complete_transition(void);
void lp_cancel_transition(void);

/* tramp.c: trampoline memory within reach of a function. */
int lp_tramp_alloc(uintptr_t near, uintptr_t *code, uintptr_t **slots, char *err, size_t errlen);
#define LP_TRAMP_CODE_SIZE 128
#define LP_TRAMP_SLOTS	   4

/* text.c: writing code while other threads run it. */
int lp_text_init(void);
int lp_text_atfork_child(void);
int lp_text_write(uintptr_t addr, const void *bytes, size_t len);
int lp_text_sync(void);
int lp_text_install_jump(struct lp_ops *ops, char *err, size_t errlen);
void lp_text_remove_jump(struct lp_ops *ops);

/* threads.c: running code against every other thread's interrupted context. */
struct lp_thread_ctx {
	pid_t tid;
	uintptr_t pc, sp;
	void *ucontext;		/* ucontext_t of a thread held in the visit signal; NULL
				   when pc and sp come from /proc (blocked in the kernel) */
	unsigned long switches; /* context switches when pc and sp were read */
};
typedef int (*lp_visit_fn)(struct lp_thread_ctx *ctx, void *arg);
int lp_threads_init(void);
int lp_threads_visit(lp_visit_fn fn, uintptr_t lo, uintptr_t hi, void *arg, char *err,
		     size_t errlen);
bool lp_thread_still_blocked(const struct lp_thread_ctx *ctx);
int lp_threads_scan_stacks(uintptr_t lo, uintptr_t hi, pid_t *holder, char *err, size_t errlen);

/* log.c: the event log (kernel: the "livepatch:" lines in dmesg). */
void lp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *lp_log_dump(size_t *len);
void lp_log_atfork_child(void);

/* status.c */
char *lp_status_json(bool threads);

/* agent.c */
int lp_agent_start(void);
void lp_agent_atfork_child(void);

#endif /* LP_RUNTIME_H */
