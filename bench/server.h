/* SPDX-License-Identifier: MIT */
/*
 * server.h - the request and answer of bench/server and bench/load: fixed
 * size, so a connection only ever waits for whole messages.  The answer's
 * first byte says which handler made it: 'A' the original, 'B' the patch's.
 */
#ifndef LP_BENCH_SERVER_H
#define LP_BENCH_SERVER_H

#define BENCH_MSG 16

#endif
