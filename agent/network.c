/* Module networks (see network.h and docs/NETWORKS.md).
 *
 * Under <root>/networks/:
 *   attachments/<id>.json  one per instance on a bridge network, written
 *                          before its namespace is made and again after CNI
 *                          ADD: the network, bridge and subnet, the pinned
 *                          namespace, the configuration list and ADD's
 *                          result (what DEL must be given), the names
 *   networks.json          subnets berth chose for networks the config
 *                          gives none
 *   ipam/                  host-local's leases
 * <id> is the CNI container id, "berth-<module>-<random>": a new one for
 * every start, so a teardown that failed (kept for the next start to retry)
 * never mixes with the module's next instance.
 *
 * Which attachment belongs to a running instance is read from the instance
 * itself (the namespace in its spec.json), so after a restart of the daemon
 * exactly the others are torn down. */
#include "agent/network.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "agent/cni.h"
#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sha256.h"
#include "shim/shim.h"

#define RECORD_MAX     (1024 * 1024)
#define NSFS_MAGIC_NUM 0x6e736673
/* Where berth picks subnets for networks the config gives none:
 * 172.18.0.0/16 to 172.31.0.0/16, as Docker picks them for its networks. */
#define POOL_FIRST  0xac120000u
#define POOL_LAST   0xac1f0000u
#define POOL_PREFIX 16
/* The comment the firewall plugin puts on its per-bridge isolation rules. */
#define ISOLATION_COMMENT "CNI firewall plugin rules (ingressPolicy: same-bridge)"

struct net_att {
	char name[MODULE_NAME_MAX + 1];
	char network[NETWORK_NAME_MAX + 1];
	char bridge[IF_NAMESIZE];
	uint32_t subnet;
	unsigned prefix;
	char id[128];
	char netns[PATH_MAX];
	char address[INET_ADDRSTRLEN];
	char hostname[65];
	char **aliases;
	char **extra; /* /etc/hosts lines from ExtraHosts */
	char *config;
	char *result; /* NULL: ADD did not finish */
	bool live;    /* the network of a running (or starting) instance */
};

struct net_alloc {
	char name[NETWORK_NAME_MAX + 1];
	uint32_t subnet;
};

struct netstate {
	struct net_att **atts;
	size_t n_atts;
	struct net_alloc *allocs;
	size_t n_allocs;
};

/* A network as its modules are attached to it. */
struct net_params {
	char bridge[IF_NAMESIZE];
	uint32_t subnet;
	unsigned prefix;
};

static void att_free(struct net_att *a)
{
	if (!a)
		return;
	strv_free_many(a->aliases, a->extra);
	free_many(a->config, a->result, a);
}

void network_free(struct daemon *d)
{
	if (!d->net)
		return;
	for (size_t i = 0; i < d->net->n_atts; i++)
		att_free(d->net->atts[i]);
	free_many(d->net->atts, d->net->allocs, d->net);
	d->net = NULL;
}

static void ipv4_str(uint32_t a, char out[INET_ADDRSTRLEN])
{
	struct in_addr in = {.s_addr = htonl(a)};
	inet_ntop(AF_INET, &in, out, INET_ADDRSTRLEN);
}

static void dir_path(struct daemon *d, const char *sub, char *out, size_t cap)
{
	snprintf(out, cap, "%s/networks%s%s", d->root, sub ? "/" : "", sub ? sub : "");
}

static const char *cni_path(struct daemon *d)
{
	return d->cfg->cni_path ? d->cfg->cni_path : CNI_PATH_DEFAULT;
}

/* --- which network --- */

/* The network a module is on: its name for a bridge network, NULL with
 * *mode NET_HOST or NET_NONE otherwise. */
static const char *module_network(struct daemon *d, const struct net_options *no,
				  enum net_mode *mode)
{
	const char *def = d->cfg->default_network ? d->cfg->default_network : "bridge";
	enum net_choice c = no->choice;
	if (c == NETWORK_DEFAULT)
		c = !strcmp(def, "host")   ? NETWORK_HOST
		    : !strcmp(def, "none") ? NETWORK_NONE
					   : NETWORK_BRIDGE;
	*mode = c == NETWORK_HOST ? NET_HOST : c == NETWORK_NONE ? NET_NONE : NET_JOIN;
	if (*mode != NET_JOIN)
		return NULL;
	if (no->network)
		return no->network;
	bool named = strcmp(def, "bridge") && strcmp(def, "host") && strcmp(def, "none");
	return named ? def : DEFAULT_NETWORK_NAME;
}

static const struct net_config *configured(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->cfg->n_networks; i++)
		if (!strcmp(d->cfg->networks[i].name, name))
			return &d->cfg->networks[i];
	return NULL;
}

static struct net_alloc *allocated(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->net->n_allocs; i++)
		if (!strcmp(d->net->allocs[i].name, name))
			return &d->net->allocs[i];
	return NULL;
}

/* "berth-" and 8 hex digits of the name's SHA-256: an interface name may
 * have 15 characters, a network name 64. */
static void bridge_name(const char *network, char out[IF_NAMESIZE])
{
	struct sha256 s;
	unsigned char h[SHA256_LEN];
	sha256_init(&s);
	sha256_update(&s, network, strlen(network));
	sha256_final(&s, h);
	snprintf(out, IF_NAMESIZE, "berth-%02x%02x%02x%02x", h[0], h[1], h[2], h[3]);
}

static bool overlaps(uint32_t a, unsigned pa, uint32_t b, unsigned pb)
{
	unsigned p = pa < pb ? pa : pb;
	uint32_t mask = p ? 0xffffffffu << (32 - p) : 0;
	return (a & mask) == (b & mask);
}

/* True when the subnet overlaps a route of the host (the default route
 * aside), a configured network, a subnet berth chose or one in use. */
static bool subnet_taken(struct daemon *d, uint32_t net, unsigned prefix)
{
	for (size_t i = 0; i < d->cfg->n_networks; i++) {
		uint32_t n;
		unsigned p;
		if (subnet_parse(d->cfg->networks[i].subnet, &n, &p) && overlaps(net, prefix, n, p))
			return true;
	}
	for (size_t i = 0; i < d->net->n_allocs; i++)
		if (overlaps(net, prefix, d->net->allocs[i].subnet, POOL_PREFIX))
			return true;
	for (size_t i = 0; i < d->net->n_atts; i++)
		if (overlaps(net, prefix, d->net->atts[i]->subnet, d->net->atts[i]->prefix))
			return true;
	cleanup_fclose FILE *f = fopen("/proc/net/route", "re");
	char line[256];
	while (f && fgets(line, sizeof(line), f)) {
		char ifname[IF_NAMESIZE + 1];
		unsigned dst, mask;
		if (sscanf(line, "%16s %x %*x %*x %*d %*d %*d %x", ifname, &dst, &mask) != 3 ||
		    !mask)
			continue;
		unsigned p = (unsigned)__builtin_popcount(mask);
		if (overlaps(net, prefix, ntohl(dst), p))
			return true;
	}
	return false;
}

static int allocs_save(struct daemon *d, struct berr *err)
{
	yajl_gen g = json_gen_new(true);
	if (!g)
		return berr_set(err, ENOMEM, "networks");
	yajl_gen_map_open(g);
	json_gen_str(g, "networks");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < d->net->n_allocs; i++) {
		char a[INET_ADDRSTRLEN], s[INET_ADDRSTRLEN + 4];
		ipv4_str(d->net->allocs[i].subnet, a);
		snprintf(s, sizeof(s), "%s/%d", a, POOL_PREFIX);
		json_gen_str(g, d->net->allocs[i].name);
		yajl_gen_map_open(g);
		json_gen_key_str(g, "subnet", s);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	return daemon_state_save(d, "networks/networks.json", g, "networks", err);
}

static int allocate(struct daemon *d, const char *name, struct berr *err)
{
	for (uint32_t net = POOL_FIRST; net <= POOL_LAST; net += 1u << (32 - POOL_PREFIX)) {
		if (subnet_taken(d, net, POOL_PREFIX))
			continue;
		struct net_alloc *na =
		    realloc(d->net->allocs, (d->net->n_allocs + 1) * sizeof(*na));
		if (!na)
			return berr_set(err, ENOMEM, "network %s", name);
		d->net->allocs = na;
		na = &na[d->net->n_allocs++];
		snprintf(na->name, sizeof(na->name), "%s", name);
		na->subnet = net;
		char a[INET_ADDRSTRLEN];
		ipv4_str(net, a);
		log_info("network %s: subnet %s/%d (none configured)", name, a, POOL_PREFIX);
		return allocs_save(d, err);
	}
	return berr_set(err, 0,
			"network %s: no free subnet in 172.18.0.0/16 to 172.31.0.0/16; give it one "
			"in the config's networks",
			name);
}

/* The bridge and subnet of a network: those its attached instances use,
 * else the config's, else one berth chose (now, with allocate). */
static int net_params(struct daemon *d, const char *name, bool alloc, struct net_params *p,
		      struct berr *err)
{
	for (size_t i = 0; i < d->net->n_atts; i++) {
		const struct net_att *a = d->net->atts[i];
		if (!strcmp(a->network, name)) {
			snprintf(p->bridge, sizeof(p->bridge), "%s", a->bridge);
			p->subnet = a->subnet;
			p->prefix = a->prefix;
			return 0;
		}
	}
	const struct net_config *c = configured(d, name);
	if (c) {
		if (!subnet_parse(c->subnet, &p->subnet, &p->prefix))
			return berr_set(err, 0, "network %s: bad subnet %s", name, c->subnet);
		if (c->bridge)
			snprintf(p->bridge, sizeof(p->bridge), "%s", c->bridge);
		else
			bridge_name(name, p->bridge);
		return 0;
	}
	struct net_alloc *na = allocated(d, name);
	if (!na && !alloc)
		return berr_set(err, ENOENT, "network %s has no subnet yet", name);
	if (!na && (allocate(d, name, err) < 0 || !(na = allocated(d, name))))
		return -1;
	p->subnet = na->subnet;
	p->prefix = POOL_PREFIX;
	bridge_name(name, p->bridge);
	return 0;
}

/* --- records --- */

/* The members of a network record copied as they are. */
static const struct json_field att_fields[] = {
    JSON_FIELD_STR(struct net_att, "module", name),
    JSON_FIELD_STR(struct net_att, "network", network),
    JSON_FIELD_STR(struct net_att, "bridge", bridge),
    JSON_FIELD_STR(struct net_att, "container_id", id),
    JSON_FIELD_STR(struct net_att, "netns", netns),
    JSON_FIELD_STR(struct net_att, "hostname", hostname),
};

static int att_record_path(struct daemon *d, const struct net_att *a, char *out, size_t cap)
{
	char dir[4200];
	dir_path(d, "attachments", dir, sizeof(dir));
	return snprintf(out, cap, "%s/%s.json", dir, a->id) < (int)cap ? 0 : -1;
}

static int att_save(struct daemon *d, const struct net_att *a, struct berr *err)
{
	char path[4400], subnet[INET_ADDRSTRLEN + 4], addr[INET_ADDRSTRLEN];
	if (att_record_path(d, a, path, sizeof(path)) < 0)
		return berr_set(err, ENAMETOOLONG, "module %s: network record", a->name);
	ipv4_str(a->subnet, addr);
	snprintf(subnet, sizeof(subnet), "%s/%u", addr, a->prefix);
	yajl_gen g = json_gen_new(true);
	if (!g)
		return berr_set(err, ENOMEM, "module %s: network record", a->name);
	yajl_gen_map_open(g);
	json_gen_fields(g, att_fields, ARRAY_SIZE(att_fields), a);
	json_gen_key_str(g, "subnet", subnet);
	json_gen_key_strv(g, "aliases", a->aliases);
	json_gen_key_strv(g, "extra_hosts", a->extra);
	json_gen_key_str(g, "config", a->config);
	if (a->result)
		json_gen_key_str(g, "result", a->result);
	yajl_gen_map_close(g);
	return json_gen_write_file(g, path, 0600, "network record", err);
}

static int att_fill(yajl_val doc, void *obj, const void *arg, struct berr *err)
{
	struct net_att *a = obj;
	const char *subnet, *config, *result = NULL;
	if (json_get_fields(doc, "record", true, att_fields, ARRAY_SIZE(att_fields), a, err) < 0 ||
	    json_get_str(doc, "subnet", "record", true, &subnet, err) < 0 ||
	    json_get_str(doc, "config", "record", true, &config, err) < 0 ||
	    json_get_str(doc, "result", "record", false, &result, err) < 0 ||
	    json_get_strv(doc, "aliases", "record", 64, 256, &a->aliases, err) < 0 ||
	    json_get_strv(doc, "extra_hosts", "record", 1024, 1024, &a->extra, err) < 0)
		return -1;
	if (a->netns[0] != '/' || !subnet_parse(subnet, &a->subnet, &a->prefix))
		return berr_set(err, 0, "record: a value out of bounds");
	bool ok = true;
	a->config = dup_or_null(config, &ok);
	a->result = dup_or_null(result, &ok);
	if (!ok)
		return berr_set(err, ENOMEM, "record");
	if (a->result) {
		struct cni_result r;
		if (cni_result_parse(a->result, strlen(a->result), &r, err) < 0)
			return -1;
		snprintf(a->address, sizeof(a->address), "%s", r.address);
	}
	return 0;
}

static void att_free_obj(void *a)
{
	att_free(a);
}

static int table_add(struct daemon *d, struct net_att *a)
{
	struct net_att **v = realloc(d->net->atts, (d->net->n_atts + 1) * sizeof(*v));
	if (!v)
		return -1;
	d->net->atts = v;
	v[d->net->n_atts++] = a;
	return 0;
}

static void table_remove(struct daemon *d, struct net_att *a)
{
	for (size_t i = 0; i < d->net->n_atts; i++)
		if (d->net->atts[i] == a) {
			memmove(&d->net->atts[i], &d->net->atts[i + 1],
				(d->net->n_atts - i - 1) * sizeof(*d->net->atts));
			d->net->n_atts--;
			return;
		}
}

static void allocs_load(struct daemon *d)
{
	cleanup_yajl yajl_val doc = NULL;
	struct berr err;
	if (daemon_state_load(d, "networks/networks.json", RECORD_MAX, &doc, &err) < 0) {
		log_warn("networks: %s (subnets are chosen again)", err.msg);
		return;
	}
	yajl_val nets = json_get(doc, "networks");
	if (!YAJL_IS_OBJECT(nets))
		return;
	for (size_t i = 0; i < nets->u.object.len && i < NETWORKS_MAX * 4; i++) {
		const char *name = nets->u.object.keys[i];
		const char *subnet = json_str(json_get(nets->u.object.values[i], "subnet"));
		uint32_t net;
		unsigned prefix;
		if (!network_name_valid(name) || !subnet || !subnet_parse(subnet, &net, &prefix) ||
		    prefix != POOL_PREFIX)
			continue;
		struct net_alloc *na =
		    realloc(d->net->allocs, (d->net->n_allocs + 1) * sizeof(*na));
		if (!na)
			return;
		d->net->allocs = na;
		na = &na[d->net->n_allocs++];
		snprintf(na->name, sizeof(na->name), "%s", name);
		na->subnet = net;
	}
}

int network_load(struct daemon *d, struct berr *err)
{
	d->net = calloc(1, sizeof(*d->net));
	if (!d->net)
		return berr_set(err, ENOMEM, "networks");
	char dir[4200];
	dir_path(d, "attachments", dir, sizeof(dir));
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	allocs_load(d);
	cleanup_closedir DIR *dh = opendir(dir);
	if (!dh)
		return berr_set(err, errno, "open %s", dir);
	for (struct dirent *de; (de = readdir(dh));) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		cleanup_free char *text = NULL;
		size_t len = 0;
		struct berr e;
		struct net_att *a = NULL;
		if (fs_read_file_at(dirfd(dh), de->d_name, RECORD_MAX, &text, &len, &e) == 0)
			a = json_parse_new(text, len, RECORD_MAX, de->d_name, sizeof(*a), att_fill,
					   NULL, att_free_obj, &e);
		if (!a) {
			log_error("network record %s/%s: %s", dir, de->d_name, e.msg);
			continue;
		}
		if (table_add(d, a) < 0) {
			att_free(a);
			return berr_set(err, ENOMEM, "networks");
		}
	}
	return 0;
}

/* --- /etc/hosts --- */

static int push_line(char ***v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int push_line(char ***v, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return strv_push(v, line);
}

/* "addr name other-name aliases..." */
static int name_line(char ***v, const struct net_att *a, bool self)
{
	char names[1024];
	size_t n = (size_t)snprintf(names, sizeof(names), "%s", self ? a->hostname : a->name);
	const char *second = self ? a->name : a->hostname;
	if (strcmp(second, self ? a->hostname : a->name) && n < sizeof(names))
		n += (size_t)snprintf(names + n, sizeof(names) - n, " %s", second);
	for (size_t i = 0; a->aliases && a->aliases[i] && n < sizeof(names); i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, " %s", a->aliases[i]);
	return push_line(v, "%s\t%s", a->address, names);
}

/* The lines berth adds to an instance's /etc/hosts: its own address, the
 * gateway's name, every other module on its network, its ExtraHosts. */
static char **hosts_lines(struct daemon *d, const struct net_att *a)
{
	char **v = NULL;
	char gw[INET_ADDRSTRLEN], buf[HOSTNAME_MAX + 1];
	ipv4_str(a->subnet + 1, gw);
	const char *gwname = gateway_hostname(d, buf);
	int bad = name_line(&v, a, true) < 0;
	if (!bad && strcmp(gwname, a->hostname) && strcmp(gwname, a->name))
		bad = push_line(&v, "%s\t%s", gw, gwname) < 0;
	for (size_t i = 0; !bad && i < d->net->n_atts; i++) {
		const struct net_att *b = d->net->atts[i];
		if (b != a && b->live && b->address[0] && !strcmp(b->network, a->network))
			bad = name_line(&v, b, false) < 0;
	}
	for (size_t i = 0; !bad && a->extra && a->extra[i]; i++)
		bad = strv_push(&v, a->extra[i]) < 0;
	if (bad) {
		strv_free(v);
		return NULL;
	}
	return v;
}

/* Rewrites /etc/hosts of every instance on the network but `except`. */
static void hosts_refresh(struct daemon *d, const char *network, const struct net_att *except)
{
	for (size_t i = 0; i < d->net->n_atts; i++) {
		struct net_att *b = d->net->atts[i];
		if (b == except || !b->live || !b->address[0] || strcmp(b->network, network))
			continue;
		cleanup_strv char **lines = hosts_lines(d, b);
		struct berr err;
		if (!lines)
			log_error("module %s: /etc/hosts: out of memory", b->name);
		else if (shim_hosts_update(d->root, b->name, lines, &err) < 0)
			log_warn("module %s: %s", b->name, err.msg);
	}
}

/* ExtraHosts as /etc/hosts lines, host-gateway as the gateway's address. */
static int extra_lines(char *const *extra, const char *gateway, char ***out)
{
	for (size_t i = 0; extra && extra[i]; i++) {
		const char *sep = strpbrk(extra[i], ":=");
		if (!sep)
			continue;
		const char *addr = strcmp(sep + 1, "host-gateway") ? sep + 1 : gateway;
		if (push_line(out, "%s\t%.*s", addr, (int)(sep - extra[i]), extra[i]) < 0)
			return -1;
	}
	return 0;
}

/* --- teardown --- */

/* CNI_NETNS for a DEL: the pinned namespace while it is one (after a
 * reboot the pin is gone, and so is everything that was in it). */
static const char *del_netns(const struct net_att *a)
{
	struct statfs sf;
	return statfs(a->netns, &sf) == 0 && sf.f_type == NSFS_MAGIC_NUM ? a->netns : "";
}

/* The firewall plugin isolates bridges with two rules per bridge, which it
 * leaves when an instance goes, since it cannot know whether others are
 * still on that bridge. berth can, and removes them with the bridge: the
 * plugin's own rules, deleted as the plugin wrote them. */
static void isolation_rules_remove(const char *bridge)
{
	char *br = (char *)bridge;
	char *const rules[2][8] = {
	    {"CNI-ISOLATION-STAGE-1", "-i", br, "!", "-o", br, "-j", "CNI-ISOLATION-STAGE-2"},
	    {"CNI-ISOLATION-STAGE-2", "-o", br, "-j", "DROP", NULL}};
	for (size_t r = 0; r < 2; r++) {
		char *argv[20] = {"iptables", "-w", "-t", "filter", "-D"};
		size_t n = 5;
		for (size_t i = 0; i < 8 && rules[r][i]; i++)
			argv[n++] = rules[r][i];
		char *const tail[] = {"-m", "comment", "--comment", ISOLATION_COMMENT};
		for (size_t i = 0; i < ARRAY_SIZE(tail); i++)
			argv[n++] = tail[i];
		struct berr err;
		if (cni_run_tool(argv, &err) < 0)
			log_debug("bridge %s: isolation rule: %s", bridge, err.msg);
	}
}

/* Removes a bridge no attachment names any more. */
static void bridge_remove(struct daemon *d, const char *bridge)
{
	for (size_t i = 0; i < d->net->n_atts; i++)
		if (!strcmp(d->net->atts[i]->bridge, bridge))
			return;
	struct berr err;
	int rc = netns_bridge_delete(bridge, &err);
	if (rc < 0) {
		log_warn("%s", err.msg);
		return;
	}
	if (rc > 0) {
		isolation_rules_remove(bridge);
		log_info("bridge %s removed: no module is on it", bridge);
	}
}

/* CNI DEL, the namespace, the record. A failed DEL keeps the record, the
 * namespace DEL needs and the entry (no longer live, so no name refers to
 * it and its bridge stays), and the next start tries again. */
static void att_teardown(struct daemon *d, struct net_att *a)
{
	struct cni_call call = {.command = "DEL",
				.container_id = a->id,
				.netns = del_netns(a),
				.ifname = NETWORK_IFNAME,
				.path = cni_path(d)};
	struct berr err;
	int64_t t0 = boot_ms();
	char network[NETWORK_NAME_MAX + 1], bridge[IF_NAMESIZE];
	snprintf(network, sizeof(network), "%s", a->network);
	snprintf(bridge, sizeof(bridge), "%s", a->bridge);
	bool had_address = a->live && a->address[0];
	if (cni_run(&call, a->config, a->result, NULL, &err) < 0) {
		log_error("module %s: network %s: %s (tried again at the next start)", a->name,
			  a->network, err.msg);
		a->live = false;
	} else {
		log_info("module %s: left network %s (CNI DEL %lld ms)", a->name, a->network,
			 (long long)(boot_ms() - t0));
		char path[4400];
		if (netns_remove(a->netns, &err) < 0)
			log_warn("module %s: %s", a->name, err.msg);
		if (att_record_path(d, a, path, sizeof(path)) == 0 && unlink(path) < 0 &&
		    errno != ENOENT)
			log_warn("module %s: remove %s: %s", a->name, path, strerror(errno));
		table_remove(d, a);
		att_free(a);
		bridge_remove(d, bridge);
	}
	if (had_address)
		hosts_refresh(d, network, NULL);
}

static struct net_att *live_att(struct daemon *d, const char *module)
{
	for (size_t i = 0; d->net && i < d->net->n_atts; i++)
		if (d->net->atts[i]->live && !strcmp(d->net->atts[i]->name, module))
			return d->net->atts[i];
	return NULL;
}

void network_detach(struct daemon *d, const char *module)
{
	struct net_att *a = live_att(d, module);
	if (a)
		att_teardown(d, a);
}

/* --- attaching --- */

static int gen_conflist(struct daemon *d, const char *network, const struct net_params *p,
			const struct net_options *no, char **out)
{
	char subnet[INET_ADDRSTRLEN + 4], gw[INET_ADDRSTRLEN], ipam[4200];
	ipv4_str(p->subnet, gw);
	snprintf(subnet, sizeof(subnet), "%s/%u", gw, p->prefix);
	ipv4_str(p->subnet + 1, gw);
	dir_path(d, "ipam", ipam, sizeof(ipam));
	yajl_gen g = json_gen_new(false);
	if (!g)
		return -1;
	yajl_gen_map_open(g);
	json_gen_key_str(g, "cniVersion", CNI_VERSION);
	json_gen_key_str(g, "name", network);
	json_gen_str(g, "plugins");
	yajl_gen_array_open(g);
	/* The bridge, a veth pair into the namespace, an address from the
	 * subnet, the bridge's address as gateway and default route, and the
	 * instance's outbound traffic masqueraded. */
	yajl_gen_map_open(g);
	json_gen_key_str(g, "type", "bridge");
	json_gen_key_str(g, "bridge", p->bridge);
	json_gen_key_bool(g, "isGateway", true);
	json_gen_key_bool(g, "ipMasq", true);
	json_gen_key_bool(g, "hairpinMode", true);
	json_gen_str(g, "ipam");
	yajl_gen_map_open(g);
	json_gen_key_str(g, "type", "host-local");
	json_gen_key_str(g, "dataDir", ipam);
	json_gen_str(g, "ranges");
	yajl_gen_array_open(g);
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	json_gen_key_str(g, "subnet", subnet);
	json_gen_key_str(g, "gateway", gw);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_array_close(g);
	json_gen_str(g, "routes");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	json_gen_key_str(g, "dst", "0.0.0.0/0");
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	/* Published ports: DNAT from the host's addresses. */
	if (no->n_ports) {
		yajl_gen_map_open(g);
		json_gen_key_str(g, "type", "portmap");
		json_gen_str(g, "capabilities");
		yajl_gen_map_open(g);
		json_gen_key_bool(g, "portMappings", true);
		yajl_gen_map_close(g);
		json_gen_key_bool(g, "snat", true);
		json_gen_str(g, "runtimeConfig");
		yajl_gen_map_open(g);
		json_gen_str(g, "portMappings");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < no->n_ports; i++) {
			const struct port_binding *b = &no->ports[i];
			yajl_gen_map_open(g);
			json_gen_key_int(g, "hostPort", b->host_port);
			json_gen_key_int(g, "containerPort", b->container_port);
			json_gen_key_str(g, "protocol", b->protocol);
			if (b->host_ip[0])
				json_gen_key_str(g, "hostIP", b->host_ip);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		yajl_gen_map_close(g);
	}
	/* Forwarding allowed for the instance even where the host's FORWARD
	 * policy drops, and no traffic between two bridges. */
	yajl_gen_map_open(g);
	json_gen_key_str(g, "type", "firewall");
	json_gen_key_str(g, "backend", "iptables");
	json_gen_key_str(g, "ingressPolicy", "same-bridge");
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	*out = json_gen_done(g, NULL);
	return *out ? 0 : -1;
}

/* HostConfig.Dns, DnsSearch and DnsOptions: the instance's resolv.conf. */
static int spec_dns(struct instance_spec *spec, const struct net_options *no)
{
	bool ok = true;
	if (no->dns) {
		spec->dns = strv_dup(no->dns, &ok);
		spec->dns_search = strv_dup(no->dns_search, &ok);
		spec->dns_options = strv_dup(no->dns_options, &ok);
	}
	return ok ? 0 : -1;
}

static void instance_hostname(const char *module, const struct instance_spec *spec, char out[65])
{
	if (spec->hostname) {
		snprintf(out, 65, "%s", spec->hostname);
		return;
	}
	/* As the shim names it: '_' is not allowed in host names. */
	size_t i = 0;
	for (; module[i] && i < 64; i++)
		out[i] = module[i] == '_' ? '-' : module[i];
	out[i] = '\0';
}

static struct net_att *att_new(struct daemon *d, const char *module, const char *network,
			       const struct net_params *p, const struct net_options *no,
			       const struct instance_spec *spec)
{
	struct net_att *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	char rnd[GENERATION_ID_LEN + 1], gw[INET_ADDRSTRLEN];
	generation_id_new(rnd);
	snprintf(a->name, sizeof(a->name), "%s", module);
	snprintf(a->network, sizeof(a->network), "%s", network);
	snprintf(a->bridge, sizeof(a->bridge), "%s", p->bridge);
	a->subnet = p->subnet;
	a->prefix = p->prefix;
	snprintf(a->id, sizeof(a->id), "berth-%s-%.12s", module, rnd);
	snprintf(a->netns, sizeof(a->netns), "%s/netns/%s", d->run, a->id);
	instance_hostname(module, spec, a->hostname);
	ipv4_str(p->subnet + 1, gw);
	bool ok = true;
	a->aliases = strv_dup(no->aliases, &ok);
	a->live = true;
	if (!ok || extra_lines(no->extra_hosts, gw, &a->extra) < 0 ||
	    gen_conflist(d, network, p, no, &a->config) < 0) {
		att_free(a);
		return NULL;
	}
	return a;
}

int network_attach(struct daemon *d, const char *module, const struct deployment_module *dm,
		   struct instance_spec *spec, struct berr *err)
{
	const struct net_options *no = &dm->create.net;
	enum net_mode mode;
	const char *network = module_network(d, no, &mode);
	if (!d->net)
		return berr_set(err, ENOMEM, "module %s: networks", module);
	network_detach(d, module); /* one left from an instance that ended unseen */
	if (mode != NET_JOIN) {
		if (no->n_ports && no->choice == NETWORK_DEFAULT)
			log_warn("module %s: PortBindings: no ports are published with the %s "
				 "network (default_network)",
				 module, mode == NET_HOST ? "host" : "none");
		spec->network = mode;
		/* The gateway's name, ahead of the host's own lines for it. */
		const char *gw = gateway_instance_address(d, mode);
		char host[HOSTNAME_MAX + 1], entry[HOSTNAME_MAX + GATEWAY_ADDR_MAX + 2];
		snprintf(entry, sizeof(entry), "%s:%s", gateway_hostname(d, host), gw ? gw : "");
		if (spec_dns(spec, no) < 0 ||
		    extra_lines(no->extra_hosts, "127.0.0.1", &spec->hosts) < 0 ||
		    (gw && strv_push(&spec->extra_hosts, entry) < 0))
			return berr_set(err, ENOMEM, "module %s: network", module);
		return 0;
	}
	struct net_params p;
	if (net_params(d, network, true, &p, err) < 0)
		return berr_wrap(err, "module %s", module);
	struct net_att *a = att_new(d, module, network, &p, no, spec);
	if (!a || table_add(d, a) < 0) {
		att_free(a);
		return berr_set(err, ENOMEM, "module %s: network %s", module, network);
	}
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/netns", d->run);
	/* The record comes first: whatever happens next, a later start knows
	 * what to undo. */
	if (fs_mkdir_p(dir, 0755, err) < 0 || att_save(d, a, err) < 0 ||
	    netns_create(a->netns, err) < 0) {
		berr_wrap(err, "module %s: network %s", module, network);
		att_teardown(d, a);
		return -1;
	}
	struct cni_call call = {.command = "ADD",
				.container_id = a->id,
				.netns = a->netns,
				.ifname = NETWORK_IFNAME,
				.path = cni_path(d)};
	int64_t t0 = boot_ms();
	char *result = NULL;
	struct cni_result r;
	if (cni_run(&call, a->config, NULL, &result, err) < 0 ||
	    cni_result_parse(result, strlen(result), &r, err) < 0) {
		free(result);
		berr_wrap(err, "module %s: network %s", module, network);
		att_teardown(d, a);
		return -1;
	}
	a->result = result;
	snprintf(a->address, sizeof(a->address), "%s", r.address);
	int64_t took = boot_ms() - t0;
	bool ok = true;
	spec->network = NET_JOIN;
	spec->netns = dup_or_null(a->netns, &ok);
	spec->hosts = hosts_lines(d, a);
	if (!ok || !spec->hosts || spec_dns(spec, no) < 0) {
		att_teardown(d, a);
		return berr_set(err, ENOMEM, "module %s: network %s", module, network);
	}
	if (att_save(d, a, err) < 0) {
		berr_wrap(err, "module %s: network %s", module, network);
		att_teardown(d, a);
		return -1;
	}
	hosts_refresh(d, network, a);
	log_info("module %s: network %s, address %s on %s (CNI ADD %lld ms)", module, network,
		 a->address, a->bridge, (long long)took);
	return 0;
}

/* --- after a restart of the daemon --- */

/* The namespace the module's running instance was started in, from its
 * spec.json; "" when it has none or is not running. */
static void running_netns(struct daemon *d, const char *module, char *out, size_t cap)
{
	out[0] = '\0';
	struct module_rt *m = module_find(d, module);
	if (!m || !m->shim_pid)
		return;
	char path[4400];
	snprintf(path, sizeof(path), "%s/instances/%s/spec.json", d->root, module);
	struct instance_spec *spec = NULL;
	struct berr err;
	if (instance_spec_read(path, &spec, &err) < 0)
		return;
	if (spec->network == NET_JOIN && spec->netns)
		snprintf(out, cap, "%s", spec->netns);
	instance_spec_free(spec);
}

static void check_kept(struct daemon *d, const struct net_att *a)
{
	/* portmap 1.1.1 (Debian 12) looks for IPv6 rules in CHECK even for an
	 * instance with an IPv4 address only, and so always fails
	 * (containernetworking/plugins#819): it is left out. */
	struct cni_call call = {.command = "CHECK",
				.container_id = a->id,
				.netns = a->netns,
				.ifname = NETWORK_IFNAME,
				.path = cni_path(d),
				.skip = "portmap"};
	struct berr err;
	if (cni_run(&call, a->config, a->result, NULL, &err) < 0)
		log_warn("module %s: network %s is not as it was set up: %s (restart the module "
			 "to set it up again)",
			 a->name, a->network, err.msg);
	else
		log_info("module %s: kept network %s, address %s", a->name, a->network, a->address);
}

/* Pins under <run>/netns/ that no record names. */
static void stray_pins_remove(struct daemon *d)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/netns", d->run);
	cleanup_closedir DIR *dh = opendir(dir);
	for (struct dirent *de; dh && (de = readdir(dh));) {
		if (de->d_name[0] == '.')
			continue;
		char path[4400];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		bool known = false;
		for (size_t i = 0; i < d->net->n_atts && !known; i++)
			known = !strcmp(d->net->atts[i]->netns, path);
		struct berr err;
		if (!known && netns_remove(path, &err) < 0)
			log_warn("%s", err.msg);
	}
}

void network_sweep(struct daemon *d)
{
	if (!d->net)
		return;
	char ns[PATH_MAX];
	for (size_t i = 0; i < d->net->n_atts; i++) {
		struct net_att *a = d->net->atts[i];
		running_netns(d, a->name, ns, sizeof(ns));
		a->live = a->result && !strcmp(ns, a->netns);
	}
	for (size_t i = d->net->n_atts; i-- > 0;) {
		if (i >= d->net->n_atts)
			continue;
		struct net_att *a = d->net->atts[i];
		if (!a->live) {
			log_info("module %s: its instance is gone; tearing down its network %s",
				 a->name, a->network);
			att_teardown(d, a);
		}
	}
	for (size_t i = 0; i < d->net->n_atts; i++)
		if (d->net->atts[i]->live)
			check_kept(d, d->net->atts[i]);
	stray_pins_remove(d);
	/* Bridges of networks no instance is on, left by a daemon killed
	 * between the last DEL and the bridge's removal. */
	for (size_t i = 0; i < d->cfg->n_networks; i++) {
		struct net_params p;
		struct berr err;
		if (net_params(d, d->cfg->networks[i].name, false, &p, &err) == 0)
			bridge_remove(d, p.bridge);
	}
	for (size_t i = 0; i < d->net->n_allocs; i++) {
		char br[IF_NAMESIZE];
		bridge_name(d->net->allocs[i].name, br);
		bridge_remove(d, br);
	}
	for (size_t i = 0; i < d->net->n_atts; i++)
		hosts_refresh(d, d->net->atts[i]->network, NULL);
}

/* --- deployments and the gateway --- */

static bool ports_clash(const struct port_binding *a, const struct port_binding *b)
{
	return a->host_port == b->host_port && !strcmp(a->protocol, b->protocol) &&
	       (!a->host_ip[0] || !b->host_ip[0] || !strcmp(a->host_ip, b->host_ip));
}

int network_check_deployment(struct daemon *d, const struct deployment *dep, struct berr *err)
{
	for (size_t i = 0; i < dep->n_modules; i++) {
		const struct deployment_module *a = &dep->modules[i];
		enum net_mode ma;
		module_network(d, &a->create.net, &ma);
		for (size_t j = i + 1; ma == NET_JOIN && j < dep->n_modules; j++) {
			const struct deployment_module *b = &dep->modules[j];
			enum net_mode mb;
			module_network(d, &b->create.net, &mb);
			for (size_t x = 0; mb == NET_JOIN && x < a->create.net.n_ports; x++)
				for (size_t y = 0; y < b->create.net.n_ports; y++)
					if (ports_clash(&a->create.net.ports[x],
							&b->create.net.ports[y]))
						return berr_set(err, 0,
								"modules %s and %s both publish "
								"host port %u/%s",
								a->name, b->name,
								a->create.net.ports[x].host_port,
								a->create.net.ports[x].protocol);
		}
	}
	return 0;
}

static bool deployment_uses(struct daemon *d, const char *network)
{
	for (size_t i = 0; d->dep && i < d->dep->n_modules; i++) {
		enum net_mode m;
		const char *n = module_network(d, &d->dep->modules[i].create.net, &m);
		if (n && !strcmp(n, network))
			return true;
	}
	return false;
}

void network_deployment_applied(struct daemon *d)
{
	if (!d->net || !d->dep)
		return;
	/* Subnets chosen for networks nothing uses any more go back. */
	bool changed = false;
	for (size_t i = d->net->n_allocs; i-- > 0;) {
		const char *name = d->net->allocs[i].name;
		bool attached = false;
		for (size_t k = 0; k < d->net->n_atts && !attached; k++)
			attached = !strcmp(d->net->atts[k]->network, name);
		if (!attached && !deployment_uses(d, name)) {
			memmove(&d->net->allocs[i], &d->net->allocs[i + 1],
				(d->net->n_allocs - i - 1) * sizeof(*d->net->allocs));
			d->net->n_allocs--;
			changed = true;
		}
	}
	struct berr err;
	if (changed && allocs_save(d, &err) < 0)
		log_warn("%s", err.msg);
	for (size_t i = 0; i < d->dep->n_modules; i++) {
		enum net_mode m;
		const char *n = module_network(d, &d->dep->modules[i].create.net, &m);
		struct net_params p;
		if (n && net_params(d, n, true, &p, &err) < 0)
			log_error("module %s: %s", d->dep->modules[i].name, err.msg);
	}
}

size_t network_gateways(struct daemon *d, char (*out)[INET_ADDRSTRLEN], size_t max)
{
	size_t n = 0;
	for (size_t i = 0; d->dep && d->net && i < d->dep->n_modules; i++) {
		enum net_mode m;
		const char *name = module_network(d, &d->dep->modules[i].create.net, &m);
		struct net_params p;
		struct berr err;
		if (!name || net_params(d, name, false, &p, &err) < 0)
			continue;
		char gw[INET_ADDRSTRLEN];
		ipv4_str(p.subnet + 1, gw);
		bool seen = false;
		for (size_t k = 0; k < n && !seen; k++)
			seen = !strcmp(out[k], gw);
		if (!seen && n < max)
			snprintf(out[n++], INET_ADDRSTRLEN, "%s", gw);
	}
	return n;
}
