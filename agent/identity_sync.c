/* `berth identities` (started by the daemon, not listed): puts module
 * identities into IoT Hub and deletes them, over its REST API with the
 * device's own SAS token, as the IoT Edge security daemon does:
 *
 *   GET    <rest_url>/devices/<d>/modules/<m>?api-version=2021-04-12
 *   PUT    ... (no If-Match: create; If-Match: <etag>: update keys)
 *   DELETE ... (If-Match: *)
 *
 * The job arrives on descriptor 3 as JSON:
 *   {"rest_url","hostname","device_id","device_key","ca_file",
 *    "put":[{"id","generation_id"}...],"delete":["id"...]}
 * and each identity's outcome leaves on stdout as one JSON line:
 *   {"id","op":"put"|"delete","ok":true,"action":"created"|"updated"|
 *    "unchanged"|"deleted"|"absent"} or {...,"ok":false,"error":"..."}. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/identities.h"
#include "common/cleanup.h"
#include "common/command.h"
#include "common/encoding.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/lazy.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/url.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

#define REQUEST_TIMEOUT_S 30
#define CONNECT_TIMEOUT_S 10
#define TOKEN_TTL_S	  600
#define ERROR_TEXT_MAX	  200

int identity_keys(const char *device_key, const char *name, const char *generation_id,
		  char primary[SAS_KEY_B64_MAX], char secondary[SAS_KEY_B64_MAX], struct berr *err)
{
	char second[IDENTITY_NAME_MAX + 32];
	int n = snprintf(second, sizeof(second), "%s\nsecondary", generation_id);
	if (n < 0 || (size_t)n >= sizeof(second))
		return berr_set(err, ENAMETOOLONG, "identity %s", name);
	if (sas_derive_module_key(device_key, name, generation_id, primary, err) < 0 ||
	    sas_derive_module_key(device_key, name, second, secondary, err) < 0)
		return berr_wrap(err, "identity %s", name);
	return 0;
}

int identity_parse(const char *body, size_t len, const char *primary, const char *secondary,
		   struct identity_seen *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	yajl_val v = NULL;
	if (json_parse_limited(body, len, IDENTITY_BODY_MAX, 2000, "module identity", &v, err) < 0)
		return -1;
	int rc = 0;
	const char *etag = json_str(json_get(v, "etag"));
	yajl_val auth = json_get(v, "authentication");
	const char *type = json_str(json_get(auth, "type"));
	yajl_val sym = json_get(auth, "symmetricKey");
	const char *p = json_str(json_get(sym, "primaryKey"));
	const char *s = json_str(json_get(sym, "secondaryKey"));
	const char *by = json_str(json_get(v, "managedBy"));
	if (!YAJL_IS_OBJECT(v))
		rc = berr_set(err, 0, "module identity: not a JSON object");
	else if (!etag || !etag[0] || strlen(etag) > IDENTITY_ETAG_MAX)
		rc = berr_set(err, 0, "module identity: no etag, or one over %d bytes",
			      IDENTITY_ETAG_MAX);
	else if (strspn(etag, "\"") == strlen(etag) || strpbrk(etag, "\r\n"))
		rc = berr_set(err, 0, "module identity: unusable etag");
	if (rc == 0) {
		snprintf(out->etag, sizeof(out->etag), "%s", etag);
		out->keys_match = type && !strcmp(type, "sas") && p && s && !strcmp(p, primary) &&
				  !strcmp(s, secondary);
		snprintf(out->managed_by, sizeof(out->managed_by), "%s", by ? by : "");
	}
	yajl_tree_free(v);
	return rc;
}

char *identity_body(const char *device_id, const char *name, const char *primary,
		    const char *secondary)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	json_gen_key_str(g, "deviceId", device_id);
	json_gen_key_str(g, "moduleId", name);
	/* What IoT Hub shows for modules an edge runtime owns. */
	json_gen_key_str(g, "managedBy", "IotEdge");
	json_gen_str(g, "authentication");
	yajl_gen_map_open(g);
	json_gen_key_str(g, "type", "sas");
	json_gen_str(g, "symmetricKey");
	yajl_gen_map_open(g);
	json_gen_key_str(g, "primaryKey", primary);
	json_gen_key_str(g, "secondaryKey", secondary);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	char *out = json_gen_done(g, NULL);
	return out;
}

void identity_error_text(const char *body, size_t len, char *out, size_t cap)
{
	out[0] = '\0';
	yajl_val v = NULL;
	struct berr e;
	if (!len || json_parse_limited(body, len, IDENTITY_BODY_MAX, 200, "error", &v, &e) < 0)
		return;
	const char *msg = json_str(json_get(v, "Message"));
	if (!msg)
		msg = json_str(json_get(v, "message"));
	if (msg)
		snprintf(out, cap, "%s", msg);
	yajl_tree_free(v);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = ' ';
}

/* ---- the REST calls (child process) ------------------------------------ */

struct rest {
	CURL *h;
	const char *base; /* rest_url without a trailing '/' */
	const char *device_id;
	const char *hostname;
	const char *device_key;
	const char *ca_file;
	char token[SAS_TOKEN_MAX];
	int64_t token_expiry;
};

struct reply {
	long status;
	struct strbuf body;
	char curl_error[CURL_ERROR_SIZE];
};

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	struct strbuf *sb = arg;
	return strbuf_append(sb, data, size * n) < 0 ? 0 : size * n;
}

static int rest_token(struct rest *r, struct berr *err)
{
	int64_t now = (int64_t)time(NULL);
	if (r->token[0] && now < r->token_expiry - 60)
		return 0;
	char resource[SAS_RESOURCE_MAX];
	if (sas_resource(r->hostname, r->device_id, NULL, resource, sizeof(resource)) < 0)
		return berr_set(err, ENAMETOOLONG, "device identity");
	r->token_expiry = now + TOKEN_TTL_S;
	return sas_token_make(r->device_key, resource, r->token_expiry, r->token, sizeof(r->token),
			      err);
}

/* One request; *rep holds the status and body (0 and a curl error when no
 * answer came). */
static int rest_call(struct rest *r, const char *method, const char *name, const char *if_match,
		     const char *body, struct reply *rep, struct berr *err)
{
	char dev[IDENTITY_NAME_MAX * 3 + 1], mod[IDENTITY_NAME_MAX * 3 + 1];
	if (url_encode(r->device_id, strlen(r->device_id), dev, sizeof(dev)) < 0 ||
	    url_encode(name, strlen(name), mod, sizeof(mod)) < 0)
		return berr_set(err, ENAMETOOLONG, "identity %s", name);
	if (rest_token(r, err) < 0)
		return -1;
	struct strbuf url = STRBUF_INIT;
	if (strbuf_printf(&url, "%s/devices/%s/modules/%s?api-version=" IDENTITY_API_VERSION,
			  r->base, dev, mod) < 0) {
		strbuf_release(&url);
		return berr_set(err, ENOMEM, "request");
	}
	struct curl_slist *hdrs = NULL;
	char auth[SAS_TOKEN_MAX + 32], match[IDENTITY_ETAG_MAX + 32];
	snprintf(auth, sizeof(auth), "Authorization: %s", r->token);
	hdrs = LAZY(curl_slist_append)(hdrs, auth);
	hdrs = LAZY(curl_slist_append)(hdrs, "Accept: application/json");
	if (body)
		hdrs =
		    LAZY(curl_slist_append)(hdrs, "Content-Type: application/json; charset=utf-8");
	if (if_match) {
		/* IoT Hub's etags are quoted in If-Match, as in ETag. */
		bool quoted = if_match[0] == '"' || !strcmp(if_match, "*");
		snprintf(match, sizeof(match), "If-Match: %s%s%s", quoted ? "" : "\"", if_match,
			 quoted ? "" : "\"");
		hdrs = LAZY(curl_slist_append)(hdrs, match);
	}
	CURL *h = r->h;
	LAZY(curl_easy_reset)(h);
	strbuf_reset(&rep->body);
	rep->body.max = IDENTITY_BODY_MAX;
	rep->status = 0;
	rep->curl_error[0] = '\0';
	LAZY(curl_easy_setopt)(h, CURLOPT_URL, url.buf);
	LAZY(curl_easy_setopt)(h, CURLOPT_NOSIGNAL, 1L);
	LAZY(curl_easy_setopt)(h, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	LAZY(curl_easy_setopt)(h, CURLOPT_PROTOCOLS_STR, "http,https");
	LAZY(curl_easy_setopt)(h, CURLOPT_FOLLOWLOCATION, 0L);
	LAZY(curl_easy_setopt)(h, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
	LAZY(curl_easy_setopt)(h, CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
	LAZY(curl_easy_setopt)(h, CURLOPT_HTTPHEADER, hdrs);
	LAZY(curl_easy_setopt)(h, CURLOPT_CUSTOMREQUEST, method);
	LAZY(curl_easy_setopt)(h, CURLOPT_ERRORBUFFER, rep->curl_error);
	LAZY(curl_easy_setopt)(h, CURLOPT_WRITEFUNCTION, collect);
	LAZY(curl_easy_setopt)(h, CURLOPT_WRITEDATA, &rep->body);
	if (!strcmp(method, "GET"))
		LAZY(curl_easy_setopt)(h, CURLOPT_HTTPGET, 1L);
	if (body) {
		LAZY(curl_easy_setopt)(h, CURLOPT_POSTFIELDS, body);
		LAZY(curl_easy_setopt)(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if (r->ca_file) {
		LAZY(curl_easy_setopt)(h, CURLOPT_CAINFO, r->ca_file);
		LAZY(curl_easy_setopt)(h, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
	CURLcode rc = LAZY(curl_easy_perform)(h);
	LAZY(curl_slist_free_all)(hdrs);
	strbuf_release(&url);
	explicit_bzero(auth, sizeof(auth));
	if (rc != CURLE_OK) {
		if (!rep->curl_error[0])
			snprintf(rep->curl_error, sizeof(rep->curl_error), "%s",
				 LAZY(curl_easy_strerror)(rc));
		return berr_set(err, 0, "%s %s: %s", method, r->base, rep->curl_error);
	}
	LAZY(curl_easy_getinfo)(h, CURLINFO_RESPONSE_CODE, &rep->status);
	return 0;
}

static int http_error(struct reply *rep, const char *method, const char *name, struct berr *err)
{
	char text[ERROR_TEXT_MAX];
	identity_error_text(rep->body.buf, rep->body.len, text, sizeof(text));
	return berr_set(err, 0, "%s of identity %s answered %ld%s%s", method, name, rep->status,
			text[0] ? ": " : "", text);
}

/* Makes the identity hold these keys: created when missing, updated with
 * If-Match when its keys differ (IoT Hub answers 409 to a PUT without it). */
static int put_identity(struct rest *r, const char *name, const char *generation_id,
			const char **action, struct berr *err)
{
	char primary[SAS_KEY_B64_MAX], secondary[SAS_KEY_B64_MAX];
	if (identity_keys(r->device_key, name, generation_id, primary, secondary, err) < 0)
		return -1;
	struct reply rep = {.body = STRBUF_INIT};
	cleanup_free char *body = identity_body(r->device_id, name, primary, secondary);
	int rc = -1;
	if (!body) {
		berr_set(err, ENOMEM, "identity %s", name);
		goto out;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if (rest_call(r, "GET", name, NULL, NULL, &rep, err) < 0)
			goto out;
		struct identity_seen seen;
		const char *if_match = NULL;
		if (rep.status == 200) {
			if (identity_parse(rep.body.buf ? rep.body.buf : "", rep.body.len, primary,
					   secondary, &seen, err) < 0) {
				berr_wrap(err, "GET of identity %s", name);
				goto out;
			}
			if (seen.keys_match) {
				*action = "unchanged";
				rc = 0;
				goto out;
			}
			if_match = seen.etag;
		} else if (rep.status != 404) {
			http_error(&rep, "GET", name, err);
			goto out;
		}
		if (rest_call(r, "PUT", name, if_match, body, &rep, err) < 0)
			goto out;
		if (rep.status == 200 || rep.status == 201) {
			*action = if_match ? "updated" : "created";
			rc = 0;
			goto out;
		}
		/* Changed under us (created meanwhile, or a new etag): look again. */
		if (rep.status != 409 && rep.status != 412) {
			http_error(&rep, "PUT", name, err);
			goto out;
		}
		http_error(&rep, "PUT", name, err);
	}
out:
	explicit_bzero(primary, sizeof(primary));
	explicit_bzero(secondary, sizeof(secondary));
	if (body)
		explicit_bzero(body, strlen(body));
	strbuf_release(&rep.body);
	return rc;
}

static int delete_identity(struct rest *r, const char *name, const char **action, struct berr *err)
{
	struct reply rep = {.body = STRBUF_INIT};
	int rc = rest_call(r, "DELETE", name, "*", NULL, &rep, err);
	if (rc == 0 && (rep.status == 200 || rep.status == 204))
		*action = "deleted";
	else if (rc == 0 && rep.status == 404)
		*action = "absent";
	else if (rc == 0)
		rc = http_error(&rep, "DELETE", name, err);
	strbuf_release(&rep.body);
	return rc;
}

static void report(const char *id, const char *op, int rc, const char *action,
		   const struct berr *err)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return;
	yajl_gen_map_open(g);
	json_gen_key_str(g, "id", id);
	json_gen_key_str(g, "op", op);
	json_gen_key_bool(g, "ok", rc == 0);
	if (rc == 0)
		json_gen_key_str(g, "action", action);
	else
		json_gen_key_str(g, "error", err->msg);
	yajl_gen_map_close(g);
	char *line = json_gen_done(g, NULL);
	if (line) {
		printf("%s\n", line);
		fflush(stdout);
		free(line);
	}
}

static int read_job(yajl_val *job, struct berr *err)
{
	char *in;
	size_t len;
	if (fs_read_fd(3, "the job on descriptor 3", IDENTITY_JOB_MAX, &in, &len, err) < 0)
		return -1;
	int rc = json_parse(in, len, IDENTITY_JOB_MAX, "identities job", job, err);
	explicit_bzero(in, len);
	free(in);
	return rc;
}

static int cmd_identities(struct berth_ctx *ctx, int argc, char **argv)
{
	log_set_name("berth identities");
	yajl_val job = NULL;
	struct berr err;
	if (argc != 1 || read_job(&job, &err) < 0) {
		log_error("%s",
			  argc != 1 ? "usage: berth identities (job on descriptor 3)" : err.msg);
		return 2;
	}
	struct rest r = {0};
	const char *rest_url = json_str(json_get(job, "rest_url"));
	r.hostname = json_str(json_get(job, "hostname"));
	r.device_id = json_str(json_get(job, "device_id"));
	r.device_key = json_str(json_get(job, "device_key"));
	r.ca_file = json_str(json_get(job, "ca_file"));
	yajl_val puts = json_get(job, "put"), dels = json_get(job, "delete");
	char base[URL_MAX + 1];
	int rc = 1;
	if (!rest_url || !r.hostname || !r.device_id || !r.device_key) {
		log_error(
		    "identities job: rest_url, hostname, device_id and device_key are needed");
		goto out;
	}
	snprintf(base, sizeof(base), "%s", rest_url);
	for (size_t n = strlen(base); n && base[n - 1] == '/'; n--)
		base[n - 1] = '\0';
	r.base = base;
	if (lazy_require(LAZY_CURL, &err) < 0 || LAZY(curl_global_init)(CURL_GLOBAL_DEFAULT) != 0 ||
	    !(r.h = LAZY(curl_easy_init)())) {
		log_error("%s", err.msg);
		goto out;
	}
	for (size_t i = 0; YAJL_IS_ARRAY(puts) && i < puts->u.array.len; i++) {
		yajl_val p = puts->u.array.values[i];
		const char *id = json_str(json_get(p, "id"));
		const char *gen = json_str(json_get(p, "generation_id"));
		const char *action = NULL;
		if (!id || !gen)
			continue;
		int one = put_identity(&r, id, gen, &action, &err);
		report(id, "put", one, action, &err);
	}
	for (size_t i = 0; YAJL_IS_ARRAY(dels) && i < dels->u.array.len; i++) {
		const char *id = json_str(dels->u.array.values[i]);
		const char *action = NULL;
		if (!id)
			continue;
		int one = delete_identity(&r, id, &action, &err);
		report(id, "delete", one, action, &err);
	}
	rc = 0;
out:
	if (r.h)
		LAZY(curl_easy_cleanup)(r.h);
	explicit_bzero(r.token, sizeof(r.token));
	yajl_tree_free(job);
	return rc;
}
BERTH_COMMAND(identities, "identities", NULL, cmd_identities);
