/* Private to agent/: the daemon's configuration file (JSON, see docs/DAEMON.md). It is
 * validated whole before the daemon acts on it; an error names the JSON path:
 * "config /etc/berth/config.json: $.device_key: not valid base64". */
#ifndef BERTH_AGENT_CONFIG_H
#define BERTH_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

#include "common/err.h"

#define CONFIG_MAX_BYTES    (256 * 1024)
#define CONFIG_DEFAULT_PATH "/etc/berth/config.json"
#define DEVICE_ID_MAX	    128
#define HOSTNAME_MAX	    255

struct registry_cred {
	char *host;	/* "127.0.0.1:5000", "myacr.example.io" */
	char *username; /* NULL for anonymous */
	char *password;
	char *ca_file;
	bool insecure; /* plain HTTP / unverified TLS */
};

/* A bridge network of the config's `networks` (agent/config_networks.c). */
struct net_config {
	char *name;
	char *subnet; /* IPv4 "a.b.c.d/n", host bits zero */
	char *bridge; /* NULL: named after the network */
};

#define NETWORK_NAME_MAX 64
#define NETWORKS_MAX	 32

struct agent_config {
	char *device_id;
	char *iothub_hostname;
	char *gateway_hostname; /* IOTEDGE_GATEWAYHOSTNAME; default: the host's name */
	char *device_key;	/* base64 */
	char *root;		/* NULL: the command line's --root */
	char *run;		/* NULL: the command line's --run */
	char *deployment_file;	/* NULL: only `berth deploy` */

	struct registry_cred *registries;
	size_t n_registries;

	bool hub_enabled; /* default true */
	char *hub_store;  /* default <root>/hub */
	char *hub_listen_tcp;
	char *hub_tls_cert;
	char *hub_tls_key;
	int64_t hub_max_packet;	      /* 0: the hub's default */
	int64_t hub_max_store_bytes;  /* 0: no bound but the free-space floor */
	int64_t hub_min_free_percent; /* default 2 */
	bool hub_store_drop_oldest;   /* store_full: drop-oldest (default reject) */

	/* The TLS gateway modules connect to (hub/hub.h "gateway"): MQTT and
	 * HTTPS at the gateway name, on the loopback address for host-network
	 * modules. */
	bool gateway_enabled;	    /* default true (with the hub) */
	char *gateway_address;	    /* default 127.0.0.1 */
	int64_t gateway_mqtt_port;  /* default 8883 */
	int64_t gateway_https_port; /* default 443 */

	/* The cloud link (docs/CLOUD.md); upstream_url NULL: offline. */
	char *upstream_url;	  /* mqtts://host[:port], mqtt:// for loopback */
	char *upstream_ca_file;	  /* trusted besides the system CAs */
	char *upstream_rest_url;  /* identity REST API; default https://<iothub_hostname> */
	bool upstream_insecure;	  /* plain mqtt:// and http:// to other hosts than loopback */
	bool upstream_identities; /* "iothub" (default): berth manages module identities */
	/* "deployments": "cloud" (the default with an upstream): the deployment
	 * is the $edgeAgent and $edgeHub twins' desired properties, the module
	 * twins and direct methods are IoT Hub's, and local deployments are
	 * refused; "local": the file and `berth deploy`, twins on the device. */
	bool deployments_cloud;

	char *edge_ca_cert; /* the operator's edge CA; NULL: berth's quickstart CA */
	char *edge_ca_key;
	char *trust_bundle;	     /* more CAs for modules to trust */
	char *manifest_trust_bundle; /* /manifest-trust-bundle's certificates */

	int64_t restart_backoff_unit_ms; /* default 10000 */
	int64_t reconcile_interval_ms;	 /* default 5000 */
	int64_t token_ttl_secs;		 /* module token files; default 3600 */
	int64_t stop_grace_secs;	 /* default 10; a module's StopTimeout wins */
	bool stop_modules_on_exit;	 /* default true */
	bool allow_privileged;		 /* default false */

	struct net_config *networks;
	size_t n_networks;
	char *default_network; /* "bridge" (default), "host", "none" or a network's name */
	char *cni_path;	       /* directories of the CNI plugins, ':' between; NULL: CNI's usual */
	char *metrics_listen;  /* "IP:PORT" for Prometheus; NULL: off */
};

/* config_networks.c: `networks`, `default_network` and `cni_path` of doc
 * (whose path is root), checked: names, subnets that do not overlap, bridge
 * names. */
struct jpath;
NODISCARD int config_networks_parse(yajl_val doc, const struct jpath *root,
				    struct agent_config *cfg, struct berr *err);
void config_networks_free(struct agent_config *cfg);
/* Network names: [A-Za-z0-9][A-Za-z0-9_.-]*, at most NETWORK_NAME_MAX. */
bool network_name_valid(const char *name);
/* "a.b.c.d/n" with n from 8 to 29 and no host bits: the network address and
 * prefix length, in host byte order. */
bool subnet_parse(const char *s, uint32_t *net, unsigned *prefix);

/* Frees n registry entries and what they point to. */
void registry_creds_free(struct registry_cred *r, size_t n);

/* Parses and validates a config document; `what` names it in errors. */
NODISCARD int agent_config_parse(const char *buf, size_t len, const char *what,
				 struct agent_config **out, struct berr *err);
NODISCARD int agent_config_load(const char *path, struct agent_config **out, struct berr *err);
void agent_config_free(struct agent_config *cfg);
/* Parses the only option of `berth daemon` and `berth check`, [-c|--config FILE],
 * into *path (CONFIG_DEFAULT_PATH when absent). -1 on anything else. */
int agent_config_option(int argc, char **argv, const char **path);

/* True for IoT Hub device and module id characters berth accepts (a subset
 * that is safe in MQTT topics: no '+', '#', '/'). */
bool agent_device_id_valid(const char *id);

/* The registry entry whose host matches the image reference's registry. */
const struct registry_cred *agent_config_registry(const struct agent_config *cfg,
						  const char *image_ref);
/* The registry part of an image reference ("docker.io" when it has none). */
void image_ref_registry(const char *ref, char *out, size_t cap);

#endif
