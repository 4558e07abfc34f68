/* The network keys of Docker create options, as berth honours them
 * (docs/NETWORKS.md): which network, published ports, name servers and
 * extra host names. Everything here comes from a deployment: bounded and
 * checked, every error naming its JSON path. */
#include "agent/netoptions.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "agent/createoptions.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/names.h"

#define NET_LIST_MAX 32

void net_options_clear(struct net_options *n)
{
	free(n->network);
	free(n->ports);
	strv_free_many(n->dns, n->dns_search, n->dns_options, n->extra_hosts, n->aliases);
	memset(n, 0, sizeof(*n));
}

bool port_spec_parse(const char *s, uint16_t *port, char proto[5])
{
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n > 5)
		return false;
	long v = strtol(s, NULL, 10);
	if (v < 1 || v > 65535)
		return false;
	const char *p = s + n;
	if (*p == '\0')
		p = "tcp";
	else if (*p++ != '/')
		return false;
	if (strcmp(p, "tcp") && strcmp(p, "udp") && strcmp(p, "sctp"))
		return false;
	*port = (uint16_t)v;
	snprintf(proto, 5, "%s", p);
	return true;
}

static bool ip_valid(const char *s)
{
	unsigned char a[16];
	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* NetworkMode (or a NetworkingConfig endpoint's name) as a choice. */
static int choose(struct net_options *n, const char *mode, const char *what,
		  struct create_options *co, struct berr *err)
{
	free(n->network);
	n->network = NULL;
	if (!mode || !*mode) {
		n->choice = NETWORK_DEFAULT;
	} else if (!strcmp(mode, "host")) {
		n->choice = NETWORK_HOST;
	} else if (!strcmp(mode, "none")) {
		n->choice = NETWORK_NONE;
	} else if (!strcmp(mode, "bridge") || !strcmp(mode, "default")) {
		n->choice = NETWORK_BRIDGE;
	} else if (!strncmp(mode, "container:", 10)) {
		create_options_warn(co,
				    "createOptions %s \"%.64s\": berth does not share another "
				    "module's network; the module gets the default network",
				    what, mode);
		n->choice = NETWORK_DEFAULT;
	} else if (network_name_valid(mode)) {
		n->choice = NETWORK_BRIDGE;
		if (!(n->network = strdup(mode)))
			return berr_set(err, ENOMEM, "createOptions");
	} else {
		return berr_set(err, 0,
				"%s: \"%.64s\" is not host, none, bridge or a network name (1-%d "
				"of A-Z a-z 0-9 _ . -)",
				what, mode, NETWORK_NAME_MAX);
	}
	return 0;
}

static int parse_bindings(struct net_options *n, yajl_val pb, const struct jpath *pp,
			  struct berr *err)
{
	size_t total = 0;
	for (size_t i = 0; i < pb->u.object.len; i++) {
		yajl_val v = pb->u.object.values[i];
		total += YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
	}
	if (total > NET_PORTS_MAX)
		return berr_set(err, 0, "%s: more than %d bindings", pp->s, NET_PORTS_MAX);
	if (!total)
		return 0;
	n->ports = calloc(total, sizeof(*n->ports));
	if (!n->ports)
		return berr_set(err, ENOMEM, "%s", pp->s);
	for (size_t i = 0; i < pb->u.object.len; i++) {
		struct jpath kp;
		jpath_key(&kp, pp, pb->u.object.keys[i]);
		uint16_t port;
		char proto[5];
		if (!port_spec_parse(pb->u.object.keys[i], &port, proto))
			return berr_set(err, 0, "%s: expected PORT or PORT/tcp, /udp, /sctp", kp.s);
		yajl_val list = pb->u.object.values[i];
		if (YAJL_IS_NULL(list))
			continue;
		if (!YAJL_IS_ARRAY(list))
			return berr_set(err, 0, "%s: expected an array of bindings", kp.s);
		for (size_t j = 0; j < list->u.array.len; j++) {
			struct jpath bp, fp;
			jpath_index(&bp, &kp, j);
			yajl_val b = list->u.array.values[j];
			if (!YAJL_IS_OBJECT(b))
				return berr_set(err, 0, "%s: expected an object", bp.s);
			const char *hip = NULL, *hport = NULL;
			if (jp_str(b, "HostIp", &bp, false, 64, &hip, err) < 0)
				return -1;
			yajl_val hpv = json_get(b, "HostPort");
			char num[16];
			if (YAJL_IS_INTEGER(hpv)) {
				snprintf(num, sizeof(num), "%lld", YAJL_GET_INTEGER(hpv));
				hport = num;
			} else if (jp_str(b, "HostPort", &bp, false, 16, &hport, err) < 0) {
				return -1;
			}
			jpath_key(&fp, &bp, "HostPort");
			if (!hport || !*hport)
				return berr_set(err, 0,
						"%s: required: berth publishes a port on the host "
						"port given, it does not choose one",
						fp.s);
			uint16_t hp;
			char hproto[5];
			if (!port_spec_parse(hport, &hp, hproto) || strchr(hport, '/'))
				return berr_set(err, 0, "%s: expected a port number (1-65535)",
						fp.s);
			struct port_binding *pbd = &n->ports[n->n_ports];
			pbd->container_port = port;
			pbd->host_port = hp;
			snprintf(pbd->protocol, sizeof(pbd->protocol), "%s", proto);
			if (hip && *hip && strcmp(hip, "0.0.0.0") && strcmp(hip, "::")) {
				struct in_addr a;
				jpath_key(&fp, &bp, "HostIp");
				if (inet_pton(AF_INET, hip, &a) != 1)
					return berr_set(
					    err, 0,
					    "%s: expected an IPv4 address of the host (or "
					    "none for all)",
					    fp.s);
				snprintf(pbd->host_ip, sizeof(pbd->host_ip), "%s", hip);
			}
			for (size_t k = 0; k < n->n_ports; k++) {
				const struct port_binding *o = &n->ports[k];
				if (o->host_port == hp && !strcmp(o->protocol, proto) &&
				    (!o->host_ip[0] || !pbd->host_ip[0] ||
				     !strcmp(o->host_ip, pbd->host_ip)))
					return berr_set(err, 0,
							"%s: host port %u/%s is bound twice", bp.s,
							hp, proto);
			}
			n->n_ports++;
		}
	}
	return 0;
}

static int check_strv(char **v, const struct jpath *p, bool (*ok)(const char *),
		      const char *expected, struct berr *err)
{
	for (size_t i = 0; v && v[i]; i++)
		if (!ok(v[i])) {
			struct jpath ip;
			jpath_index(&ip, p, i);
			return berr_set(err, 0, "%s: expected %s", ip.s, expected);
		}
	return 0;
}

static bool domain_valid(const char *s)
{
	return hostname_valid(s, 253);
}

static bool option_valid(const char *s)
{
	return chars_valid(s, ":_.-", 64);
}

static bool alias_valid(const char *s)
{
	return hostname_valid(s, 63);
}

/* "name:address" (Docker also takes "name=address"), address an IP or
 * host-gateway; stored as "name:address". */
static bool extra_host_ok(char *s)
{
	char *sep = strpbrk(s, ":=");
	if (!sep || sep == s || sep - s > 253)
		return false;
	*sep = ':';
	if (strcmp(sep + 1, "host-gateway"))
		return extra_host_valid(s);
	*sep = '\0';
	bool ok = hostname_valid(s, 253);
	*sep = ':';
	return ok;
}

static int parse_host_lists(struct net_options *n, yajl_val hc, const struct jpath *hp,
			    struct berr *err)
{
	struct jpath p;
	jpath_key(&p, hp, "Dns");
	if (jp_strv(json_get(hc, "Dns"), &p, false, NET_LIST_MAX, 64, &n->dns, err) < 0 ||
	    check_strv(n->dns, &p, ip_valid, "an IP address", err) < 0)
		return -1;
	jpath_key(&p, hp, "DnsSearch");
	if (jp_strv(json_get(hc, "DnsSearch"), &p, false, NET_LIST_MAX, 253, &n->dns_search, err) <
		0 ||
	    check_strv(n->dns_search, &p, domain_valid, "a domain name", err) < 0)
		return -1;
	jpath_key(&p, hp, "DnsOptions");
	if (jp_strv(json_get(hc, "DnsOptions"), &p, false, NET_LIST_MAX, 64, &n->dns_options, err) <
		0 ||
	    check_strv(n->dns_options, &p, option_valid, "a resolver option", err) < 0)
		return -1;
	jpath_key(&p, hp, "ExtraHosts");
	if (jp_strv(json_get(hc, "ExtraHosts"), &p, false, NET_PORTS_MAX, 320, &n->extra_hosts,
		    err) < 0)
		return -1;
	for (size_t i = 0; n->extra_hosts && n->extra_hosts[i]; i++)
		if (!extra_host_ok(n->extra_hosts[i])) {
			struct jpath ip;
			jpath_index(&ip, &p, i);
			return berr_set(err, 0, "%s: expected NAME:ADDRESS (an IP or host-gateway)",
					ip.s);
		}
	return 0;
}

/* NetworkingConfig.EndpointsConfig: the network (when NetworkMode gives
 * none) and the module's aliases on it. */
static int parse_endpoints(struct create_options *co, yajl_val doc, const struct jpath *root,
			   bool mode_given, struct berr *err)
{
	struct net_options *n = &co->net;
	yajl_val nc, eps;
	struct jpath np, ep;
	jpath_key(&np, root, "NetworkingConfig");
	jpath_key(&ep, &np, "EndpointsConfig");
	if (jp_obj(doc, "NetworkingConfig", root, false, &nc, err) < 0 || !nc ||
	    jp_obj(nc, "EndpointsConfig", &np, false, &eps, err) < 0 || !eps || !eps->u.object.len)
		return 0;
	if (eps->u.object.len > 1)
		create_options_warn(co,
				    "createOptions NetworkingConfig.EndpointsConfig: berth puts a "
				    "module on one network; only %.64s is used",
				    eps->u.object.keys[0]);
	const char *name = eps->u.object.keys[0];
	struct jpath kp;
	jpath_key(&kp, &ep, name);
	if (!mode_given) {
		if (choose(n, name, kp.s, co, err) < 0)
			return -1;
	} else if (n->choice == NETWORK_BRIDGE && n->network && strcmp(n->network, name)) {
		create_options_warn(co,
				    "createOptions NetworkingConfig.EndpointsConfig.%.64s: the "
				    "module is on network %.64s (HostConfig.NetworkMode)",
				    name, n->network);
		return 0;
	}
	yajl_val e = eps->u.object.values[0];
	if (!YAJL_IS_OBJECT(e))
		return YAJL_IS_NULL(e) ? 0 : berr_set(err, 0, "%s: expected an object", kp.s);
	struct jpath ap;
	jpath_key(&ap, &kp, "Aliases");
	if (jp_strv(json_get(e, "Aliases"), &ap, false, NET_LIST_MAX, 63, &n->aliases, err) < 0 ||
	    check_strv(n->aliases, &ap, alias_valid, "a host name", err) < 0)
		return -1;
	return 0;
}

static int parse_exposed(yajl_val doc, const struct jpath *root, struct berr *err)
{
	yajl_val ex;
	if (jp_obj(doc, "ExposedPorts", root, false, &ex, err) < 0 || !ex)
		return 0;
	struct jpath p, kp;
	jpath_key(&p, root, "ExposedPorts");
	if (ex->u.object.len > NET_PORTS_MAX)
		return berr_set(err, 0, "%s: more than %d ports", p.s, NET_PORTS_MAX);
	for (size_t i = 0; i < ex->u.object.len; i++) {
		uint16_t port;
		char proto[5];
		if (!port_spec_parse(ex->u.object.keys[i], &port, proto)) {
			jpath_key(&kp, &p, ex->u.object.keys[i]);
			return berr_set(err, 0, "%s: expected PORT or PORT/tcp, /udp, /sctp", kp.s);
		}
	}
	return 0;
}

int net_options_parse(struct create_options *co, yajl_val doc, yajl_val hc,
		      const struct jpath *root, const struct jpath *hp, struct berr *err)
{
	struct net_options *n = &co->net;
	const char *mode = NULL;
	if (hc && jp_str(hc, "NetworkMode", hp, false, 128, &mode, err) < 0)
		return -1;
	struct jpath p;
	if (hc)
		jpath_key(&p, hp, "NetworkMode");
	if (choose(n, mode, hc ? p.s : "NetworkMode", co, err) < 0 ||
	    parse_endpoints(co, doc, root, mode && *mode, err) < 0 ||
	    parse_exposed(doc, root, err) < 0)
		return -1;
	if (!hc)
		return 0;
	yajl_val pb;
	jpath_key(&p, hp, "PortBindings");
	if (jp_obj(hc, "PortBindings", hp, false, &pb, err) < 0 ||
	    (pb && parse_bindings(n, pb, &p, err) < 0) || parse_host_lists(n, hc, hp, err) < 0)
		return -1;
	if (n->n_ports && (n->choice == NETWORK_HOST || n->choice == NETWORK_NONE))
		create_options_warn(co,
				    "createOptions HostConfig.PortBindings: no ports are published "
				    "with NetworkMode %s",
				    n->choice == NETWORK_HOST ? "host" : "none");
	if ((n->dns_search || n->dns_options) && !n->dns)
		create_options_warn(co, "createOptions HostConfig.DnsSearch and DnsOptions apply "
					"with HostConfig.Dns only");
	return 0;
}
