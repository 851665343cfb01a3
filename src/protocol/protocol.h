/* SPDX-License-Identifier: MIT */
/*
 * The wire protocol between the lpatch command and the runtime's agent.
 *
 * The agent of process PID listens on the abstract UNIX socket
 * "@lpatch/PID" (SOCK_SEQPACKET).  Each message is one packet: a header and a
 * payload.  The client sends one REQUEST whose payload is the verb and its
 * arguments, each NUL-terminated, optionally with one file descriptor
 * (SCM_RIGHTS); the agent answers with any number of PROGRESS messages and
 * one RESULT.  A RESULT's code is 0 on success or an errno value; its
 * payload is the answer (JSON for "status", text otherwise) or, on failure,
 * a one-line reason.
 */
#ifndef LP_PROTOCOL_H
#define LP_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#define LP_PROTO_MAGIC	     0x4c503031u /* "LP01" */
#define LP_PROTO_MAX_PAYLOAD (1u << 20)
#define LP_PROTO_MAX_ARGS    8

enum lp_msg_type {
	LP_MSG_REQUEST = 1,
	LP_MSG_PROGRESS = 2,
	LP_MSG_RESULT = 3,
};

struct lp_msg_hdr {
	uint32_t magic;
	uint32_t type;
	int32_t code;
	uint32_t len;
};

struct lp_msg {
	enum lp_msg_type type;
	int code;
	char *payload; /* NUL-terminated; owned by the message */
	size_t len;    /* without the terminating NUL */
	int fd;	       /* received descriptor, or -1 */
};

/* Fill @addr with the agent address of @pid; returns the address length. */
socklen_t lp_proto_address(pid_t pid, struct sockaddr_un *addr);

/* Seconds a connect waits for an agent that accepts nothing (EAGAIN then). */
#define LP_PROTO_CONNECT_TIMEOUT 10

/* Connect to the agent of @pid; -1 with errno set when there is none. */
int lp_proto_connect(pid_t pid);

/* Send one message; @fd >= 0 is passed along.  Returns 0 or -1 (errno). */
int lp_proto_send(int sock, enum lp_msg_type type, int code, const void *payload, size_t len,
		  int fd);

/* Send a message whose payload is printf-formatted text. */
int lp_proto_sendf(int sock, enum lp_msg_type type, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Receive one message.  Returns 0, or -1 (errno; EPROTO for a malformed one). */
int lp_proto_recv(int sock, struct lp_msg *msg);
void lp_msg_release(struct lp_msg *msg);

/*
 * Split a request payload into NUL-terminated words.  Returns the number of
 * words (at most @max), or -1 when the payload is not a word list.
 */
int lp_proto_words(const struct lp_msg *msg, const char **words, int max);

#endif /* LP_PROTOCOL_H */
