/* SPDX-License-Identifier: MIT */
/*
 * nolibc - a dynamically linked program without any C library: the
 * dynamic loader runs it, but there is no libc.so.6 to load a runtime with
 * (tests/e2e/84-inject-exit.sh: the injector refuses it).  Prints
 * "ready", then echoes its input until end of file.
 */
static long sys3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}
void _start(void)
{
	char c;
	sys3(1, 1, (long)"ready\n", 6);
	while (sys3(0, 0, (long)&c, 1) > 0)
		sys3(1, 1, (long)&c, 1);
	sys3(231, 0, 0, 0);
}
