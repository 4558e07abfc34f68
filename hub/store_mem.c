/* The in-memory store: what store.h promises, kept in RAM (lost when the hub
 * stops). A message routed to several endpoints is held once. */
#include "hub/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"

#define N_BUCKETS 11 /* priorities 0-9, then everything else */

struct held_msg {
	struct hub_message msg;
	size_t bytes;
	unsigned refs;
};

struct entry {
	struct entry *next, *prev;
	uint64_t seq;
	struct held_msg *held;
	uint32_t priority;
	int64_t expires_ms;
	bool leased;
	bool redelivery;
};

struct bucket {
	struct entry *head, *tail;
};

struct endpoint {
	struct endpoint *next;
	char *name;
	struct bucket buckets[N_BUCKETS];
	size_t messages;
	size_t leased;
};

struct completion {
	struct completion *next;
	store_append_cb cb;
	void *arg;
};

struct store {
	struct store_options opt;
	struct endpoint *endpoints;
	struct completion *ready, **ready_tail;
	int efd;
	uint64_t next_seq;
	size_t bytes;
};

static size_t str_bytes(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static void held_free(struct held_msg *h)
{
	hub_message_clear(&h->msg);
	free(h);
}

static char *dup_or_null(const char *s, bool *fail)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

static struct held_msg *held_copy(const struct hub_message *src)
{
	struct held_msg *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	struct hub_message *m = &h->msg;
	bool fail = false;
	size_t bytes = sizeof(*h) + src->body_len;
	for (int i = 0; i < MSG_SYS_COUNT; i++) {
		m->sys[i] = dup_or_null(src->sys[i], &fail);
		bytes += str_bytes(src->sys[i]);
	}
	if (src->n_props) {
		m->props = calloc(src->n_props, sizeof(*m->props));
		if (!m->props)
			fail = true;
		else
			m->n_props = src->n_props;
		for (size_t i = 0; m->props && i < src->n_props; i++) {
			m->props[i].key = dup_or_null(src->props[i].key, &fail);
			m->props[i].value = dup_or_null(src->props[i].value, &fail);
			bytes += sizeof(*m->props) + str_bytes(src->props[i].key) +
				 str_bytes(src->props[i].value);
		}
	}
	if (src->body_len) {
		m->body = malloc(src->body_len);
		if (!m->body)
			fail = true;
		else
			memcpy(m->body, src->body, src->body_len);
	}
	m->body_len = m->body ? src->body_len : 0;
	m->priority = src->priority;
	m->ttl_secs = src->ttl_secs;
	m->enqueued_ms = src->enqueued_ms;
	h->bytes = bytes;
	if (fail) {
		held_free(h);
		return NULL;
	}
	return h;
}

static void held_put(struct store *s, struct held_msg *h)
{
	if (--h->refs == 0) {
		s->bytes -= h->bytes;
		held_free(h);
	}
}

int store_open(const struct store_options *opt, struct store **out, struct berr *err)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return berr_set(err, ENOMEM, "store");
	s->opt = *opt;
	s->opt.dir = NULL;
	s->ready_tail = &s->ready;
	s->next_seq = 1;
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0) {
		free(s);
		return berr_set(err, errno, "store: eventfd");
	}
	*out = s;
	return 0;
}

static void entry_unlink(struct bucket *b, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		b->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		b->tail = e->prev;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	while (s->endpoints) {
		struct endpoint *ep = s->endpoints;
		s->endpoints = ep->next;
		for (int b = 0; b < N_BUCKETS; b++) {
			while (ep->buckets[b].head) {
				struct entry *e = ep->buckets[b].head;
				entry_unlink(&ep->buckets[b], e);
				held_put(s, e->held);
				free(e);
			}
		}
		free(ep->name);
		free(ep);
	}
	while (s->ready) {
		struct completion *c = s->ready;
		s->ready = c->next;
		free(c);
	}
	close(s->efd);
	free(s);
}

int store_event_fd(struct store *s)
{
	return s->efd;
}

void store_dispatch(struct store *s)
{
	uint64_t v;
	ssize_t r = read(s->efd, &v, sizeof(v));
	(void)r;
	/* Callbacks may append again; those complete on the next round. */
	struct completion *list = s->ready;
	s->ready = NULL;
	s->ready_tail = &s->ready;
	while (list) {
		struct completion *c = list;
		list = c->next;
		c->cb(c->arg, 0, NULL);
		free(c);
	}
}

static struct endpoint *endpoint_get(struct store *s, const char *name, bool create)
{
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next)
		if (!strcmp(ep->name, name))
			return ep;
	if (!create)
		return NULL;
	struct endpoint *ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	ep->name = strdup(name);
	if (!ep->name) {
		free(ep);
		return NULL;
	}
	ep->next = s->endpoints;
	s->endpoints = ep;
	return ep;
}

static int bucket_of(uint32_t priority)
{
	return priority <= 9 ? (int)priority : N_BUCKETS - 1;
}

int store_append(struct store *s, const struct hub_message *m, const struct store_target *targets,
		 size_t n, store_append_cb cb, void *arg, struct berr *err)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strnlen(targets[i].endpoint, STORE_ENDPOINT_MAX + 1);
		if (len == 0 || len > STORE_ENDPOINT_MAX)
			return berr_set(err, 0, "store: bad endpoint name");
	}
	struct held_msg *h = held_copy(m);
	if (!h)
		return berr_set(err, ENOMEM, "store: copy of the message");
	if (s->bytes + h->bytes > s->opt.max_bytes) {
		held_free(h);
		return berr_set(err, ENOSPC, "store: full (%zu of %zu bytes held)", s->bytes,
				s->opt.max_bytes);
	}
	struct completion *c = calloc(1, sizeof(*c));
	struct entry **entries = calloc(n ? n : 1, sizeof(*entries));
	struct endpoint **eps = calloc(n ? n : 1, sizeof(*eps));
	bool fail = !c || !entries || !eps;
	for (size_t i = 0; i < n && !fail; i++) {
		entries[i] = calloc(1, sizeof(**entries));
		eps[i] = endpoint_get(s, targets[i].endpoint, true);
		fail = !entries[i] || !eps[i];
	}
	if (fail) {
		for (size_t i = 0; entries && i < n; i++)
			free(entries[i]);
		free(entries);
		free(eps);
		free(c);
		held_free(h);
		return berr_set(err, ENOMEM, "store: append");
	}
	s->bytes += h->bytes;
	for (size_t i = 0; i < n; i++) {
		struct entry *e = entries[i];
		uint32_t ttl = targets[i].ttl_secs ? targets[i].ttl_secs : s->opt.default_ttl_secs;
		e->seq = s->next_seq++;
		e->held = h;
		e->priority = targets[i].priority;
		e->expires_ms = m->enqueued_ms + (int64_t)ttl * 1000;
		h->refs++;
		struct bucket *b = &eps[i]->buckets[bucket_of(e->priority)];
		e->prev = b->tail;
		if (b->tail)
			b->tail->next = e;
		else
			b->head = e;
		b->tail = e;
		eps[i]->messages++;
	}
	free(entries);
	free(eps);
	if (n == 0) {
		s->bytes -= h->bytes;
		held_free(h);
	}
	c->cb = cb;
	c->arg = arg;
	*s->ready_tail = c;
	s->ready_tail = &c->next;
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof(one));
	(void)w;
	return 0;
}

static void entry_drop(struct store *s, struct endpoint *ep, struct entry *e)
{
	entry_unlink(&ep->buckets[bucket_of(e->priority)], e);
	ep->messages--;
	if (e->leased)
		ep->leased--;
	held_put(s, e->held);
	free(e);
}

int store_lease(struct store *s, const char *prefix,
		bool (*accept)(const char *endpoint, void *arg), void *arg, int64_t now_ms,
		struct store_item *item)
{
	size_t plen = strlen(prefix);
	struct entry *best = NULL;
	struct endpoint *best_ep = NULL;
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		if (strncmp(ep->name, prefix, plen) || ep->messages == ep->leased ||
		    (accept && !accept(ep->name, arg)))
			continue;
		for (int b = 0; b < N_BUCKETS; b++) {
			struct entry *e = ep->buckets[b].head;
			while (e && (e->leased || e->expires_ms <= now_ms)) {
				struct entry *next = e->next;
				if (!e->leased)
					entry_drop(s, ep, e);
				e = next;
			}
			if (!e)
				continue;
			if (!best || bucket_of(e->priority) < bucket_of(best->priority) ||
			    (bucket_of(e->priority) == bucket_of(best->priority) &&
			     e->seq < best->seq)) {
				best = e;
				best_ep = ep;
			}
			break;
		}
	}
	if (!best)
		return 1;
	best->leased = true;
	best_ep->leased++;
	item->endpoint = best_ep->name;
	item->seq = best->seq;
	item->msg = &best->held->msg;
	item->priority = best->priority;
	item->expires_ms = best->expires_ms;
	item->redelivery = best->redelivery;
	return 0;
}

static struct entry *find_leased(struct endpoint *ep, uint64_t seq)
{
	for (int b = 0; b < N_BUCKETS; b++)
		for (struct entry *e = ep->buckets[b].head; e; e = e->next)
			if (e->seq == seq)
				return e->leased ? e : NULL;
	return NULL;
}

void store_ack(struct store *s, const char *endpoint, uint64_t seq)
{
	struct endpoint *ep = endpoint_get(s, endpoint, false);
	struct entry *e = ep ? find_leased(ep, seq) : NULL;
	if (e)
		entry_drop(s, ep, e);
}

void store_release(struct store *s, const char *endpoint, uint64_t seq)
{
	struct endpoint *ep = endpoint_get(s, endpoint, false);
	struct entry *e = ep ? find_leased(ep, seq) : NULL;
	if (!e)
		return;
	e->leased = false;
	e->redelivery = true;
	ep->leased--;
}

size_t store_expire(struct store *s, int64_t now_ms)
{
	size_t dropped = 0;
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		for (int b = 0; b < N_BUCKETS; b++) {
			struct entry *e = ep->buckets[b].head;
			while (e) {
				struct entry *next = e->next;
				if (!e->leased && e->expires_ms <= now_ms) {
					entry_drop(s, ep, e);
					dropped++;
				}
				e = next;
			}
		}
	}
	if (dropped)
		log_info("store: %zu message(s) expired", dropped);
	return dropped;
}

void store_foreach(struct store *s, void (*fn)(const struct store_stats *st, void *arg), void *arg)
{
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		struct store_stats st = {ep->name, ep->messages, ep->leased, 0};
		for (int b = 0; b < N_BUCKETS; b++) {
			struct entry *e = ep->buckets[b].head;
			if (e && (!st.oldest_ms || e->held->msg.enqueued_ms < st.oldest_ms))
				st.oldest_ms = e->held->msg.enqueued_ms;
		}
		fn(&st, arg);
	}
}

size_t store_bytes(const struct store *s)
{
	return s->bytes;
}
