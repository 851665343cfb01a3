// SPDX-License-Identifier: MIT
/*
 * Reliable unwinding of this process's threads with libdwfl (elfutils).
 *
 * libdwfl walks the frames with the CFI of the modules reported from
 * /proc/self/maps; the thread's registers and stack come from the caller
 * through a Dwfl_Thread_Callbacks "process" with one pseudo thread.  libdwfl
 * alone is not reliable in the livepatch sense, so every frame is checked
 * here as well:
 *
 *  - When no CFI covers a pc, libdwfl falls back to frame-pointer
 *    heuristics (ebl_unwind) and goes on.  Each frame's pc must have an
 *    FDE here, looked up exactly the way libdwfl does (pc - 1 for a return
 *    address, .eh_frame before .debug_frame), so the fallback can never be
 *    the one that produced the next frame.
 *  - When the return address cannot be computed (its stack slot cannot be
 *    read, the CFA needs a register that is not known), libdwfl decides
 *    "maybe end of call stack" and reports a complete backtrace; a return
 *    address of 0 ends it too.  The walk counts as complete here only when
 *    the outermost frame's CFI says the return address is undefined
 *    (_start, clone3), and any failed stack read makes it unreliable.
 *  - A pc counts as "in a known module" only inside an executable PT_LOAD
 *    segment of an object the dynamic loader lists: dwfl_addrmodule()
 *    also answers for the gap after a module, and the Dwfl, built from
 *    /proc/self/maps, also holds libelf's own mmap()s of ELF files.
 *  - The stack pointer must grow from frame to frame, except across a
 *    signal frame (the handler may run on an alternate stack), and there
 *    are at most LP_UNWIND_MAX_FRAMES frames: a corrupt stack cannot loop.
 *
 * Cost: see the comment above lp_unwind().
 */
#include <elf.h>
#include <elfutils/libdwfl.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/err.h"
#include "runtime/unwind.h"

struct text_range {
	uintptr_t lo, hi;
};

/*
 * What the CFI says about a pc, so that a frame costs one FDE lookup (the
 * one libdwfl makes), not two.
 */
#define CFI_CACHE_BITS 10
struct cfi_entry {
	uintptr_t lookup;
	bool valid, signal, ra_undefined;
};

struct lp_unwinder {
	pthread_mutex_t lock;
	Dwfl *dwfl;
	/*
	 * Gives dwfl_attach_state the architecture.  Without it libdwfl
	 * borrows the backend of the first module, which dangles once a
	 * refresh drops that module (a dlclose()d library).
	 */
	Elf *arch_elf;
	Elf64_Ehdr ehdr;
	pid_t pid;
	/* dl_iterate_phdr's counters at the last report. */
	unsigned long long adds, subs;
	/* Executable segments of the loaded objects, sorted. */
	struct text_range *text;
	size_t ntext;
	struct cfi_entry cache[1u << CFI_CACHE_BITS];

	/* The unwind in progress. */
	const struct lp_regs *regs;
	lp_mem_read_fn read;
	void *read_arg;
	lp_frame_fn frame;
	void *frame_arg;
	char *why;
	size_t whylen;
	unsigned int nframes;
	bool failed;   /* unreliable; why says so */
	int user_ret;  /* first non-zero frame callback result */
	bool bad_read; /* a stack read failed (the first at bad_addr) */
	uintptr_t bad_addr;
	bool next_exact;   /* the last frame was a signal frame: the next pc is exact */
	bool ra_undefined; /* the last frame's CFI ends the stack */
	uintptr_t last_sp;
	uintptr_t last_pc;
};

static pthread_once_t debuginfod_once = PTHREAD_ONCE_INIT;
static bool debuginfod_configured;

static void check_debuginfod(void)
{
	const char *urls = getenv("DEBUGINFOD_URLS");

	debuginfod_configured = urls && *urls;
}

static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
			  const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	/*
	 * With DEBUGINFOD_URLS set, the standard search ends with a download:
	 * never wait on the network from inside the target.  The local
	 * build-id tree (/usr/lib/debug/.build-id) is still searched.
	 */
	if (debuginfod_configured)
		return dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name,
						    debuglink_file, debuglink_crc,
						    debuginfo_file_name);
	return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
					    debuglink_crc, debuginfo_file_name);
}

static char *debuginfo_path;

static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* Marks the unwind in progress unreliable; only the first reason is kept. */
static int fail(struct lp_unwinder *u, const char *fmt, ...)
{
	if (!u->failed && u->why && u->whylen) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(u->why, u->whylen, fmt, ap);
		va_end(ap);
	}
	u->failed = true;
	return DWARF_CB_ABORT;
}

/* The Dwfl_Thread_Callbacks: one pseudo thread whose state is u->regs. */

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	struct lp_unwinder *u = arg;

	(void)dwfl;
	if (*thread_argp)
		return 0;
	*thread_argp = u;
	return u->pid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	struct lp_unwinder *u = arg;

	(void)dwfl;
	if (tid != u->pid)
		return false;
	*thread_argp = u;
	return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct lp_unwinder *u = arg;
	uint64_t word;

	(void)dwfl;
	if (!u->read(addr, &word, u->read_arg)) {
		if (!u->bad_read) {
			u->bad_read = true;
			u->bad_addr = addr;
		}
		return false;
	}
	*result = word;
	return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	struct lp_unwinder *u = arg;
	const struct lp_regs *regs = u->regs;
	unsigned int n;

	/* Registers not set stay unknown: CFI that needs them fails. */
	for (n = 0; n < LP_UNWIND_NREGS; n++) {
		Dwarf_Word val = regs->r[n];

		if ((regs->known & (1u << n)) && !dwfl_thread_state_registers(thread, n, 1, &val))
			return false;
	}
	dwfl_thread_state_register_pc(thread, regs->r[LP_UNWIND_RIP]);
	return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

struct dl_counts {
	unsigned long long adds, subs;
	bool known;
};

static void get_counts(struct dl_phdr_info *info, size_t size, struct dl_counts *c)
{
	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
		c->adds = info->dlpi_adds;
		c->subs = info->dlpi_subs;
		c->known = true;
	}
}

static int read_counts(struct dl_phdr_info *info, size_t size, void *arg)
{
	get_counts(info, size, arg);
	return 1; /* the counters are the same in every entry */
}

struct text_scan {
	struct dl_counts counts;
	struct text_range *r;
	size_t n, cap;
	bool nomem;
};

static int add_text(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct text_scan *t = arg;
	int i;

	get_counts(info, size, &t->counts);
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || !ph->p_memsz)
			continue;
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 64;
			struct text_range *r = reallocarray(t->r, cap, sizeof(*r));

			if (!r) {
				t->nomem = true;
				return 1;
			}
			t->r = r;
			t->cap = cap;
		}
		t->r[t->n].lo = info->dlpi_addr + ph->p_vaddr;
		t->r[t->n].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		t->n++;
	}
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct text_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static bool in_text(const struct lp_unwinder *u, uintptr_t addr)
{
	size_t lo = 0, hi = u->ntext;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < u->text[mid].lo)
			hi = mid;
		else if (addr >= u->text[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/*
 * Finds the FDE libdwfl unwinds @lookup with (the pc of an exact frame, a
 * return address - 1 otherwise), and what it says about the caller.
 */
static int lookup_cfi(struct lp_unwinder *u, uintptr_t pc, uintptr_t lookup, bool *signal,
		      bool *ra_undefined)
{
	Dwfl_Module *mod = in_text(u, lookup) ? dwfl_addrmodule(u->dwfl, lookup) : NULL;
	Dwarf_Frame *frame = NULL;
	Dwarf_Op ops_mem[3], *ops;
	Dwarf_Addr bias, lo = 0, hi = 0;
	Dwarf_CFI *cfi;
	size_t nops;
	int ra;

	/* dwfl_addrmodule() also answers for the gap after a module: check its bounds. */
	if (mod)
		dwfl_module_info(mod, NULL, &lo, &hi, NULL, NULL, NULL, NULL);
	if (!mod || lookup < lo || lookup >= hi) {
		fail(u, "pc %#lx is not in a known module", (unsigned long)pc);
		return -1;
	}
	cfi = dwfl_module_eh_cfi(mod, &bias);
	if (!cfi || dwarf_cfi_addrframe(cfi, lookup - bias, &frame) != 0) {
		frame = NULL;
		cfi = dwfl_module_dwarf_cfi(mod, &bias);
		if (!cfi || dwarf_cfi_addrframe(cfi, lookup - bias, &frame) != 0) {
			fail(u, "no unwind information for %#lx", (unsigned long)pc);
			return -1;
		}
	}
	ra = dwarf_frame_info(frame, NULL, NULL, signal);
	if (ra < 0 || dwarf_frame_register(frame, ra, ops_mem, &ops, &nops) != 0) {
		free(frame);
		fail(u, "bad unwind information for %#lx: %s", (unsigned long)pc, dwarf_errmsg(-1));
		return -1;
	}
	/* "undefined", as opposed to "same value" (ops == NULL). */
	*ra_undefined = nops == 0 && ops == ops_mem;
	free(frame);
	return 0;
}

/* Same, remembering the answers for pcs with CFI until the modules change. */
static int check_cfi(struct lp_unwinder *u, uintptr_t pc, uintptr_t lookup, bool *signal,
		     bool *ra_undefined)
{
	struct cfi_entry *e = &u->cache[(lookup * 0x9e3779b97f4a7c15ull) >> (64 - CFI_CACHE_BITS)];

	if (e->lookup == lookup && e->valid) {
		*signal = e->signal;
		*ra_undefined = e->ra_undefined;
		return 0;
	}
	if (lookup_cfi(u, pc, lookup, signal, ra_undefined))
		return -1;
	*e = (struct cfi_entry){lookup, true, *signal, *ra_undefined};
	return 0;
}

static int on_frame(Dwfl_Frame *state, void *arg)
{
	struct lp_unwinder *u = arg;
	bool innermost = u->nframes == 0;
	bool exact = innermost || u->next_exact;
	bool signal, ra_undefined;
	Dwarf_Addr pc;
	Dwarf_Word sp;
	int ret;

	if (++u->nframes > LP_UNWIND_MAX_FRAMES)
		return fail(u, "more than %d frames", LP_UNWIND_MAX_FRAMES);
	if (u->ra_undefined)
		return fail(u, "frame after the outermost one at %#lx", (unsigned long)u->last_pc);
	if (!dwfl_frame_pc(state, &pc, NULL))
		return fail(u, "no pc after %#lx: %s", (unsigned long)u->last_pc, dwfl_errmsg(-1));
	/* libdwfl gives up on an unreadable or unknown return address without telling. */
	if (u->bad_read)
		return fail(u, "cannot read the stack at %#lx", (unsigned long)u->bad_addr);
	if (dwfl_frame_reg(state, LP_UNWIND_RSP, &sp) != 0)
		return fail(u, "stack pointer unknown at %#lx", (unsigned long)pc);
	if (!innermost && !u->next_exact && sp <= u->last_sp)
		return fail(u, "stack pointer does not grow at %#lx", (unsigned long)pc);
	if (check_cfi(u, pc, exact ? pc : pc - 1, &signal, &ra_undefined))
		return DWARF_CB_ABORT;
	u->next_exact = signal;
	u->ra_undefined = ra_undefined;
	u->last_sp = sp;
	u->last_pc = pc;
	ret = u->frame ? u->frame(pc, exact, u->frame_arg) : 0;
	if (ret) {
		u->user_ret = ret;
		return DWARF_CB_ABORT;
	}
	return DWARF_CB_OK;
}

/* The walk ended without a frame callback stopping it: was it complete? */
static int verdict(struct lp_unwinder *u, int rc)
{
	if (u->bad_read)
		fail(u, "cannot read the stack at %#lx", (unsigned long)u->bad_addr);
	else if (u->nframes == 0)
		fail(u, "cannot start unwinding: %s", dwfl_errmsg(-1));
	else if (rc != 0)
		fail(u, "cannot unwind from %#lx: %s", (unsigned long)u->last_pc, dwfl_errmsg(-1));
	else if (!u->ra_undefined)
		fail(u, "return address of %#lx unknown", (unsigned long)u->last_pc);
	else
		return 0;
	return -1;
}

/*
 * Cost, measured by test_unwind (x86-64 VM, elfutils 0.188), once the
 * modules' CFI is loaded: ~0.5 us per frame, ~3.5-4 us for a 7-frame
 * stack, plus the reads: 9 words for that stack, ~0.5 us each when every
 * word is a process_vm_readv().  Crossing a signal frame costs ~35 reads,
 * as __restore_rt's CFI restores every register from the sigcontext.  The
 * first unwind through a module opens its ELF file and indexes its CFI.
 */
int lp_unwind(struct lp_unwinder *u, const struct lp_regs *regs, lp_mem_read_fn read,
	      void *read_arg, lp_frame_fn frame, void *frame_arg, char *why, size_t whylen)
{
	const uint32_t need = (1u << LP_UNWIND_RSP) | (1u << LP_UNWIND_RIP);
	int rc, ret;

	lp_set_err(why, whylen, "%s", "");
	if ((regs->known & need) != need) {
		lp_set_err(why, whylen, "rsp and rip are required");
		return -1;
	}
	pthread_mutex_lock(&u->lock);
	u->regs = regs;
	u->read = read;
	u->read_arg = read_arg;
	u->frame = frame;
	u->frame_arg = frame_arg;
	u->why = why;
	u->whylen = whylen;
	u->nframes = 0;
	u->failed = false;
	u->user_ret = 0;
	u->bad_read = false;
	u->next_exact = false;
	u->ra_undefined = false;
	u->last_sp = 0;
	u->last_pc = 0;

	rc = dwfl_getthread_frames(u->dwfl, u->pid, on_frame, u);

	if (u->user_ret)
		ret = u->user_ret;
	else if (u->failed)
		ret = -1;
	else
		ret = verdict(u, rc);
	u->regs = NULL;
	u->why = NULL;
	pthread_mutex_unlock(&u->lock);
	return ret;
}

static int report(struct lp_unwinder *u, bool force, char *err, size_t errlen)
{
	struct dl_counts c = {0};
	struct text_scan t = {0};
	int rc;

	dl_iterate_phdr(read_counts, &c);
	if (!force && c.known && c.adds == u->adds && c.subs == u->subs)
		return 0;
	/*
	 * The loader's list is the one that tells code from everything else
	 * mapped from a file: /proc/self/maps, hence the Dwfl, also shows the
	 * copies of ELF files libelf mmap()s for itself.  It is taken before
	 * the Dwfl's report: a dlopen() racing with the two only makes the
	 * next refresh report again.
	 */
	dl_iterate_phdr(add_text, &t);
	if (t.nomem) {
		free(t.r);
		lp_set_err(err, errlen, "out of memory");
		return -1;
	}
	qsort(t.r, t.n, sizeof(*t.r), cmp_range);
	memset(u->cache, 0, sizeof(u->cache));
	free(u->text);
	u->text = t.r;
	u->ntext = t.n;

	dwfl_report_begin(u->dwfl);
	/* Through a live thread: once the main thread exits, /proc/PID/maps reads empty. */
	rc = dwfl_linux_proc_report(u->dwfl, (pid_t)syscall(SYS_gettid));
	if (dwfl_report_end(u->dwfl, NULL, NULL) != 0 || rc != 0) {
		if (rc > 0)
			lp_set_err(err, errlen, "reading /proc/%d/maps: %s", (int)u->pid,
				   strerror(rc));
		else
			lp_set_err(err, errlen, "reporting modules: %s", dwfl_errmsg(-1));
		/* Report again next time. */
		u->adds = u->subs = ~0ULL;
		return -1;
	}
	u->adds = t.counts.known ? t.counts.adds : ~0ULL;
	u->subs = t.counts.known ? t.counts.subs : ~0ULL;
	return 0;
}

int lp_unwinder_refresh(struct lp_unwinder *u, char *err, size_t errlen)
{
	bool force;
	int rc;

	pthread_mutex_lock(&u->lock);
	/*
	 * After fork() the same unwinder describes the child.  Report again
	 * all the same: the modules' names ("[vdso: PID]") tell libdwfl which
	 * process's memory to read an ELF image from.
	 */
	force = u->pid != getpid();
	u->pid = getpid();
	rc = report(u, force, err, errlen);
	pthread_mutex_unlock(&u->lock);
	return rc;
}

struct lp_unwinder *lp_unwinder_new(char *err, size_t errlen)
{
	struct lp_unwinder *u;

	pthread_once(&debuginfod_once, check_debuginfod);
	elf_version(EV_CURRENT);
	u = calloc(1, sizeof(*u));
	if (!u) {
		lp_set_err(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&u->lock, NULL);
	u->pid = getpid();
	u->dwfl = dwfl_begin(&dwfl_callbacks);
	if (!u->dwfl) {
		lp_set_err(err, errlen, "dwfl_begin: %s", dwfl_errmsg(-1));
		goto fail;
	}
	if (report(u, true, err, errlen))
		goto fail;

	memcpy(u->ehdr.e_ident, ELFMAG, SELFMAG);
	u->ehdr.e_ident[EI_CLASS] = ELFCLASS64;
	u->ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
	u->ehdr.e_ident[EI_VERSION] = EV_CURRENT;
	u->ehdr.e_type = ET_DYN;
	u->ehdr.e_machine = EM_X86_64;
	u->ehdr.e_version = EV_CURRENT;
	u->ehdr.e_ehsize = sizeof(u->ehdr);
	u->arch_elf = elf_memory((char *)&u->ehdr, sizeof(u->ehdr));
	if (!u->arch_elf) {
		lp_set_err(err, errlen, "elf_memory: %s", elf_errmsg(-1));
		goto fail;
	}
	if (!dwfl_attach_state(u->dwfl, u->arch_elf, u->pid, &thread_callbacks, u)) {
		lp_set_err(err, errlen, "dwfl_attach_state: %s", dwfl_errmsg(-1));
		goto fail;
	}
	return u;
fail:
	lp_unwinder_free(u);
	return NULL;
}

void lp_unwinder_free(struct lp_unwinder *u)
{
	if (!u)
		return;
	if (u->dwfl)
		dwfl_end(u->dwfl);
	if (u->arch_elf)
		elf_end(u->arch_elf);
	pthread_mutex_destroy(&u->lock);
	free(u->text);
	free(u);
}
