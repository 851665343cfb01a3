// SPDX-License-Identifier: MIT
/*
 * The registers a replacement may change (arch/x86_64/clobber.c tells
 * which ones a function changes).  Compiled with -fipa-ra (GCC's default
 * from -O2), a caller in the original's translation unit may keep values
 * in call-clobbered registers that it knows the original leaves alone; a
 * replacement that changes one of them would corrupt that caller.  So a
 * replacement must change no register the original does not, or it is
 * refused with the registers named.  LP_PRESERVE_REGISTERS (lpatch.h)
 * makes a replacement save every general register it uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf/lp_elf.h"
#include "runtime.h"

#define MAX_CALLEES 32

/* The original code of the functions the checked one calls, in its object. */
struct callees {
	struct lp_elf *elf;
	uint8_t *code[MAX_CALLEES];
	size_t n;
};

static int find_callee(uintptr_t addr, const uint8_t **code, size_t *size, void *arg)
{
	struct callees *c = arg;
	struct lp_elf_sym sym;
	uint8_t *copy;

	if (c->n == MAX_CALLEES || lp_elf_func_at(c->elf, addr, NULL, &sym) < 0 ||
	    sym.addr != addr || !sym.size || !(copy = lp_func_original_code(addr, sym.size)))
		return -1;
	c->code[c->n++] = copy;
	*code = copy;
	*size = sym.size;
	return 0;
}

/* What the original function @func replaces may change, from below. */
static uint32_t original_clobbers(const struct lp_func_rt *func, struct lp_elf *elf)
{
	struct callees c = {.elf = elf};
	struct lp_clobber_ctx ctx = {.callee = find_callee, .arg = &c};
	uint8_t *code = lp_func_original_code(func->old_addr, func->old_size);
	uint32_t mask;

	/* Out of memory: nothing known, so anything the replacement changes counts. */
	if (!code)
		return 0;
	mask = lp_arch_clobbers(&ctx, code, func->old_size, func->old_addr, false);
	free(code);
	for (size_t i = 0; i < c.n; i++)
		free(c.code[i]);
	return mask;
}

uint32_t lp_new_func_clobbers(const struct lp_func_rt *func)
{
	static const struct lp_clobber_ctx none;

	return lp_arch_clobbers(&none, (const uint8_t *)func->new_func, func->new_size,
				(uintptr_t)func->new_func, true);
}

int lp_check_clobbers(const struct lp_func_rt *func, struct lp_elf *elf, char *why, size_t len)
{
	uint32_t extra;
	char names[160];

	if (func->nop)
		return 0;
	extra = func->new_clobbers & ~original_clobbers(func, elf);
	if (!extra)
		return 0;
	lp_arch_clobber_names(extra, names, sizeof(names));
	snprintf(why, len,
		 "its callers may count on it leaving %s unchanged (interprocedural register "
		 "allocation, -fipa-ra), which the new function changes: declare it "
		 "LP_PRESERVE_REGISTERS",
		 names);
	return -1;
}
