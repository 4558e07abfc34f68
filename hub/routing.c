/* Telemetry through the routes: property bag into a message with the
 * sender's identity, routes matched once, the message appended to the store
 * for every sink, and the sender's PUBACK once the store owns it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hub/broker.h"
#include "hub/propbag.h"
#include "hub/upstream.h"

#define INPUT_PREFIX "/modules/"
#define INPUT_MIDDLE "/inputs/"

struct pending_ack *pending_ack_new(struct client *c, uint16_t packet_id)
{
	struct pending_ack *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->client = c;
	a->packet_id = packet_id;
	*c->acks_tail = a;
	c->acks_tail = &a->next;
	c->n_acks++;
	return a;
}

void pending_acks_flush(struct client *c)
{
	while (c->state == CLIENT_CONNECTED && c->acks && c->acks->done) {
		struct pending_ack *a = c->acks;
		c->acks = a->next;
		if (!c->acks)
			c->acks_tail = &c->acks;
		c->n_acks--;
		uint16_t id = a->packet_id;
		free(a);
		if (send_puback(c, id) < 0)
			return;
	}
	client_resume(c);
}

/* What an append waits for: the PUBACK to send and the modules whose
 * inputs got something. */
struct submit_job {
	struct broker *b;
	struct pending_ack *ack;
	char *upstream; /* the sender, when the message goes upstream */
	size_t n_modules;
	char *modules[];
};

static void on_stored(void *arg, int status, const struct berr *err)
{
	struct submit_job *job = arg;
	struct pending_ack *a = job->ack;
	if (a) {
		struct client *c = a->client;
		if (!c) {
			free(a); /* the connection is gone; the client sends it again */
		} else if (status == 0) {
			a->done = true;
			pending_acks_flush(c);
		} else {
			client_close(c, LOG_LVL_ERROR, true, "message not stored: %s",
				     err ? err->msg : "store error");
			free(a);
		}
	}
	if (status == 0)
		for (size_t i = 0; i < job->n_modules; i++)
			session_pump_module(job->b, job->modules[i]);
	if (status == 0 && job->upstream)
		upstream_notify(job->b, job->upstream);
	for (size_t i = 0; i < job->n_modules; i++)
		free(job->modules[i]);
	free(job->upstream);
	free(job);
}

struct hits {
	const char *sender;
	bool upstream;
	size_t device_len;
	size_t bag_len;			   /* of the property bag as delivered */
	const struct route_sink *too_long; /* a sink the topic would not fit */
	uint32_t default_ttl_secs;
	struct store_target *targets;
	char (*endpoints)[STORE_ENDPOINT_MAX];
	const char **modules;
	size_t n, cap, n_modules;
};

#define MQTT_TOPIC_MAX 65535

/* Bytes of "devices/<d>/modules/<m>/inputs/<i>/<bag>", the delivery topic. */
static size_t topic_size(size_t device_len, const struct route_sink *sink, size_t bag_len)
{
	return strlen("devices//modules//inputs//") + device_len + strlen(sink->module) +
	       strlen(sink->input) + bag_len;
}

/* The property bag's length as routing_input_topic() writes it. Written
 * out only when it might not fit in a topic: encoding can triple what
 * arrived unencoded. */
static int delivered_bag_len(const struct hub_message *m, size_t arrived_len, size_t *out)
{
	*out = 3 * arrived_len + 4096; /* more than the names and identity add */
	if (*out < MQTT_TOPIC_MAX / 2)
		return 0;
	struct strbuf bag = STRBUF_INIT;
	int rc = propbag_write(m, 1u << MSG_SYS_OUTPUT_NAME | 1u << MSG_SYS_INPUT_NAME, &bag);
	*out = bag.len;
	strbuf_release(&bag);
	return rc;
}

static void on_hit(const struct route_hit *hit, void *arg)
{
	struct hits *h = arg;
	if (h->n == h->cap)
		return;
	const struct route_sink *sink = hit->sink;
	char *ep = h->endpoints[h->n];
	if (sink->kind == SINK_UPSTREAM) {
		/* One queue per identity: each has its own connection upstream. */
		if (h->upstream || upstream_endpoint(h->sender, ep, STORE_ENDPOINT_MAX) < 0)
			return; /* one copy however many routes lead upstream */
		h->upstream = true;
	} else {
		if (topic_size(h->device_len, sink, h->bag_len) > MQTT_TOPIC_MAX) {
			h->too_long = sink;
			return;
		}
		int n = snprintf(ep, STORE_ENDPOINT_MAX, INPUT_PREFIX "%s" INPUT_MIDDLE "%s",
				 sink->module, sink->input);
		if (n < 0 || n >= STORE_ENDPOINT_MAX) {
			log_warn("route %s: endpoint name too long; not delivered",
				 hit->route_name);
			return;
		}
		h->modules[h->n_modules++] = sink->module;
	}
	h->targets[h->n].endpoint = ep;
	h->targets[h->n].priority = hit->priority;
	/* The current config's default, so a new deployment's TTL applies at once. */
	h->targets[h->n].ttl_secs = hit->ttl_secs ? hit->ttl_secs : h->default_ttl_secs;
	h->n++;
}

int routing_submit(struct broker *b, const char *module, const char *bag, size_t bag_len,
		   const uint8_t *body, size_t body_len, struct pending_ack *ack, struct berr *err)
{
	struct hub_message m = {0};
	if (propbag_parse(bag, bag_len, &m, err) < 0) {
		hub_message_clear(&m);
		return berr_wrap(err, "property bag");
	}
	m.sys[MSG_SYS_CONNECTION_DEVICE_ID] = strdup(b->cfg->device_id);
	m.sys[MSG_SYS_CONNECTION_MODULE_ID] = strdup(module);
	m.body = malloc(body_len ? body_len : 1);
	if (!m.sys[MSG_SYS_CONNECTION_DEVICE_ID] || !m.sys[MSG_SYS_CONNECTION_MODULE_ID] ||
	    !m.body) {
		hub_message_clear(&m);
		return berr_set(err, ENOMEM, "message");
	}
	memcpy(m.body, body, body_len);
	m.body_len = body_len;
	m.enqueued_ms = b->now_ms;
	HUB_COUNT(b, RECEIVED, m.sys[MSG_SYS_OUTPUT_NAME], module);

	size_t cap = b->cfg->n_routes;
	struct hits h = {.sender = module,
			 .device_len = strlen(b->cfg->device_id),
			 .default_ttl_secs = b->cfg->default_ttl_secs,
			 .cap = cap};
	if (delivered_bag_len(&m, bag_len, &h.bag_len) < 0) {
		hub_message_clear(&m);
		return berr_set(err, ENOMEM, "property bag");
	}
	h.targets = calloc(cap ? cap : 1, sizeof(*h.targets));
	h.endpoints = calloc(cap ? cap : 1, sizeof(*h.endpoints));
	h.modules = calloc(cap ? cap : 1, sizeof(*h.modules));
	struct submit_job *job = NULL;
	int rc = -1;
	if (!h.targets || !h.endpoints || !h.modules) {
		berr_set(err, ENOMEM, "routing");
		goto out;
	}
	route_table_match(b->routes, &m, on_hit, &h);
	if (h.too_long) {
		berr_set(err, 0,
			 "its properties would make the topic to /modules/%s/inputs/%s %zu bytes, "
			 "over MQTT's limit of %d",
			 h.too_long->module, h.too_long->input,
			 topic_size(h.device_len, h.too_long, h.bag_len), MQTT_TOPIC_MAX);
		goto out;
	}
	if (h.n == 0) {
		log_debug("message from %s matches no route; dropped", module);
		HUB_COUNT(b, DROPPED, "no_route", module, m.sys[MSG_SYS_OUTPUT_NAME]);
		if (ack) {
			ack->done = true;
			pending_acks_flush(ack->client);
		}
		rc = 0;
		goto out;
	}
	job = calloc(1, sizeof(*job) + h.n_modules * sizeof(char *));
	if (!job) {
		berr_set(err, ENOMEM, "routing");
		goto out;
	}
	job->b = b;
	job->ack = ack;
	if (h.upstream && !(job->upstream = strdup(module))) {
		berr_set(err, ENOMEM, "routing");
		goto out;
	}
	for (size_t i = 0; i < h.n_modules; i++) {
		if (!(job->modules[job->n_modules] = strdup(h.modules[i]))) {
			berr_set(err, ENOMEM, "routing");
			goto out;
		}
		job->n_modules++;
	}
	if (store_append(b->store, &m, h.targets, h.n, on_stored, job, err) < 0)
		goto out;
	job = NULL; /* the store's callback has it now */
	rc = 0;
out:
	if (job) {
		for (size_t i = 0; i < job->n_modules; i++)
			free(job->modules[i]);
		free(job->upstream);
		free(job);
	}
	free(h.targets);
	free(h.endpoints);
	free(h.modules);
	hub_message_clear(&m);
	return rc;
}

int routing_input_topic(struct broker *b, const char *endpoint, const struct hub_message *m,
			struct strbuf *out)
{
	size_t plen = strlen(INPUT_PREFIX);
	if (strncmp(endpoint, INPUT_PREFIX, plen))
		return -1;
	const char *mod = endpoint + plen;
	const char *mid = strstr(mod, INPUT_MIDDLE);
	if (!mid || mid == mod)
		return -1;
	const char *input = mid + strlen(INPUT_MIDDLE);
	if (strbuf_printf(out, "devices/%s/modules/%.*s/inputs/%s/", b->cfg->device_id,
			  (int)(mid - mod), mod, input) < 0)
		return -1;
	/* As edgeHub: the output name stays with the sender. */
	return propbag_write(m, 1u << MSG_SYS_OUTPUT_NAME | 1u << MSG_SYS_INPUT_NAME, out);
}
