/* SPDX-License-Identifier: MIT */
/* nodesc.c - bad input: a shared object without lp_patch_descriptor. */
int nodesc_compute(int x);

int nodesc_compute(int x)
{
	return x * 100;
}
