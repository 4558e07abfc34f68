/* Private to hub/: the cloud link: messages routed to $upstream leave the device for IoT Hub
 * (or any MQTT broker), as edgeHub's MQTT upstream does (docs/CLOUD.md).
 *
 * The store keeps one endpoint per sending identity, "$upstream/<module>":
 * each identity has its own MQTT 3.1.1 connection (IoT Hub allows one per
 * identity), opened while it has something to send, so an identity whose
 * connection is refused never holds back the others. A connection leases
 * its endpoint's messages, best priority then oldest, keeps at most
 * `window` of them in flight at QoS 1, and acknowledges each in the store
 * only when its PUBACK arrives; a lost connection gives its leases back.
 *
 * Connections are libmosquitto clients driven by the hub's epoll loop
 * (mosquitto_socket, loop_read, loop_write, loop_misc): no thread per
 * connection. Host names are resolved by a short-lived helper thread, so a
 * slow DNS server never holds up local traffic. Reconnects back off from
 * 1 s to 60 s with jitter, and start at once when the kernel reports a new
 * address or default route (netwatch.c). */
#ifndef BERTH_HUB_UPSTREAM_H
#define BERTH_HUB_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>

#include "common/err.h"
#include "hub/config.h"
#include "hub/message.h"

#define UPSTREAM_ENDPOINT_PREFIX "$upstream/"
#define UPSTREAM_API_VERSION	 "2021-04-12"
/* IoT Hub's limit on a device-to-cloud message, properties included. */
#define UPSTREAM_MESSAGE_MAX (256 * 1024)
/* A message alone in flight when the connection closed this many times is
 * taken as refused by the upstream and dropped. */
#define UPSTREAM_REFUSAL_STRIKES 3

struct broker;
struct store_stats;
struct strbuf;

/* Sets up the link when the config has an upstream; libmosquitto (and
 * libssl for mqtts://) are loaded only then. */
NODISCARD int upstream_init(struct broker *b, struct berr *err);
void upstream_fini(struct broker *b);
/* The config was reloaded (old is the previous one, still valid). */
void upstream_reload(struct broker *b, const struct hub_config *old);
/* Frees what closed during this loop turn (called at its end). */
void upstream_free_dead(void);
/* A message for module's identity was stored. */
void upstream_notify(struct broker *b, const char *module);
/* Timers: reconnects, keepalives, token renewal, idle connections. */
void upstream_tick(struct broker *b);

/* With upstream.twins: the module's reported properties changed locally
 * (they go up when connected); a client connected or went away (for the
 * "clients" $edgeHub reports). */
void upstream_twin_changed(struct broker *b, const char *module);
void upstream_twin_client(struct broker *b, const char *client_id, bool is_connected);

/* "$upstream/<module>" into out; -1 when it does not fit. */
NODISCARD int upstream_endpoint(const char *module, char *out, size_t cap);

/* The control socket's status: "upstream": {...} (nothing when offline). */
void upstream_gen_status(struct broker *b, yajl_gen g);
/* The "$upstream" entry of "queues": the identities' queues summed into
 * *sum; false when there are none. */
bool upstream_queue_stats(struct broker *b, struct store_stats *sum);

/* The topic IoT Hub takes a module's message on,
 * devices/<d>/modules/<m>/messages/events/<bag>, with the system properties
 * IoT Hub keeps ($.mid $.cid $.ct $.ce $.on) and the application
 * properties. -1 when out of memory. */
NODISCARD int upstream_topic(const char *device, const char *module, const struct hub_message *m,
			     struct strbuf *out);

/* Reconnect delay after `failures` failed attempts in a row (1 or more):
 * min_ms doubled per failure up to max_ms, less up to a quarter at random
 * (r in 0..1), never below min_ms. */
int64_t upstream_backoff_ms(uint32_t min_ms, uint32_t max_ms, unsigned failures, double r);

#endif
