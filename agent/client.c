#include "agent/client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/strbuf.h"

int daemon_request(const char *run, const char *request, yajl_val *reply, struct berr *err)
{
	*reply = NULL;
	char path[4300];
	snprintf(path, sizeof(path), "%s/" CONTROL_SOCKET, run);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return berr_set(err, ENAMETOOLONG, "daemon socket %s", path);
	strcpy(sa.sun_path, path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berr_set(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (e == EACCES || e == EPERM)
			return berr_set(
			    err, 0, "cannot reach the daemon at %s: permission denied (root only)",
			    path);
		return berr_set(err, 0, "cannot reach the daemon at %s: is berth daemon running?",
				path);
	}
	/* Restarts wait for a module's stop grace period. */
	struct timeval tv = {.tv_sec = 120};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t len = strlen(request);
	const char *p = request;
	bool newline = false;
	while (len || !newline) {
		if (!len) {
			p = "\n";
			len = 1;
			newline = true;
		}
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			/* A daemon that refuses the request (too large, too many
			 * clients) answers before it closes: read that answer. */
			if (errno == EPIPE || errno == ECONNRESET)
				break;
			return berr_set(err, errno, "sending to the daemon at %s", path);
		}
		p += w;
		len -= (size_t)w;
	}
	struct strbuf sb = STRBUF_INIT;
	sb.max = CLIENT_REPLY_MAX;
	char buf[16384];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			strbuf_release(&sb);
			return berr_set(err, errno, "no answer from the daemon at %s", path);
		}
		if (n == 0)
			break;
		if (strbuf_append(&sb, buf, (size_t)n) < 0) {
			strbuf_release(&sb);
			return berr_set(err, 0, "the daemon's answer is too large");
		}
	}
	if (!sb.len) {
		strbuf_release(&sb);
		return berr_set(err, 0, "the daemon at %s closed the connection without answering",
				path);
	}
	cleanup_yajl yajl_val v = NULL;
	int rc = json_parse(sb.buf, sb.len, CLIENT_REPLY_MAX, "the daemon's answer", &v, err);
	strbuf_release(&sb);
	if (rc < 0)
		return -1;
	yajl_val st = json_get(v, "status");
	if (!st || !YAJL_IS_INTEGER(st) || YAJL_GET_INTEGER(st) != 200) {
		const char *msg = json_str(json_get(v, "error"));
		return berr_set(err, 0, "%s", msg ? msg : "the daemon refused the request");
	}
	*reply = take_ptr(v);
	return 0;
}

void daemon_state_root(const char *run, const char *given, bool given_set, char *out, size_t cap)
{
	snprintf(out, cap, "%s", given);
	if (given_set)
		return;
	cleanup_yajl yajl_val reply = NULL;
	struct berr err;
	if (daemon_request(run, "{\"op\":\"info\"}", &reply, &err) == 0) {
		const char *root = json_str(json_get(reply, "root"));
		if (root)
			snprintf(out, cap, "%s", root);
	}
}
