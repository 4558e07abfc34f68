#include "agent/upstream_view.h"

#include <stdio.h>
#include <string.h>

#include "agent/status.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "hub/hub.h"

#define QUERY_TIMEOUT_MS 3000
#define QUERY_REPLY_MAX	 (1024 * 1024)

static long long int_of(yajl_val obj, const char *key)
{
	yajl_val v = json_get(obj, key);
	return v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : 0;
}

/* " since 2024-05-01T12:00:00.000Z (3 minutes)" for a wall-clock time. */
static void since(int64_t when_ms, int64_t now_ms, char *out, size_t cap)
{
	char utc[64], d[64];
	out[0] = '\0';
	if (!when_ms)
		return;
	format_utc(when_ms, utc, sizeof(utc));
	format_duration(now_ms - when_ms, d, sizeof(d));
	snprintf(out, cap, " since %s (%s)", utc, d);
}

bool upstream_describe(yajl_val up, int64_t now_ms, char *out, size_t cap)
{
	const char *url = json_str(json_get(up, "url"));
	const char *state = json_str(json_get(up, "state"));
	const char *error = json_str(json_get(up, "last_error"));
	long long backlog = int_of(up, "backlog"), oldest = int_of(up, "oldest_ms");
	long long conns = int_of(up, "connections"), connected = int_of(up, "connected");
	char when[160] = "", waiting[160];
	if (!backlog) {
		snprintf(waiting, sizeof(waiting), "no message waiting");
	} else {
		char age[64];
		format_duration(oldest ? now_ms - oldest : 0, age, sizeof(age));
		snprintf(waiting, sizeof(waiting), "%lld message%s waiting, the oldest %s old",
			 backlog, backlog == 1 ? "" : "s", age);
	}
	bool ok;
	if (!state || !strcmp(state, "idle")) {
		snprintf(out, cap, "upstream %s: idle (no identity has anything to send)",
			 url ? url : "?");
		return true;
	}
	if (!strcmp(state, "connected")) {
		since(int_of(up, "connected_since_ms"), now_ms, when, sizeof(when));
		snprintf(out, cap, "upstream %s: connected%s, %lld identit%s; %s", url ? url : "?",
			 when, conns, conns == 1 ? "y" : "ies", waiting);
		ok = true;
	} else {
		if (!connected)
			since(int_of(up, "disconnected_since_ms"), now_ms, when, sizeof(when));
		snprintf(out, cap, "upstream %s: %s%s%s%s; %s", url ? url : "?",
			 connected ? "partly connected" : "not connected", when, error ? ": " : "",
			 error ? error : "", waiting);
		ok = false;
	}
	return ok;
}

bool upstream_identities_describe(yajl_val info, char *out, size_t cap)
{
	const char *mode = json_str(json_get(info, "identities"));
	if (!mode || strcmp(mode, "iothub")) {
		snprintf(out, cap, "module identities: kept by the upstream (identities \"none\")");
		return true;
	}
	long long wanted = int_of(info, "identities_wanted"),
		  ready = int_of(info, "identities_ready");
	const char *error = json_str(json_get(info, "identities_error"));
	snprintf(out, cap, "module identities in IoT Hub: %lld of %lld ready%s%s", ready, wanted,
		 error ? "; last error: " : "", error ? error : "");
	return ready == wanted && !error;
}

int upstream_query(const char *run, yajl_val *status, struct berr *err)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/hubctl.sock", run);
	cleanup_free char *reply = NULL;
	if (hub_control_call(path, "{\"op\":\"status\"}", QUERY_TIMEOUT_MS, &reply, err) < 0)
		return -1;
	return json_parse(reply, strlen(reply), QUERY_REPLY_MAX, "hub status", status, err);
}
