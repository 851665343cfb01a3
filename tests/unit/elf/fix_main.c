// SPDX-License-Identifier: MIT
/* Fixture for test_elf: an executable, which is no patch. */
int main(void)
{
	return 0;
}
