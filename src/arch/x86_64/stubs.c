// SPDX-License-Identifier: MIT
/*
 * The dispatch stubs a patch site jumps to.  They only jump through slots,
 * so redirecting a function later is an atomic 8-byte store, never a code
 * change.
 */
#include "lp_arch.h"
#include "insn.h"

#define STUB_ALIGN 16
#define INT3	   0xcc

/* Sizes of the fixed-length pieces of the slow stub, to place its jumps. */
enum {
	FS_CMP_SIZE = 9,  /* cmpb $imm8, %fs:disp32 */
	JCC8_SIZE = 2,	  /* jcc rel8 */
	JMP_MEM_SIZE = 6, /* jmp *disp32(%rip) */
};

/* The 4-byte RIP-relative displacement to @slot; -1 when out of reach. */
static int emit_rip_disp(struct lp_emit *e, uintptr_t at, uintptr_t slot)
{
	uintptr_t next = at + e->pos + 4;

	if (!lp_fits_rel32(next, slot))
		return -1;
	lp_emit_u32(e, (uint32_t)(slot - next));
	return 0;
}

/* jmp *slot(%rip) (ModRM 0x25) or call *slot(%rip) (ModRM 0x15) */
static int emit_indirect(struct lp_emit *e, uint8_t modrm, uintptr_t at, uintptr_t slot)
{
	lp_emit_u8(e, 0xff);
	lp_emit_u8(e, modrm);
	return emit_rip_disp(e, at, slot);
}

/* cmpb $imm, %fs:tpoff (absolute disp32 through a SIB byte without base) */
static void emit_cmp_fs_byte(struct lp_emit *e, int32_t tpoff, uint8_t imm)
{
	static const uint8_t op[4] = {0x64, 0x80, 0x3c, 0x25};

	lp_emit_bytes(e, op, sizeof(op));
	lp_emit_u32(e, (uint32_t)tpoff);
	lp_emit_u8(e, imm);
}

/* A short jump (opcode 0xeb, 0x74 or 0x75) to offset @to. */
static void emit_jump8(struct lp_emit *e, uint8_t opcode, size_t to)
{
	lp_emit_u8(e, opcode);
	lp_emit_u8(e, (uint8_t)(int8_t)((long)to - (long)(e->pos + 1)));
}

/* int3 up to the next @align boundary of the running address. */
static void emit_align(struct lp_emit *e, uintptr_t at, size_t align)
{
	while ((at + e->pos) % align && !e->overflow)
		lp_emit_u8(e, INT3);
}

static int emit_slow(struct lp_emit *e, const struct lp_stub_layout *l)
{
	size_t decide = e->pos + FS_CMP_SIZE + JCC8_SIZE;
	size_t unpatched = decide + FS_CMP_SIZE + JCC8_SIZE + JMP_MEM_SIZE;
	size_t call = unpatched + JMP_MEM_SIZE;
	int ret = 0;

	emit_cmp_fs_byte(e, l->pending_tpoff, 0);
	emit_jump8(e, 0x75, call); /* jne: a pending thread tries to switch first */
	emit_cmp_fs_byte(e, l->state_tpoff, l->state_unpatched);
	emit_jump8(e, 0x74, unpatched);
	ret |= emit_indirect(e, 0x25, l->at, l->slot_patched);
	ret |= emit_indirect(e, 0x25, l->at, l->slot_unpatched);
	ret |= emit_indirect(e, 0x15, l->at, l->slot_switch);
	emit_jump8(e, 0xeb, decide);
	return ret;
}

int lp_arch_emit_stubs(const struct lp_stub_layout *l, uint8_t *buf, size_t bufsize,
		       struct lp_stub_offsets *off)
{
	struct lp_emit e = {.buf = buf, .size = bufsize};

	off->entry = e.pos;
	if (emit_indirect(&e, 0x25, l->at, l->slot_target))
		return -1;
	emit_align(&e, l->at, STUB_ALIGN);
	off->slow = e.pos;
	if (emit_slow(&e, l) || e.overflow)
		return -1;
	off->size = e.pos;
	return 0;
}
