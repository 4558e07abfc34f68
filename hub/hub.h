/* The hub process: `berth hub --config FILE`, started and restarted by the
 * daemon. It serves MQTT 3.1.1 on <run>/hub.sock (and TCP/TLS when asked),
 * authenticates modules, routes their messages, keeps their twins, and
 * keeps routed messages in a durable store (docs/STORE.md) until their
 * receivers acknowledge them.
 *
 * FILE is written by the daemon (atomically) and re-read on SIGHUP; a new
 * config swaps routes and identities without dropping connections:
 * {
 *   "device_id": "Hannover01",
 *   "iothub_hostname": "myhub.example.net",
 *   "device_key": "<base64>",
 *   "socket": "/run/berth/hub.sock",
 *   "control_socket": "/run/berth/hubctl.sock",
 *   "state_dir": "/var/lib/berth/hub",          twins/, sessions.json, log/ (the store)
 *   "listen_tcp": "127.0.0.1:1883",             optional
 *   "tls_cert": "...", "tls_key": "...",         optional, for listen_tcp
 *   "gateway": {                                 optional: the TLS gateway modules use
 *     "cert": "<root>/ca/gateway.pem",           server certificate and chain
 *     "key": "<root>/ca/gateway.key",
 *     "mqtt": ["127.0.0.1:8883"],                MQTT over TLS, one per network
 *     "https": ["127.0.0.1:443"] },              module-to-module direct methods
 *   "max_packet": 262144,                        optional
 *   "default_ttl_secs": 7200,
 *   "store_max_bytes": 1073741824,               optional, hub.max_store_bytes (0 none)
 *   "store_limits_max_bytes": 0,                 optional, $edgeHub storeLimits.maxSizeBytes
 *   "min_free_percent": 2,                       optional, of the store's device
 *   "store_full": "reject",                      optional, or "drop-oldest"
 *   "upstream": { "url": "mqtts://...", "ca_file": "...",  optional: the cloud link
 *                 "twins": true,                 twins and methods are IoT Hub's (twin cache)
 *                 "method_timeout_ms": 30000 },   a cloud's method call waits this long
 *   "notify_parent": true,                       SIGUSR1 to the daemon when the desired
 *                                                properties of $edgeAgent or $edgeHub change
 *   "routes": { "<name>": { "route": "FROM ...", "priority": 0, "timeToLiveSecs": 60 } },
 *   "modules": { "<name>": { "generation_id": "...", "desired": { ... } } }
 * }
 * Listening socket: the daemon creates <run>/hub.sock itself and passes it as
 * `berth hub --config FILE --listen-fd N`, and passes the same fd again when
 * it restarts the hub, so the socket file bind-mounted into every instance
 * (at /run/berth/hub.sock) keeps working across hub restarts. Without
 * --listen-fd the hub creates "socket" itself (tests, standalone use).
 *
 * A module <name> connecting over the Unix socket must be a process in the
 * instance cgroup berth/<name> (see cgroup_instance_of_pid) or on the host.
 *
 * The control socket (root only, 0600) takes one JSON request per line and
 * answers one JSON line:
 *   {"op":"invoke","module":"m","method":"reboot","payload":{...},"timeout_ms":30000}
 *     -> {"status":200,"payload":{...}}   or {"status":504,"error":"..."}
 *   {"op":"reload"}  -> {"status":200}         or {"status":400,"error":"..."}
 *   {"op":"status"}  -> {"status":200,"clients":[...],"queues":{"<endpoint>":
 *                        {"messages":n,"leased":n,"bytes":n,"oldest_age_secs":s,
 *                        "expired":n,"dropped":{"full":n,"damaged":n}}},
 *                        "store":{"dir":..,"bytes":n,"free_bytes":n,"full":bool,...},
 *                        "connections":n,"input_buffered_before_connect":bytes, ...}
 *   {"op":"twin","module":"m"} -> {"status":200,"cloud":b,"synced":b,
 *                                   "twin":{"desired":..,"reported":..}}
 *     (synced: the desired properties are IoT Hub's, read through the twin cache)
 *   {"op":"twin_report","module":"m","reported":{..}} -> {"status":200}
 *     makes the reported properties exactly these ("patch":{..} merges instead);
 *     with the twin cache they go up to IoT Hub
 *   {"op":"metrics"} -> the hub's metrics in Prometheus' text format (not
 *                        JSON); the connection closes after the last line
 */
#ifndef BERTH_HUB_H
#define BERTH_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* As IoT Hub: each twin section (desired, reported) is at most 32 KiB of
 * compact JSON. The daemon refuses a deployment whose initial desired
 * properties are larger, before the hub would. */
#define HUB_TWIN_SECTION_MAX (32 * 1024)

/* Addresses the TLS gateway listens on, per protocol (MQTT, HTTPS). */
#define HUB_GATEWAY_LISTEN_MAX 16

/* For `berth check`, without opening the store (a running hub holds it):
 * reads the header of every segment in dir. 0 with what is there (a
 * missing dir is empty), or -1 with err when a segment cannot be read or
 * is of a version this berth does not read. */
NODISCARD int hub_store_inspect(const char *dir, uint64_t *segments, uint64_t *bytes,
				struct berr *err);

/* Sends one request line to the hub's control socket and reads the answer
 * (malloc'd, NUL-terminated) within timeout_ms. */
NODISCARD int hub_control_call(const char *control_socket, const char *request, int timeout_ms,
			       char **reply, struct berr *err);

#endif
