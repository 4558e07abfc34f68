#include "agent/healthcheck.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/strv.h"

#define HEALTHCHECK_STR_MAX  4096
#define HEALTHCHECK_JSON_MAX (64 * 1024)
#define NS_PER_MS	     1000000LL
#define DURATION_MAX_NS	     (365LL * 24 * 3600 * 1000 * NS_PER_MS)

void healthcheck_clear(struct healthcheck *h)
{
	strv_free(h->test);
	memset(h, 0, sizeof(*h));
}

static int duration(yajl_val v, const char *key, const struct jpath *path, int64_t *out,
		    struct berr *err)
{
	if (jp_int(v, key, path, false, 0, DURATION_MAX_NS, out, err) < 0)
		return -1;
	if (*out > 0 && *out < NS_PER_MS) {
		struct jpath p;
		jpath_key(&p, path, key);
		return berr_set(err, 0, "%s: %lld ns is less than 1 ms (1000000 ns)", p.s,
				(long long)*out);
	}
	return 0;
}

int healthcheck_parse(yajl_val v, const struct jpath *path, struct healthcheck *out,
		      struct berr *err)
{
	memset(out, 0, sizeof(*out));
	if (!YAJL_IS_OBJECT(v))
		return berr_set(err, 0, "%s: expected an object", path->s);
	out->given = true;
	struct jpath tp;
	jpath_key(&tp, path, "Test");
	if (jp_strv(json_get(v, "Test"), &tp, false, HEALTHCHECK_TEST_MAX, HEALTHCHECK_STR_MAX,
		    &out->test, err) < 0 ||
	    duration(v, "Interval", path, &out->interval_ns, err) < 0 ||
	    duration(v, "Timeout", path, &out->timeout_ns, err) < 0 ||
	    duration(v, "StartPeriod", path, &out->start_period_ns, err) < 0 ||
	    duration(v, "StartInterval", path, &out->start_interval_ns, err) < 0 ||
	    jp_int(v, "Retries", path, false, 0, 1000000, &out->retries, err) < 0)
		goto fail;
	char **t = out->test;
	if (t && t[0]) {
		bool ok = (!strcmp(t[0], "NONE") && !t[1]) ||
			  (!strcmp(t[0], "CMD") && t[1] && t[1][0]) ||
			  (!strcmp(t[0], "CMD-SHELL") && t[1] && t[1][0] && !t[2]);
		if (!ok) {
			berr_set(err, 0,
				 "%s: expected [\"CMD\", program, args...], [\"CMD-SHELL\", "
				 "command] or [\"NONE\"]",
				 tp.s);
			goto fail;
		}
	} else {
		/* An empty Test takes the image's. */
		strv_free(out->test);
		out->test = NULL;
	}
	return 0;
fail:
	healthcheck_clear(out);
	return -1;
}

int healthcheck_parse_text(const char *json, const char *what, struct healthcheck *out,
			   struct berr *err)
{
	memset(out, 0, sizeof(*out));
	if (!json)
		return 0;
	cleanup_yajl yajl_val v = NULL;
	if (json_parse(json, strlen(json), HEALTHCHECK_JSON_MAX, what, &v, err) < 0)
		return -1;
	struct jpath p;
	snprintf(p.s, sizeof(p.s), "%.300s: $", what);
	return healthcheck_parse(v, &p, out, err);
}

static int64_t pick(int64_t mine, int64_t image, int64_t dflt)
{
	return mine > 0 ? mine : image > 0 ? image : dflt;
}

int healthcheck_resolve(const struct healthcheck *module, const struct healthcheck *image,
			struct instance_health *out, struct berr *err)
{
	static const struct healthcheck none = {0};
	const struct healthcheck *m = module ? module : &none, *i = image ? image : &none;
	memset(out, 0, sizeof(*out));
	char **test = m->test ? m->test : i->test;
	if (!test || !strcmp(test[0], "NONE"))
		return 0;
	bool ok = true;
	if (!strcmp(test[0], "CMD")) {
		out->test = strv_dup(test + 1, &ok);
	} else {
		/* CMD-SHELL: the command through the image's shell, as Docker. */
		const char *sh[] = {"/bin/sh", "-c", test[1], NULL};
		out->test = strv_dup((char *const *)sh, &ok);
	}
	if (!ok)
		return berr_set(err, ENOMEM, "health check");
	out->interval_ms = pick(m->interval_ns, i->interval_ns, 30000 * NS_PER_MS) / NS_PER_MS;
	out->timeout_ms = pick(m->timeout_ns, i->timeout_ns, 30000 * NS_PER_MS) / NS_PER_MS;
	out->start_period_ms = pick(m->start_period_ns, i->start_period_ns, 0) / NS_PER_MS;
	out->start_interval_ms =
	    pick(m->start_interval_ns, i->start_interval_ns, 5000 * NS_PER_MS) / NS_PER_MS;
	out->retries = (int)pick(m->retries, i->retries, 3);
	return 0;
}
