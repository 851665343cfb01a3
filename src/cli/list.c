// SPDX-License-Identifier: MIT
/*
 * lpatch list: every process with a runtime, found through the agents'
 * sockets in /proc/net/unix (so no process has to be scanned or touched
 * unless it runs an agent), each asked for its status, many at once.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* One unresponsive agent must not hang a fleet-wide inventory. */
#define LIST_TIMEOUT 10
#define PARALLEL     16

#define AGENT_PREFIX "@lpatch/"

enum { OPT_JSON = 0x100 };

static const struct option list_opts[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct pids {
	pid_t *v;
	size_t n, cap;
};

static bool pids_add(struct pids *p, pid_t pid)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		pid_t *v = realloc(p->v, cap * sizeof(*v));

		if (!v)
			return false;
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = pid;
	return true;
}

/* Sorted, and once each: an agent's accepted sockets carry its name too. */
static void pids_sort_unique(struct pids *p)
{
	size_t out = 0;

	lp_sort_pids(p->v, p->n);
	for (size_t i = 0; i < p->n; i++)
		if (!out || p->v[out - 1] != p->v[i])
			p->v[out++] = p->v[i];
	p->n = out;
}

/* The PID of an agent's socket path "@lpatch/PID", or 0 for any other path. */
static pid_t agent_pid(const char *path)
{
	const char *digits = path + strlen(AGENT_PREFIX);
	char *end;
	long v;

	if (strncmp(path, AGENT_PREFIX, strlen(AGENT_PREFIX)) || *digits < '1' || *digits > '9')
		return 0;
	v = strtol(digits, &end, 10);
	return *end == '\0' && v > 0 && v <= INT_MAX ? (pid_t)v : 0;
}

/*
 * /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path", the
 * path last and '@' in front of an abstract name.
 */
static int find_agents(struct pids *pids)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char *line = NULL;
	size_t size = 0;
	ssize_t len;
	int ret = LP_EXIT_OK;

	if (!f) {
		lp_error("cannot read /proc/net/unix: %s", strerror(errno));
		return LP_EXIT_FAIL;
	}
	while ((len = getline(&line, &size, f)) > 0) {
		int path = 0;
		pid_t pid;

		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %n", &path) < 0 || !path)
			continue;
		pid = agent_pid(line + path);
		if (pid && !pids_add(pids, pid)) {
			lp_error("out of memory");
			ret = LP_EXIT_FAIL;
			break;
		}
	}
	free(line);
	fclose(f);
	pids_sort_unique(pids);
	return ret;
}

void lp_read_comm(pid_t pid, char *comm, size_t size)
{
	char path[32];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f || !fgets(comm, (int)size, f))
		snprintf(comm, size, "?");
	comm[strcspn(comm, "\n")] = '\0';
	if (f)
		fclose(f);
}

static void copy_bool(struct json_object *dst, struct json_object *src, const char *key)
{
	json_object_object_add(dst, key, json_object_new_boolean(lp_json_bool(src, key, false)));
}

/* The list entry of one process: the few fields an inventory needs. */
static struct json_object *json_entry(pid_t pid, const char *comm, struct json_object *status)
{
	struct json_object *entry = json_object_new_object();
	struct json_object *patches = json_object_new_array();
	size_t n = lp_json_len(status, "patches");

	json_object_object_add(entry, "pid", json_object_new_int(pid));
	json_object_object_add(entry, "comm", json_object_new_string(comm));
	for (size_t i = 0; i < n; i++) {
		struct json_object *src = lp_json_idx(status, "patches", i);
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "name",
				       json_object_new_string(lp_json_str(src, "name", "")));
		copy_bool(p, src, "enabled");
		copy_bool(p, src, "transition");
		json_object_array_add(patches, p);
	}
	json_object_object_add(entry, "patches", patches);
	return entry;
}

/* What each process's child found: its list entry (JSON), or nothing. */
struct probes {
	const struct pids *pids;
	char **entry, **err;
};

/* In a child: ask one process; its entry on stdout, refusals and timeouts on stderr. */
static int probe(size_t i, void *arg)
{
	const struct probes *p = arg;
	pid_t pid = p->pids->v[i];
	struct json_object *status, *entry;
	char comm[64];

	/* Refusals and timeouts are reported and skipped; the gone, only skipped. */
	if (lp_query_status(pid, false, LP_REQ_PROBE, LIST_TIMEOUT, &status) != LP_REQ_OK)
		return LP_EXIT_FAIL;
	lp_read_comm(pid, comm, sizeof(comm));
	entry = json_entry(pid, comm, status);
	fputs(json_object_to_json_string_ext(entry, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE),
	      stdout);
	json_object_put(entry);
	json_object_put(status);
	return LP_EXIT_OK;
}

static void probed(size_t i, const char *out, const char *err, int status, void *arg)
{
	const struct probes *p = arg;

	p->err[i] = err[0] ? strdup(err) : NULL;
	p->entry[i] = status == 0 && out[0] ? strdup(out) : NULL;
}

static void print_entry(struct json_object *entry)
{
	size_t n = lp_json_len(entry, "patches");

	printf("%-8lld %-16s ", lp_json_int(entry, "pid", 0), lp_json_str(entry, "comm", "?"));
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? "," : "",
		       lp_json_str(lp_json_idx(entry, "patches", i), "name", "?"));
	puts(n ? "" : "-");
}

/*
 * Every process is asked at once (PARALLEL at a time), so that a few that
 * are slow to answer cost LIST_TIMEOUT once, not each; what they say is
 * printed in PID order.
 */
static int list(bool json)
{
	struct json_object *all = json ? json_object_new_array() : NULL;
	struct pids pids = {0};
	struct probes p = {.pids = &pids};
	int ret = find_agents(&pids);

	p.entry = calloc(pids.n ? pids.n : 1, sizeof(*p.entry));
	p.err = calloc(pids.n ? pids.n : 1, sizeof(*p.err));
	if (ret == LP_EXIT_OK && (!p.entry || !p.err)) {
		lp_error("out of memory");
		ret = LP_EXIT_FAIL;
	}
	if (ret == LP_EXIT_OK)
		lp_pool_run(pids.n, PARALLEL, probe, probed, &p);
	if (ret == LP_EXIT_OK && !json)
		printf("%-8s %-16s %s\n", "PID", "COMM", "PATCHES");
	for (size_t i = 0; ret == LP_EXIT_OK && i < pids.n; i++) {
		struct json_object *entry = p.entry[i] ? json_tokener_parse(p.entry[i]) : NULL;

		if (p.err[i])
			fputs(p.err[i], stderr);
		if (entry && json)
			json_object_array_add(all, entry);
		else if (entry)
			print_entry(entry);
		if (entry && !json)
			json_object_put(entry);
	}
	if (ret == LP_EXIT_OK && json)
		ret = lp_json_print(all);
	json_object_put(all);
	for (size_t i = 0; i < pids.n && p.entry && p.err; i++) {
		free(p.entry[i]);
		free(p.err[i]);
	}
	free(p.entry);
	free(p.err);
	free(pids.v);
	return ret;
}

int lp_cmd_list(int argc, char **argv)
{
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, ":h", list_opts, NULL)) != -1) {
		switch (c) {
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
	if (optind < argc)
		return lp_usage_error("list: too many arguments (usage: lpatch list [--json])");
	return list(json);
}
