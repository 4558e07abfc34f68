/* The broker's protocol handling on arbitrary bytes from one connection:
 * CONNECT checks, then (when the first input byte is odd, behind a valid
 * CONNECT for module "a") PUBLISH, SUBSCRIBE, twin requests and the rest.
 * Whatever arrives, the hub must neither crash nor leak, and must answer
 * only with well-formed packets. Runs the real broker (hub/broker.h) over a
 * socketpair. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/sas.h"
#include "hub/broker.h"

static struct broker hub;
static struct strbuf good_connect = STRBUF_INIT;

static const char device_key[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
static char workdir[] = "/tmp/berth-fuzz-hub-XXXXXX";

static void remove_workdir(void)
{
	struct berr err;
	(void)fs_remove_tree(workdir, &err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(workdir))
		abort();
	atexit(remove_workdir);
	const char *dir = workdir;
	char path[256], cfg[2048];
	snprintf(path, sizeof(path), "%s/hub.json", dir);
	snprintf(cfg, sizeof(cfg),
		 "{\"device_id\":\"dev\",\"iothub_hostname\":\"hub.example.net\","
		 "\"device_key\":\"%s\",\"socket\":\"%s/hub.sock\",\"state_dir\":\"%s/state\","
		 "\"store_max_bytes\":1048576,"
		 "\"routes\":{\"r\":\"FROM /messages/modules/a/outputs/o INTO "
		 "BrokeredEndpoint(\\\"/modules/b/inputs/i\\\")\",\"u\":\"FROM /messages/* INTO "
		 "$upstream\"},"
		 "\"modules\":{\"a\":{\"generation_id\":\"g\",\"desired\":{\"k\":1}},"
		 "\"b\":{\"generation_id\":\"g\"}}}",
		 device_key, dir, dir);
	struct berr err;
	if (fs_write_file_atomic(path, cfg, strlen(cfg), 0600, &err) < 0)
		abort();
	log_set_level(LOG_LVL_ERROR);
	if (broker_init(&hub, strdup(path), -1, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		abort();
	}
	char key[SAS_KEY_B64_MAX], token[SAS_TOKEN_MAX];
	if (sas_derive_module_key(device_key, "a", "g", key, &err) < 0 ||
	    sas_token_make(key, "hub.example.net/devices/dev/modules/a", 4000000000LL, token,
			   sizeof(token), &err) < 0)
		abort();
	const char user[] = "hub.example.net/dev/a/?api-version=2018-06-30";
	struct mqtt_connect c = {
	    .clean_session = true,
	    .keepalive = 60,
	    .client_id = {"dev/a", 5},
	    .has_username = true,
	    .username = {user, sizeof(user) - 1},
	    .has_password = true,
	    .password = (const uint8_t *)token,
	    .password_len = (uint16_t)strlen(token),
	};
	if (mqtt_encode_connect(&good_connect, &c) < 0)
		abort();
	return 0;
}

/* Reads what the hub wrote and checks it is a sequence of packets. */
static void drain(int fd, struct strbuf *seen)
{
	char buf[65536];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		strbuf_append(seen, buf, (size_t)n);
}

static void check_output(const struct strbuf *seen)
{
	size_t off = 0;
	while (off < seen->len) {
		struct mqtt_fixed_header h;
		struct berr err;
		if (mqtt_fixed_header_read((const uint8_t *)seen->buf + off, seen->len - off, &h,
					   &err) != 0)
			abort();
		size_t total = (size_t)h.header_len + h.remaining;
		struct mqtt_packet p;
		if (total > seen->len - off ||
		    mqtt_decode((const uint8_t *)seen->buf + off, total, &p, &err) < 0)
			abort();
		off += total;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	int big = 4 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	broker_clock(&hub);
	struct client *c = client_new(&hub, sv[0], false, "fuzz");
	if (!c)
		abort();
	c->pid = getpid();
	if (size && (data[0] & 1)) {
		if (send(sv[1], good_connect.buf, good_connect.len, 0) != (ssize_t)good_connect.len)
			abort();
	}
	if (size > 1 && send(sv[1], data + 1, size - 1, 0) != (ssize_t)(size - 1))
		abort();
	struct strbuf seen = STRBUF_INIT;
	for (int round = 0; round < 8 && c->state != CLIENT_CLOSED; round++) {
		c->io.on_event(&c->io, EPOLLIN | EPOLLOUT);
		store_dispatch(hub.store);
		drain(sv[1], &seen);
	}
	if (c->state != CLIENT_CLOSED)
		client_close(c, LOG_LVL_DEBUG, true, "end of input");
	store_dispatch(hub.store);
	drain(sv[1], &seen);
	check_output(&seen);
	strbuf_release(&seen);
	twins_flush(&hub); /* as the loop does at the end of a turn */
	while (hub.sessions)
		session_discard(hub.sessions);
	client_free_dead(&hub);
	/* Nothing consumes the routed messages: empty the store each time. */
	struct store_item it;
	while (store_lease(hub.store, "", NULL, NULL, hub.now_ms, &it) == 0)
		store_ack(hub.store, it.endpoint, it.seq);
	close(sv[1]);
	return 0;
}
