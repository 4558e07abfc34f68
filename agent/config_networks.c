/* The config's module networks (docs/NETWORKS.md):
 *   "networks": {"azure-iot-edge": {"subnet": "10.88.0.0/16", "bridge": "edge0"}},
 *   "default_network": "bridge" | "host" | "none" | <a network's name>,
 *   "cni_path": "/usr/lib/cni:/opt/cni/bin" */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "agent/jpath.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/names.h"

bool network_name_valid(const char *name)
{
	return name && name_valid(name, strlen(name), NETWORK_NAME_MAX);
}

bool subnet_parse(const char *s, uint32_t *net, unsigned *prefix)
{
	const char *slash = strchr(s, '/');
	char addr[INET_ADDRSTRLEN];
	if (!slash || (size_t)(slash - s) >= sizeof(addr) || !slash[1] ||
	    strspn(slash + 1, "0123456789") != strlen(slash + 1) || strlen(slash + 1) > 2)
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	struct in_addr in;
	if (inet_pton(AF_INET, addr, &in) != 1)
		return false;
	unsigned p = (unsigned)atoi(slash + 1);
	if (p < 8 || p > 29)
		return false;
	uint32_t a = ntohl(in.s_addr);
	uint32_t mask = 0xffffffffu << (32 - p);
	if (a & ~mask)
		return false;
	*net = a;
	*prefix = p;
	return true;
}

static bool overlaps(uint32_t a, unsigned pa, uint32_t b, unsigned pb)
{
	unsigned p = pa < pb ? pa : pb;
	uint32_t mask = 0xffffffffu << (32 - p);
	return (a & mask) == (b & mask);
}

void config_networks_free(struct agent_config *cfg)
{
	for (size_t i = 0; i < cfg->n_networks; i++)
		free_many(cfg->networks[i].name, cfg->networks[i].subnet, cfg->networks[i].bridge);
	free_many(cfg->networks, cfg->default_network, cfg->cni_path);
	cfg->networks = NULL;
	cfg->n_networks = 0;
}

static bool reserved_name(const char *name)
{
	return !strcmp(name, "host") || !strcmp(name, "none") || !strcmp(name, "bridge") ||
	       !strcmp(name, "default");
}

static int parse_network(struct agent_config *cfg, const char *name, yajl_val v,
			 const struct jpath *np, struct berr *err)
{
	if (!network_name_valid(name) || reserved_name(name))
		return berr_set(err, 0,
				"%s: not a network name (1-%d of A-Z a-z 0-9 _ . -, not host, "
				"none, bridge or default)",
				np->s, NETWORK_NAME_MAX);
	if (!YAJL_IS_OBJECT(v))
		return berr_set(err, 0, "%s: expected an object", np->s);
	size_t i = 0;
	static const char *const known[] = {"subnet", "bridge", NULL};
	const char *k = json_unknown_key(v, known, &i);
	if (k) {
		struct jpath kp;
		jpath_key(&kp, np, k);
		return berr_set(err, 0, "%s: unknown option", kp.s);
	}
	const char *subnet = NULL, *bridge = NULL;
	if (jp_str(v, "subnet", np, true, 32, &subnet, err) < 0 ||
	    jp_str(v, "bridge", np, false, 32, &bridge, err) < 0)
		return -1;
	struct jpath p;
	uint32_t net;
	unsigned prefix;
	if (!subnet_parse(subnet, &net, &prefix)) {
		jpath_key(&p, np, "subnet");
		return berr_set(err, 0,
				"%s: expected an IPv4 subnet a.b.c.d/n with n from 8 to 29 and the "
				"host bits zero",
				p.s);
	}
	if (bridge && (strlen(bridge) >= IFNAMSIZ || !chars_valid(bridge, "_.-", IFNAMSIZ - 1))) {
		jpath_key(&p, np, "bridge");
		return berr_set(err, 0, "%s: not an interface name (1-%d of A-Z a-z 0-9 _ . -)",
				p.s, IFNAMSIZ - 1);
	}
	for (size_t j = 0; j < cfg->n_networks; j++) {
		const struct net_config *o = &cfg->networks[j];
		uint32_t onet;
		unsigned opre;
		if (subnet_parse(o->subnet, &onet, &opre) && overlaps(net, prefix, onet, opre))
			return berr_set(err, 0, "%s: subnet %s overlaps %s of network %s", np->s,
					subnet, o->subnet, o->name);
		if (bridge && o->bridge && !strcmp(bridge, o->bridge))
			return berr_set(err, 0, "%s: bridge %s is network %s's too", np->s, bridge,
					o->name);
	}
	struct net_config *c = &cfg->networks[cfg->n_networks++];
	bool ok = true;
	c->name = dup_or_null(name, &ok);
	c->subnet = dup_or_null(subnet, &ok);
	c->bridge = dup_or_null(bridge, &ok);
	return ok ? 0 : berr_set(err, ENOMEM, "%s", np->s);
}

static int parse_cni_path(const char *s, const struct jpath *p, struct berr *err)
{
	for (const char *dir = s; *dir;) {
		size_t n = strcspn(dir, ":");
		if (n == 0 || dir[0] != '/')
			return berr_set(err, 0,
					"%s: expected absolute directories separated by ':'", p->s);
		dir += n + (dir[n] == ':');
	}
	return 0;
}

int config_networks_parse(yajl_val doc, const struct jpath *root, struct agent_config *cfg,
			  struct berr *err)
{
	yajl_val nets;
	struct jpath np;
	jpath_key(&np, root, "networks");
	if (jp_obj(doc, "networks", root, false, &nets, err) < 0)
		return -1;
	if (nets) {
		size_t n = nets->u.object.len;
		if (n > NETWORKS_MAX)
			return berr_set(err, 0, "%s: more than %d networks", np.s, NETWORKS_MAX);
		cfg->networks = calloc(n ? n : 1, sizeof(*cfg->networks));
		if (!cfg->networks)
			return berr_set(err, ENOMEM, "config");
		for (size_t i = 0; i < n; i++) {
			struct jpath p;
			jpath_key(&p, &np, nets->u.object.keys[i]);
			if (parse_network(cfg, nets->u.object.keys[i], nets->u.object.values[i], &p,
					  err) < 0)
				return -1;
		}
	}
	const char *def = NULL, *cni = NULL;
	struct jpath p;
	if (jp_str(doc, "default_network", root, false, NETWORK_NAME_MAX, &def, err) < 0 ||
	    jp_str(doc, "cni_path", root, false, 4095, &cni, err) < 0)
		return -1;
	if (def && strcmp(def, "bridge") && strcmp(def, "host") && strcmp(def, "none") &&
	    !network_name_valid(def)) {
		jpath_key(&p, root, "default_network");
		return berr_set(err, 0, "%s: expected bridge, host, none or a network's name", p.s);
	}
	jpath_key(&p, root, "cni_path");
	if (cni && parse_cni_path(cni, &p, err) < 0)
		return -1;
	bool ok = true;
	cfg->default_network = dup_or_null(def ? def : "bridge", &ok);
	cfg->cni_path = dup_or_null(cni, &ok);
	return ok ? 0 : berr_set(err, ENOMEM, "config");
}
