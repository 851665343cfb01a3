/* SPDX-License-Identifier: MIT */
/*
 * lpatch.h - the contract between a patch and the lpatch runtime.
 *
 * A patch is a shared object that describes which functions of a running
 * process it replaces, the way a kernel livepatch module does:
 *
 *	#include <lpatch.h>
 *
 *	static int fixed_parse(const char *s) { ... }
 *
 *	static struct lp_func funcs[] = {
 *		{ .old_name = "parse", .new_func = fixed_parse },
 *		{ 0 }
 *	};
 *	static struct lp_object objs[] = {
 *		{ .name = NULL, .funcs = funcs },	// NULL: the main program
 *		{ 0 }
 *	};
 *	LP_PATCH(.objs = objs);
 *
 * Build it with `cc -shared -fPIC $(pkg-config --cflags lpatch) -o fix.so fix.c`
 * and apply it with `lpatch apply PID fix.so`.  docs/writing-patches.md
 * explains every field.
 */
#ifndef LPATCH_H
#define LPATCH_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever the layout of the descriptors below changes. */
#define LP_ABI_VERSION 1

/* The name under which LP_PATCH() exports the descriptor. */
#define LP_PATCH_SYMBOL "lp_patch_descriptor"

/*
 * One function to replace.  old_sympos tells same-named functions of one
 * object apart exactly as the kernel's old_sympos does: 0 means the name
 * must be unique in the object's symbol table (else the patch is refused as
 * ambiguous), N >= 1 picks the Nth symbol of that name in table order.
 */
struct lp_func {
	const char *old_name;
	void *new_func;
	unsigned long old_sympos;
};

/*
 * Declare a replacement function with this when lpatch refuses it because
 * "its callers may count on it leaving rcx, ... unchanged": the compiler
 * of the target (GCC's -fipa-ra, on from -O2) let callers of the original
 * keep values in registers the original does not touch.  The function then
 * saves and restores every general register it changes, its return value
 * register aside, and uses no vector registers (so no floating point).
 */
#define LP_PRESERVE_REGISTERS                                                                      \
	__attribute__((no_caller_saved_registers, target("general-regs-only")))

/*
 * A reference from the patch to a symbol of the patched object (a function
 * or a variable, static ones included): the runtime stores the symbol's
 * address in *addr before the patch is enabled, or refuses the patch when
 * the symbol cannot be found.  This is the counterpart of the kernel's klp
 * relocations.  Use LP_SYMBOL() to declare one.
 */
struct lp_symbol {
	const char *name;
	void **addr;
	unsigned long sympos;
};

#define LP_SYMBOL(sym_name, pointer)                                                               \
	{                                                                                          \
		.name = (sym_name), .addr = (void **)&(pointer), .sympos = 0                       \
	}
#define LP_SYMBOL_POS(sym_name, pointer, pos)                                                      \
	{                                                                                          \
		.name = (sym_name), .addr = (void **)&(pointer), .sympos = (pos)                   \
	}

struct lp_object;

/*
 * Callbacks run with the runtime's patch mutex held, in the order the
 * kernel's livepatch callbacks run (docs/writing-patches.md).  A non-zero
 * return from pre_patch refuses the patch for this object.
 */
struct lp_callbacks {
	int (*pre_patch)(struct lp_object *obj);
	void (*post_patch)(struct lp_object *obj);
	void (*pre_unpatch)(struct lp_object *obj);
	void (*post_unpatch)(struct lp_object *obj);
};

/*
 * An object of the target process: the main program (name == NULL) or a
 * shared library, matched by its soname or file name ("libfoo.so.1").
 * build_id, when set, pins the object: a patch whose build_id (lowercase
 * hex) differs from the loaded object's is refused.
 */
struct lp_object {
	const char *name;
	struct lp_func *funcs;	/* ends with old_name == NULL; may be empty */
	struct lp_symbol *syms; /* terminated by an entry with name == NULL */
	struct lp_callbacks callbacks;
	const char *build_id;
};

/* A system state the patch establishes or takes over (kernel: klp_state). */
struct lp_state {
	unsigned long id; /* non-zero; the array ends with id == 0 */
	unsigned int version;
	void *data;
};

struct lp_patch {
	unsigned int abi;	 /* LP_ABI_VERSION, set by LP_PATCH() */
	const char *name;	 /* NULL: the file name without ".so" */
	struct lp_object *objs;	 /* ends with an entry whose name and funcs are NULL */
	struct lp_state *states; /* ends with an entry whose id is 0; may be NULL */
	bool replace;		 /* atomic replace: this patch replaces all the others */
};

/*
 * This patch's own descriptor, the one LP_PATCH() defines, for
 * lp_get_state(&lp_this_patch, ID).  Hidden: it is always this file's.
 */
extern struct lp_patch lp_this_patch __attribute__((visibility("hidden")));

/*
 * System states (kernel: klp_get_state(), klp_get_prev_state()).  A patch
 * that changes the system in a way that outlives its own code (a setting, a
 * data layout) describes it with a state, an id and a version.  A patch may
 * only be applied when, for every state of every installed patch, it
 * carries the same id at an equal or higher version; a replace patch must
 * carry every such state.  Call these from callbacks only.
 *
 * lp_get_state(): @patch's state @id, or NULL.
 * lp_get_prev_state(): during a transition, the state @id of the newest
 * installed patch below the one in transition, or NULL.  A cumulative
 * patch takes the state over in its pre_patch when there is one; its
 * post_unpatch tells a reversed transition (the previous patch still holds
 * the state: leave it) from a disable (nobody does: undo it).
 */
struct lp_state *lp_get_state(struct lp_patch *patch, unsigned long id);
struct lp_state *lp_get_prev_state(unsigned long id);

/*
 * Where the object a callback is called for stands, the kernel's module
 * state: LP_OBJECT_COMING while its library is being loaded (its code has
 * not run yet), LP_OBJECT_GOING while it is being unloaded (its destructors
 * ran), LP_OBJECT_LIVE when loaded otherwise (the main program always),
 * LP_OBJECT_NOT_LOADED when not loaded or not an object of an applied patch.
 */
enum lp_object_state {
	LP_OBJECT_NOT_LOADED,
	LP_OBJECT_COMING,
	LP_OBJECT_LIVE,
	LP_OBJECT_GOING,
};
enum lp_object_state lp_object_state(const struct lp_object *obj);

/*
 * Append one line to the process's event log (`lpatch log PID`), where the
 * runtime logs each step: a patch's pr_info().  Callbacks use it to leave
 * their mark in order with the runtime's own lines.  Start the text with
 * the patch's name, as the kernel's livepatch samples do.
 */
void lp_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Declare the patch descriptor of this shared object. */
#define LP_PATCH(...)                                                                              \
	__attribute__((visibility("default"), used)) struct lp_patch lp_patch_descriptor = {       \
	    .abi = LP_ABI_VERSION, __VA_ARGS__};                                                   \
	extern struct lp_patch lp_this_patch __attribute__((alias("lp_patch_descriptor")))

/* ---- Shadow variables -------------------------------------------------
 *
 * Data a patch attaches to an existing object without changing its layout
 * (kernel: klp_shadow_*): the field a fix needs but the struct lacks.  A
 * shadow variable is keyed by (obj, id): obj is any address, normally the
 * object's; id tells the variables of one object apart.  The runtime
 * (liblpatch.so) provides these functions; a patch calls them directly.
 *
 * All are thread-safe; none is async-signal-safe.  Nothing is freed when a
 * patch is reverted or unloaded: a patch frees its variables itself, e.g.
 * with lp_shadow_free_all() in its post_unpatch callback.  The data stays
 * valid after the patch that made it is gone, so a later patch may take it
 * over by its id.
 *
 * Constructor: called once, for a new variable only, with its data zeroed,
 * before any other thread can see it.  A non-zero return fails the
 * allocation: nothing is stored and the data is freed.  It runs with a lock
 * of the table held, so it must be short: it must not call lp_shadow_*
 * (refused: such a call returns NULL or does nothing, and logs an error),
 * must not wait for other threads or fork, and must return (no longjmp(),
 * no exception).  It may read the object, fill the data, call malloc() and
 * lp_printf().
 *
 * Destructor: called once, with no lock held, after the variable has left
 * the table and before its data is freed.  It may do anything, including
 * call lp_shadow_*.  Its code must still be loaded when it is called.
 */
typedef int (*lp_shadow_ctor_t)(void *obj, void *shadow_data, void *ctor_data);
typedef void (*lp_shadow_dtor_t)(void *obj, void *shadow_data);

/* The data of variable (obj, id), or NULL when there is none. */
void *lp_shadow_get(void *obj, unsigned long id);

/*
 * A new variable (obj, id) of @size bytes, aligned as malloc()'s memory,
 * zeroed, then passed to @ctor (when not NULL) with @ctor_data.  NULL, with
 * a warning in the event log, when (obj, id) already exists; NULL when
 * memory runs out or @ctor fails.
 */
void *lp_shadow_alloc(void *obj, unsigned long id, size_t size, lp_shadow_ctor_t ctor,
		      void *ctor_data);

/*
 * The data of (obj, id); made as lp_shadow_alloc() makes it when there is
 * none.  However many threads race, exactly one variable exists afterwards
 * and @ctor runs only for it.
 */
void *lp_shadow_get_or_alloc(void *obj, unsigned long id, size_t size, lp_shadow_ctor_t ctor,
			     void *ctor_data);

/* Remove (obj, id), if it exists: @dtor (when not NULL) runs, then the data is freed. */
void lp_shadow_free(void *obj, unsigned long id, lp_shadow_dtor_t dtor);

/*
 * Remove every variable with this id, whatever its object, each as
 * lp_shadow_free() does.  Not one atomic step: a variable allocated while it
 * runs may survive it.
 */
void lp_shadow_free_all(unsigned long id, lp_shadow_dtor_t dtor);

#ifdef __cplusplus
}
#endif

#endif /* LPATCH_H */
