/* Private to hub/: the hub's config file (format in hub/hub.h), read at start and on reload. */
#ifndef BERTH_HUB_CONFIG_H
#define BERTH_HUB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "common/err.h"
#include "common/sas.h"
#include "hub/hub.h"
#include "hub/route.h"

#define HUB_CONFIG_MAX		     (4 * 1024 * 1024)
#define HUB_DEFAULT_MAX_PACKET	     (256 * 1024)
#define HUB_MAX_PACKET_LIMIT	     (16 * 1024 * 1024)
#define HUB_DEFAULT_TTL_SECS	     7200
#define HUB_DEFAULT_MIN_FREE_PERCENT 2
#define HUB_NAME_MAX		     128 /* device and module names */

struct hub_module {
	const char *name;
	const char *generation_id;
	char key[SAS_KEY_B64_MAX]; /* derived from the device key */
	yajl_val desired;	   /* object or NULL */
	/* Its identity exists upstream with this key (the daemon made it so);
	 * until then nothing is sent under it. */
	bool identity_ready;
};

/* The cloud link (hub/upstream.h); url NULL: offline. The timing fields
 * have IoT Edge's values by default and are set only by tests. */
struct hub_upstream_config {
	const char *url; /* mqtts://host[:port], or mqtt:// */
	const char *ca_file;
	uint32_t token_ttl_secs; /* of the SAS tokens presented upstream */
	uint32_t backoff_min_ms; /* reconnect backoff, doubled up to max, with jitter */
	uint32_t backoff_max_ms;
	uint32_t window;    /* QoS 1 messages in flight per connection */
	uint32_t idle_secs; /* a connection with nothing to send closes after this */
	uint32_t keepalive_secs;
	/* The twins of the config's identities are IoT Hub's (the twin cache,
	 * hub/upstream_twin.c): each identity keeps a connection for its twin
	 * and direct methods. */
	bool twins;
	uint32_t method_timeout_ms; /* a cloud's method call waits this long for the module */
};

struct hub_config {
	yajl_val tree; /* every string below points into it */
	const char *device_id;
	const char *hostname;
	const char *device_key;
	const char *socket_path;
	const char *control_path;
	const char *state_dir;
	const char *listen_tcp;
	const char *tls_cert;
	const char *tls_key;
	size_t max_packet;
	uint32_t default_ttl_secs;
	size_t store_max_bytes;	   /* the daemon's hub.max_store_bytes; 0 none */
	size_t store_limit_bytes;  /* $edgeHub storeLimits.maxSizeBytes; 0 none */
	unsigned min_free_percent; /* of the store's device, left free */
	int store_full;		   /* enum store_full_policy */
	struct hub_upstream_config upstream;
	struct route_def *routes;
	size_t n_routes;
	struct hub_module *modules;
	size_t n_modules;
	/* The TLS gateway: its certificate (with the chain) and key, and the
	 * "host:port" addresses of its MQTT and HTTPS listeners. */
	const char *gateway_cert;
	const char *gateway_key;
	const char *gateway_mqtt[HUB_GATEWAY_LISTEN_MAX];
	size_t n_gateway_mqtt;
	const char *gateway_https[HUB_GATEWAY_LISTEN_MAX];
	size_t n_gateway_https;
	/* SIGUSR1 to the parent (the daemon) when the desired properties of
	 * $edgeAgent or $edgeHub change. */
	bool notify_parent;
};

/* Parses and checks a config; module keys are derived here. */
NODISCARD int hub_config_parse(const char *text, size_t len, const char *what,
			       struct hub_config **out, struct berr *err);
NODISCARD int hub_config_load(const char *path, struct hub_config **out, struct berr *err);
void hub_config_free(struct hub_config *c);

/* The store's bound: the smaller of the two that are set, 0 when none is. */
size_t hub_config_store_bound(const struct hub_config *c);

const struct hub_module *hub_config_module(const struct hub_config *c, const char *name);

/* A device or module name usable in topics, client ids and file names. */
bool hub_name_valid(const char *name);
/* Copies len bytes of s as a NUL-terminated name: false when it does not
 * fit cap or is not a valid name. */
bool hub_name_copy(const char *s, size_t len, char *out, size_t cap);

#endif
