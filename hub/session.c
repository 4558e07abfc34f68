/* Sessions: subscriptions, QoS 1 messages in flight, and the hub's own
 * messages waiting to go out. Routed messages stay in the store until the
 * module's session has room and a subscription for them.
 *
 * Persistent sessions (clean session 0) survive hub restarts: each one's
 * identity and subscriptions are in <state_dir>/sessions.json, written
 * atomically before the CONNACK or SUBACK that makes them known. Their
 * unacknowledged messages need nothing more: they are in the store until
 * acknowledged, and go out again when the session's client is back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "hub/broker.h"

#define SESSIONS_FILE	  "sessions.json"
#define SESSIONS_FILE_MAX (4 * 1024 * 1024)
#define SESSIONS_VERSION  1

struct session *session_find(struct broker *b, const char *client_id)
{
	for (struct session *s = b->sessions; s; s = s->next)
		if (!strcmp(s->client_id, client_id))
			return s;
	return NULL;
}

struct session *session_new(struct broker *b, const char *client_id, const char *module,
			    bool persistent)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->client_id = strdup(client_id);
	s->module = strdup(module);
	if (!s->client_id || !s->module) {
		free(s->client_id);
		free(s->module);
		free(s);
		return NULL;
	}
	s->b = b;
	s->persistent = persistent;
	s->inflight_tail = &s->inflight;
	s->queue_tail = &s->queue;
	s->next = b->sessions;
	b->sessions = s;
	return s;
}

struct out_msg *out_msg_new(const char *topic, size_t topic_len, const void *payload, size_t len,
			    uint8_t qos)
{
	struct out_msg *m = calloc(1, sizeof(*m));
	if (!m || !(m->topic = strndup(topic, topic_len)) ||
	    !(m->payload = malloc(len ? len : 1))) {
		out_msg_free(m);
		return NULL;
	}
	if (len)
		memcpy(m->payload, payload, len);
	m->len = len;
	m->qos = qos;
	return m;
}

void out_msg_free(struct out_msg *m)
{
	if (!m)
		return;
	free(m->topic);
	free(m->payload);
	free(m);
}

static void inflight_free(struct broker *b, struct inflight *f, bool release)
{
	if (f->endpoint && release)
		store_release(b->store, f->endpoint, f->seq);
	free(f->endpoint);
	out_msg_free(f->own);
	free(f);
}

void session_free(struct session *s)
{
	if (!s)
		return;
	while (s->inflight) {
		struct inflight *f = s->inflight;
		s->inflight = f->next;
		inflight_free(s->b, f, true);
	}
	while (s->queue) {
		struct out_msg *m = s->queue;
		s->queue = m->next;
		out_msg_free(m);
	}
	while (s->subs) {
		struct subscription *sub = s->subs;
		s->subs = sub->next;
		free(sub->filter);
		free(sub);
	}
	free(s->client_id);
	free(s->module);
	free(s);
}

void session_discard(struct session *s)
{
	if (s->discarded)
		return;
	s->discarded = true;
	/* Its messages go back to the store now, so the module's next session
	 * can have them in this same turn of the loop. */
	for (struct inflight *f = s->inflight; f; f = f->next) {
		if (f->endpoint) {
			store_release(s->b->store, f->endpoint, f->seq);
			free(f->endpoint);
			f->endpoint = NULL;
			f->msg = NULL;
		}
	}
	struct session **sp = &s->b->sessions;
	while (*sp && *sp != s)
		sp = &(*sp)->next;
	if (*sp)
		*sp = s->next;
	s->next = s->b->discarded;
	s->b->discarded = s;
}

void session_detach(struct session *s)
{
	s->client = NULL;
	/* QoS 0 messages are not kept for a disconnected client. */
	struct out_msg **mp = &s->queue;
	while (*mp) {
		struct out_msg *m = *mp;
		if (m->qos == 0) {
			*mp = m->next;
			s->n_queued--;
			s->queued_bytes -= m->len;
			out_msg_free(m);
		} else {
			mp = &m->next;
		}
	}
	s->queue_tail = mp;
}

int session_granted_qos(const struct session *s, const char *topic, size_t len)
{
	int best = -1;
	for (const struct subscription *sub = s->subs; sub; sub = sub->next)
		if (sub->qos > best &&
		    mqtt_topic_matches(sub->filter, strlen(sub->filter), topic, len))
			best = sub->qos;
	return best;
}

uint16_t session_next_packet_id(struct session *s)
{
	for (;;) {
		uint16_t id = ++s->last_packet_id;
		if (id == 0)
			continue;
		bool used = false;
		for (struct inflight *f = s->inflight; f && !used; f = f->next)
			used = f->packet_id == id;
		if (!used)
			return id;
	}
}

int session_enqueue(struct session *s, const char *topic, const void *payload, size_t len,
		    uint8_t qos)
{
	int granted = session_granted_qos(s, topic, strlen(topic));
	if (granted < 0)
		return 1;
	uint8_t q = qos < granted ? qos : (uint8_t)granted;
	if (!s->client && q == 0)
		return 1;
	if (s->n_queued >= SESSION_QUEUE_MAX || s->queued_bytes + len > SESSION_QUEUE_BYTES) {
		if (q == 0) {
			log_warn("%s: QoS 0 message to %s dropped: the client is not keeping up",
				 s->client_id, topic);
			return -1;
		}
		if (s->client) {
			client_close(s->client, LOG_LVL_WARN, true,
				     "slow consumer: %zu messages wait to go out", s->n_queued);
			return -1;
		}
		struct out_msg *old = s->queue;
		log_warn("%s: session queue full while disconnected: dropping the oldest message "
			 "(to %s)",
			 s->client_id, old->topic);
		s->queue = old->next;
		if (!s->queue)
			s->queue_tail = &s->queue;
		s->n_queued--;
		s->queued_bytes -= old->len;
		out_msg_free(old);
	}
	struct out_msg *m = out_msg_new(topic, strlen(topic), payload, len, q);
	if (!m) {
		log_error("%s: out of memory queueing a message to %s", s->client_id, topic);
		return -1;
	}
	*s->queue_tail = m;
	s->queue_tail = &m->next;
	s->n_queued++;
	s->queued_bytes += len;
	session_pump(s);
	return 0;
}

static void inflight_add(struct session *s, struct inflight *f)
{
	*s->inflight_tail = f;
	s->inflight_tail = &f->next;
	s->n_inflight++;
}

/* Sends the next queued message of the hub's own; false when none. */
static bool pump_queue(struct session *s, struct client *c)
{
	struct out_msg *m = s->queue;
	if (!m)
		return false;
	s->queue = m->next;
	if (!s->queue)
		s->queue_tail = &s->queue;
	s->n_queued--;
	s->queued_bytes -= m->len;
	m->next = NULL;
	if (m->qos == 0) {
		send_publish(c, m->topic, m->payload, m->len, 0, 0, false);
		out_msg_free(m);
		return true;
	}
	struct inflight *f = calloc(1, sizeof(*f));
	if (!f) {
		out_msg_free(m);
		return true;
	}
	f->packet_id = session_next_packet_id(s);
	f->own = m;
	inflight_add(s, f);
	send_publish(c, m->topic, m->payload, m->len, 1, f->packet_id, false);
	return true;
}

/* Inputs the module subscribed to: an input's messages wait in the store
 * while no subscription covers its topic (as far as the topic is known
 * before the message: its property bag is not). */
static bool input_subscribed(const char *endpoint, void *arg)
{
	struct session *s = arg;
	struct hub_message none = {0};
	struct strbuf topic = STRBUF_INIT;
	bool ok = routing_input_topic(s->b, endpoint, &none, &topic) == 0 &&
		  session_granted_qos(s, topic.buf, topic.len) >= 0;
	strbuf_release(&topic);
	return ok;
}

/* Leases and sends the next routed message for this module; false when
 * there is none or no subscription takes it. */
static bool pump_store(struct session *s, struct client *c)
{
	struct broker *b = s->b;
	char prefix[STORE_ENDPOINT_MAX];
	snprintf(prefix, sizeof(prefix), "/modules/%s/inputs/", s->module);
	struct store_item item;
	if (store_lease(b->store, prefix, input_subscribed, s, b->now_ms, &item) != 0)
		return false;
	struct strbuf topic = STRBUF_INIT;
	if (routing_input_topic(b, item.endpoint, item.msg, &topic) < 0) {
		log_error("%s: cannot build the delivery topic for %s; message dropped",
			  s->client_id, item.endpoint);
		store_ack(b->store, item.endpoint, item.seq);
		strbuf_release(&topic);
		return true;
	}
	int granted = session_granted_qos(s, topic.buf, topic.len);
	if (granted < 0) {
		/* A filter on the property bag itself: stays stored until a
		 * subscription takes it. */
		store_release(b->store, item.endpoint, item.seq);
		strbuf_release(&topic);
		return false;
	}
	if (granted == 0) {
		send_publish(c, topic.buf, item.msg->body, item.msg->body_len, 0, 0, false);
		hub_metrics_sent(b, item.endpoint, item.msg, item.priority);
		store_ack(b->store, item.endpoint, item.seq);
		strbuf_release(&topic);
		return true;
	}
	struct inflight *f = calloc(1, sizeof(*f));
	if (!f || !(f->endpoint = strdup(item.endpoint))) {
		free(f);
		store_release(b->store, item.endpoint, item.seq);
		strbuf_release(&topic);
		return false;
	}
	f->seq = item.seq;
	f->msg = item.msg;
	f->priority = item.priority;
	f->packet_id = session_next_packet_id(s);
	inflight_add(s, f);
	send_publish(c, topic.buf, item.msg->body, item.msg->body_len, 1, f->packet_id, false);
	strbuf_release(&topic);
	return true;
}

void session_pump(struct session *s)
{
	struct client *c = s->client;
	while (c && c->state == CLIENT_CONNECTED && s->n_inflight < SESSION_WINDOW &&
	       client_unsent(c) < CLIENT_WBUF_HIGH) {
		if (!pump_queue(s, c) && !pump_store(s, c))
			break;
	}
}

void session_resend(struct session *s)
{
	struct client *c = s->client;
	for (struct inflight *f = s->inflight; f && c && c->state == CLIENT_CONNECTED;
	     f = f->next) {
		if (f->own) {
			send_publish(c, f->own->topic, f->own->payload, f->own->len, 1,
				     f->packet_id, true);
			continue;
		}
		struct strbuf topic = STRBUF_INIT;
		if (routing_input_topic(s->b, f->endpoint, f->msg, &topic) == 0)
			send_publish(c, topic.buf, f->msg->body, f->msg->body_len, 1, f->packet_id,
				     true);
		strbuf_release(&topic);
	}
}

void session_pump_module(struct broker *b, const char *module)
{
	for (struct session *s = b->sessions; s; s = s->next)
		if (!strcmp(s->module, module) && s->client)
			session_pump(s);
}

bool session_acknowledge(struct session *s, uint16_t packet_id)
{
	struct inflight **fp = &s->inflight;
	while (*fp && (*fp)->packet_id != packet_id)
		fp = &(*fp)->next;
	struct inflight *f = *fp;
	if (!f)
		return false;
	*fp = f->next;
	if (s->inflight_tail == &f->next)
		s->inflight_tail = fp;
	s->n_inflight--;
	if (f->endpoint) {
		hub_metrics_sent(s->b, f->endpoint, f->msg, f->priority);
		store_ack(s->b->store, f->endpoint, f->seq);
	}
	inflight_free(s->b, f, false);
	return true;
}

static int sessions_path(struct broker *b, const char *suffix, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/" SESSIONS_FILE "%s", b->cfg->state_dir, suffix);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static char *sessions_json(struct broker *b, size_t *len)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	json_gen_key_int(g, "version", SESSIONS_VERSION);
	json_gen_str(g, "sessions");
	yajl_gen_array_open(g);
	for (struct session *s = b->sessions; s; s = s->next) {
		const struct hub_module *m = hub_config_module(b->cfg, s->module);
		if (!s->persistent || s->discarded || !m)
			continue;
		yajl_gen_map_open(g);
		json_gen_key_str(g, "client_id", s->client_id);
		json_gen_key_str(g, "module", s->module);
		json_gen_key_str(g, "generation_id", m->generation_id);
		json_gen_str(g, "subscriptions");
		yajl_gen_array_open(g);
		for (struct subscription *sub = s->subs; sub; sub = sub->next) {
			yajl_gen_map_open(g);
			json_gen_key_str(g, "filter", sub->filter);
			json_gen_key_int(g, "qos", sub->qos);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	char *out = json_gen_done(g, len);
	return out;
}

int sessions_save(struct broker *b)
{
	char path[4200];
	size_t len = 0;
	struct berr err;
	cleanup_free char *json = sessions_json(b, &len);
	if (!json || sessions_path(b, "", path, sizeof(path)) < 0) {
		log_error("persistent sessions not saved: out of memory");
		return -1;
	}
	if (fs_write_file_atomic(path, json, len, 0600, &err) < 0) {
		log_error("persistent sessions not saved (they end if the hub restarts): %s",
			  err.msg);
		return -1;
	}
	return 0;
}

/* One saved session, checked as a CONNECT and a SUBSCRIBE would be. */
static void load_one(struct broker *b, yajl_val v, size_t i)
{
	char what[64];
	snprintf(what, sizeof(what), "sessions[%zu]", i);
	const char *client_id = NULL, *module = NULL, *gen = NULL;
	yajl_val subs = NULL;
	struct berr err;
	if (json_get_str(v, "client_id", what, true, &client_id, &err) < 0 ||
	    json_get_str(v, "module", what, true, &module, &err) < 0 ||
	    json_get_str(v, "generation_id", what, true, &gen, &err) < 0 ||
	    json_get_array(v, "subscriptions", what, true, &subs, &err) < 0) {
		log_warn(SESSIONS_FILE ": %s; that session is dropped", err.msg);
		return;
	}
	const struct hub_module *m = hub_config_module(b->cfg, module);
	char want[2 * HUB_NAME_MAX + 2];
	snprintf(want, sizeof(want), "%s/%s", b->cfg->device_id, module);
	if (!m || strcmp(m->generation_id, gen) || strcmp(client_id, want)) {
		log_info(
		    "persistent session of %.200s dropped: that identity is no longer deployed",
		    client_id);
		return;
	}
	if (session_find(b, client_id))
		return;
	struct session *s = session_new(b, client_id, module, true);
	if (!s) {
		log_error("persistent session of %s: out of memory", client_id);
		return;
	}
	for (size_t k = 0; k < subs->u.array.len && s->n_subs < SESSION_SUBS_MAX; k++) {
		yajl_val e = subs->u.array.values[k];
		const char *filter = json_str(json_get(e, "filter"));
		yajl_val q = json_get(e, "qos");
		size_t flen = filter ? strlen(filter) : 0;
		if (!filter || flen == 0 || flen > SUB_FILTER_MAX ||
		    !acl_subscribe(b->cfg->device_id, module, filter, flen) || !q ||
		    !YAJL_IS_INTEGER(q) || YAJL_GET_INTEGER(q) < 0 || YAJL_GET_INTEGER(q) > 1) {
			log_warn("persistent session of %s: a saved subscription is not valid; "
				 "dropped",
				 client_id);
			continue;
		}
		struct subscription *sub = calloc(1, sizeof(*sub));
		if (!sub || !(sub->filter = strdup(filter))) {
			free(sub);
			log_error("persistent session of %s: out of memory", client_id);
			break;
		}
		sub->qos = (uint8_t)YAJL_GET_INTEGER(q);
		sub->next = s->subs;
		s->subs = sub;
		s->n_subs++;
	}
	log_info("persistent session of %s restored with %zu subscription(s)", client_id,
		 s->n_subs);
}

int sessions_load(struct broker *b, struct berr *err)
{
	char path[4200], bad[4200];
	if (sessions_path(b, "", path, sizeof(path)) < 0 ||
	    sessions_path(b, ".bad", bad, sizeof(bad)) < 0)
		return berr_set(err, ENAMETOOLONG, "%s", b->cfg->state_dir);
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (fs_read_file(path, SESSIONS_FILE_MAX, &text, &len, err) < 0) {
		if (err->code == ENOENT)
			return 0;
		return berr_wrap(err, "persistent sessions");
	}
	yajl_val doc = NULL, list = NULL;
	long long version = 0;
	struct berr perr = {0};
	if (json_parse(text, len, SESSIONS_FILE_MAX, path, &doc, &perr) < 0 ||
	    json_get_int(doc, "version", SESSIONS_FILE, true, &version, &perr) < 0 ||
	    json_get_array(doc, "sessions", SESSIONS_FILE, true, &list, &perr) < 0 ||
	    version != SESSIONS_VERSION) {
		if (version != SESSIONS_VERSION && !perr.msg[0])
			berr_set(&perr, 0, "version %lld", version);
		/* Kept for a look, never overwritten; sessions start empty. */
		if (rename(path, bad) < 0)
			log_error("%s: %s", path, strerror(errno));
		log_error("persistent sessions cannot be read (%s); kept as %s, clients start "
			  "new sessions",
			  perr.msg, bad);
		yajl_tree_free(doc);
		return 0;
	}
	for (size_t i = 0; i < list->u.array.len; i++)
		load_one(b, list->u.array.values[i], i);
	yajl_tree_free(doc);
	return 0;
}
