/* Private to agent/: module networks (docs/NETWORKS.md). A module is on the
 * host's network, on none, or on a bridge network: one per name, made by
 * the CNI plugins (bridge, host-local, portmap, firewall) when its first
 * module starts and removed with its last. Each module instance on a bridge
 * network gets a network namespace pinned under <run>/netns/, set up with
 * CNI ADD before its program starts and torn down with CNI DEL when it has
 * exited; what berth needs to tear it down is recorded under
 * <root>/networks/ first, so a daemon killed at any point leaves nothing
 * that its next start does not clean up. Module names resolve to their
 * addresses through each instance's /etc/hosts, kept current as modules
 * come and go.
 *
 * The gateway: on a bridge network the host (and the hub) is reached at
 * the bridge's own address, the first of the subnet, where the hub's TLS
 * gateway listens too (gateway.c): network_gateways() says which addresses
 * those are. They exist only while a module is on the network, so a
 * listener bound to one sets IP_FREEBIND to be bound before then. */
#ifndef BERTH_AGENT_NETWORK_H
#define BERTH_AGENT_NETWORK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define DEFAULT_NETWORK_NAME "azure-iot-edge"
#define NETWORK_IFNAME	     "eth0"

struct daemon;
struct deployment;
struct deployment_module;
struct instance_spec;

/* At start, before the deployment: the records of attached instances and
 * of subnets berth chose. */
NODISCARD int network_load(struct daemon *d, struct berr *err);
void network_free(struct daemon *d);

/* Before a deployment is applied: no host port published twice. */
NODISCARD int network_check_deployment(struct daemon *d, const struct deployment *dep,
				       struct berr *err);
/* After it is applied: a subnet for each bridge network it uses, so that
 * every gateway address is known before a module starts. */
void network_deployment_applied(struct daemon *d);

/* Gives the module's instance its network in spec (network, netns, hosts,
 * name servers): for a bridge network a pinned namespace equipped by CNI
 * ADD, the other modules' /etc/hosts updated. */
NODISCARD int network_attach(struct daemon *d, const char *module,
			     const struct deployment_module *dm, struct instance_spec *spec,
			     struct berr *err);
/* The module's instance has exited (or never started): CNI DEL, the
 * namespace, the record, the others' /etc/hosts, and the bridge when it
 * was the last on it. Nothing to do for a module without one. */
void network_detach(struct daemon *d, const char *module);
/* After the daemon took back the instances still running: keeps their
 * networks (CNI CHECK, a warning when it fails) and tears down every other
 * that a record names, and bridges no instance is on. */
void network_sweep(struct daemon *d);

/* The bridge addresses of every bridge network the applied deployment
 * uses, each once: where the hub listens for modules on them. */
size_t network_gateways(struct daemon *d, char (*out)[INET_ADDRSTRLEN], size_t max);

#endif
