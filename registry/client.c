/* The distribution API over libcurl. One engine serves manifests, configs
 * and layer streams: a fetch drives its own multi handle from the reader's
 * side (pull-style), so a layer can be decompressed and unpacked in the same
 * thread that downloads it, with a bounded buffer in between. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/lazy.h"
#include "common/strbuf.h"
#include "registry/registry.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0"
#endif

#define URL_MAX		4096
#define FETCH_BUF	(64u << 10) /* between curl and the reader */
#define CURL_BUF	(16L << 10) /* curl's receive buffer (and what it holds while paused) */
#define MAX_ATTEMPTS	4	    /* tries for a transient failure */
#define MAX_REDIRECTS	5
#define ERRBODY_MAX	4096
#define TOKEN_MAX	(16u << 10)
#define TOKEN_BODY_MAX	(64u << 10)
#define DEFAULT_TIMEOUT 30

static const char MANIFEST_ACCEPT[] = "Accept: application/vnd.oci.image.index.v1+json, "
				      "application/vnd.oci.image.manifest.v1+json, "
				      "application/vnd.docker.distribution.manifest.list.v2+json, "
				      "application/vnd.docker.distribution.manifest.v2+json";

struct registry {
	struct image_ref ref;
	char origin[REF_DOMAIN_MAX + 16]; /* "https://host:port" */
	bool insecure;
	char *username;
	char *password;
	char *ca_file;
	long timeout;
	int cancelled;
	int origin_answered; /* an HTTP answer came from origin: the scheme is right */

	pthread_mutex_t lock; /* guards the auth state below */
	char *authorization;  /* "Bearer ..." / "Basic ...", or NULL */
	time_t auth_expires;  /* 0: does not expire */
	time_t auth_margin;   /* renew this long before expiry */
	unsigned auth_gen;    /* bumped whenever authorization changes */
	struct auth_challenge challenge;
};

struct registry_blob {
	struct registry *r;
	CURLM *multi;
	CURL *easy;
	struct curl_slist *headers;
	bool added;
	const char *accept; /* extra Accept header, or NULL */
	char what[DIGEST_STR_MAX + 64];
	char path[REF_PATH_MAX + DIGEST_STR_MAX + 32]; /* "/v2/<name>/blobs/<digest>" */
	char url[URL_MAX];
	bool url_on_origin; /* send Authorization only there */

	char expect[DIGEST_STR_MAX]; /* "" for a tag's manifest */
	struct digester *digester;
	char got[DIGEST_STR_MAX];
	uint64_t size; /* 0: unknown */
	uint64_t max;
	uint64_t received;
	uint64_t skip; /* bytes to drop when a resumed request got the whole body */

	unsigned char *buf;
	size_t head, tail;
	bool paused;

	/* the current response */
	long status;
	bool status_seen;
	long long range_start; /* from Content-Range, -1 if none */
	char content_type[MEDIA_TYPE_MAX];
	char dcd[DIGEST_STR_MAX + 8];
	char www_auth[1200];
	struct strbuf errbody;
	bool fatal; /* the callback refused the data; err says why */
	struct berr fatal_err;

	unsigned auth_gen_used;
	int attempts, redirects, auth_tries;
	bool done, eof, failed;
	CURLcode result;
	struct berr err;
};

static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static void env_init_once(void)
{
	/* Debian's libcurl pulls in GnuTLS (through librtmp), whose constructor
	 * initializes it (PKCS#11 modules and all, about 1 MB) though curl
	 * itself uses OpenSSL. GnuTLS skips that when told to. */
	setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	/* With CURLOPT_NOSIGNAL (needed in threads) curl no longer shields TLS
	 * writes to a reset connection from SIGPIPE: take it as EPIPE. */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	LAZY(curl_global_init)(CURL_GLOBAL_DEFAULT);
}

int registry_open(const struct image_ref *ref, const struct registry_opts *opts,
		  struct registry **out, struct berr *err)
{
	*out = NULL;
	pthread_once(&env_once, env_init_once);
	if (lazy_require(LAZY_CURL, err) < 0 || lazy_require(LAZY_CRYPTO, err) < 0)
		return -1;
	pthread_once(&curl_once, curl_init_once);
	struct registry *r = calloc(1, sizeof(*r));
	if (!r)
		return berr_set(err, ENOMEM, "registry client");
	r->ref = *ref;
	r->insecure = opts && opts->insecure;
	r->timeout = opts && opts->timeout > 0 ? opts->timeout : DEFAULT_TIMEOUT;
	/* Insecure registries get HTTPS without checks first, then plain HTTP
	 * if TLS fails (see handle_done). */
	snprintf(r->origin, sizeof(r->origin), "https://%s", image_ref_api_host(ref));
	pthread_mutex_init(&r->lock, NULL);
	if (opts && opts->username) {
		r->username = strdup(opts->username);
		r->password = strdup(opts->password ? opts->password : "");
		if (!r->username || !r->password) {
			registry_close(r);
			return berr_set(err, ENOMEM, "registry client");
		}
	}
	if (opts && opts->ca_file && !(r->ca_file = strdup(opts->ca_file))) {
		registry_close(r);
		return berr_set(err, ENOMEM, "registry client");
	}
	*out = r;
	return 0;
}

void registry_close(struct registry *r)
{
	if (!r)
		return;
	if (r->password)
		explicit_bzero(r->password, strlen(r->password));
	if (r->authorization)
		explicit_bzero(r->authorization, strlen(r->authorization));
	free(r->username);
	free(r->password);
	free(r->ca_file);
	free(r->authorization);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void registry_cancel(struct registry *r)
{
	__atomic_store_n(&r->cancelled, 1, __ATOMIC_RELEASE);
}

static bool cancelled(struct registry *r)
{
	return __atomic_load_n(&r->cancelled, __ATOMIC_ACQUIRE);
}

/* "scheme://host[:port]" of a URL, for same-origin checks. */
static size_t origin_len(const char *url)
{
	const char *p = strstr(url, "://");
	if (!p)
		return 0;
	p += 3;
	while (*p && *p != '/' && *p != '?' && *p != '#')
		p++;
	return (size_t)(p - url);
}

static bool same_origin(const char *a, const char *b)
{
	size_t la = origin_len(a), lb = origin_len(b);
	return la && la == lb && !strncasecmp(a, b, la);
}

/* Common transfer options: timeouts, TLS, protocols, no automatic redirects
 * (they are followed by hand so Authorization never leaves the registry). */
static void setup_easy(struct registry *r, CURL *h)
{
	LAZY(curl_easy_setopt)(h, CURLOPT_NOSIGNAL, 1L);
	LAZY(curl_easy_setopt)(h, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	LAZY(curl_easy_setopt)(h, CURLOPT_PROTOCOLS_STR, "http,https");
	LAZY(curl_easy_setopt)(h, CURLOPT_FOLLOWLOCATION, 0L);
	LAZY(curl_easy_setopt)(h, CURLOPT_CONNECTTIMEOUT, r->timeout);
	/* A registry that stops sending for `timeout` seconds has stopped. */
	LAZY(curl_easy_setopt)(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	LAZY(curl_easy_setopt)(h, CURLOPT_LOW_SPEED_TIME, r->timeout);
	LAZY(curl_easy_setopt)(h, CURLOPT_BUFFERSIZE, CURL_BUF);
	LAZY(curl_easy_setopt)(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	if (r->ca_file) {
		LAZY(curl_easy_setopt)(h, CURLOPT_CAINFO, r->ca_file);
		LAZY(curl_easy_setopt)(h, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
	if (r->insecure) {
		LAZY(curl_easy_setopt)(h, CURLOPT_SSL_VERIFYPEER, 0L);
		LAZY(curl_easy_setopt)(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

/* Keeps the first line of a registry's error body readable and short:
 * {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}. */
static void describe_errbody(const struct strbuf *body, char *out, size_t cap)
{
	out[0] = '\0';
	if (!body->len)
		return;
	cleanup_yajl yajl_val v = NULL;
	struct berr e;
	if (json_parse(body->buf, body->len, ERRBODY_MAX, "error", &v, &e) == 0) {
		yajl_val errs = json_get(v, "errors");
		if (YAJL_IS_ARRAY(errs) && errs->u.array.len > 0) {
			const char *code = json_str(json_get(errs->u.array.values[0], "code"));
			const char *msg = json_str(json_get(errs->u.array.values[0], "message"));
			snprintf(out, cap, "%s%s%s", code ? code : "", code && msg ? ": " : "",
				 msg ? msg : "");
		}
	}
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = ' ';
}

/* ---- auth ------------------------------------------------------------- */

static size_t collect_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct strbuf *sb = ctx;
	if (strbuf_append(sb, data, size * n) < 0)
		return 0;
	return size * n;
}

/* GET <realm>?service=..&scope=.. ; holds r->lock. */
static int fetch_token(struct registry *r, struct berr *err)
{
	const struct auth_challenge *c = &r->challenge;
	if (!r->insecure && strncmp(c->realm, "https://", 8))
		return berr_set(
		    err, 0,
		    "token service %s is not HTTPS (mark the registry insecure to allow it)",
		    c->realm);
	char scope[sizeof(c->scope)];
	if (c->scope[0])
		snprintf(scope, sizeof(scope), "%s", c->scope);
	else
		snprintf(scope, sizeof(scope), "repository:%s:pull", r->ref.path);
	char service_enc[sizeof(c->service) * 3], scope_enc[sizeof(scope) * 3];
	if (url_encode(c->service, strlen(c->service), service_enc, sizeof(service_enc)) < 0 ||
	    url_encode(scope, strlen(scope), scope_enc, sizeof(scope_enc)) < 0)
		return berr_set(err, 0, "token request: parameters too long");
	struct strbuf url = STRBUF_INIT;
	url.max = URL_MAX;
	bool has_q = strchr(c->realm, '?') != NULL;
	if (strbuf_printf(&url, "%s%c%s%s%sscope=%s", c->realm, has_q ? '&' : '?',
			  c->service[0] ? "service=" : "", c->service[0] ? service_enc : "",
			  c->service[0] ? "&" : "", scope_enc) < 0) {
		strbuf_release(&url);
		return berr_set(err, 0, "token request URL too long");
	}
	struct strbuf body = STRBUF_INIT;
	body.max = TOKEN_BODY_MAX;
	CURL *h = LAZY(curl_easy_init)();
	if (!h) {
		strbuf_release(&url);
		return berr_set(err, ENOMEM, "token request");
	}
	setup_easy(r, h);
	LAZY(curl_easy_setopt)(h, CURLOPT_URL, url.buf);
	LAZY(curl_easy_setopt)(h, CURLOPT_WRITEFUNCTION, collect_cb);
	LAZY(curl_easy_setopt)(h, CURLOPT_WRITEDATA, &body);
	if (r->username) {
		LAZY(curl_easy_setopt)(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		LAZY(curl_easy_setopt)(h, CURLOPT_USERNAME, r->username);
		LAZY(curl_easy_setopt)(h, CURLOPT_PASSWORD, r->password);
	}
	CURLcode rc = CURLE_OK;
	long status = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		strbuf_reset(&body);
		rc = LAZY(curl_easy_perform)(h);
		status = 0;
		LAZY(curl_easy_getinfo)(h, CURLINFO_RESPONSE_CODE, &status);
		if (rc == CURLE_OK && status < 500)
			break;
	}
	LAZY(curl_easy_cleanup)(h);
	int ret = -1;
	yajl_val v = NULL;
	if (rc != CURLE_OK) {
		berr_set(err, 0, "token service %s: %s", c->realm, LAZY(curl_easy_strerror)(rc));
	} else if (status == 401 || status == 403) {
		berr_set(err, 0, "token service %s refused %s (%ld)", c->realm,
			 r->username ? "the credentials" : "anonymous access; give credentials",
			 status);
	} else if (status != 200) {
		berr_set(err, 0, "token service %s answered %ld", c->realm, status);
	} else if (json_parse(body.buf ? body.buf : "", body.len, TOKEN_BODY_MAX, "token response",
			      &v, err) == 0) {
		const char *tok = json_str(json_get(v, "token"));
		if (!tok || !tok[0])
			tok = json_str(json_get(v, "access_token"));
		yajl_val exp = json_get(v, "expires_in");
		long long expires_in = YAJL_IS_INTEGER(exp) ? YAJL_GET_INTEGER(exp) : 60;
		if (expires_in < 1 || expires_in > 365LL * 24 * 3600)
			expires_in = 60;
		bool ok = tok && tok[0] && strlen(tok) < TOKEN_MAX;
		for (const char *p = tok; ok && *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
				ok = false;
		if (!ok) {
			berr_set(err, 0, "token service %s sent no usable token", c->realm);
		} else {
			struct strbuf a = STRBUF_INIT;
			if (strbuf_printf(&a, "Bearer %s", tok) < 0) {
				berr_set(err, ENOMEM, "token");
			} else {
				if (r->authorization)
					explicit_bzero(r->authorization, strlen(r->authorization));
				free(r->authorization);
				r->authorization = strbuf_detach(&a);
				r->auth_expires = time(NULL) + (time_t)expires_in;
				/* renew a little early, but not every request for short tokens */
				r->auth_margin = expires_in >= 50 ? 5 : (time_t)expires_in / 10;
				r->auth_gen++;
				ret = 0;
			}
			strbuf_release(&a);
		}
	}
	if (v)
		yajl_tree_free(v);
	strbuf_release(&url);
	strbuf_release(&body);
	return ret;
}

static int set_basic(struct registry *r, struct berr *err)
{
	struct strbuf plain = STRBUF_INIT;
	if (strbuf_printf(&plain, "%s:%s", r->username, r->password) < 0)
		return berr_set(err, ENOMEM, "credentials");
	size_t n = base64_encoded_len(plain.len) + 1;
	char *enc = malloc(n + 6);
	if (!enc) {
		strbuf_release(&plain);
		return berr_set(err, ENOMEM, "credentials");
	}
	memcpy(enc, "Basic ", 6);
	base64_encode(plain.buf, plain.len, enc + 6, n);
	explicit_bzero(plain.buf, plain.len);
	strbuf_release(&plain);
	if (r->authorization)
		explicit_bzero(r->authorization, strlen(r->authorization));
	free(r->authorization);
	r->authorization = enc;
	r->auth_expires = 0;
	r->auth_gen++;
	return 0;
}

/* Answers a 401: unless another thread already did so since `gen_used`,
 * obtains new credentials for the challenge. */
static int authenticate(struct registry *r, const char *www_auth, unsigned gen_used,
			struct berr *err)
{
	struct auth_challenge c;
	if (!www_auth[0])
		return berr_set(err, 0, "%s answered 401 without a WWW-Authenticate challenge",
				r->ref.domain);
	if (auth_challenge_parse(www_auth, &c, err) < 0)
		return berr_wrap(err, "%s", r->ref.domain);
	pthread_mutex_lock(&r->lock);
	int ret = 0;
	if (r->auth_gen == gen_used) {
		r->challenge = c;
		if (c.scheme == AUTH_BASIC) {
			if (!r->username)
				ret = berr_set(err, 0,
					       "%s requires a login: give credentials "
					       "(--username/--password or the config's registries)",
					       r->ref.domain);
			else if (r->authorization && !strncmp(r->authorization, "Basic ", 6))
				ret = berr_set(err, 0, "%s refused the credentials of user %s",
					       r->ref.domain, r->username);
			else
				ret = set_basic(r, err);
		} else {
			ret = fetch_token(r, err);
		}
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* The Authorization header for the next request (renewing an expiring
 * token first); *gen gets the generation it belongs to. */
static int current_auth(struct registry *r, char **hdr, unsigned *gen, struct berr *err)
{
	*hdr = NULL;
	pthread_mutex_lock(&r->lock);
	int ret = 0;
	if (r->authorization && r->auth_expires && time(NULL) + r->auth_margin >= r->auth_expires &&
	    r->challenge.scheme == AUTH_BEARER)
		ret = fetch_token(r, err);
	if (ret == 0 && r->authorization) {
		struct strbuf h = STRBUF_INIT;
		if (strbuf_printf(&h, "Authorization: %s", r->authorization) < 0)
			ret = berr_set(err, ENOMEM, "auth header");
		else
			*hdr = strbuf_detach(&h);
	}
	*gen = r->auth_gen;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* ---- the fetch engine ------------------------------------------------ */

static void copy_header_value(char *dst, size_t cap, const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n >= cap)
		n = 0; /* too long to be meaningful: treat as absent */
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t header_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct registry_blob *b = ctx;
	size_t len = size * n;
	if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
		b->content_type[0] = b->dcd[0] = b->www_auth[0] = '\0';
		b->range_start = -1;
		return len;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon)
		return len;
	size_t nlen = (size_t)(colon - data);
	const char *v = colon + 1;
	size_t vlen = len - nlen - 1;
	if (nlen == 12 && !strncasecmp(data, "Content-Type", 12)) {
		copy_header_value(b->content_type, sizeof(b->content_type), v, vlen);
		char *semi = strchr(b->content_type, ';');
		if (semi)
			*semi = '\0';
		for (char *e = b->content_type + strlen(b->content_type);
		     e > b->content_type && e[-1] == ' ';)
			*--e = '\0';
	} else if (nlen == 21 && !strncasecmp(data, "Docker-Content-Digest", 21)) {
		copy_header_value(b->dcd, sizeof(b->dcd), v, vlen);
	} else if (nlen == 16 && !strncasecmp(data, "WWW-Authenticate", 16)) {
		if (!b->www_auth[0])
			copy_header_value(b->www_auth, sizeof(b->www_auth), v, vlen);
	} else if (nlen == 13 && !strncasecmp(data, "Content-Range", 13)) {
		char cr[128];
		copy_header_value(cr, sizeof(cr), v, vlen);
		unsigned long long start;
		if (sscanf(cr, "bytes %llu-", &start) == 1)
			b->range_start = (long long)start;
	}
	return len;
}

static size_t fail_in_callback(struct registry_blob *b, const char *msg)
{
	b->fatal = true;
	berr_set(&b->fatal_err, 0, "%s", msg);
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct registry_blob *b = ctx;
	size_t len = size * n;
	if (!b->status_seen) {
		b->status_seen = true;
		LAZY(curl_easy_getinfo)(b->easy, CURLINFO_RESPONSE_CODE, &b->status);
		if (b->status == 206 && b->range_start != (long long)b->received)
			return fail_in_callback(
			    b, "registry answered a range request with the wrong range");
		if (b->status == 200)
			b->skip = b->received; /* Range ignored: the body starts over */
	}
	if (b->status != 200 && b->status != 206) {
		if (b->errbody.len + len <= ERRBODY_MAX)
			strbuf_append(&b->errbody, data, len);
		return len;
	}
	size_t drop = b->skip < len ? (size_t)b->skip : len;
	size_t rest = len - drop;
	if (b->size && b->received + rest > b->size)
		return fail_in_callback(b, "registry sent more bytes than the descriptor's size");
	if (b->received + rest > b->max) {
		char m[128];
		snprintf(m, sizeof(m), "larger than the limit of %llu bytes",
			 (unsigned long long)b->max);
		return fail_in_callback(b, m);
	}
	if (b->tail + rest > FETCH_BUF && b->head > 0) {
		memmove(b->buf, b->buf + b->head, b->tail - b->head);
		b->tail -= b->head;
		b->head = 0;
	}
	if (b->tail + rest > FETCH_BUF) {
		b->paused = true;
		return CURL_WRITEFUNC_PAUSE; /* delivered again once the reader made room */
	}
	b->skip -= drop;
	digester_update(b->digester, data + drop, rest);
	memcpy(b->buf + b->tail, data + drop, rest);
	b->tail += rest;
	__atomic_store_n(&b->received, b->received + rest, __ATOMIC_RELAXED);
	return len;
}

static int start_request(struct registry_blob *b, struct berr *err)
{
	if (b->added) {
		LAZY(curl_multi_remove_handle)(b->multi, b->easy);
		b->added = false;
	}
	LAZY(curl_slist_free_all)(b->headers);
	b->headers = NULL;
	struct curl_slist *l = LAZY(curl_slist_append)(NULL, "Expect:");
	if (l && b->accept)
		l = LAZY(curl_slist_append)(l, b->accept);
	if (!l)
		return berr_set(err, ENOMEM, "%s", b->what);
	b->headers = l;
	cleanup_free char *auth = NULL;
	if (current_auth(b->r, &auth, &b->auth_gen_used, err) < 0)
		return -1;
	if (auth && b->url_on_origin && !(b->headers = LAZY(curl_slist_append)(b->headers, auth)))
		return berr_set(err, ENOMEM, "%s", b->what);
	if (auth)
		explicit_bzero(auth, strlen(auth));
	if (b->received > 0) {
		char range[64];
		snprintf(range, sizeof(range), "Range: bytes=%llu-",
			 (unsigned long long)b->received);
		if (!(b->headers = LAZY(curl_slist_append)(b->headers, range)))
			return berr_set(err, ENOMEM, "%s", b->what);
	}
	LAZY(curl_easy_setopt)(b->easy, CURLOPT_URL, b->url);
	LAZY(curl_easy_setopt)(b->easy, CURLOPT_HTTPHEADER, b->headers);
	b->status = 0;
	b->status_seen = false;
	b->range_start = -1;
	b->skip = 0;
	b->content_type[0] = b->dcd[0] = b->www_auth[0] = '\0';
	strbuf_reset(&b->errbody);
	b->fatal = false;
	b->done = false;
	b->paused = false;
	if (LAZY(curl_multi_add_handle)(b->multi, b->easy) != CURLM_OK)
		return berr_set(err, 0, "%s: cannot start the transfer", b->what);
	b->added = true;
	return 0;
}

static void restart_from_origin(struct registry_blob *b)
{
	pthread_mutex_lock(&b->r->lock);
	snprintf(b->url, sizeof(b->url), "%s%s", b->r->origin, b->path);
	pthread_mutex_unlock(&b->r->lock);
	b->url_on_origin = true;
}

/* An insecure registry that does not speak TLS: go on in plain HTTP. */
static bool fall_back_to_http(struct registry_blob *b)
{
	struct registry *r = b->r;
	if (!r->insecure || b->status != 0 || !b->url_on_origin || strncmp(b->url, "https://", 8) ||
	    __atomic_load_n(&r->origin_answered, __ATOMIC_ACQUIRE))
		return false;
	switch (b->result) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		break;
	default:
		return false;
	}
	pthread_mutex_lock(&r->lock);
	if (!strncmp(r->origin, "https://", 8))
		snprintf(r->origin, sizeof(r->origin), "http://%s", image_ref_api_host(&r->ref));
	pthread_mutex_unlock(&r->lock);
	restart_from_origin(b);
	return true;
}

static int backoff(struct registry_blob *b, struct berr *err)
{
	unsigned ms = 250u << (b->attempts - 1);
	if (ms > 2000)
		ms = 2000;
	for (unsigned waited = 0; waited < ms; waited += 50) {
		if (cancelled(b->r))
			return berr_set(err, 0, "cancelled");
		usleep(50 * 1000);
	}
	return 0;
}

static bool transient_curl_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static const char *status_text(long status)
{
	switch (status) {
	case 400:
		return "bad request";
	case 401:
		return "unauthorized";
	case 403:
		return "access denied";
	case 404:
		return "not found";
	case 405:
		return "method not allowed";
	case 406:
		return "not acceptable";
	case 416:
		return "range not satisfiable";
	case 429:
		return "too many requests";
	case 500:
		return "internal server error";
	case 502:
		return "bad gateway";
	case 503:
		return "service unavailable";
	case 504:
		return "gateway timeout";
	default:
		return "unexpected status";
	}
}

/* A transfer ended: finish, retry, follow or fail. */
static int handle_done(struct registry_blob *b, struct berr *err)
{
	struct registry *r = b->r;
	const char *host = image_ref_api_host(&r->ref);
	if (b->fatal) {
		*err = b->fatal_err;
		return -1;
	}
	if (b->result == CURLE_FILESIZE_EXCEEDED && b->size)
		return berr_set(err, 0,
				"the registry announced more than the descriptor's %llu bytes",
				(unsigned long long)b->size);
	if (b->result == CURLE_FILESIZE_EXCEEDED)
		return berr_set(err, 0, "larger than the limit of %llu bytes",
				(unsigned long long)b->max);
	if (b->status == 0)
		LAZY(curl_easy_getinfo)(b->easy, CURLINFO_RESPONSE_CODE, &b->status);
	if (b->status != 0 && b->url_on_origin)
		__atomic_store_n(&r->origin_answered, 1, __ATOMIC_RELEASE);
	bool transient = false;
	char why[ERRBODY_MAX + 128];
	if (b->result != CURLE_OK && fall_back_to_http(b))
		return start_request(b, err);
	/* Every byte arrived and only the goodbye failed: nothing to resume. */
	if (b->result != CURLE_OK && b->size && b->received == b->size &&
	    (b->status == 200 || b->status == 206))
		b->result = CURLE_OK;
	if (b->result != CURLE_OK) {
		if (!transient_curl_error(b->result))
			return berr_set(err, 0, "%s: %s%s", host,
					LAZY(curl_easy_strerror)(b->result),
					b->result == CURLE_SSL_CONNECT_ERROR && !r->insecure
					    ? " (a plain-HTTP registry needs --insecure)"
					    : "");
		if (b->result == CURLE_OPERATION_TIMEDOUT)
			snprintf(why, sizeof(why), "no data for %ld s (registry stopped answering)",
				 r->timeout);
		else
			snprintf(why, sizeof(why), "%s", LAZY(curl_easy_strerror)(b->result));
		transient = true;
	} else if (b->status == 200 || b->status == 206) {
		if (b->size && b->received < b->size) {
			snprintf(why, sizeof(why), "body truncated at %llu of %llu bytes",
				 (unsigned long long)b->received, (unsigned long long)b->size);
			transient = true;
		} else {
			digester_final(b->digester, b->got);
			digester_free(b->digester);
			b->digester = NULL;
			if (b->expect[0] && strcmp(b->got, b->expect))
				return berr_set(err, 0, "digest mismatch: the registry sent %s",
						b->got);
			if (b->expect[0] && b->dcd[0] && strcmp(b->dcd, b->expect))
				return berr_set(err, 0,
						"the registry's Docker-Content-Digest %.80s is not "
						"the digest asked for",
						b->dcd);
			b->eof = true;
			return 0;
		}
	} else if (b->status >= 300 && b->status < 400 && b->status != 304) {
		char *loc = NULL;
		LAZY(curl_easy_getinfo)(b->easy, CURLINFO_REDIRECT_URL, &loc);
		if (!loc || !loc[0])
			return berr_set(err, 0, "%s answered %ld without a Location", host,
					b->status);
		if (++b->redirects > MAX_REDIRECTS)
			return berr_set(err, 0, "more than %d redirects", MAX_REDIRECTS);
		if (strlen(loc) >= sizeof(b->url))
			return berr_set(err, 0, "redirect URL too long");
		if (strncmp(loc, "https://", 8) && !(r->insecure && !strncmp(loc, "http://", 7)))
			return berr_set(err, 0, "refusing a redirect to %.200s (not HTTPS)", loc);
		b->url_on_origin = same_origin(loc, r->origin);
		memmove(b->url, loc, strlen(loc) + 1);
		return start_request(b, err);
	} else if (b->status == 401) {
		if (!b->url_on_origin)
			return berr_set(err, 0, "redirect target answered 401");
		if (++b->auth_tries > 2)
			return berr_set(err, 0, "%s refused the credentials (401 unauthorized)",
					host);
		if (authenticate(r, b->www_auth, b->auth_gen_used, err) < 0)
			return -1;
		return start_request(b, err);
	} else if (b->status == 429 || b->status >= 500) {
		snprintf(why, sizeof(why), "%ld %s", b->status, status_text(b->status));
		transient = true;
	} else {
		char detail[ERRBODY_MAX];
		describe_errbody(&b->errbody, detail, sizeof(detail));
		return berr_set(err, 0, "%s answered %ld %s%s%s%s", host, b->status,
				status_text(b->status), detail[0] ? " (" : "", detail,
				detail[0] ? ")" : "");
	}
	if (transient) {
		if (++b->attempts >= MAX_ATTEMPTS)
			return berr_set(err, 0, "%s: %s (gave up after %d attempts)", host, why,
					MAX_ATTEMPTS);
		if (b->size == 0 && b->received > 0) {
			/* unknown length: start over rather than trust a resumed tail */
			b->received = 0;
			b->head = b->tail = 0;
			digester_free(b->digester);
			b->digester = digester_for(b->expect[0] ? b->expect : "sha256:");
			if (!b->digester)
				return berr_set(err, ENOMEM, "digest");
		}
		if (backoff(b, err) < 0)
			return -1;
		restart_from_origin(b);
		return start_request(b, err);
	}
	return 0;
}

static int fetch_open(struct registry *r, const char *kind, const char *reference,
		      const char *expect, uint64_t size, uint64_t max, const char *accept,
		      struct registry_blob **out, struct berr *err)
{
	*out = NULL;
	struct registry_blob *b = calloc(1, sizeof(*b));
	if (!b)
		return berr_set(err, ENOMEM, "fetch");
	b->r = r;
	b->accept = accept;
	b->size = size;
	b->max = size ? size : max;
	b->errbody.max = ERRBODY_MAX + 1;
	snprintf(b->expect, sizeof(b->expect), "%s", expect ? expect : "");
	snprintf(b->path, sizeof(b->path), "/v2/%s/%s/%s", r->ref.path, kind, reference);
	restart_from_origin(b);
	b->buf = malloc(FETCH_BUF);
	b->digester = digester_for(b->expect[0] ? b->expect : "sha256:");
	b->multi = LAZY(curl_multi_init)();
	b->easy = LAZY(curl_easy_init)();
	if (!b->buf || !b->digester || !b->multi || !b->easy) {
		registry_blob_close(b);
		return berr_set(err, ENOMEM, "fetch");
	}
	setup_easy(r, b->easy);
	LAZY(curl_easy_setopt)(b->easy, CURLOPT_WRITEFUNCTION, write_cb);
	LAZY(curl_easy_setopt)(b->easy, CURLOPT_WRITEDATA, b);
	LAZY(curl_easy_setopt)(b->easy, CURLOPT_HEADERFUNCTION, header_cb);
	LAZY(curl_easy_setopt)(b->easy, CURLOPT_HEADERDATA, b);
	LAZY(curl_easy_setopt)(b->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b->max);
	if (start_request(b, err) < 0) {
		registry_blob_close(b);
		return -1;
	}
	*out = b;
	return 0;
}

int registry_blob_open(struct registry *r, const char *digest, uint64_t size,
		       struct registry_blob **out, struct berr *err)
{
	if (!digest_is_valid(digest))
		return berr_set(err, 0, "invalid blob digest");
	if (size == 0)
		return berr_set(err, 0, "blob %s: descriptor has no size", digest);
	if (fetch_open(r, "blobs", digest, digest, size, size, NULL, out, err) < 0)
		return -1;
	snprintf((*out)->what, sizeof((*out)->what), "blob %s", digest);
	return 0;
}

ssize_t registry_blob_read(struct registry_blob *b, void *buf, size_t len, struct berr *err)
{
	for (;;) {
		if (b->failed) {
			*err = b->err;
			return -1;
		}
		if (b->tail > b->head) {
			size_t n = b->tail - b->head;
			if (n > len)
				n = len;
			memcpy(buf, b->buf + b->head, n);
			b->head += n;
			if (b->head == b->tail)
				b->head = b->tail = 0;
			return (ssize_t)n;
		}
		if (b->eof)
			return 0;
		if (cancelled(b->r)) {
			b->failed = true;
			berr_set(&b->err, 0, "cancelled");
			continue;
		}
		if (b->done) {
			b->done = false;
			if (handle_done(b, &b->err) < 0)
				b->failed = true;
			continue;
		}
		if (b->paused) {
			b->paused = false;
			LAZY(curl_easy_pause)(b->easy, CURLPAUSE_CONT);
			continue;
		}
		int running = 0;
		CURLMcode mc = LAZY(curl_multi_perform)(b->multi, &running);
		if (mc != CURLM_OK) {
			b->failed = true;
			berr_set(&b->err, 0, "%s", LAZY(curl_multi_strerror)(mc));
			continue;
		}
		CURLMsg *msg;
		int left;
		while ((msg = LAZY(curl_multi_info_read)(b->multi, &left)))
			if (msg->msg == CURLMSG_DONE) {
				b->result = msg->data.result;
				b->done = true;
			}
		if (!b->done && b->tail == b->head && !b->paused)
			LAZY(curl_multi_poll)(b->multi, NULL, 0, 200, NULL);
	}
}

uint64_t registry_blob_received(const struct registry_blob *b)
{
	return __atomic_load_n(&b->received, __ATOMIC_RELAXED);
}

void registry_blob_close(struct registry_blob *b)
{
	if (!b)
		return;
	if (b->added)
		LAZY(curl_multi_remove_handle)(b->multi, b->easy);
	if (b->easy)
		LAZY(curl_easy_cleanup)(b->easy);
	if (b->multi)
		LAZY(curl_multi_cleanup)(b->multi);
	LAZY(curl_slist_free_all)(b->headers);
	digester_free(b->digester);
	strbuf_release(&b->errbody);
	free(b->buf);
	free(b);
}

/* Reads a whole fetch into memory. */
static int fetch_all(struct registry_blob *b, char **body, size_t *len, struct berr *err)
{
	struct strbuf sb = STRBUF_INIT;
	sb.max = b->max + 1;
	char chunk[16384];
	for (;;) {
		ssize_t n = registry_blob_read(b, chunk, sizeof(chunk), err);
		if (n < 0) {
			strbuf_release(&sb);
			return -1;
		}
		if (n == 0)
			break;
		if (strbuf_append(&sb, chunk, (size_t)n) < 0) {
			strbuf_release(&sb);
			return berr_set(err, ENOMEM, "read");
		}
	}
	*len = sb.len;
	*body = strbuf_detach(&sb);
	return *body ? 0 : berr_set(err, ENOMEM, "read");
}

int registry_get_manifest(struct registry *r, const char *reference, char **body, size_t *len,
			  char media_type[MEDIA_TYPE_MAX], char digest[DIGEST_STR_MAX],
			  struct berr *err)
{
	*body = NULL;
	bool by_digest = digest_is_valid(reference);
	struct registry_blob *b;
	if (fetch_open(r, "manifests", reference, by_digest ? reference : NULL, 0, MANIFEST_MAX,
		       MANIFEST_ACCEPT, &b, err) < 0)
		return -1;
	snprintf(b->what, sizeof(b->what), "manifest %s", reference);
	cleanup_free char *data = NULL;
	size_t n = 0;
	if (fetch_all(b, &data, &n, err) < 0) {
		registry_blob_close(b);
		if (strstr(err->msg, "larger than the limit"))
			return berr_set(err, 0, "manifest is larger than %u MiB: refused",
					MANIFEST_MAX >> 20);
		return -1;
	}
	char dcd[sizeof(b->dcd)];
	snprintf(dcd, sizeof(dcd), "%s", b->dcd);
	snprintf(media_type, MEDIA_TYPE_MAX, "%s", b->content_type);
	snprintf(digest, DIGEST_STR_MAX, "%s", b->got);
	registry_blob_close(b);
	if (dcd[0]) {
		if (!digest_is_valid(dcd))
			return berr_set(err, 0, "registry sent a malformed Docker-Content-Digest");
		if (digest_verify(data, n, dcd, "manifest (Docker-Content-Digest)", err) < 0)
			return -1;
	}
	*body = take_ptr(data);
	*len = n;
	return 0;
}

int registry_get_blob(struct registry *r, const char *digest, uint64_t size, size_t max,
		      char **body, size_t *len, struct berr *err)
{
	*body = NULL;
	if (size > max)
		return berr_set(err, 0, "blob %s: %llu bytes is over the limit of %zu", digest,
				(unsigned long long)size, max);
	struct registry_blob *b;
	if (registry_blob_open(r, digest, size, &b, err) < 0)
		return -1;
	int ret = fetch_all(b, body, len, err);
	registry_blob_close(b);
	return ret;
}
