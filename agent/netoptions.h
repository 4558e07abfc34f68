/* Private to agent/: the network part of a module's Docker create options:
 * HostConfig.NetworkMode, PortBindings, Dns, DnsSearch, DnsOptions,
 * ExtraHosts, and ExposedPorts and NetworkingConfig at the top. Parsed with
 * the rest of createOptions (createoptions.c); agent/network.c acts on it. */
#ifndef BERTH_AGENT_NETOPTIONS_H
#define BERTH_AGENT_NETOPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "agent/jpath.h"
#include "common/err.h"

#define NET_PORTS_MAX 256

enum net_choice {
	NETWORK_DEFAULT, /* no NetworkMode: the config's default_network */
	NETWORK_HOST,
	NETWORK_NONE,
	NETWORK_BRIDGE, /* a bridge network: `network`, or the default one when NULL */
};

struct port_binding {
	uint16_t container_port;
	uint16_t host_port;
	char protocol[5]; /* tcp, udp, sctp */
	char host_ip[16]; /* an IPv4 address; "" for all of the host's */
};

struct net_options {
	enum net_choice choice;
	char *network; /* NETWORK_BRIDGE: the network's name; NULL for "bridge" */
	struct port_binding *ports;
	size_t n_ports;
	char **dns;	    /* name servers (IP addresses) */
	char **dns_search;  /* search domains */
	char **dns_options; /* resolver options */
	char **extra_hosts; /* "name:address", address an IP or "host-gateway" */
	char **aliases;	    /* more names for the module on its network */
};

struct create_options;

/* Fills co->net from the options document doc (path root) and its
 * HostConfig hc (path hp, may be NULL); warnings go to co. */
NODISCARD int net_options_parse(struct create_options *co, yajl_val doc, yajl_val hc,
				const struct jpath *root, const struct jpath *hp, struct berr *err);
void net_options_clear(struct net_options *n);

/* "80", "80/tcp", "53/udp": the port and protocol (tcp when none). */
bool port_spec_parse(const char *s, uint16_t *port, char proto[5]);

#endif
