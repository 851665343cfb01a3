// SPDX-License-Identifier: MIT
#include "protocol.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

socklen_t lp_proto_address(pid_t pid, struct sockaddr_un *addr)
{
	int n;

	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	/* Abstract: no file to clean up, and it vanishes with the process. */
	n = snprintf(addr->sun_path + 1, sizeof(addr->sun_path) - 1, "lpatch/%d", (int)pid);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int lp_proto_connect(pid_t pid)
{
	struct sockaddr_un addr;
	socklen_t len = lp_proto_address(pid, &addr);
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct timeval bound = {.tv_sec = LP_PROTO_CONNECT_TIMEOUT}, none = {0};

	if (sock < 0)
		return -1;
	/* An agent that accepts nothing fills its backlog: connect() would wait for good. */
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof(bound));
	if (connect(sock, (struct sockaddr *)&addr, len) < 0) {
		int e = errno;

		close(sock);
		errno = e;
		return -1;
	}
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
	return sock;
}

int lp_proto_send(int sock, enum lp_msg_type type, int code, const void *payload, size_t len,
		  int fd)
{
	struct lp_msg_hdr hdr = {
	    .magic = LP_PROTO_MAGIC, .type = type, .code = code, .len = (uint32_t)len};
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {(void *)payload, len}};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t n;

	if (len > LP_PROTO_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

int lp_proto_sendf(int sock, enum lp_msg_type type, int code, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;
	int n, ret;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	ret = lp_proto_send(sock, type, code, text, (size_t)n, -1);
	free(text);
	return ret;
}

static int received_fd(struct msghdr *mh)
{
	int fd = -1;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	}
	return fd;
}

int lp_proto_recv(int sock, struct lp_msg *msg)
{
	struct lp_msg_hdr hdr;
	char *buf = malloc(sizeof(hdr) + LP_PROTO_MAX_PAYLOAD);
	struct iovec iov = {buf, sizeof(hdr) + LP_PROTO_MAX_PAYLOAD};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	ssize_t n;

	memset(msg, 0, sizeof(*msg));
	msg->fd = -1;
	if (!buf)
		return -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		free(buf);
		if (n == 0)
			errno = ECONNRESET;
		return -1;
	}
	msg->fd = received_fd(&mh);
	memcpy(&hdr, buf, sizeof(hdr) <= (size_t)n ? sizeof(hdr) : (size_t)n);
	if ((size_t)n < sizeof(hdr) || hdr.magic != LP_PROTO_MAGIC ||
	    hdr.len != (size_t)n - sizeof(hdr) || (mh.msg_flags & MSG_TRUNC) ||
	    hdr.type < LP_MSG_REQUEST || hdr.type > LP_MSG_RESULT) {
		free(buf);
		if (msg->fd >= 0)
			close(msg->fd);
		msg->fd = -1;
		errno = EPROTO;
		return -1;
	}
	memmove(buf, buf + sizeof(hdr), hdr.len);
	buf[hdr.len] = '\0';
	msg->type = (enum lp_msg_type)hdr.type;
	msg->code = hdr.code;
	msg->payload = buf;
	msg->len = hdr.len;
	return 0;
}

void lp_msg_release(struct lp_msg *msg)
{
	free(msg->payload);
	msg->payload = NULL;
	if (msg->fd >= 0)
		close(msg->fd);
	msg->fd = -1;
}

int lp_proto_words(const struct lp_msg *msg, const char **words, int max)
{
	size_t pos = 0;
	int n = 0;

	/* A word list is non-empty and ends with its last word's NUL. */
	if (msg->len == 0 || msg->payload[msg->len - 1] != '\0')
		return -1;
	while (pos < msg->len) {
		if (n == max)
			return -1;
		words[n++] = msg->payload + pos;
		pos += strlen(msg->payload + pos) + 1;
	}
	return n;
}
