#include "hub/mqtt_codec.h"

#include <string.h>

static const char *const type_names[16] = {
    "reserved", "CONNECT",  "CONNACK",	  "PUBLISH",  "PUBACK",	     "PUBREC",
    "PUBREL",	"PUBCOMP",  "SUBSCRIBE",  "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
    "PINGREQ",	"PINGRESP", "DISCONNECT", "reserved",
};

const char *mqtt_type_name(uint8_t type)
{
	return type_names[type & 15];
}

/* ---- decoding ---- */

struct reader {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static size_t rd_left(const struct reader *r)
{
	return r->len - r->off;
}

static int rd_u8(struct reader *r, uint8_t *v)
{
	if (rd_left(r) < 1)
		return -1;
	*v = r->p[r->off++];
	return 0;
}

static int rd_u16(struct reader *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return -1;
	*v = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
	r->off += 2;
	return 0;
}

/* Two-byte length, then that many bytes. */
static int rd_bytes(struct reader *r, const uint8_t **p, uint16_t *len)
{
	if (rd_u16(r, len) < 0 || rd_left(r) < *len)
		return -1;
	*p = r->p + r->off;
	r->off += *len;
	return 0;
}

static int rd_str(struct reader *r, struct mqtt_str *s)
{
	const uint8_t *p;
	if (rd_bytes(r, &p, &s->len) < 0)
		return -1;
	s->p = (const char *)p;
	return mqtt_utf8_valid(s->p, s->len) ? 0 : -2;
}

int mqtt_fixed_header_read(const uint8_t *buf, size_t len, struct mqtt_fixed_header *out,
			   struct berr *err)
{
	if (len < 1)
		return 1;
	uint8_t type = buf[0] >> 4;
	if (type == 0 || type == 15)
		return berr_set(err, 0, "reserved packet type %u", type);
	uint32_t value = 0;
	for (size_t i = 0; i < 4; i++) {
		if (len < i + 2)
			return 1;
		uint8_t b = buf[1 + i];
		value |= (uint32_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			out->type = type;
			out->flags = buf[0] & 15;
			out->remaining = value;
			out->header_len = (uint8_t)(i + 2);
			return 0;
		}
	}
	return berr_set(err, 0, "remaining length longer than four bytes");
}

static int decode_connect(struct reader *r, struct mqtt_connect *c, struct berr *err)
{
	memset(c, 0, sizeof(*c));
	int rc = rd_str(r, &c->protocol);
	if (rc == -1)
		return berr_set(err, 0, "CONNECT: truncated protocol name");
	if (rc < 0 || !((c->protocol.len == 4 && !memcmp(c->protocol.p, "MQTT", 4)) ||
			(c->protocol.len == 6 && !memcmp(c->protocol.p, "MQIsdp", 6))))
		return berr_set(err, 0, "CONNECT: protocol name is not MQTT");
	if (rd_u8(r, &c->level) < 0)
		return berr_set(err, 0, "CONNECT: truncated protocol level");
	if (c->level != MQTT_PROTOCOL_LEVEL)
		return 0; /* the caller answers CONNACK 1 without reading on */
	uint8_t flags;
	if (rd_u8(r, &flags) < 0 || rd_u16(r, &c->keepalive) < 0)
		return berr_set(err, 0, "CONNECT: truncated variable header");
	if (flags & 0x01)
		return berr_set(err, 0, "CONNECT: reserved flag is set");
	c->clean_session = flags & 0x02;
	c->will = flags & 0x04;
	c->will_qos = (flags >> 3) & 3;
	c->will_retain = flags & 0x20;
	c->has_password = flags & 0x40;
	c->has_username = flags & 0x80;
	if (!c->will && (c->will_qos || c->will_retain))
		return berr_set(err, 0, "CONNECT: will QoS or retain without a will");
	if (c->will_qos > 2)
		return berr_set(err, 0, "CONNECT: will QoS 3");
	if (c->has_password && !c->has_username)
		return berr_set(err, 0, "CONNECT: password without user name");
	rc = rd_str(r, &c->client_id);
	if (rc < 0)
		return berr_set(err, 0, "CONNECT: client identifier %s",
				rc == -1 ? "truncated" : "is not valid UTF-8");
	if (c->will) {
		rc = rd_str(r, &c->will_topic);
		if (rc < 0 || !mqtt_topic_name_valid(c->will_topic.p, c->will_topic.len))
			return berr_set(err, 0, "CONNECT: will topic %s",
					rc == -1 ? "truncated" : "is not a valid topic name");
		if (rd_bytes(r, &c->will_payload, &c->will_len) < 0)
			return berr_set(err, 0, "CONNECT: truncated will message");
	}
	if (c->has_username) {
		rc = rd_str(r, &c->username);
		if (rc < 0)
			return berr_set(err, 0, "CONNECT: user name %s",
					rc == -1 ? "truncated" : "is not valid UTF-8");
	}
	if (c->has_password && rd_bytes(r, &c->password, &c->password_len) < 0)
		return berr_set(err, 0, "CONNECT: truncated password");
	return 0;
}

static int decode_publish(struct reader *r, uint8_t flags, struct mqtt_publish *p, struct berr *err)
{
	memset(p, 0, sizeof(*p));
	p->dup = flags & 8;
	p->qos = (flags >> 1) & 3;
	p->retain = flags & 1;
	if (p->qos == 3)
		return berr_set(err, 0, "PUBLISH: QoS 3");
	if (p->qos == 0 && p->dup)
		return berr_set(err, 0, "PUBLISH: DUP set on a QoS 0 message");
	int rc = rd_str(r, &p->topic);
	if (rc == -1)
		return berr_set(err, 0, "PUBLISH: truncated topic name");
	if (rc < 0)
		return berr_set(err, 0, "PUBLISH: topic name is not valid UTF-8");
	if (p->topic.len == 0)
		return berr_set(err, 0, "PUBLISH: empty topic name");
	if (!mqtt_topic_name_valid(p->topic.p, p->topic.len))
		return berr_set(err, 0, "PUBLISH: wildcard in topic name");
	if (p->qos > 0) {
		if (rd_u16(r, &p->packet_id) < 0)
			return berr_set(err, 0, "PUBLISH: truncated packet identifier");
		if (p->packet_id == 0)
			return berr_set(err, 0, "PUBLISH: packet identifier 0");
	}
	p->payload = r->p + r->off;
	p->payload_len = rd_left(r);
	r->off = r->len;
	return 0;
}

static int decode_subscribe(struct reader *r, uint8_t type, struct mqtt_subscribe *s,
			    struct berr *err)
{
	const char *what = mqtt_type_name(type);
	s->n = 0;
	if (rd_u16(r, &s->packet_id) < 0)
		return berr_set(err, 0, "%s: truncated packet identifier", what);
	if (s->packet_id == 0)
		return berr_set(err, 0, "%s: packet identifier 0", what);
	while (rd_left(r) > 0) {
		if (s->n == MQTT_MAX_FILTERS)
			return berr_set(err, 0, "%s: more than %d topic filters", what,
					MQTT_MAX_FILTERS);
		struct mqtt_topic_request *t = &s->items[s->n];
		int rc = rd_str(r, &t->filter);
		if (rc == -1)
			return berr_set(err, 0, "%s: truncated topic filter", what);
		if (rc < 0 || !mqtt_topic_filter_valid(t->filter.p, t->filter.len))
			return berr_set(err, 0, "%s: invalid topic filter", what);
		t->qos = 0;
		if (type == MQTT_SUBSCRIBE) {
			if (rd_u8(r, &t->qos) < 0)
				return berr_set(err, 0, "%s: truncated requested QoS", what);
			if (t->qos > 2)
				return berr_set(err, 0, "%s: requested QoS byte 0x%02x", what,
						t->qos);
		}
		s->n++;
	}
	if (s->n == 0)
		return berr_set(err, 0, "%s: no topic filter", what);
	return 0;
}

static int decode_suback(struct reader *r, struct mqtt_suback *s, struct berr *err)
{
	s->n = 0;
	if (rd_u16(r, &s->packet_id) < 0)
		return berr_set(err, 0, "SUBACK: truncated packet identifier");
	while (rd_left(r) > 0) {
		if (s->n == MQTT_MAX_FILTERS)
			return berr_set(err, 0, "SUBACK: more than %d return codes",
					MQTT_MAX_FILTERS);
		uint8_t code;
		rd_u8(r, &code);
		if (code > 2 && code != MQTT_SUBACK_FAILURE)
			return berr_set(err, 0, "SUBACK: return code 0x%02x", code);
		s->codes[s->n++] = code;
	}
	if (s->n == 0)
		return berr_set(err, 0, "SUBACK: no return code");
	return 0;
}

/* Fixed-header flags every type but PUBLISH must carry. */
static int expected_flags(uint8_t type)
{
	switch (type) {
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return 2;
	case MQTT_PUBLISH:
		return -1;
	default:
		return 0;
	}
}

int mqtt_decode(const uint8_t *buf, size_t len, struct mqtt_packet *out, struct berr *err)
{
	struct mqtt_fixed_header *h = &out->header;
	int rc = mqtt_fixed_header_read(buf, len, h, err);
	if (rc < 0)
		return -1;
	if (rc > 0 || (size_t)h->header_len + h->remaining != len)
		return berr_set(err, 0, "packet length does not match its remaining length");
	const char *what = mqtt_type_name(h->type);
	int want = expected_flags(h->type);
	if (want >= 0 && h->flags != want)
		return berr_set(err, 0, "%s: fixed header flags 0x%x, expected 0x%x", what,
				h->flags, want);
	struct reader r = {.p = buf + h->header_len, .len = h->remaining, .off = 0};
	switch (h->type) {
	case MQTT_CONNECT:
		if (decode_connect(&r, &out->u.connect, err) < 0)
			return -1;
		if (out->u.connect.level != MQTT_PROTOCOL_LEVEL)
			return 0;
		break;
	case MQTT_CONNACK: {
		uint8_t ack, code;
		if (rd_u8(&r, &ack) < 0 || rd_u8(&r, &code) < 0)
			return berr_set(err, 0, "CONNACK: truncated");
		if (ack & 0xfe)
			return berr_set(err, 0, "CONNACK: reserved acknowledge flags set");
		if (code > MQTT_CONNACK_NOT_AUTHORIZED)
			return berr_set(err, 0, "CONNACK: return code %u", code);
		if ((ack & 1) && code)
			return berr_set(err, 0, "CONNACK: session present with a refusal");
		out->u.connack.session_present = ack & 1;
		out->u.connack.code = code;
		break;
	}
	case MQTT_PUBLISH:
		if (decode_publish(&r, h->flags, &out->u.publish, err) < 0)
			return -1;
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
	case MQTT_UNSUBACK:
		if (rd_u16(&r, &out->u.packet_id) < 0)
			return berr_set(err, 0, "%s: truncated packet identifier", what);
		if (out->u.packet_id == 0)
			return berr_set(err, 0, "%s: packet identifier 0", what);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		if (decode_subscribe(&r, h->type, &out->u.subscribe, err) < 0)
			return -1;
		break;
	case MQTT_SUBACK:
		if (decode_suback(&r, &out->u.suback, err) < 0)
			return -1;
		break;
	default: /* PINGREQ, PINGRESP, DISCONNECT */
		break;
	}
	if (rd_left(&r) != 0)
		return berr_set(err, 0, "%s: %zu unexpected bytes at the end", what, rd_left(&r));
	return 0;
}

/* ---- encoding ---- */

size_t mqtt_remaining_length_encode(uint32_t value, uint8_t out[4])
{
	if (value > MQTT_MAX_REMAINING)
		return 0;
	size_t n = 0;
	do {
		uint8_t b = value & 0x7f;
		value >>= 7;
		if (value)
			b |= 0x80;
		out[n++] = b;
	} while (value);
	return n;
}

static size_t remaining_length_size(size_t value)
{
	return value < 128 ? 1 : value < 16384 ? 2 : value < 2097152 ? 3 : 4;
}

size_t mqtt_publish_size(size_t topic_len, uint8_t qos, size_t payload_len)
{
	size_t rem = 2 + topic_len + (qos ? 2 : 0) + payload_len;
	return 1 + remaining_length_size(rem) + rem;
}

/* Builds packets in a local buffer first, so a failure leaves out as it was. */
struct writer {
	struct strbuf *out;
	size_t start;
	int failed;
};

static void wr_bytes(struct writer *w, const void *p, size_t n)
{
	if (!w->failed && strbuf_append(w->out, p, n) < 0)
		w->failed = 1;
}

static void wr_u8(struct writer *w, uint8_t v)
{
	wr_bytes(w, &v, 1);
}

static void wr_u16(struct writer *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	wr_bytes(w, b, 2);
}

static void wr_str(struct writer *w, const void *p, size_t n)
{
	if (n > 65535) {
		w->failed = 1;
		return;
	}
	wr_u16(w, (uint16_t)n);
	wr_bytes(w, p, n);
}

static int wr_begin(struct writer *w, struct strbuf *out, uint8_t first, size_t remaining)
{
	w->out = out;
	w->start = out->len;
	w->failed = 0;
	uint8_t len[4];
	size_t n = remaining > MQTT_MAX_REMAINING
		       ? 0
		       : mqtt_remaining_length_encode((uint32_t)remaining, len);
	if (!n) {
		w->failed = 1;
		return -1;
	}
	wr_u8(w, first);
	wr_bytes(w, len, n);
	return w->failed ? -1 : 0;
}

static int wr_end(struct writer *w)
{
	if (!w->failed)
		return 0;
	w->out->len = w->start;
	if (w->out->buf)
		w->out->buf[w->start] = '\0';
	return -1;
}

int mqtt_encode_connect(struct strbuf *out, const struct mqtt_connect *c)
{
	struct mqtt_str proto = c->protocol.p ? c->protocol : (struct mqtt_str){"MQTT", 4};
	size_t rem = 2 + proto.len + 1 + 1 + 2 + 2 + c->client_id.len;
	if (c->will)
		rem += 2 + c->will_topic.len + 2 + c->will_len;
	if (c->has_username)
		rem += 2 + c->username.len;
	if (c->has_password)
		rem += 2 + c->password_len;
	uint8_t flags = (uint8_t)((c->clean_session ? 0x02 : 0) | (c->will ? 0x04 : 0) |
				  (c->will_qos & 3) << 3 | (c->will_retain ? 0x20 : 0) |
				  (c->has_password ? 0x40 : 0) | (c->has_username ? 0x80 : 0));
	struct writer w;
	if (wr_begin(&w, out, MQTT_CONNECT << 4, rem) < 0)
		return wr_end(&w);
	wr_str(&w, proto.p, proto.len);
	wr_u8(&w, c->level ? c->level : MQTT_PROTOCOL_LEVEL);
	wr_u8(&w, flags);
	wr_u16(&w, c->keepalive);
	wr_str(&w, c->client_id.p, c->client_id.len);
	if (c->will) {
		wr_str(&w, c->will_topic.p, c->will_topic.len);
		wr_str(&w, c->will_payload, c->will_len);
	}
	if (c->has_username)
		wr_str(&w, c->username.p, c->username.len);
	if (c->has_password)
		wr_str(&w, c->password, c->password_len);
	return wr_end(&w);
}

int mqtt_encode_connack(struct strbuf *out, bool session_present, uint8_t code)
{
	uint8_t b[4] = {MQTT_CONNACK << 4, 2, session_present ? 1 : 0, code};
	return strbuf_append(out, b, sizeof(b));
}

int mqtt_encode_publish(struct strbuf *out, const struct mqtt_publish *p)
{
	if (p->qos > 2 || (p->qos && !p->packet_id))
		return -1;
	size_t rem = 2 + p->topic.len + (p->qos ? 2 : 0) + p->payload_len;
	uint8_t first =
	    (uint8_t)(MQTT_PUBLISH << 4 | (p->dup ? 8 : 0) | p->qos << 1 | (p->retain ? 1 : 0));
	struct writer w;
	if (wr_begin(&w, out, first, rem) < 0)
		return wr_end(&w);
	wr_str(&w, p->topic.p, p->topic.len);
	if (p->qos)
		wr_u16(&w, p->packet_id);
	wr_bytes(&w, p->payload, p->payload_len);
	return wr_end(&w);
}

int mqtt_encode_ack(struct strbuf *out, uint8_t type, uint16_t packet_id)
{
	uint8_t flags = type == MQTT_PUBREL ? 2 : 0;
	uint8_t b[4] = {(uint8_t)(type << 4 | flags), 2, (uint8_t)(packet_id >> 8),
			(uint8_t)packet_id};
	return strbuf_append(out, b, sizeof(b));
}

int mqtt_encode_subscribe(struct strbuf *out, uint8_t type, const struct mqtt_subscribe *s)
{
	size_t rem = 2;
	for (size_t i = 0; i < s->n; i++)
		rem += 2 + s->items[i].filter.len + (type == MQTT_SUBSCRIBE ? 1 : 0);
	struct writer w;
	if (wr_begin(&w, out, (uint8_t)(type << 4 | 2), rem) < 0)
		return wr_end(&w);
	wr_u16(&w, s->packet_id);
	for (size_t i = 0; i < s->n; i++) {
		wr_str(&w, s->items[i].filter.p, s->items[i].filter.len);
		if (type == MQTT_SUBSCRIBE)
			wr_u8(&w, s->items[i].qos);
	}
	return wr_end(&w);
}

int mqtt_encode_suback(struct strbuf *out, uint16_t packet_id, const uint8_t *codes, size_t n)
{
	struct writer w;
	if (wr_begin(&w, out, MQTT_SUBACK << 4, 2 + n) < 0)
		return wr_end(&w);
	wr_u16(&w, packet_id);
	wr_bytes(&w, codes, n);
	return wr_end(&w);
}

int mqtt_encode_empty(struct strbuf *out, uint8_t type)
{
	uint8_t b[2] = {(uint8_t)(type << 4), 0};
	return strbuf_append(out, b, sizeof(b));
}

/* ---- strings and topics ---- */

bool mqtt_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false; /* continuation byte, overlong lead 0xc0/0xc1, or > U+10FFFF
				       */
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

bool mqtt_topic_name_valid(const char *s, size_t len)
{
	if (len == 0 || !mqtt_utf8_valid(s, len))
		return false;
	return !memchr(s, '+', len) && !memchr(s, '#', len);
}

bool mqtt_topic_filter_valid(const char *s, size_t len)
{
	if (len == 0 || !mqtt_utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		bool level_start = i == 0 || s[i - 1] == '/';
		bool level_end = i + 1 == len || s[i + 1] == '/';
		if (s[i] == '+' && !(level_start && level_end))
			return false;
		if (s[i] == '#' && !(level_start && i + 1 == len))
			return false;
	}
	return true;
}

bool mqtt_topic_matches(const char *f, size_t flen, const char *t, size_t tlen)
{
	if (tlen > 0 && t[0] == '$' && flen > 0 && (f[0] == '+' || f[0] == '#'))
		return false;
	size_t fi = 0, ti = 0;
	for (;;) {
		/* At the start of a level in both. */
		if (fi < flen && f[fi] == '#')
			return true;
		size_t fe = fi, te = ti;
		while (fe < flen && f[fe] != '/')
			fe++;
		while (te < tlen && t[te] != '/')
			te++;
		bool plus = fe - fi == 1 && f[fi] == '+';
		if (!plus && (fe - fi != te - ti || memcmp(f + fi, t + ti, fe - fi)))
			return false;
		bool f_end = fe == flen, t_end = te == tlen;
		if (f_end && t_end)
			return true;
		if (t_end) /* "a/#" matches "a": the filter goes on with exactly "/#" */
			return flen - fe == 2 && f[fe + 1] == '#';
		if (f_end)
			return false;
		fi = fe + 1;
		ti = te + 1;
	}
}
