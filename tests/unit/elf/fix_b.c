// SPDX-License-Identifier: MIT
/* Fixture for test_elf: the second static dup_helper(). */
extern int fix_var;
int fix_other(void);

__attribute__((noinline, used)) static int dup_helper(void)
{
	return fix_var * 2;
}

int fix_other(void)
{
	return dup_helper() + 1;
}
