/* `berth check`: whether this device can run berth, in the manner of
 * `iotedge check`. Each line is marked √ (fine), ‼ (works, but look) or ×
 * (will not work), and every ‼ and × line carries a hint. Exit status 1 when
 * any line is ×. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "agent/cni.h"
#include "agent/client.h"
#include "agent/config.h"
#include "agent/deployment.h"
#include "agent/edgeca.h"
#include "agent/kernel_config.h"
#include "agent/upstream_view.h"
#include "common/cleanup.h"
#include "common/clock.h"
#include "common/command.h"
#include "common/fs.h"
#include "common/json.h"
#include "hub/hub.h"
#include "common/url.h"

#define CGROUP2_MAGIC	0x63677270
#define TMPFS_MAGIC_	0x01021994
#define STORE_MIN_FREE	(100LL * 1024 * 1024)
#define STORE_WARN_FREE (500LL * 1024 * 1024)
#define CLOCK_SANE	1704067200 /* 2024-01-01 */

enum mark { OK, WARN, FAIL };

struct report {
	int fails, warns;
};

static void line(struct report *r, enum mark m, const char *what, const char *hint)
{
	static const char *const marks[] = {"\u221a", "\u203c", "\u00d7"};
	printf("%s %s\n", marks[m], what);
	if (m != OK && hint)
		printf("    %s\n", hint);
	if (m == FAIL)
		r->fails++;
	else if (m == WARN)
		r->warns++;
}

static void section(const char *title)
{
	printf("\n%s\n", title);
	for (size_t i = 0; i < strlen(title); i++)
		putchar('-');
	putchar('\n');
}

static void check_namespaces(struct report *r)
{
	static const char *const ns[] = {"mnt", "pid", "uts", "ipc", "net", "cgroup", "user"};
	char missing[128] = "";
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/ns/%s", ns[i]);
		if (access(p, F_OK) < 0) {
			strncat(missing, " ", sizeof(missing) - strlen(missing) - 1);
			strncat(missing, ns[i], sizeof(missing) - strlen(missing) - 1);
		}
	}
	if (!missing[0])
		line(r, OK, "kernel namespaces: mnt pid uts ipc net cgroup user", NULL);
	else {
		char what[200];
		snprintf(what, sizeof(what), "kernel namespaces missing:%s", missing);
		line(r, FAIL, what,
		     "build the kernel with CONFIG_NAMESPACES and the missing CONFIG_*_NS options");
	}
}

static void check_overlay(struct report *r)
{
	cleanup_free char *fs = NULL;
	size_t len;
	struct berr err;
	if (fs_read_file("/proc/filesystems", 65536, &fs, &len, &err) == 0 &&
	    strstr(fs, "\toverlay\n"))
		line(r, OK, "overlayfs is available", NULL);
	else
		line(
		    r, WARN, "overlayfs is not loaded",
		    "run `modprobe overlay` (CONFIG_OVERLAY_FS); instances need it for their root");
}

static void check_seccomp(struct report *r)
{
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0)
		line(r, OK, "seccomp filters are supported", NULL);
	else
		line(r, FAIL, "seccomp is not supported by the kernel",
		     "build the kernel with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER");
}

static void check_cgroups(struct report *r)
{
	struct statfs sf;
	if (statfs("/sys/fs/cgroup", &sf) < 0) {
		line(r, FAIL, "no cgroup file system at /sys/fs/cgroup",
		     "mount cgroup2 at /sys/fs/cgroup (or the v1 controllers below it)");
		return;
	}
	if ((unsigned long)sf.f_type == CGROUP2_MAGIC) {
		cleanup_free char *ctl = NULL;
		size_t len;
		struct berr err;
		if (fs_read_file("/sys/fs/cgroup/cgroup.controllers", 4096, &ctl, &len, &err) < 0) {
			line(r, WARN, "cgroup v2, but its controllers cannot be read",
			     "check that /sys/fs/cgroup is the host's cgroup2 mount");
			return;
		}
		const char *want[] = {"memory", "pids", "cpu"};
		char missing[64] = "";
		for (size_t i = 0; i < ARRAY_SIZE(want); i++)
			if (!strstr(ctl, want[i])) {
				strncat(missing, " ", sizeof(missing) - strlen(missing) - 1);
				strncat(missing, want[i], sizeof(missing) - strlen(missing) - 1);
			}
		if (!missing[0])
			line(r, OK, "cgroup v2 (unified) with memory, pids and cpu controllers",
			     NULL);
		else {
			char what[160];
			snprintf(what, sizeof(what), "cgroup v2 without controllers:%s", missing);
			line(r, WARN, what,
			     "enable them in the kernel; limits on them are not applied");
		}
		return;
	}
	struct statfs uf;
	if (statfs("/sys/fs/cgroup/unified", &uf) == 0 && (unsigned long)uf.f_type == CGROUP2_MAGIC)
		line(r, OK, "cgroup hybrid layout (v1 controllers and a v2 hierarchy)", NULL);
	else if (access("/sys/fs/cgroup/memory", F_OK) == 0)
		line(r, OK, "cgroup v1 layout", NULL);
	else
		line(r, FAIL, "no usable cgroup hierarchy under /sys/fs/cgroup",
		     "mount cgroup2 at /sys/fs/cgroup");
}

/* Each option of kernel_options the kernel's build configuration lacks, one
 * line each; `path` NULL: the running kernel's, where it can be found. */
static void check_kernel_config(struct report *r, const char *path)
{
	char found[300], what[512];
	if (!path && kernel_config_find(found, sizeof(found)) < 0) {
		line(r, WARN, "no kernel config at /proc/config.gz or /boot/config-<release>",
		     "its options were not checked: load the configs module "
		     "(CONFIG_IKCONFIG_PROC) or give the kernel's .config with --kernel-config");
		return;
	}
	if (!path)
		path = found;
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct berr err;
	if (kernel_config_read(path, &text, &len, &err) < 0) {
		line(r, WARN, err.msg, "the kernel's options were not checked");
		return;
	}
	size_t missing = 0;
	for (size_t i = 0; i < kernel_options_count; i++) {
		const struct kernel_option *o = &kernel_options[i];
		if (kernel_config_value(text, len, o->name))
			continue;
		snprintf(what, sizeof(what), "kernel config %s lacks CONFIG_%s (%s)", path, o->name,
			 o->what);
		line(r, o->required ? FAIL : WARN, what,
		     o->required ? "build the kernel with it (=y, or =m and load the module)"
				 : "set it where this device needs that feature");
		missing++;
	}
	if (!missing) {
		snprintf(what, sizeof(what), "kernel config %s has the %zu options berth uses",
			 path, kernel_options_count);
		line(r, OK, what, NULL);
	}
}

static void check_clock(struct report *r)
{
	time_t now = time(NULL);
	if (now >= CLOCK_SANE)
		line(r, OK, "the system clock is set", NULL);
	else
		line(r, FAIL, "the system clock is before 2024",
		     "set the clock (NTP or an RTC): tokens and TLS certificates depend on it");
}

/* TCP connect within 3 s: reachability, not a protocol check. */
static int tcp_reachable(const char *host, const char *port, char *why, size_t cap)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(why, cap, "%s", gai_strerror(rc));
		return -1;
	}
	int ok = -1;
	for (struct addrinfo *a = res; a && ok < 0; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			ok = 0;
		else if (errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int e = 0;
			socklen_t l = sizeof(e);
			if (poll(&p, 1, 3000) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) == 0 && e == 0)
				ok = 0;
			else
				snprintf(why, cap, "%s", e ? strerror(e) : "timed out");
		} else
			snprintf(why, cap, "%s", strerror(errno));
		close(fd);
	}
	freeaddrinfo(res);
	return ok;
}

/* "host:port", "[v6]:port" or "host" with a default port. */
static void split_host_port(const char *in, const char *dflt, char *host, size_t hcap, char *port,
			    size_t pcap)
{
	const char *colon = strrchr(in, ':');
	if (in[0] == '[') {
		const char *close = strchr(in, ']');
		snprintf(host, hcap, "%.*s", close ? (int)(close - in - 1) : 0, in + 1);
		snprintf(port, pcap, "%s", close && close[1] == ':' ? close + 2 : dflt);
		return;
	}
	if (colon) {
		snprintf(host, hcap, "%.*s", (int)(colon - in), in);
		snprintf(port, pcap, "%s", colon + 1);
	} else {
		snprintf(host, hcap, "%s", in);
		snprintf(port, pcap, "%s", dflt);
	}
}

static void check_reach(struct report *r, const char *label, const char *hostport,
			const char *dflt_port, const char *hint)
{
	char host[300], port[16], why[128] = "unreachable", what[512];
	split_host_port(hostport, dflt_port, host, sizeof(host), port, sizeof(port));
	if (tcp_reachable(host, port, why, sizeof(why)) == 0) {
		snprintf(what, sizeof(what), "%s %s:%s is reachable", label, host, port);
		line(r, OK, what, NULL);
	} else {
		snprintf(what, sizeof(what), "%s %s:%s is not reachable: %s", label, host, port,
			 why);
		line(r, WARN, what, hint);
	}
}

/* `what` is "image store" or "message store"; the path may not exist yet. */
static void check_store(struct report *r, const char *what_store, const char *root)
{
	struct statvfs sv;
	char path[4096];
	snprintf(path, sizeof(path), "%s", root);
	/* The store may not exist yet: measure the nearest existing parent. */
	while (statvfs(path, &sv) < 0) {
		char *slash = strrchr(path, '/');
		if (!slash || slash == path) {
			snprintf(path, sizeof(path), "/");
			if (statvfs(path, &sv) < 0) {
				line(r, WARN, "cannot measure free space for the store",
				     "check that the state directory is on a mounted file system");
				return;
			}
			break;
		}
		*slash = '\0';
	}
	long long avail = (long long)sv.f_bavail * (long long)sv.f_frsize;
	char what[4300];
	snprintf(what, sizeof(what), "%lld MB free for the %s at %s", avail / (1024 * 1024),
		 what_store, root);
	bool images = !strcmp(what_store, "image store");
	if (avail < STORE_MIN_FREE)
		line(r, FAIL, what,
		     images ? "free space (berth gc removes unused layers) or move `root`"
			    : "free space or move hub.store: messages kept offline need room");
	else if (avail < STORE_WARN_FREE)
		line(r, WARN, what,
		     images
			 ? "images may not fit; berth gc removes unused layers"
			 : "a long time offline may fill it; hub.store can name a larger volume");
	else
		line(r, OK, what, NULL);
}

/* Where the deployment comes from, and how the last one from the cloud went. */
static void check_deployments(struct report *r, const struct agent_config *cfg, yajl_val daemon_up)
{
	char what[1400];
	if (!cfg->deployments_cloud) {
		line(r, OK,
		     "deployments are local (\"deployments\": \"local\"): the deployment file and "
		     "berth deploy; twins and direct methods stay on the device",
		     NULL);
		return;
	}
	if (cfg->deployment_file)
		line(
		    r, WARN,
		    "deployments come from the cloud (the $edgeAgent twin); deployment_file is not "
		    "applied and berth deploy is refused",
		    "remove deployment_file, or set \"deployments\": \"local\" to deploy locally");
	else
		line(r, OK,
		     "deployments come from the cloud (the $edgeAgent twin); local deployments "
		     "(deployment_file, berth deploy) are refused",
		     NULL);
	yajl_val code = json_get(daemon_up, "desired_status");
	if (!code || !YAJL_IS_INTEGER(code)) {
		line(r, WARN, "no deployment from the cloud yet",
		     "set the modules of this device in IoT Hub (az iot edge set-modules)");
		return;
	}
	yajl_val v = json_get(daemon_up, "desired_version");
	const char *desc = json_str(json_get(daemon_up, "desired_description"));
	long long version = v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : 0;
	if (YAJL_GET_INTEGER(code) == 200) {
		snprintf(what, sizeof(what), "deployment from the cloud: version %lld applied",
			 version);
		line(r, OK, what, NULL);
	} else {
		snprintf(what, sizeof(what), "deployment from the cloud: version %lld: %lld %s",
			 version, YAJL_GET_INTEGER(code), desc ? desc : "");
		line(r, WARN, what,
		     "the last applied deployment stays in force; fix the deployment in IoT Hub");
	}
}

/* The CNI plugins bridge networks are made with, and iptables they run. */
static void check_cni(struct report *r, const struct agent_config *cfg)
{
	static const char *const plugins[] = {"bridge", "host-local", "portmap", "firewall", NULL};
	const char *path = cfg && cfg->cni_path ? cfg->cni_path : CNI_PATH_DEFAULT;
	bool bridge =
	    !cfg || cfg->n_networks || !cfg->default_network ||
	    (strcmp(cfg->default_network, "host") && strcmp(cfg->default_network, "none"));
	char missing[128], what[300];
	bool iptables;
	cni_plugins_missing(path, plugins, missing, sizeof(missing), &iptables);
	if (!missing[0] && iptables) {
		line(r, OK, "CNI plugins bridge, host-local, portmap, firewall and iptables", NULL);
		return;
	}
	snprintf(what, sizeof(what), "%s%s%s%s", missing[0] ? "CNI plugins missing: " : "", missing,
		 missing[0] && !iptables ? "; " : "", iptables ? "" : "iptables is not in PATH");
	line(r, bridge ? FAIL : WARN, what,
	     "modules on bridge networks cannot start: install containernetworking-plugins and "
	     "iptables, or set cni_path in the config");
}

/* The hub refuses to start on a store it cannot create, write or read:
 * say so before. */
static void check_message_store(struct report *r, const char *store)
{
	char what[4400], log[4200], probe[4200];
	snprintf(log, sizeof(log), "%s/log", store);
	snprintf(probe, sizeof(probe), "%s", store);
	/* The store may not exist yet: its nearest existing parent must let the
	 * hub create it. */
	struct stat st;
	int rc;
	while ((rc = stat(probe, &st)) < 0 && errno == ENOENT && strrchr(probe, '/') > probe)
		*strrchr(probe, '/') = '\0';
	const char *why = rc < 0			   ? strerror(errno)
			  : !S_ISDIR(st.st_mode)	   ? "not a directory"
			  : access(probe, W_OK | X_OK) < 0 ? strerror(errno)
							   : NULL;
	if (why) {
		snprintf(what, sizeof(what),
			 "message store %s cannot be created or written (%s: %s)", store, probe,
			 why);
		line(r, FAIL, what, "the hub will not start: fix hub.store or its permissions");
		return;
	}
	uint64_t segments, bytes;
	struct berr err;
	if (hub_store_inspect(log, &segments, &bytes, &err) < 0) {
		line(r, FAIL, err.msg,
		     "the hub will not start on it: move the directory aside or run the berth "
		     "that wrote it");
		return;
	}
	struct statfs sf;
	if (statfs(probe, &sf) == 0 && (unsigned long)sf.f_type == TMPFS_MAGIC_) {
		snprintf(what, sizeof(what), "message store %s is on a tmpfs", store);
		line(r, WARN, what,
		     "stored messages are lost at reboot; set hub.store to a persistent volume");
		return;
	}
	snprintf(what, sizeof(what), "message store %s: %llu segment(s), %llu bytes", log,
		 (unsigned long long)segments, (unsigned long long)bytes);
	line(r, OK, what, NULL);
}

/* The cloud link: the upstream and the identity API reachable, the hub's
 * connection and backlog, the module identities in IoT Hub. */
static void check_upstream(struct report *r, struct berth_ctx *ctx, const struct agent_config *cfg,
			   yajl_val daemon_up)
{
	static const struct {
		const char *label;
		unsigned schemes;
		const char *hint;
	} ends[] = {
	    {"upstream", 1u << URL_MQTT | 1u << URL_MQTTS,
	     "the device runs offline; messages are stored until it is reachable"},
	    {"identity API", 1u << URL_HTTP | 1u << URL_HTTPS,
	     "module identities cannot be created in IoT Hub until it is reachable"},
	};
	const char *urls[] = {cfg->upstream_url,
			      cfg->upstream_identities ? cfg->upstream_rest_url : NULL};
	struct url u;
	struct berr err;
	char hostport[URL_HOST_MAX + 16], what[1400];
	for (size_t i = 0; i < ARRAY_SIZE(ends); i++) {
		if (!urls[i] || url_parse(urls[i], ends[i].schemes, &u, &err) < 0)
			continue;
		snprintf(hostport, sizeof(hostport), strchr(u.host, ':') ? "[%s]:%u" : "%s:%u",
			 u.host, u.port);
		check_reach(r, ends[i].label, hostport, "", ends[i].hint);
	}
	cleanup_yajl yajl_val st = NULL;
	yajl_val up = NULL;
	if (upstream_query(ctx->run, &st, &err) == 0)
		up = json_get(st, "upstream");
	if (up) {
		bool ok = upstream_describe(up, wall_ms(), what, sizeof(what));
		line(r, ok ? OK : WARN, what,
		     "messages wait in the store until their time to live; see the hub's log");
	}
	if (daemon_up) {
		bool ok = upstream_identities_describe(daemon_up, what, sizeof(what));
		line(r, ok ? OK : WARN, what,
		     "the daemon keeps trying; the connections of identities not ready wait");
	}
	check_deployments(r, cfg, daemon_up);
}

/* The edge CA modules trust: the operator's (edge_ca) or berth's quickstart
 * CA, which the daemon makes at its first start and renews itself. */
static void check_edge_ca(struct report *r, const struct agent_config *cfg, const char *root)
{
	char path[4300], what[4600];
	if (cfg->edge_ca_cert)
		snprintf(path, sizeof(path), "%s", cfg->edge_ca_cert);
	else
		snprintf(path, sizeof(path), "%s/ca/" EDGECA_CERT_FILE, root);
	cleanup_free char *pem = NULL;
	size_t len = 0;
	struct berr err;
	int64_t nb, na, now = time(NULL);
	if (fs_read_file(path, EDGECA_PEM_MAX, &pem, &len, &err) < 0) {
		if (!cfg->edge_ca_cert && err.code == ENOENT)
			line(r, OK,
			     "edge CA: the daemon makes its quickstart CA at its first start",
			     NULL);
		else
			line(r, FAIL, err.msg,
			     "edge_ca.cert must be readable: modules cannot trust the gateway");
		return;
	}
	if (edgeca_pem_validity(pem, len, &nb, &na, &err) < 0) {
		snprintf(what, sizeof(what), "edge CA %s: %s", path, err.msg);
		line(r, FAIL, what, "edge_ca.cert must be a PEM certificate");
		return;
	}
	char until[32];
	time_t t = (time_t)na;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(until, sizeof(until), "%Y-%m-%d", &tm);
	snprintf(what, sizeof(what), "edge CA %s (%s) valid until %s", path,
		 cfg->edge_ca_cert ? "the operator's" : "quickstart, renewed by berth", until);
	if (now >= na)
		line(r, FAIL, what,
		     cfg->edge_ca_cert ? "it has expired: install a new one"
				       : "it has expired: start the daemon, which renews it");
	else if (cfg->edge_ca_cert && edgeca_renewal_due(nb, na, now))
		line(r, WARN, what, "it expires soon and berth does not renew it: replace it");
	else
		line(r, OK, what, NULL);
}

static int cmd_check(struct berth_ctx *ctx, int argc, char **argv)
{
	/* --kernel-config FILE checks a kernel's .config (a device's, before it
	 * runs); the other options are the daemon's. */
	const char *config, *kconfig = NULL;
	char *args[16];
	int nargs = 0;
	for (int i = 0; i < argc && nargs < (int)ARRAY_SIZE(args) - 1; i++) {
		if (!strcmp(argv[i], "--kernel-config") && i + 1 < argc)
			kconfig = argv[++i];
		else if (!strncmp(argv[i], "--kernel-config=", 16))
			kconfig = argv[i] + 16;
		else
			args[nargs++] = argv[i];
	}
	args[nargs] = NULL;
	if (agent_config_option(nargs, args, &config) < 0)
		return berth_usage("check");
	struct report r = {0};
	struct agent_config *cfg = NULL;
	struct berr err;

	section("Configuration checks");
	char what[BERR_MSG_MAX + 64];
	if (agent_config_load(config, &cfg, &err) == 0) {
		snprintf(what, sizeof(what), "config %s is valid (device %s)", config,
			 cfg->device_id);
		line(&r, OK, what, NULL);
	} else {
		snprintf(what, sizeof(what), "%s", err.msg);
		line(&r, FAIL, what, "fix the config file; see docs/DAEMON.md");
	}
	if (cfg && cfg->deployment_file) {
		cleanup_free char *text = NULL;
		size_t len = 0;
		struct deployment *dep = NULL;
		struct deployment_policy pol = {.allow_privileged = cfg->allow_privileged};
		if (fs_read_file(cfg->deployment_file, DEPLOYMENT_MAX_BYTES, &text, &len, &err) < 0)
			line(&r, WARN, err.msg,
			     "the daemon waits for `berth deploy` until it exists");
		else if (deployment_parse(text, len, cfg->deployment_file, &pol, &dep, &err) < 0)
			line(&r, FAIL, err.msg,
			     "the daemon refuses this deployment; fix the path named");
		else {
			snprintf(what, sizeof(what), "deployment %s is valid (%zu modules)",
				 cfg->deployment_file, dep->n_modules);
			line(&r, OK, what, NULL);
			deployment_free(dep);
		}
	}
	cleanup_yajl yajl_val reply = NULL;
	if (daemon_request(ctx->run, "{\"op\":\"info\"}", &reply, &err) == 0) {
		line(&r, OK, "berth daemon is running", NULL);
	} else
		line(&r, WARN, err.msg,
		     "start it: systemctl start berth (or /etc/init.d/berth start)");
	check_clock(&r);
	const char *root = cfg && cfg->root ? cfg->root : ctx->root;
	check_store(&r, "image store", root);
	/* Messages kept while offline go to the hub's store, by default under
	 * the state directory, often on a volume of its own. */
	char hub_store[4200];
	snprintf(hub_store, sizeof(hub_store), "%s/hub", root);
	if (!cfg || cfg->hub_enabled) {
		const char *store = cfg && cfg->hub_store ? cfg->hub_store : hub_store;
		check_store(&r, "message store", store);
		check_message_store(&r, store);
	}
	if (cfg) {
		/* Config validation refuses a name without a dot; say it passed. */
		snprintf(what, sizeof(what),
			 "IOTEDGE_IOTHUBHOSTNAME %s has the dot the Azure IoT C SDK requires",
			 cfg->iothub_hostname);
		line(&r, OK, what, NULL);
		check_edge_ca(&r, cfg, root);
	}

	section("Kernel checks");
	check_kernel_config(&r, kconfig);
	check_namespaces(&r);
	check_overlay(&r);
	check_seccomp(&r);
	check_cgroups(&r);
	check_cni(&r, cfg);

	section("Connectivity checks");
	if (cfg) {
		for (size_t i = 0; i < cfg->n_registries; i++)
			check_reach(
			    &r, "registry", cfg->registries[i].host,
			    cfg->registries[i].insecure ? "80" : "443",
			    "modules from it cannot be pulled; check the network and proxy");
		if (cfg->upstream_url)
			check_upstream(&r, ctx, cfg, json_get(reply, "upstream"));
		else
			line(&r, OK, "no upstream configured: the device runs offline", NULL);
		if (cfg->hub_enabled && cfg->gateway_enabled) {
			char gw[300];
			snprintf(gw, sizeof(gw), "%s:%lld", cfg->gateway_address,
				 (long long)cfg->gateway_mqtt_port);
			check_reach(&r, "the gateway (MQTT with TLS) at", gw, "8883",
				    "SDK modules cannot connect: is the daemon running, and is the "
				    "port free (a local MQTT broker?)");
			snprintf(gw, sizeof(gw), "%s:%lld", cfg->gateway_address,
				 (long long)cfg->gateway_https_port);
			check_reach(&r, "the gateway (HTTPS) at", gw, "443",
				    "module-to-module direct methods fail: is the port free?");
		}
	}
	printf("\n%d check(s) failed, %d warning(s)\n", r.fails, r.warns);
	agent_config_free(cfg);
	return r.fails ? 1 : 0;
}
BERTH_COMMAND(check, "check [--config FILE] [--kernel-config FILE]",
	      "check the kernel, config, clock, store space and connectivity", cmd_check);
