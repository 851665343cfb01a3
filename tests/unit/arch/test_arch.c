// SPDX-License-Identifier: MIT
/*
 * Unit tests of the x86-64 backend: prologue analysis, relocation and stub
 * emission, checked by decoding the produced bytes with Zydis and by running
 * relocated code.
 */
#include "arch/x86_64/lp_arch.h"
#include "../check.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <Zydis/Zydis.h>

#define FUNC_ADDR ((uintptr_t)0x7f0000001000)
#define FAR (UINT64_C(3) << 30) /* beyond rel32 reach */

static char err[256];

/* Decode one instruction at @code; its length, 0 on failure. */
static size_t decode(const uint8_t *code, size_t len, ZydisDecodedInstruction *zi,
		     ZydisDecodedOperand *ops)
{
	ZydisDecoder dec;

	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	if (ZYAN_FAILED(ZydisDecoderDecodeFull(&dec, code, len, zi, ops)))
		return 0;
	return zi->length;
}

/* Absolute address operand @i of the instruction at @code refers to. */
static uintptr_t target_of(const uint8_t *code, size_t len, uintptr_t addr, unsigned int i)
{
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZyanU64 t = 0;

	if (!decode(code, len, &zi, ops))
		return 0;
	ZydisCalcAbsoluteAddress(&zi, &ops[i], addr, &t);
	return (uintptr_t)t;
}

static int analyse(const uint8_t *code, size_t size, struct lp_prologue *p)
{
	err[0] = 0;
	return lp_arch_analyse(code, size, FUNC_ADDR, p, err, sizeof(err));
}

static void put32(uint8_t *p, int32_t v)
{
	memcpy(p, &v, 4);
}

static void test_endbr64_prologue(void)
{
	static const uint8_t f[] = {
		0xf3, 0x0f, 0x1e, 0xfa,	      /* endbr64 */
		0x55,			      /* push rbp */
		0x48, 0x89, 0xe5,	      /* mov rbp, rsp */
		0x48, 0x83, 0xec, 0x10,	      /* sub rsp, 0x10 */
		0x89, 0x7d, 0xfc,	      /* mov [rbp-4], edi */
		0xc9,			      /* leave */
		0xc3,			      /* ret */
	};
	struct lp_prologue p;

	CHECK_EQ(analyse(f, sizeof(f), &p), 0);
	CHECK_EQ(p.func, FUNC_ADDR);
	CHECK_EQ(p.site, FUNC_ADDR + 4);
	CHECK_EQ(p.len, 8);
	CHECK(!p.padding);
	CHECK_EQ(p.ninsns, 3);
	CHECK_EQ(p.insn_off[0], 0);
	CHECK_EQ(p.insn_off[1], 1);
	CHECK_EQ(p.insn_off[2], 4);
	CHECK(!memcmp(p.orig, f + 4, 8));
}

static void test_push_rbp_prologue(void)
{
	static const uint8_t f[] = {
		0x55,			      /* push rbp */
		0x48, 0x89, 0xe5,	      /* mov rbp, rsp */
		0xb8, 0x01, 0x00, 0x00, 0x00, /* mov eax, 1 */
		0x5d,			      /* pop rbp */
		0xc3,			      /* ret */
	};
	struct lp_prologue p;

	CHECK_EQ(analyse(f, sizeof(f), &p), 0);
	CHECK_EQ(p.site, FUNC_ADDR);
	CHECK_EQ(p.len, 9);
	CHECK_EQ(p.ninsns, 3);
	CHECK_EQ(p.insn_off[2], 4);
}

static void test_padding(void)
{
	static const uint8_t nops[] = {
		0x90, 0x90, 0x90, 0x90, 0x90, /* -fpatchable-function-entry=5 */
		0x89, 0xf8,		      /* mov eax, edi */
		0xc3,
	};
	static const uint8_t nopl[] = {
		0xf3, 0x0f, 0x1e, 0xfa,
		0x0f, 0x1f, 0x44, 0x00, 0x00, /* nopl 0(%rax,%rax) */
		0xc3,
	};
	static const uint8_t few[] = {
		0x90, 0x90, 0x90,
		0x31, 0xc0, 0xc3,
	};
	uint8_t buf[64], map[LP_MAX_INSNS];
	struct lp_prologue p;
	ssize_t n;

	CHECK_EQ(analyse(nops, sizeof(nops), &p), 0);
	CHECK(p.padding);
	CHECK_EQ(p.len, 5);
	CHECK_EQ(p.ninsns, 5);
	CHECK_EQ(p.insn_off[4], 4);

	n = lp_arch_relocate(&p, buf, sizeof(buf), FUNC_ADDR + 0x100000, map, err, sizeof(err));
	CHECK_EQ(n, 5);
	CHECK_EQ(map[0], 0);
	CHECK_EQ(map[4], 0);
	CHECK_EQ(target_of(buf, n, FUNC_ADDR + 0x100000, 0), FUNC_ADDR + 5);

	CHECK_EQ(analyse(nopl, sizeof(nopl), &p), 0);
	CHECK(p.padding);
	CHECK_EQ(p.site, FUNC_ADDR + 4);
	CHECK_EQ(p.len, 5);
	CHECK_EQ(p.ninsns, 1);

	/* three nops do not cover the jump: ordinary relocation */
	CHECK_EQ(analyse(few, sizeof(few), &p), 0);
	CHECK(!p.padding);
	CHECK_EQ(p.len, 5);
	CHECK_EQ(p.ninsns, 4);
}

/* The loader's hook: a `ret` followed by padding up to the next function. */
static void test_between_functions(void)
{
	static const uint8_t hook[16] = {
		0xc3,							  /* ret */
		0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00, /* nopw */
		0x0f, 0x1f, 0x40, 0x00,					  /* nopl */
	};
	static const uint8_t int3s[] = {0xcc, 0xcc, 0x90, 0xcc};
	static const uint8_t code[] = {0x90, 0x31, 0xc0};
	struct lp_prologue p;

	CHECK(lp_arch_is_padding(hook + 1, sizeof(hook) - 1, FUNC_ADDR + 1));
	CHECK(lp_arch_is_padding(int3s, sizeof(int3s), FUNC_ADDR));
	CHECK(lp_arch_is_padding(hook, 0, FUNC_ADDR));
	CHECK(!lp_arch_is_padding(code, sizeof(code), FUNC_ADDR));
	CHECK(!lp_arch_is_padding(hook, sizeof(hook), FUNC_ADDR));
	/* Cut inside the nopw: not whole instructions, not padding. */
	CHECK(!lp_arch_is_padding(hook + 1, 6, FUNC_ADDR + 1));

	/* One byte alone is too short; with its padding the jump fits. */
	CHECK(analyse(hook, 1, &p) < 0);
	CHECK_EQ(analyse(hook, sizeof(hook), &p), 0);
	CHECK_EQ(p.site, FUNC_ADDR);
	CHECK_EQ(p.len, 12);
	CHECK_EQ(p.ninsns, 2);
}

/* Callees of the functions in test_clobbers(): one at CALLEE_ADDR. */
#define CALLEE_ADDR (FUNC_ADDR + 0x1000)
static const uint8_t callee_code[] = {
	0x4c, 0x89, 0xc0, /* mov %r8, %rax */
	0xc3,
};

static int find_callee(uintptr_t addr, const uint8_t **code, size_t *size, void *arg)
{
	(void)arg;
	if (addr != CALLEE_ADDR)
		return -1;
	*code = callee_code;
	*size = sizeof(callee_code);
	return 0;
}

static void test_clobbers(void)
{
	static const struct lp_clobber_ctx ctx = {.callee = find_callee};
	static const struct lp_clobber_ctx none;
	static const uint8_t leaf[] = {
		0x89, 0xf8,	    /* mov %edi, %eax */
		0x0f, 0xaf, 0xc6,   /* imul %esi, %eax */
		0x48, 0x63, 0xd0,   /* movslq %eax, %rdx */
		0xc3,
	};
	static const uint8_t saves[] = {
		0x51,		    /* push %rcx */
		0x41, 0x50,	    /* push %r8 */
		0x89, 0xf9,	    /* mov %edi, %ecx */
		0x45, 0x31, 0xc0,   /* xor %r8d, %r8d */
		0x8d, 0x04, 0x0f,   /* lea (%rdi,%rcx), %eax */
		0x41, 0x58,	    /* pop %r8 */
		0x59,		    /* pop %rcx */
		0xc3,
	};
	static const uint8_t vector[] = {
		0x66, 0x0f, 0xef, 0xc9, /* pxor %xmm1, %xmm1 */
		0xc3,
	};
	static const uint8_t syscall_insn[] = {0x0f, 0x05, 0xc3}; /* syscall: rax, rcx, r11 */
	/* call CALLEE_ADDR (mov %r8, %rax); call a function not known */
	uint8_t calls[] = {0xe8, 0, 0, 0, 0, 0xc3};
	uint8_t unknown[] = {0xe8, 0, 0, 0, 0, 0xc3};
	char names[128];

	uint32_t rel = (uint32_t)(CALLEE_ADDR - (FUNC_ADDR + 5)), far = 0x12345;

	memcpy(calls + 1, &rel, sizeof(rel));
	memcpy(unknown + 1, &far, sizeof(far));

	CHECK_EQ(lp_arch_clobbers(&none, leaf, sizeof(leaf), FUNC_ADDR, false), 0x5);
	CHECK_EQ(lp_arch_clobbers(&none, leaf, sizeof(leaf), FUNC_ADDR, true), 0x5);
	/* Pushed before written: saved, whatever the function does with them. */
	CHECK_EQ(lp_arch_clobbers(&none, saves, sizeof(saves), FUNC_ADDR, true), 0x1);
	CHECK_EQ(lp_arch_clobbers(&none, vector, sizeof(vector), FUNC_ADDR, true), 1u << 10);
	CHECK_EQ(lp_arch_clobbers(&none, syscall_insn, sizeof(syscall_insn), FUNC_ADDR, false),
		 0x1 | 0x2 | 0x100);
	/* A known callee counts with what it changes, an unknown one with everything. */
	CHECK_EQ(lp_arch_clobbers(&ctx, calls, sizeof(calls), FUNC_ADDR, false), 0x1);
	CHECK_EQ(lp_arch_clobbers(&ctx, unknown, sizeof(unknown), FUNC_ADDR, false),
		 LP_CLOBBER_ALL);
	/* A replacement's callees count for the general registers only. */
	CHECK_EQ(lp_arch_clobbers(&none, unknown, sizeof(unknown), FUNC_ADDR, true),
		 LP_CLOBBER_GPRS);
	/* Unknown size: from above, everything; from below, nothing. */
	CHECK_EQ(lp_arch_clobbers(&none, leaf, 0, FUNC_ADDR, true), LP_CLOBBER_ALL);
	CHECK_EQ(lp_arch_clobbers(&none, leaf, 0, FUNC_ADDR, false), 0);

	lp_arch_clobber_names(0x2 | 0x20 | 1u << 12, names, sizeof(names));
	CHECK(strcmp(names, "rcx, r8, xmm3") == 0);
}

static void test_rip_relative(void)
{
	uint8_t f[] = {
		0x48, 0x8b, 0x05, 0, 0, 0, 0, /* mov rax, [rip + X] */
		0xc3,
	};
	uintptr_t data = FUNC_ADDR + 0x2000, at = FUNC_ADDR + 0x40000000;
	uint8_t buf[64], map[LP_MAX_INSNS];
	struct lp_prologue p;
	ssize_t n;

	put32(f + 3, (int32_t)(data - (FUNC_ADDR + 7)));
	CHECK_EQ(analyse(f, sizeof(f), &p), 0);
	CHECK_EQ(p.len, 7);
	n = lp_arch_relocate(&p, buf, sizeof(buf), at, map, err, sizeof(err));
	CHECK_EQ(n, 7 + 5);
	CHECK_EQ(map[0], 0);
	CHECK_EQ(buf[0], 0x48);
	CHECK_EQ(target_of(buf, n, at, 1), data);
	CHECK_EQ(target_of(buf + 7, n - 7, at + 7, 0), FUNC_ADDR + 7);

	/* a trampoline that the disp32 cannot reach from */
	n = lp_arch_relocate(&p, buf, sizeof(buf), FUNC_ADDR + FAR, map, err, sizeof(err));
	CHECK_EQ(n, -1);
	CHECK(strstr(err, "out of reach"));

	/* lea with a RIP-relative operand is fine too */
	f[1] = 0x8d;
	CHECK_EQ(analyse(f, sizeof(f), &p), 0);
	n = lp_arch_relocate(&p, buf, sizeof(buf), at, map, err, sizeof(err));
	CHECK_EQ(n, 12);
	CHECK_EQ(target_of(buf, n, at, 1), data);
}

/* The displacement is not the last field: an immediate follows it. */
static void test_rip_relative_imm(void)
{
	uint8_t f[] = {
		0x81, 0x3d, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, /* cmp dword [rip + X], 0x7fffffff */
		0xc3,
	};
	uintptr_t data = FUNC_ADDR - 0x10000, at = FUNC_ADDR - 0x70000000;
	uint8_t buf[64], map[LP_MAX_INSNS];
	struct lp_prologue p;
	ssize_t n;

	put32(f + 2, (int32_t)(data - (FUNC_ADDR + 10)));
	CHECK_EQ(analyse(f, sizeof(f), &p), 0);
	CHECK_EQ(p.len, 10);
	n = lp_arch_relocate(&p, buf, sizeof(buf), at, map, err, sizeof(err));
	CHECK_EQ(n, 15);
	CHECK_EQ(target_of(buf, n, at, 0), data);
	CHECK(!memcmp(buf + 6, f + 6, 4));
}

static void test_jmp(void)
{
	uint8_t f[] = {
		0xf3, 0x0f, 0x1e, 0xfa,
		0x45, 0x31, 0xc0,	      /* xor r8d, r8d */
		0xe9, 0, 0, 0, 0,	      /* jmp qsort_r */
	};
	uintptr_t dest = FUNC_ADDR - 0x1234, at = FUNC_ADDR + 0x10000000;
	uint8_t buf[64], map[LP_MAX_INSNS];
	struct lp_prologue p;
	ssize_t n;

	put32(f + 8, (int32_t)(dest - (FUNC_ADDR + 12)));
	CHECK_EQ(analyse(f, sizeof(f), &p), 0);
	CHECK_EQ(p.site, FUNC_ADDR + 4);
	CHECK_EQ(p.len, 8);
	CHECK_EQ(p.ninsns, 2);
	n = lp_arch_relocate(&p, buf, sizeof(buf), at, map, err, sizeof(err));
	CHECK_EQ(n, 3 + 5 + 5);
	CHECK_EQ(map[1], 3);
	CHECK(!memcmp(buf, f + 4, 3));
	CHECK_EQ(buf[3], 0xe9);
	CHECK_EQ(target_of(buf + 3, 5, at + 3, 0), dest);
	CHECK_EQ(target_of(buf + 8, 5, at + 8, 0), FUNC_ADDR + 12);

	/* far away: jmp *0(%rip) with the absolute target behind it */
	at = FUNC_ADDR + FAR;
	n = lp_arch_relocate(&p, buf, sizeof(buf), at, map, err, sizeof(err));
	CHECK_EQ(n, 3 + 14 + 14);
	CHECK_EQ(buf[3], 0xff);
	CHECK_EQ(buf[4], 0x25);
	CHECK_EQ(target_of(buf + 3, 14, at + 3, 0), at + 3 + 6);
	CHECK(!memcmp(buf + 9, &dest, 8));
	CHECK_EQ(map[1], 3);
}

static void test_jcc(void)
{
	static const uint8_t f[] = {
		0x85, 0xff,		      /* test edi, edi */
		0x74, 0x06,		      /* je +6 */
		0xb8, 0x01, 0x00, 0x00, 0x00, /* mov eax, 1 */
		0xc3,
		0xb8, 0x02, 0x00, 0x00, 0x00, /* mov eax, 2 */
		0xc3,
	};
	uintptr_t at = FUNC_ADDR + 0x100000;
	uint8_t buf[64], map[LP_MAX_INSNS];
	struct lp_prologue p;
	ssize_t n;
	uint64_t abs;

	CHECK_EQ(analyse(f, sizeof(f), &p), 0);
	CHECK_EQ(p.len, 9);
	CHECK_EQ(p.ninsns, 3);
	n = lp_arch_relocate(&p, buf, sizeof(buf), at, map, err, sizeof(err));
	CHECK_EQ(n, 2 + 6 + 5 + 5);
	CHECK_EQ(map[1], 2);
	CHECK_EQ(map[2], 8);
	CHECK_EQ(buf[2], 0x0f);
	CHECK_EQ(buf[3], 0x84);
	CHECK_EQ(target_of(buf + 2, 6, at + 2, 0), FUNC_ADDR + 10);

	/* far away: jne over an absolute jump */
	at = FUNC_ADDR + FAR;
	n = lp_arch_relocate(&p, buf, sizeof(buf), at, map, err, sizeof(err));
	CHECK_EQ(n, 2 + 16 + 5 + 14);
	CHECK_EQ(buf[2], 0x75);
	CHECK_EQ(target_of(buf + 2, 2, at + 2, 0), at + 2 + 16);
	memcpy(&abs, buf + 10, 8);
	CHECK_EQ(abs, FUNC_ADDR + 10);
	CHECK_EQ(map[2], 18);
}

static void test_refusals(void)
{
	static const uint8_t short_fn[] = { 0x31, 0xc0, 0xc3 };
	static const uint8_t loop_back[] = {
		0x55,			/* push rbp */
		0x48, 0x89, 0xe5,	/* mov rbp, rsp */
		0x31, 0xc0,		/* xor eax, eax */
		0xff, 0xcf,		/* dec edi */
		0x75, 0xf7,		/* jne +1 */
		0x5d, 0xc3,
	};
	static const uint8_t loop_to_site[] = {
		0x31, 0xc0, 0x31, 0xc9, 0x31, 0xd2, /* xor eax/ecx/edx */
		0xff, 0xcf, 0x75, 0xf6,		/* dec edi; jne +0 */
		0xc3,
	};
	static const uint8_t call[] = {
		0xe8, 0, 0, 0, 0, 0xc3,
	};
	static const uint8_t sys[] = {
		0xb8, 0x27, 0, 0, 0,	/* mov eax, 39 */
		0x0f, 0x05,		/* syscall: fine outside the displaced bytes */
		0xc3,
	};
	static const uint8_t syscall_first[] = { 0x0f, 0x05, 0x90, 0x90, 0x90, 0xc3 };
	static const uint8_t bad_body[] = {
		0x48, 0x89, 0xf8,	/* mov rax, rdi */
		0x48, 0x89, 0xf2,	/* mov rdx, rsi */
		0x06,			/* push es: invalid in 64-bit mode */
		0xc3,
	};
	static const uint8_t call_into[] = {
		0x48, 0x89, 0xf8,		/* mov rax, rdi */
		0x48, 0x89, 0xf2,		/* mov rdx, rsi */
		0xe8, 0xf6, 0xff, 0xff, 0xff,	/* call +1 */
		0xc3,
	};
	static const uint8_t tail_ret[] = { 0x31, 0xc0, 0x90, 0x90, 0xc3 };
	static const uint8_t rip_read[] = {
		0x48, 0x8d, 0x05, 0, 0, 0, 0, /* lea rax, [rip] */
		0x0f, 0x01, 0xd0,	      /* xgetbv: unrelated */
		0xc3,
	};
	struct lp_prologue p;

	CHECK_EQ(analyse(short_fn, sizeof(short_fn), &p), -1);
	CHECK(strstr(err, "function too short"));
	CHECK(!strchr(err, '\n'));
	CHECK_EQ(analyse(short_fn, 0, &p), -1);
	CHECK(strstr(err, "unknown function size"));

	CHECK_EQ(analyse(loop_back, sizeof(loop_back), &p), -1);
	CHECK(strstr(err, "into the displaced bytes"));
	CHECK(strstr(err, "+0x8"));

	/* back to the very start is fine: it is the function entry */
	CHECK_EQ(analyse(loop_to_site, sizeof(loop_to_site), &p), 0);

	CHECK_EQ(analyse(call, sizeof(call), &p), -1);
	CHECK(strstr(err, "call at +0x0"));

	CHECK_EQ(analyse(sys, sizeof(sys), &p), 0);
	CHECK_EQ(analyse(syscall_first, sizeof(syscall_first), &p), -1);
	CHECK(strstr(err, "unsupported instruction syscall at +0x0"));

	CHECK_EQ(analyse(bad_body, sizeof(bad_body), &p), -1);
	CHECK(strstr(err, "cannot decode instruction at +0x6"));

	CHECK_EQ(analyse(call_into, sizeof(call_into), &p), -1);
	CHECK(strstr(err, "branch at +0x6 into the displaced bytes (+0x1)"));

	CHECK_EQ(analyse(tail_ret, sizeof(tail_ret), &p), 0);
	CHECK_EQ(p.len, 5);

	CHECK_EQ(analyse(rip_read, sizeof(rip_read), &p), 0);
}

static void test_refuse_more(void)
{
	static const uint8_t ud2[] = { 0x31, 0xc0, 0x0f, 0x0b, 0x90, 0xc3 };
	static const uint8_t int3[] = { 0xcc, 0x90, 0x90, 0x90, 0x90, 0xc3 };
	static const uint8_t loop[] = { 0x31, 0xc0, 0xe2, 0xfc, 0x90, 0xc3 };
	static const uint8_t jrcxz[] = { 0xe3, 0x03, 0x31, 0xc0, 0x90, 0xc3 };
	static const uint8_t call_ind[] = { 0x90, 0xff, 0xd0, 0x90, 0x90, 0xc3 };
	/* xbegin: a relative abort target that is not a jump */
	static const uint8_t xbegin[] = { 0xc7, 0xf8, 0, 0, 0, 0, 0xc3 };
	/* the last instruction sticks out of the given size */
	static const uint8_t cut[] = { 0x55, 0x48, 0x89, 0xe5, 0xb8, 1, 0, 0, 0, 0xc3 };
	struct lp_prologue p;

	CHECK_EQ(analyse(ud2, sizeof(ud2), &p), -1);
	CHECK(strstr(err, "unsupported instruction ud2 at +0x2"));
	CHECK_EQ(analyse(int3, sizeof(int3), &p), -1);
	CHECK(strstr(err, "int3"));
	CHECK_EQ(analyse(loop, sizeof(loop), &p), -1);
	CHECK(strstr(err, "unsupported instruction loop at +0x2"));
	CHECK_EQ(analyse(jrcxz, sizeof(jrcxz), &p), -1);
	CHECK(strstr(err, "jrcxz"));
	CHECK_EQ(analyse(call_ind, sizeof(call_ind), &p), -1);
	CHECK(strstr(err, "call at +0x1"));
	CHECK_EQ(analyse(xbegin, sizeof(xbegin), &p), -1);
	CHECK(strstr(err, "unsupported instruction xbegin"));
	CHECK_EQ(analyse(cut, 6, &p), -1);
	CHECK(strstr(err, "function too short: 6 bytes"));
}

static void test_relocate_small_buffer(void)
{
	static const uint8_t f[] = { 0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3 };
	uint8_t buf[64], map[LP_MAX_INSNS];
	struct lp_prologue p;

	CHECK_EQ(analyse(f, sizeof(f), &p), 0);
	CHECK_EQ(p.len, 5);
	CHECK_EQ(lp_arch_relocate(&p, buf, 9, FUNC_ADDR + 64, map, err, sizeof(err)), -1);
	CHECK(strstr(err, "too small"));
	CHECK_EQ(lp_arch_relocate(&p, buf, 10, FUNC_ADDR + 64, map, err, sizeof(err)), 10);
}

static void test_encode_jmp(void)
{
	uint8_t b[LP_JMP_SIZE];
	int32_t rel;

	CHECK_EQ(lp_arch_encode_jmp(b, 0x1000, 0x2000), 0);
	CHECK_EQ(b[0], 0xe9);
	memcpy(&rel, b + 1, 4);
	CHECK_EQ(rel, 0x2000 - 0x1005);
	CHECK_EQ(lp_arch_encode_jmp(b, 0x2000, 0x1000), 0);
	memcpy(&rel, b + 1, 4);
	CHECK_EQ(rel, 0x1000 - 0x2005);
	CHECK_EQ(lp_arch_encode_jmp(b, FUNC_ADDR, FUNC_ADDR + FAR), -1);
	CHECK_EQ(lp_arch_encode_jmp(b, FUNC_ADDR + FAR, FUNC_ADDR), -1);
}

/*
 * The stubs, run: a thread-local state and pending byte like the runtime's,
 * the stubs in an executable page, and two implementations that tell which
 * one ran.  The switch hook clobbers every register it may, to prove that
 * the stub's call keeps the arguments of the function being entered.
 */
struct stub_task {
	uint8_t state, pending;
};
static __thread struct stub_task stub_task __attribute__((tls_model("initial-exec")));
static int switch_calls;
static uintptr_t switch_sp;

/* Called by lp_arch_switch_entry: the runtime's hook, here a stand-in. */
void lp_task_self_switch(uintptr_t sp);
void lp_task_self_switch(uintptr_t sp)
{
	switch_calls++;
	switch_sp = sp;
	stub_task.state = 2; /* switched to "patched" */
	stub_task.pending = 0;
	__asm__ volatile("mov $-1, %%rdi; mov $-1, %%rsi; mov $-1, %%rdx; mov $-1, %%rcx\n"
			 "mov $-1, %%r8; mov $-1, %%r9; mov $-1, %%r10; mov $-1, %%r11\n"
			 "mov $-1, %%rax; pcmpeqd %%xmm0, %%xmm0; pcmpeqd %%xmm7, %%xmm7\n"
			 "pcmpeqd %%xmm15, %%xmm15"
			 :
			 :
			 : "rdi", "rsi", "rdx", "rcx", "r8", "r9", "r10", "r11", "rax", "xmm0",
			   "xmm7", "xmm15");
}

/* The loader hook's handler, called by lp_arch_loader_entry: a stand-in. */
void lp_loader_event(void);
void lp_loader_event(void)
{
	lp_task_self_switch(0);
}

/*
 * Both entries keep every call-clobbered register for their caller, as a
 * caller built with -fipa-ra may count on, however the C function they
 * call (the stand-ins above) changes them.
 */
static void test_entries_keep_registers(void (*entry)(void))
{
	uint64_t out[10];

	__asm__ volatile("mov $0x1001, %%rax\n\tmov $0x1002, %%rcx\n\tmov $0x1003, %%rdx\n\t"
			 "mov $0x1004, %%rsi\n\tmov $0x1005, %%rdi\n\tmov $0x1006, %%r8\n\t"
			 "mov $0x1007, %%r9\n\tmov $0x1008, %%r10\n\tmov $0x1009, %%r11\n\t"
			 "movq %%r11, %%xmm15\n\t"
			 "sub $128, %%rsp\n\t" /* the red zone is the compiler's */
			 "call *%[entry]\n\t"
			 "add $128, %%rsp\n\t"
			 "mov %%rax, 0(%%rbx)\n\tmov %%rcx, 8(%%rbx)\n\tmov %%rdx, 16(%%rbx)\n\t"
			 "mov %%rsi, 24(%%rbx)\n\tmov %%rdi, 32(%%rbx)\n\tmov %%r8, 40(%%rbx)\n\t"
			 "mov %%r9, 48(%%rbx)\n\tmov %%r10, 56(%%rbx)\n\tmov %%r11, 64(%%rbx)\n\t"
			 "movq %%xmm15, 72(%%rbx)"
			 :
			 : "b"(out), [entry] "r"(entry)
			 : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0",
			   "xmm7", "xmm15", "memory", "cc");
	for (int i = 0; i < 9; i++)
		CHECK_EQ(out[i], 0x1001u + (unsigned)i);
	CHECK_EQ(out[9], 0x1009u);
}

typedef double (*args_fn)(long, long, long, long, long, long, double, double);

static __attribute__((noipa)) double impl_patched(long a, long b, long c, long d, long e, long f,
						   double x, double y)
{
	return 1000 + a + b + c + d + e + f + x + y;
}

static __attribute__((noipa)) double impl_unpatched(long a, long b, long c, long d, long e, long f,
						     double x, double y)
{
	return 2000 + a + b + c + d + e + f + x + y;
}

static int32_t tls_off(const void *field)
{
	uintptr_t tp;

	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return (int32_t)((intptr_t)field - (intptr_t)tp);
}

static double call_stub(uintptr_t at)
{
	return ((args_fn)at)(1, 2, 3, 4, 5, 6, 0.5, 0.25);
}

static void test_stubs(void)
{
	uint8_t *page = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t *slots = (uintptr_t *)(page + 4096);
	struct lp_stub_layout l = {
		.at = (uintptr_t)page,
		.slot_target = (uintptr_t)&slots[0],
		.slot_patched = (uintptr_t)&slots[1],
		.slot_unpatched = (uintptr_t)&slots[2],
		.slot_switch = (uintptr_t)&slots[3],
		.state_tpoff = tls_off(&stub_task.state),
		.pending_tpoff = tls_off(&stub_task.pending),
		.state_unpatched = 1,
	};
	struct lp_stub_offsets off;
	const double sum = 21.75;

	CHECK(page != MAP_FAILED);
	CHECK_EQ(lp_arch_emit_stubs(&l, page, 128, &off), 0);
	CHECK_EQ(off.entry, 0);
	CHECK_EQ((l.at + off.slow) % 16, 0);
	CHECK(off.size <= 128);
	slots[0] = l.at + off.slow;
	slots[1] = (uintptr_t)impl_patched;
	slots[2] = (uintptr_t)impl_unpatched;
	slots[3] = (uintptr_t)lp_arch_switch_entry;

	/* The entry jumps through the target slot, the slow stub by state. */
	stub_task.state = 1;
	CHECK(call_stub(l.at + off.entry) == 2000 + sum);
	stub_task.state = 2;
	CHECK(call_stub(l.at + off.entry) == 1000 + sum);
	stub_task.state = 0; /* idle: not unpatched */
	CHECK(call_stub(l.at + off.slow) == 1000 + sum);
	slots[0] = (uintptr_t)impl_unpatched;
	CHECK(call_stub(l.at + off.entry) == 2000 + sum);
	CHECK_EQ(switch_calls, 0);

	/* A pending thread: the hook runs first, with the entry stack pointer,
	 * and the dispatch follows the state it left, arguments intact. */
	slots[0] = l.at + off.slow;
	stub_task.state = 1;
	stub_task.pending = 1;
	CHECK(call_stub(l.at + off.entry) == 1000 + sum);
	CHECK_EQ(switch_calls, 1);
	CHECK(switch_sp % 16 == 8); /* a function's entry: its return address on top */
	CHECK_EQ(stub_task.pending, 0);

	CHECK_EQ(lp_arch_emit_stubs(&l, page, off.size - 1, &off), -1);
	l.slot_unpatched = l.at + FAR;
	CHECK_EQ(lp_arch_emit_stubs(&l, page, 128, &off), -1);
	munmap(page, 2 * 4096);
}

/*
 * Running relocated code: functions as bytes in an RWX mapping at P, their
 * trampoline at P + 1 MiB.
 */
#define EXEC_MAP (2u << 20)
#define TRAMP_OFF (1u << 20)

typedef int (*int_fn)(int);

/* Redirect the function at @f (@size bytes) to its own relocated copy at @t. */
static int_fn patch_to_orig(uint8_t *f, size_t size, uint8_t *t)
{
	uint8_t map[LP_MAX_INSNS], jmp[LP_JMP_SIZE];
	struct lp_prologue p;
	ssize_t n;

	if (lp_arch_analyse(f, size, (uintptr_t)f, &p, err, sizeof(err)))
		return NULL;
	n = lp_arch_relocate(&p, t, 256, (uintptr_t)t, map, err, sizeof(err));
	if (n < 0 || lp_arch_encode_jmp(jmp, p.site, (uintptr_t)t))
		return NULL;
	memcpy((uint8_t *)p.site, jmp, sizeof(jmp));
	return (int_fn)(uintptr_t)t;
}

static void check_patched(uint8_t *mem, size_t foff, const uint8_t *code, size_t size,
			  const int *args, size_t nargs)
{
	uint8_t *f = mem + foff, *t = mem + TRAMP_OFF + foff;
	int_fn fn = (int_fn)(uintptr_t)f, orig;
	int want[8];

	memcpy(f, code, size);
	for (size_t i = 0; i < nargs; i++)
		want[i] = fn(args[i]);
	orig = patch_to_orig(f, size, t);
	CHECK(orig != NULL);
	if (!orig) {
		fprintf(stderr, "patching +0x%zx: %s\n", foff, err);
		return;
	}
	CHECK_EQ(f[f[0] == 0xf3 ? 4 : 0], 0xe9);
	for (size_t i = 0; i < nargs; i++) {
		CHECK_EQ(fn(args[i]), want[i]);
		CHECK_EQ(orig(args[i]), want[i]);
	}
}

static void test_exec(void)
{
	static const uint8_t rip_add[] = {
		0x8b, 0x05, 0xfa, 0x07, 0x00, 0x00, /* mov eax, [rip + 0x7fa]: +0x800 */
		0x01, 0xf8,			    /* add eax, edi */
		0xc3,
	};
	static const uint8_t jcc_entry[] = {
		0x85, 0xff, 0x74, 0x06, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3,
		0xb8, 0x02, 0x00, 0x00, 0x00, 0xc3,
	};
	static const uint8_t endbr_lea[] = {
		0xf3, 0x0f, 0x1e, 0xfa,
		0x53,			/* push rbx */
		0x89, 0xfb,		/* mov ebx, edi */
		0x8d, 0x04, 0x1b,	/* lea eax, [rbx + rbx] */
		0x5b,			/* pop rbx */
		0xc3,
	};
	static const uint8_t tail_jmp[] = {
		0x45, 0x31, 0xc0,		/* xor r8d, r8d */
		0xe9, 0xf8, 0x00, 0x00, 0x00,	/* jmp +0x100 */
	};
	static const uint8_t inc_r8[] = {
		0x42, 0x8d, 0x44, 0x07, 0x01,	/* lea eax, [rdi + r8 + 1] */
		0xc3,
	};
	static const uint8_t padded[] = {
		0x90, 0x90, 0x90, 0x90, 0x90, 0x8d, 0x47, 0xfd, 0xc3, /* lea eax, [rdi-3] */
	};
	static const int args[] = { 0, 1, -7, 1000 };
	uint8_t *mem = mmap(NULL, EXEC_MAP, PROT_READ | PROT_WRITE | PROT_EXEC,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int32_t data = 40;

	CHECK(mem != MAP_FAILED);
	if (mem == MAP_FAILED)
		return;
	memset(mem, 0xcc, EXEC_MAP);
	memcpy(mem + 0x800, &data, sizeof(data));
	check_patched(mem, 0, rip_add, sizeof(rip_add), args, 4);
	CHECK_EQ(((int_fn)(uintptr_t)mem)(2), 42);
	check_patched(mem, 0x100, jcc_entry, sizeof(jcc_entry), args, 4);
	check_patched(mem, 0x200, endbr_lea, sizeof(endbr_lea), args, 4);
	memcpy(mem + 0x400, inc_r8, sizeof(inc_r8));
	check_patched(mem, 0x300, tail_jmp, sizeof(tail_jmp), args, 4);
	check_patched(mem, 0x500, padded, sizeof(padded), args, 4);
	munmap(mem, EXEC_MAP);
}

/* A trampoline out of rel32 reach: the absolute jump forms have to work. */
static void test_exec_far(void)
{
	static const uint8_t jcc_entry[] = {
		0x85, 0xff, 0x74, 0x06, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3,
		0xb8, 0x02, 0x00, 0x00, 0x00, 0xc3,
	};
	uint8_t map[LP_MAX_INSNS];
	struct lp_prologue p;
	uint8_t *f, *t;
	int_fn orig;
	ssize_t n;

	f = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	CHECK(f != MAP_FAILED);
	if (f == MAP_FAILED)
		return;
	t = mmap(f - (UINT64_C(16) << 30), 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (t == MAP_FAILED) {
		fprintf(stderr, "test_exec_far: no far mapping, skipped\n");
		munmap(f, 4096);
		return;
	}
	memcpy(f, jcc_entry, sizeof(jcc_entry));
	CHECK_EQ(lp_arch_analyse(f, sizeof(jcc_entry), (uintptr_t)f, &p, err, sizeof(err)), 0);
	n = lp_arch_relocate(&p, t, 4096, (uintptr_t)t, map, err, sizeof(err));
	CHECK_EQ(n, 2 + 16 + 5 + 14);
	orig = (int_fn)(uintptr_t)t;
	CHECK_EQ(orig(0), 2);
	CHECK_EQ(orig(5), 1);
	munmap(t, 4096);
	munmap(f, 4096);
}

/* Analyse a real libc function; returns 0 when it could be redirected. */
static int analyse_libc(const char *name, struct lp_prologue *p)
{
	void *addr = dlsym(RTLD_DEFAULT, name);
	const ElfW(Sym) *sym = NULL;
	Dl_info info;

	if (!addr || !dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym ||
	    info.dli_saddr != addr || !sym->st_size) {
		fprintf(stderr, "%s: no symbol size, skipped\n", name);
		return 1;
	}
	if (lp_arch_analyse(addr, sym->st_size, (uintptr_t)addr, p, err, sizeof(err))) {
		fprintf(stderr, "%s: refused: %s\n", name, err);
		return -1;
	}
	CHECK(p->site == (uintptr_t)addr || p->site == (uintptr_t)addr + 4);
	CHECK(p->len >= LP_JMP_SIZE && p->len <= LP_MAX_DISPLACED);
	CHECK(p->site + p->len <= (uintptr_t)addr + sym->st_size);
	CHECK(!memcmp(p->orig, (void *)p->site, p->len));
	return 0;
}

static void test_libc(void)
{
	static const char *const names[] = {
		"qsort", "abs", "labs", "atoi", "getpid", "strtol", "malloc", "free", "fopen",
		"printf", "memchr", "getenv", "pthread_mutex_lock",
	};
	uint8_t buf[128], map[LP_MAX_INSNS];
	struct lp_prologue p;
	int ok = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (analyse_libc(names[i], &p))
			continue;
		ok++;
		CHECK(lp_arch_relocate(&p, buf, sizeof(buf), p.site + 0x10000, map, err,
				       sizeof(err)) > 0);
	}
	CHECK(ok > 0);
	CHECK_EQ(analyse_libc("qsort", &p), 0);
}

int main(void)
{
	test_endbr64_prologue();
	test_push_rbp_prologue();
	test_padding();
	test_between_functions();
	test_clobbers();
	test_rip_relative();
	test_rip_relative_imm();
	test_jmp();
	test_jcc();
	test_refusals();
	test_refuse_more();
	test_relocate_small_buffer();
	test_encode_jmp();
	test_stubs();
	test_entries_keep_registers(lp_arch_switch_entry);
	test_entries_keep_registers(lp_arch_loader_entry);
	test_exec();
	test_exec_far();
	test_libc();
	return CHECK_DONE();
}
