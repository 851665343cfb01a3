// SPDX-License-Identifier: MIT
/* Fixture for test_elf: one of two files with a static dup_helper(). */
int fix_global(int x);
int fix_ifunc(void);

int fix_var = 42;
__thread int fix_tls = 3;

__attribute__((noinline, used)) static int dup_helper(void)
{
	return fix_var + 1;
}

int fix_global(int x)
{
	return x + dup_helper();
}

static int fix_ifunc_impl(void)
{
	return 7;
}

/* An IFUNC symbol: its address is the resolver's. */
static int (*fix_ifunc_resolve(void))(void)
{
	return fix_ifunc_impl;
}

int fix_ifunc(void) __attribute__((ifunc("fix_ifunc_resolve")));
