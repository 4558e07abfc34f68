/* Send-to-receipt latency of QoS 1 messages through an MQTT broker on a Unix
 * socket, at a fixed offered rate, with the hub's own codec (a client in C,
 * so the numbers are the broker's and not a Python client's):
 *
 *   mqtt_latency SOCKET RATE SECONDS SIZE
 *                PUB_ID PUB_USER PUB_PASS PUB_TOPIC SUB_ID SUB_USER SUB_PASS SUB_FILTER
 *
 * (USER and PASS "-" for none). One thread publishes RATE messages a second
 * (paced each millisecond), each carrying its send time; the other receives
 * and acknowledges them. Prints "offered N/s delivered D of S median US p99
 * US p999 US max US" over all but the first 0.2 s.
 *
 *   mqtt_latency fill SOCKET N SIZE ID USER PASS TOPIC
 *
 * publishes N QoS 1 messages with 64 in flight and returns once the broker
 * acknowledged every one (exit 1 if it closed the connection before). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hub/mqtt_codec.h"

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "mqtt_latency: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("send");
		p += n;
		len -= (size_t)n;
	}
}

struct reader {
	int fd;
	uint8_t buf[1 << 20];
	size_t len;
};

/* The next whole packet (decoded into *p, pointing into r->buf), after
 * dropping the one before. 0 on success, -1 at the end. */
static int next_packet(struct reader *r, size_t *used, struct mqtt_packet *p)
{
	if (*used) {
		memmove(r->buf, r->buf + *used, r->len - *used);
		r->len -= *used;
		*used = 0;
	}
	for (;;) {
		struct mqtt_fixed_header h;
		struct berr err;
		int rc = mqtt_fixed_header_read(r->buf, r->len, &h, &err);
		if (rc < 0)
			return -1;
		if (rc == 0 && r->len >= h.header_len + h.remaining) {
			*used = h.header_len + h.remaining;
			return mqtt_decode(r->buf, *used, p, &err);
		}
		ssize_t n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		r->len += (size_t)n;
	}
}

static struct mqtt_str str(const char *s)
{
	return (struct mqtt_str){s, (uint16_t)strlen(s)};
}

static int connect_as(const char *path, const char *id, const char *user, const char *pass)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(path);
	struct mqtt_connect c = {.protocol = str("MQTT"),
				 .level = MQTT_PROTOCOL_LEVEL,
				 .clean_session = true,
				 .keepalive = 60,
				 .client_id = str(id)};
	if (strcmp(user, "-")) {
		c.has_username = true;
		c.username = str(user);
	}
	if (strcmp(pass, "-")) {
		c.has_password = true;
		c.password = (const uint8_t *)pass;
		c.password_len = (uint16_t)strlen(pass);
	}
	struct strbuf sb = STRBUF_INIT;
	mqtt_encode_connect(&sb, &c);
	send_all(fd, sb.buf, sb.len);
	strbuf_release(&sb);
	uint8_t ack[4];
	if (recv(fd, ack, 4, MSG_WAITALL) != 4 || ack[0] != 0x20 || ack[3] != 0) {
		fprintf(stderr, "mqtt_latency: %s: no CONNACK 0\n", id);
		exit(1);
	}
	return fd;
}

struct rx {
	struct reader r;
	int64_t *lat;
	size_t n, cap;
	size_t want;
};

static void *receive(void *arg)
{
	struct rx *rx = arg;
	size_t used = 0;
	struct mqtt_packet p;
	struct strbuf sb = STRBUF_INIT;
	while (rx->n < rx->want && next_packet(&rx->r, &used, &p) == 0) {
		if (p.header.type != MQTT_PUBLISH)
			continue;
		int64_t t0;
		if (p.u.publish.payload_len < sizeof(t0))
			continue;
		memcpy(&t0, p.u.publish.payload, sizeof(t0));
		if (rx->n < rx->cap)
			rx->lat[rx->n] = now_ns() - t0;
		rx->n++;
		strbuf_reset(&sb);
		mqtt_encode_ack(&sb, MQTT_PUBACK, p.u.publish.packet_id);
		send_all(rx->r.fd, sb.buf, sb.len);
	}
	strbuf_release(&sb);
	return NULL;
}

static void *drain_acks(void *arg)
{
	struct reader *r = arg;
	size_t used = 0;
	struct mqtt_packet p;
	while (next_packet(r, &used, &p) == 0)
		;
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* N messages at QoS 1, FILL_WINDOW unacknowledged at most. */
#define FILL_WINDOW 64
static int fill(char **argv)
{
	static struct reader r;
	r.fd = connect_as(argv[2], argv[5], argv[6], argv[7]);
	size_t n = (size_t)atol(argv[3]), size = (size_t)atol(argv[4]);
	uint8_t *payload = malloc(size);
	memset(payload, 'f', size);
	struct mqtt_publish pub = {
	    .qos = 1, .topic = str(argv[8]), .payload = payload, .payload_len = size};
	struct strbuf sb = STRBUF_INIT;
	size_t sent = 0, acked = 0, used = 0;
	uint16_t pid = 0;
	while (acked < n) {
		strbuf_reset(&sb);
		while (sent < n && sent - acked < FILL_WINDOW) {
			pid = pid == 65535 ? 1 : pid + 1;
			pub.packet_id = pid;
			mqtt_encode_publish(&sb, &pub);
			sent++;
		}
		if (sb.len)
			send_all(r.fd, sb.buf, sb.len);
		struct mqtt_packet p;
		if (next_packet(&r, &used, &p) < 0) {
			fprintf(stderr, "mqtt_latency: %zu of %zu acknowledged, then the end\n",
				acked, n);
			return 1;
		}
		acked += p.header.type == MQTT_PUBACK;
	}
	strbuf_release(&sb);
	free(payload);
	close(r.fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 9 && !strcmp(argv[1], "fill"))
		return fill(argv);
	if (argc != 13) {
		fprintf(stderr, "usage: see the head of bench/mqtt_latency.c\n");
		return 2;
	}
	const char *path = argv[1];
	long rate = atol(argv[2]), seconds = atol(argv[3]);
	size_t size = (size_t)atol(argv[4]);
	static struct rx rx;
	rx.r.fd = connect_as(path, argv[9], argv[10], argv[11]);
	struct mqtt_subscribe sub = {.packet_id = 1, .n = 1};
	sub.items[0].filter = str(argv[12]);
	sub.items[0].qos = 1;
	struct strbuf sb = STRBUF_INIT;
	mqtt_encode_subscribe(&sb, MQTT_SUBSCRIBE, &sub);
	send_all(rx.r.fd, sb.buf, sb.len);
	uint8_t suback[5];
	if (recv(rx.r.fd, suback, 5, MSG_WAITALL) != 5 || suback[0] != 0x90)
		die("suback");
	static struct reader tx;
	tx.fd = connect_as(path, argv[5], argv[6], argv[7]);
	size_t total = (size_t)(rate * seconds);
	rx.cap = rx.want = total;
	rx.lat = calloc(total, sizeof(*rx.lat));
	pthread_t trx, ttx;
	pthread_create(&trx, NULL, receive, &rx);
	pthread_create(&ttx, NULL, drain_acks, &tx);
	uint8_t *payload = calloc(1, size);
	memset(payload, 'l', size);
	struct mqtt_publish pub = {
	    .qos = 1, .topic = str(argv[8]), .payload = payload, .payload_len = size};
	long per_ms = rate / 1000;
	int64_t start = now_ns();
	size_t sent = 0;
	uint16_t pid = 0;
	for (long ms = 0; ms < seconds * 1000; ms++) {
		int64_t due = start + ms * 1000000;
		int64_t wait;
		while ((wait = due - now_ns()) > 0) {
			struct timespec ts = {0, wait};
			nanosleep(&ts, NULL);
		}
		for (long k = 0; k < per_ms; k++) {
			int64_t t = now_ns();
			memcpy(payload, &t, sizeof(t));
			pid = pid == 65535 ? 1 : pid + 1;
			pub.packet_id = pid;
			strbuf_reset(&sb);
			mqtt_encode_publish(&sb, &pub);
			send_all(tx.fd, sb.buf, sb.len);
			sent++;
		}
	}
	double offered = (double)sent / ((double)(now_ns() - start) / 1e9);
	int64_t deadline = now_ns() + 30 * (int64_t)1000000000;
	while (rx.n < sent && now_ns() < deadline)
		usleep(10000);
	size_t got = rx.n < rx.cap ? rx.n : rx.cap;
	size_t skip = (size_t)(rate / 5);
	if (got <= skip) {
		fprintf(stderr, "mqtt_latency: only %zu of %zu delivered\n", got, sent);
		return 1;
	}
	int64_t *lat = rx.lat + skip;
	size_t n = got - skip;
	qsort(lat, n, sizeof(*lat), cmp);
	printf("offered %.0f/s delivered %zu of %zu median %.0f p99 %.0f p999 %.0f max %.0f\n",
	       offered, rx.n, sent, lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3,
	       lat[n * 999 / 1000] / 1e3, lat[n - 1] / 1e3);
	return 0;
}
