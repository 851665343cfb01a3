// SPDX-License-Identifier: MIT
/*
 * Tolerant access to the runtime's JSON.  The schema only ever grows
 * (docs/json.md), and an older or newer runtime may lack a key we know
 * about: a missing or mistyped key reads as the caller's default instead of
 * failing the whole command.
 */
#include <stdio.h>

#include "cli.h"

static struct json_object *member(struct json_object *obj, const char *key, json_type type)
{
	struct json_object *v;

	if (!obj || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

const char *lp_json_str(struct json_object *obj, const char *key, const char *def)
{
	struct json_object *v = member(obj, key, json_type_string);

	return v ? json_object_get_string(v) : def;
}

long long lp_json_int(struct json_object *obj, const char *key, long long def)
{
	struct json_object *v = member(obj, key, json_type_int);

	return v ? (long long)json_object_get_int64(v) : def;
}

bool lp_json_bool(struct json_object *obj, const char *key, bool def)
{
	struct json_object *v = member(obj, key, json_type_boolean);

	return v ? json_object_get_boolean(v) : def;
}

struct json_object *lp_json_obj(struct json_object *obj, const char *key)
{
	return member(obj, key, json_type_object);
}

size_t lp_json_len(struct json_object *obj, const char *key)
{
	struct json_object *v = member(obj, key, json_type_array);

	return v ? json_object_array_length(v) : 0;
}

struct json_object *lp_json_idx(struct json_object *obj, const char *key, size_t i)
{
	struct json_object *v = member(obj, key, json_type_array);

	return v ? json_object_array_get_idx(v, i) : NULL;
}

/* The --json form: pretty, and paths keep their slashes unescaped. */
int lp_json_print(struct json_object *obj)
{
	const char *text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!text) {
		lp_error("out of memory");
		return LP_EXIT_FAIL;
	}
	puts(text);
	return LP_EXIT_OK;
}
