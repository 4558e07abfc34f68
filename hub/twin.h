/* Private to hub/: module twins, as IoT Hub keeps them: "properties.desired" and
 * "properties.reported", each a JSON object with "$version" and "$metadata"
 * ("$lastUpdated" per node, ISO 8601 UTC; desired nodes also carry
 * "$lastUpdatedVersion"). Desired properties come from the deployment;
 * reported ones from the module through JSON merge patches (RFC 7386: null
 * deletes). Each section is bounded (TWIN_SECTION_MAX bytes of JSON, objects
 * nested at most TWIN_MAX_DEPTH deep, names as IoT Hub allows them). Times
 * are passed in (Unix ms) so tests can fix them. */
#ifndef BERTH_HUB_TWIN_H
#define BERTH_HUB_TWIN_H

#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "common/err.h"

#include "hub/hub.h"

#define TWIN_SECTION_MAX HUB_TWIN_SECTION_MAX
#define TWIN_MAX_DEPTH	 10
#define TWIN_KEY_MAX	 1024
/* The saved twin: two sections of values, each member with its $metadata.
 * A member as small as "k":0, (6 bytes) carries up to about 90 bytes of
 * metadata, so a full section with its metadata can take 17 times its
 * values (a unit test saves and loads such a twin). */
#define TWIN_FILE_MAX (2 * 17 * TWIN_SECTION_MAX + 64 * 1024)

struct twin;

/* A new twin with version 1 of desired (a JSON object or NULL for {}) and
 * an empty reported section, version 1. Desired names that IoT Hub would
 * refuse are skipped with a log line; desired properties over
 * TWIN_SECTION_MAX are refused. */
NODISCARD int twin_new(const char *generation_id, yajl_val desired, int64_t now_ms,
		       struct twin **out, struct berr *err);
void twin_free(struct twin *t);

/* The persisted form (what twin_save writes), refused when malformed. */
NODISCARD int twin_load(const char *json, size_t len, const char *what, struct twin **out,
			struct berr *err);
/* {"generation_id":"..","desired":{..},"reported":{..}}, each section with
 * $metadata and $version. malloc'd, NUL-terminated; NULL on ENOMEM. */
char *twin_save(const struct twin *t, size_t *len);

const char *twin_generation_id(const struct twin *t);
int64_t twin_desired_version(const struct twin *t);
int64_t twin_reported_version(const struct twin *t);

/* The answer to a twin GET: {"desired":{..},"reported":{..}}. */
char *twin_get_json(const struct twin *t, size_t *len);

/* Applies a reported-properties merge patch. On success *version is the new
 * reported version. Refuses (and leaves the twin as it was) JSON that does
 * not parse or is not an object, names IoT Hub refuses, nesting deeper than
 * TWIN_MAX_DEPTH, and a result over TWIN_SECTION_MAX. */
NODISCARD int twin_patch_reported(struct twin *t, const char *json, size_t len, int64_t now_ms,
				  int64_t *version, struct berr *err);

/* Makes the desired properties equal `desired` (a JSON object or NULL). When
 * they change, the version goes up by one and *patch gets the JSON merge
 * patch from the old to the new properties with "$version" set (malloc'd);
 * unchanged, *patch is NULL. */
NODISCARD int twin_set_desired(struct twin *t, yajl_val desired, int64_t now_ms, char **patch,
			       struct berr *err);

/* The cloud's twin (the hub's twin cache, hub/upstream_twin.c). */
/* Makes the desired properties the cloud's (`desired` as IoT Hub sends it:
 * "$metadata" and "$version" members are skipped) at the cloud's version.
 * *patch: the merge patch for the module with "$version", NULL when the
 * values did not change. */
NODISCARD int twin_sync_desired(struct twin *t, yajl_val desired, int64_t version, int64_t now_ms,
				char **patch, struct berr *err);
/* Applies a desired patch from the cloud at its version. */
NODISCARD int twin_patch_desired(struct twin *t, const char *json, size_t len, int64_t version,
				 int64_t now_ms, struct berr *err);
/* Makes the reported properties `reported` (an object, or NULL for {}); at
 * version, or the version + 1 (only when they change) when version is 0. */
NODISCARD int twin_set_reported(struct twin *t, yajl_val reported, int64_t version, int64_t now_ms,
				struct berr *err);
/* The merge patch from `base` (reported values, NULL for {}) to the
 * reported properties: *patch NULL when they are equal. */
NODISCARD int twin_reported_diff(const struct twin *t, yajl_val base, char **patch,
				 struct berr *err);
/* The reported values, without $metadata and $version (malloc'd). */
char *twin_reported_values(const struct twin *t);

/* "2026-11-26T03:34:04.123Z" */
void twin_format_time(int64_t ms, char out[32]);

#endif
