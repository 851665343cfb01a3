// SPDX-License-Identifier: MIT
/*
 * Is a stopped thread at a point where it may be borrowed to call dlopen()?
 *
 * dlopen() takes the loader's locks and calls malloc(); the runtime's
 * constructor, and those of the libraries it needs, take more of libc's.
 * A thread that holds one of them, or is inside the loader, would deadlock
 * on itself or corrupt what it was in the middle of.  libc's locks are held
 * only while libc runs, so the rule is about the thread's stack, unwound
 * reliably (CFI for every frame, to the thread's first frame):
 *
 *   1. innermost, any number of frames of the libc functions in
 *      target.c's list (system call wrappers, stdio input), possibly none;
 *   2. then at least one frame of the application (the program or any
 *      library but libc and the loader): the caller of those functions;
 *   3. then, outermost, only the frames that started the thread: libc's
 *      (__libc_start_call_main and __libc_start_main, start_thread and
 *      clone3) and the program's _start.
 *
 * No loader frame anywhere, no signal frame (a handler interrupted
 * something, which may hold a lock), no libc frame between application
 * frames (a callback: qsort, dl_iterate_phdr).  Anything unreliable means
 * "not here".
 */
#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inject/internal.h"

#define MAX_FRAMES 256
#define WINDOW	   4096

enum phase { IN_WRAPPERS, IN_APPLICATION, IN_START };

struct lp_stack {
	const struct lp_target *tg;
	Dwfl *dwfl;
	Elf *arch_elf;
	Elf64_Ehdr ehdr;

	/* The walk in progress. */
	const struct user_regs_struct *regs;
	enum phase phase;
	unsigned int nframes;
	bool bad, ra_undefined, bad_read;
	uintptr_t last_sp;
	/* Stack words are read a page at a time: each read of another
	 * process's memory takes its mmap lock. */
	uintptr_t window_lo;
	size_t window_len;
	uint8_t window[WINDOW];
	char *why;
	size_t whylen;
	char *where;
	size_t wherelen;
};

static char *debuginfo_path;

/* Only the local build-id tree: never wait on the network (debuginfod). */
static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_build_id_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	struct lp_stack *s = arg;

	(void)dwfl;
	if (*thread_argp)
		return 0;
	*thread_argp = s;
	return s->tg->pid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	(void)dwfl;
	(void)tid;
	*thread_argp = arg;
	return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct lp_stack *s = arg;
	uint64_t word;

	(void)dwfl;
	if (addr < s->window_lo || addr + sizeof(word) > s->window_lo + s->window_len) {
		uintptr_t lo = addr & ~(uintptr_t)(WINDOW - 1);
		ssize_t n = pread(s->tg->mem, s->window, WINDOW, (off_t)lo);

		s->window_lo = lo;
		s->window_len = n > 0 ? (size_t)n : 0;
	}
	if (addr < s->window_lo || addr + sizeof(word) > s->window_lo + s->window_len) {
		if (lp_mem_read(s->tg->mem, addr, &word, sizeof(word)) < 0) {
			s->bad_read = true;
			return false;
		}
	} else {
		memcpy(&word, s->window + (addr - s->window_lo), sizeof(word));
	}
	*result = word;
	return true;
}

/* user_regs_struct in DWARF order: rax rdx rcx rbx rsi rdi rbp rsp r8-r15 rip. */
static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	const struct user_regs_struct *r = ((struct lp_stack *)arg)->regs;
	Dwarf_Word v[17] = {r->rax, r->rdx, r->rcx, r->rbx, r->rsi, r->rdi, r->rbp, r->rsp, r->r8,
			    r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, r->rip};

	if (!dwfl_thread_state_registers(thread, 0, 17, v))
		return false;
	dwfl_thread_state_register_pc(thread, r->rip);
	return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

static int no(struct lp_stack *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int no(struct lp_stack *s, const char *fmt, ...)
{
	if (!s->bad) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(s->why, s->whylen, fmt, ap);
		va_end(ap);
	}
	s->bad = true;
	return DWARF_CB_ABORT;
}

/* What the CFI says of @lookup: a signal frame?  the end of the stack? */
static bool frame_cfi(struct lp_stack *s, uintptr_t lookup, bool *signal, bool *ra_undefined)
{
	Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, lookup);
	Dwarf_Frame *frame = NULL;
	Dwarf_Op ops_mem[3], *ops;
	Dwarf_Addr bias;
	Dwarf_CFI *cfi;
	size_t nops;
	int ra;

	if (!mod)
		return false;
	cfi = dwfl_module_eh_cfi(mod, &bias);
	if (!cfi || dwarf_cfi_addrframe(cfi, lookup - bias, &frame) != 0) {
		cfi = dwfl_module_dwarf_cfi(mod, &bias);
		if (!cfi || dwarf_cfi_addrframe(cfi, lookup - bias, &frame) != 0)
			return false;
	}
	ra = dwarf_frame_info(frame, NULL, NULL, signal);
	if (ra < 0 || dwarf_frame_register(frame, ra, ops_mem, &ops, &nops) != 0) {
		free(frame);
		return false;
	}
	*ra_undefined = nops == 0 && ops == ops_mem;
	free(frame);
	return true;
}

/* One frame against the rule; @pc is exact for the innermost frame only. */
static int judge(struct lp_stack *s, uintptr_t pc, bool innermost)
{
	enum lp_obj_kind kind = lp_target_kind(s->tg, innermost ? pc : pc - 1);
	const char *name = NULL;
	uintptr_t entry;

	if (kind == LP_OBJ_NONE)
		return no(s, "pc %#lx is not in any program or library", (unsigned long)pc);
	if (kind == LP_OBJ_LOADER)
		return no(s, "inside the dynamic loader");
	if (kind == LP_OBJ_OTHER) {
		if (s->phase == IN_START && !s->ra_undefined)
			return no(s, "application code called back from libc");
		if (s->phase == IN_WRAPPERS && innermost)
			snprintf(s->where, s->wherelen, "application code");
		if (s->phase == IN_WRAPPERS)
			s->phase = IN_APPLICATION;
		return DWARF_CB_OK;
	}
	if (s->phase == IN_APPLICATION || s->phase == IN_START) {
		s->phase = IN_START;
		return DWARF_CB_OK;
	}
	if (!lp_target_libc_func(s->tg, innermost ? pc : pc - 1, &entry, &name))
		return no(s, "inside libc at %#lx", (unsigned long)pc);
	if (!lp_target_is_safe(s->tg, entry))
		return no(s, "inside %.40s", name);
	if (innermost) {
		size_t n = strcspn(name, "@");

		snprintf(s->where, s->wherelen, "%.*s", (int)(n < 40 ? n : 40), name);
	}
	return DWARF_CB_OK;
}

static int on_frame(Dwfl_Frame *state, void *arg)
{
	struct lp_stack *s = arg;
	bool innermost = s->nframes++ == 0, signal, ra_undefined;
	Dwarf_Addr pc;
	Dwarf_Word sp;

	if (s->nframes > MAX_FRAMES)
		return no(s, "stack not reliable: more than %d frames", MAX_FRAMES);
	if (s->ra_undefined)
		return no(s, "stack not reliable: a frame after the outermost one");
	if (!dwfl_frame_pc(state, &pc, NULL))
		return no(s, "stack not reliable: %s", dwfl_errmsg(-1));
	if (s->bad_read)
		return no(s, "stack not reliable: cannot read it");
	if (dwfl_frame_reg(state, 7, &sp) != 0 || (!innermost && sp <= s->last_sp))
		return no(s, "stack not reliable at %#lx", (unsigned long)pc);
	if (!frame_cfi(s, innermost ? pc : pc - 1, &signal, &ra_undefined))
		return no(s, "stack not reliable: no unwind information for %#lx",
			  (unsigned long)pc);
	if (signal)
		return no(s, "in a signal handler");
	s->last_sp = sp;
	s->ra_undefined = ra_undefined;
	return judge(s, pc, innermost);
}

bool lp_stack_safe(struct lp_stack *s, const struct user_regs_struct *regs, char *where,
		   size_t wherelen, char *why, size_t whylen)
{
	int rc;

	s->regs = regs;
	s->phase = IN_WRAPPERS;
	s->nframes = 0;
	s->bad = s->ra_undefined = s->bad_read = false;
	s->last_sp = 0;
	s->window_len = 0;
	s->why = why;
	s->whylen = whylen;
	s->where = where;
	s->wherelen = wherelen;
	where[0] = why[0] = '\0';
	rc = dwfl_getthread_frames(s->dwfl, s->tg->pid, on_frame, s);
	if (s->bad)
		return false;
	if (rc != 0 || !s->ra_undefined) {
		no(s, "stack not reliable: it does not end at the thread's first frame");
		return false;
	}
	if (s->phase != IN_START && s->phase != IN_APPLICATION) {
		no(s, "no application frame on its stack");
		return false;
	}
	return true;
}

static int warm_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start,
		       void *arg)
{
	Dwarf_Addr bias;

	(void)userdata;
	(void)name;
	(void)start;
	(void)arg;
	/* Open the file and index its CFI now, not while a thread is stopped. */
	dwfl_module_eh_cfi(mod, &bias);
	return DWARF_CB_OK;
}

struct lp_stack *lp_stack_new(const struct lp_target *tg, char *err, size_t errlen)
{
	struct lp_stack *s = calloc(1, sizeof(*s));

	if (!s) {
		lp_set_err(err, errlen, "out of memory");
		return NULL;
	}
	s->tg = tg;
	elf_version(EV_CURRENT);
	s->dwfl = dwfl_begin(&dwfl_callbacks);
	if (!s->dwfl) {
		lp_set_err(err, errlen, "dwfl_begin: %s", dwfl_errmsg(-1));
		goto fail;
	}
	dwfl_report_begin(s->dwfl);
	if (dwfl_linux_proc_report(s->dwfl, tg->proc) != 0 ||
	    dwfl_report_end(s->dwfl, NULL, NULL) != 0) {
		lp_set_err(err, errlen, "cannot read the modules of process %d", (int)tg->pid);
		goto fail;
	}
	memcpy(s->ehdr.e_ident, ELFMAG, SELFMAG);
	s->ehdr.e_ident[EI_CLASS] = ELFCLASS64;
	s->ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
	s->ehdr.e_ident[EI_VERSION] = EV_CURRENT;
	s->ehdr.e_type = ET_DYN;
	s->ehdr.e_machine = EM_X86_64;
	s->ehdr.e_version = EV_CURRENT;
	s->ehdr.e_ehsize = sizeof(s->ehdr);
	s->arch_elf = elf_memory((char *)&s->ehdr, sizeof(s->ehdr));
	if (!s->arch_elf ||
	    !dwfl_attach_state(s->dwfl, s->arch_elf, tg->pid, &thread_callbacks, s)) {
		lp_set_err(err, errlen, "cannot set up unwinding: %s", dwfl_errmsg(-1));
		goto fail;
	}
	dwfl_getmodules(s->dwfl, warm_module, NULL, 0);
	return s;
fail:
	lp_stack_free(s);
	return NULL;
}

void lp_stack_free(struct lp_stack *s)
{
	if (!s)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl);
	if (s->arch_elf)
		elf_end(s->arch_elf);
	free(s);
}
