#include "edgeclient.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "hub/mqtt_codec.h"

#define KEEPALIVE_S 30
#define INBUF_MAX (300 * 1024)

struct ec {
	int fd;
	const char *device, *module, *hub, *socket_path, *token_file;
	char client_id[256], username[512], topic_prefix[256];
	struct ec_handlers h;
	uint16_t next_id;
	unsigned rid;
	unsigned char *in;
	size_t in_len;
	time_t last_sent;
};

static void die(const char *what)
{
	fprintf(stderr, "%s\n", what);
	exit(1);
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "%s is not set: run this module under berth\n", name);
		exit(1);
	}
	return v;
}

static int send_buf(struct ec *ec, struct strbuf *sb)
{
	size_t off = 0;
	while (off < sb->len) {
		ssize_t w = send(ec->fd, sb->buf + off, sb->len - off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)w;
	}
	ec->last_sent = time(NULL);
	return 0;
}

static int publish(struct ec *ec, const char *topic, const char *payload, size_t len, int qos)
{
	struct mqtt_publish p = { 0 };
	p.qos = (uint8_t)qos;
	p.topic.p = topic;
	p.topic.len = (uint16_t)strlen(topic);
	if (qos) {
		if (++ec->next_id == 0)
			ec->next_id = 1;
		p.packet_id = ec->next_id;
	}
	p.payload = (const uint8_t *)payload;
	p.payload_len = len;
	struct strbuf sb = STRBUF_INIT;
	int r = mqtt_encode_publish(&sb, &p);
	if (r == 0)
		r = send_buf(ec, &sb);
	strbuf_release(&sb);
	return r;
}

static int subscribe(struct ec *ec)
{
	static const char *const filters[] = { "", "$iothub/twin/res/#",
					       "$iothub/twin/PATCH/properties/desired/#",
					       "$iothub/methods/POST/#" };
	char inputs[300];
	snprintf(inputs, sizeof(inputs), "%s/#", ec->topic_prefix);
	struct mqtt_subscribe s = { 0 };
	s.packet_id = 1;
	s.n = sizeof(filters) / sizeof(filters[0]);
	for (size_t i = 0; i < s.n; i++) {
		const char *f = i == 0 ? inputs : filters[i];
		s.items[i].filter.p = f;
		s.items[i].filter.len = (uint16_t)strlen(f);
		s.items[i].qos = 1;
	}
	struct strbuf sb = STRBUF_INIT;
	int r = mqtt_encode_subscribe(&sb, MQTT_SUBSCRIBE, &s);
	if (r == 0)
		r = send_buf(ec, &sb);
	strbuf_release(&sb);
	return r;
}

/* Reads one whole packet into ec->in; 1 when one is ready, 0 on timeout,
 * -1 when the connection is gone. */
static int read_packet(struct ec *ec, int timeout_ms, struct mqtt_packet *pkt)
{
	for (;;) {
		struct mqtt_fixed_header fh;
		if (ec->in_len && mqtt_fixed_header_read(ec->in, ec->in_len, &fh, NULL) == 0) {
			size_t total = fh.header_len + (size_t)fh.remaining;
			if (total > INBUF_MAX)
				return -1;
			if (ec->in_len >= total) {
				if (mqtt_decode(ec->in, total, pkt, NULL) < 0)
					return -1;
				return 1;
			}
		}
		struct pollfd pfd = { .fd = ec->fd, .events = POLLIN };
		int n = poll(&pfd, 1, timeout_ms);
		if (n <= 0)
			return n < 0 && errno != EINTR ? -1 : 0;
		ssize_t r = recv(ec->fd, ec->in + ec->in_len, INBUF_MAX - ec->in_len, 0);
		if (r <= 0)
			return -1;
		ec->in_len += (size_t)r;
	}
}

static void consume(struct ec *ec, const struct mqtt_packet *pkt)
{
	size_t total = pkt->header.header_len + (size_t)pkt->header.remaining;
	memmove(ec->in, ec->in + total, ec->in_len - total);
	ec->in_len -= total;
}

static int try_connect(struct ec *ec)
{
	char token[2048];
	FILE *f = fopen(ec->token_file, "r");
	if (!f)
		return -1;
	size_t n = fread(token, 1, sizeof(token) - 1, f);
	fclose(f);
	while (n && (token[n - 1] == '\n' || token[n - 1] == '\r'))
		n--;
	token[n] = '\0';

	ec->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ec->socket_path);
	if (ec->fd < 0 || connect(ec->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	struct mqtt_connect c = { 0 };
	c.protocol.p = "MQTT";
	c.protocol.len = 4;
	c.level = MQTT_PROTOCOL_LEVEL;
	c.clean_session = false;
	c.keepalive = KEEPALIVE_S;
	c.client_id.p = ec->client_id;
	c.client_id.len = (uint16_t)strlen(ec->client_id);
	c.has_username = true;
	c.username.p = ec->username;
	c.username.len = (uint16_t)strlen(ec->username);
	c.has_password = true;
	c.password = (const uint8_t *)token;
	c.password_len = (uint16_t)n;
	struct strbuf sb = STRBUF_INIT;
	int r = mqtt_encode_connect(&sb, &c);
	if (r == 0)
		r = send_buf(ec, &sb);
	strbuf_release(&sb);
	if (r < 0)
		goto fail;
	struct mqtt_packet pkt;
	ec->in_len = 0;
	if (read_packet(ec, 5000, &pkt) != 1 || pkt.header.type != MQTT_CONNACK)
		goto fail;
	if (pkt.u.connack.code != 0) {
		fprintf(stderr, "%s: the hub refused the connection (CONNACK %u)\n", ec->module,
			pkt.u.connack.code);
		goto fail;
	}
	consume(ec, &pkt);
	if (subscribe(ec) < 0)
		goto fail;
	return 0;
fail:
	if (ec->fd >= 0)
		close(ec->fd);
	ec->fd = -1;
	return -1;
}

static void reconnect(struct ec *ec)
{
	for (int attempt = 0;; attempt++) {
		if (try_connect(ec) == 0) {
			fprintf(stderr, "%s: connected to the hub as %s\n", ec->module, ec->client_id);
			ec_get_twin(ec);
			return;
		}
		if (attempt % 10 == 0)
			fprintf(stderr, "%s: waiting for the hub at %s\n", ec->module, ec->socket_path);
		sleep(1);
	}
}

struct ec *ec_connect(const struct ec_handlers *h)
{
	struct ec *ec = calloc(1, sizeof(*ec));
	if (!ec || !(ec->in = malloc(INBUF_MAX)))
		die("out of memory");
	ec->fd = -1;
	ec->device = env("IOTEDGE_DEVICEID");
	ec->module = env("IOTEDGE_MODULEID");
	ec->hub = env("IOTEDGE_IOTHUBHOSTNAME");
	ec->socket_path = env("BERTH_HUB_SOCKET");
	ec->token_file = env("BERTH_TOKEN_FILE");
	if (h)
		ec->h = *h;
	snprintf(ec->client_id, sizeof(ec->client_id), "%s/%s", ec->device, ec->module);
	snprintf(ec->username, sizeof(ec->username), "%s/%s/%s/?api-version=2018-06-30", ec->hub,
		 ec->device, ec->module);
	snprintf(ec->topic_prefix, sizeof(ec->topic_prefix), "devices/%s/modules/%s", ec->device,
		 ec->module);
	reconnect(ec);
	return ec;
}

const char *ec_module_id(struct ec *ec)
{
	return ec->module;
}

int ec_send(struct ec *ec, const char *output, const char *props, const char *json)
{
	char topic[1024];
	snprintf(topic, sizeof(topic),
		 "%s/messages/events/%%24.on=%s&%%24.ct=application%%2Fjson&%%24.ce=utf-8%s%s",
		 ec->topic_prefix, output, props ? "&" : "", props ? props : "");
	return publish(ec, topic, json, strlen(json), 1);
}

int ec_get_twin(struct ec *ec)
{
	char topic[64];
	snprintf(topic, sizeof(topic), "$iothub/twin/GET/?$rid=%u", ++ec->rid);
	return publish(ec, topic, "", 0, 0);
}

int ec_report(struct ec *ec, const char *json)
{
	char topic[96];
	snprintf(topic, sizeof(topic), "$iothub/twin/PATCH/properties/reported/?$rid=%u", ++ec->rid);
	return publish(ec, topic, json, strlen(json), 0);
}

int ec_method_reply(struct ec *ec, const char *rid, int status, const char *json)
{
	char topic[160];
	snprintf(topic, sizeof(topic), "$iothub/methods/res/%d/?$rid=%.64s", status, rid);
	return publish(ec, topic, json, strlen(json), 0);
}

/* The "desired" member of a twin GET answer, found by scanning braces. */
static const char *desired_of(const char *json, size_t len, size_t *out_len)
{
	const char *p = memmem(json, len, "\"desired\"", 9);
	if (!p)
		return NULL;
	p = memchr(p, '{', len - (size_t)(p - json));
	if (!p)
		return NULL;
	int depth = 0;
	int in_str = 0;
	for (const char *q = p; q < json + len; q++) {
		if (in_str) {
			if (*q == '\\')
				q++;
			else if (*q == '"')
				in_str = 0;
		} else if (*q == '"') {
			in_str = 1;
		} else if (*q == '{') {
			depth++;
		} else if (*q == '}' && --depth == 0) {
			*out_len = (size_t)(q - p + 1);
			return p;
		}
	}
	return NULL;
}

static void dispatch(struct ec *ec, const struct mqtt_publish *p)
{
	char topic[1024];
	snprintf(topic, sizeof(topic), "%.*s", p->topic.len, p->topic.p);
	/* The payload is not NUL-terminated in the packet buffer: copy it. */
	char *body = malloc(p->payload_len + 1);
	if (!body)
		return;
	memcpy(body, p->payload, p->payload_len);
	body[p->payload_len] = '\0';
	size_t plen = strlen(ec->topic_prefix);
	if (!strncmp(topic, ec->topic_prefix, plen) && !strncmp(topic + plen, "/inputs/", 8)) {
		char *input = topic + plen + 8;
		char *slash = strchr(input, '/');
		const char *props = "";
		if (slash) {
			*slash = '\0';
			props = slash + 1;
		}
		if (ec->h.input)
			ec->h.input(ec, input, props, body, p->payload_len, ec->h.arg);
	} else if (!strncmp(topic, "$iothub/twin/PATCH/properties/desired/", 38)) {
		if (ec->h.desired)
			ec->h.desired(ec, body, p->payload_len, ec->h.arg);
	} else if (!strncmp(topic, "$iothub/twin/res/200/", 21)) {
		size_t dlen;
		const char *d = desired_of(body, p->payload_len, &dlen);
		if (d && ec->h.desired)
			ec->h.desired(ec, d, dlen, ec->h.arg);
	} else if (!strncmp(topic, "$iothub/methods/POST/", 21)) {
		char *name = topic + 21;
		char *q = strstr(name, "/?$rid=");
		if (q) {
			*q = '\0';
			if (ec->h.method)
				ec->h.method(ec, name, q + 7, body, p->payload_len, ec->h.arg);
		}
	}
	free(body);
}

void ec_poll(struct ec *ec, int timeout_ms)
{
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (spent >= timeout_ms)
			return;
		if (time(NULL) - ec->last_sent >= KEEPALIVE_S / 2) {
			struct strbuf sb = STRBUF_INIT;
			mqtt_encode_empty(&sb, MQTT_PINGREQ);
			send_buf(ec, &sb);
			strbuf_release(&sb);
		}
		struct mqtt_packet pkt;
		int r = read_packet(ec, (int)(timeout_ms - spent), &pkt);
		if (r < 0) {
			fprintf(stderr, "%s: lost the hub, reconnecting\n", ec->module);
			close(ec->fd);
			ec->fd = -1;
			reconnect(ec);
			continue;
		}
		if (r == 0)
			return;
		if (pkt.header.type == MQTT_PUBLISH) {
			dispatch(ec, &pkt.u.publish);
			if (pkt.u.publish.qos == 1) {
				struct strbuf sb = STRBUF_INIT;
				mqtt_encode_ack(&sb, MQTT_PUBACK, pkt.u.publish.packet_id);
				send_buf(ec, &sb);
				strbuf_release(&sb);
			}
		}
		consume(ec, &pkt);
	}
}

int ec_json_number(const char *json, size_t len, const char *key, double *out)
{
	char pat[128];
	int n = snprintf(pat, sizeof(pat), "\"%s\"", key);
	const char *p = memmem(json, len, pat, (size_t)n);
	if (!p)
		return 0;
	p += n;
	while (p < json + len && (*p == ' ' || *p == ':'))
		p++;
	char *end;
	double v = strtod(p, &end);
	if (end == p)
		return 0;
	*out = v;
	return 1;
}
