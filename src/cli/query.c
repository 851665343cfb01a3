// SPDX-License-Identifier: MIT
/*
 * The read-only commands: status (JSON or human) and log.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_THREADS = 0x100, OPT_JSON };

static const struct option status_opts[] = {
    {"threads", no_argument, NULL, OPT_THREADS},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option plain_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

enum lp_req_status lp_query_status(pid_t pid, bool threads, unsigned int flags, int timeout,
				   struct json_object **status)
{
	char what[48];
	struct lp_request req = {
	    .pid = pid, .fd = -1, .timeout = timeout, .what = what, .flags = flags};
	enum lp_req_status st;
	char *answer;

	*status = NULL;
	snprintf(what, sizeof(what), "status of %d", (int)pid);
	lp_request_add(&req, "status");
	if (threads)
		lp_request_add(&req, "threads");
	st = lp_request(&req, &answer);
	if (st != LP_REQ_OK)
		return st;
	*status = json_tokener_parse(answer);
	free(answer);
	if (!*status || !json_object_is_type(*status, json_type_object)) {
		json_object_put(*status);
		*status = NULL;
		if (!(flags & LP_REQ_SILENT))
			lp_error("%s: the runtime's answer is not a JSON object", what);
		return LP_REQ_ERROR;
	}
	return LP_REQ_OK;
}

int lp_cmd_status(int argc, char **argv)
{
	bool threads = false, json = false;
	struct json_object *status;
	pid_t pid;
	int c, ret;

	while ((c = getopt_long(argc, argv, ":h", status_opts, NULL)) != -1) {
		switch (c) {
		case OPT_THREADS:
			threads = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		case 'h':
			lp_print_help(stdout);
			return LP_EXIT_OK;
		default:
			return lp_bad_option(argv[0], argv, c);
		}
	}
	ret = lp_expect_args(argv[0], argc - optind, 1, "[--threads] [--json] PID");
	if (ret == LP_EXIT_OK)
		ret = lp_parse_pid(argv[optind], &pid);
	if (ret != LP_EXIT_OK)
		return ret;
	if (lp_query_status(pid, threads, 0, 0, &status) != LP_REQ_OK)
		return LP_EXIT_FAIL;
	if (json)
		ret = lp_json_print(status);
	else
		lp_status_render(status, pid, threads);
	json_object_put(status);
	return ret;
}

int lp_cmd_log(int argc, char **argv)
{
	char what[48];
	struct lp_request req = {.fd = -1, .what = what};
	char *answer;
	size_t len;
	int c, ret;

	while ((c = getopt_long(argc, argv, ":h", plain_opts, NULL)) != -1) {
		if (c != 'h')
			return lp_bad_option(argv[0], argv, c);
		lp_print_help(stdout);
		return LP_EXIT_OK;
	}
	ret = lp_expect_args(argv[0], argc - optind, 1, "PID");
	if (ret == LP_EXIT_OK)
		ret = lp_parse_pid(argv[optind], &req.pid);
	if (ret != LP_EXIT_OK)
		return ret;
	snprintf(what, sizeof(what), "log of %d", (int)req.pid);
	lp_request_add(&req, "log");
	if (lp_request(&req, &answer) != LP_REQ_OK)
		return LP_EXIT_FAIL;
	/* As is, but a terminal's prompt should not end up on the last line. */
	len = strlen(answer);
	fputs(answer, stdout);
	if (len && answer[len - 1] != '\n')
		putchar('\n');
	free(answer);
	return LP_EXIT_OK;
}
