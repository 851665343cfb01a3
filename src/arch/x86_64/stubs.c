// SPDX-License-Identifier: MIT
/*
 * The dispatch stubs a patch site jumps to.  They only jump through slots,
 * so redirecting a function later is an atomic 8-byte store, never a code
 * change.
 */
#include "lp_arch.h"
#include "insn.h"

#define STUB_ALIGN   16
#define JMP_MEM_SIZE 6 /* jmp *disp32(%rip) */
#define INT3	     0xcc

/* jmp *slot(%rip); -1 when the slot is out of reach. */
static int emit_jmp_slot(struct lp_emit *e, uintptr_t at, uintptr_t slot)
{
	uintptr_t next = at + e->pos + JMP_MEM_SIZE;

	if (!lp_fits_rel32(next, slot))
		return -1;
	lp_emit_u8(e, 0xff);
	lp_emit_u8(e, 0x25);
	lp_emit_u32(e, (uint32_t)(slot - next));
	return 0;
}

/* cmpb $imm, %fs:tpoff (absolute disp32 through a SIB byte without base). */
static void emit_cmp_fs_byte(struct lp_emit *e, int32_t tpoff, uint8_t imm)
{
	static const uint8_t op[4] = {0x64, 0x80, 0x3c, 0x25};

	lp_emit_bytes(e, op, sizeof(op));
	lp_emit_u32(e, (uint32_t)tpoff);
	lp_emit_u8(e, imm);
}

/* int3 up to the next @align boundary of the running address. */
static void emit_align(struct lp_emit *e, uintptr_t at, size_t align)
{
	while ((at + e->pos) % align && !e->overflow)
		lp_emit_u8(e, INT3);
}

static int emit_slow(struct lp_emit *e, const struct lp_stub_layout *l)
{
	emit_cmp_fs_byte(e, l->state_tpoff, l->state_unpatched);
	/* je over the next jump, to the unpatched one */
	lp_emit_u8(e, 0x74);
	lp_emit_u8(e, JMP_MEM_SIZE);
	if (emit_jmp_slot(e, l->at, l->slot_patched))
		return -1;
	return emit_jmp_slot(e, l->at, l->slot_unpatched);
}

int lp_arch_emit_stubs(const struct lp_stub_layout *l, uint8_t *buf, size_t bufsize,
		       struct lp_stub_offsets *off)
{
	struct lp_emit e = {.buf = buf, .size = bufsize};

	off->entry = e.pos;
	if (emit_jmp_slot(&e, l->at, l->slot_target))
		return -1;
	emit_align(&e, l->at, STUB_ALIGN);
	off->slow = e.pos;
	if (emit_slow(&e, l))
		return -1;
	if (e.overflow)
		return -1;
	off->size = e.pos;
	return 0;
}
