/* The MQTT codec on arbitrary bytes: reading never overruns, and whatever
 * decodes encodes back to a packet that decodes to the same fields. */
#include <stdlib.h>
#include <string.h>

#include "hub/mqtt_codec.h"

static void same_str(struct mqtt_str a, struct mqtt_str b)
{
	if (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len)))
		abort();
}

static void reencode(const struct mqtt_packet *p)
{
	struct strbuf sb = STRBUF_INIT;
	int rc;
	switch (p->header.type) {
	case MQTT_CONNECT:
		if (p->u.connect.level != MQTT_PROTOCOL_LEVEL)
			return;
		rc = mqtt_encode_connect(&sb, &p->u.connect);
		break;
	case MQTT_CONNACK:
		rc = mqtt_encode_connack(&sb, p->u.connack.session_present, p->u.connack.code);
		break;
	case MQTT_PUBLISH:
		rc = mqtt_encode_publish(&sb, &p->u.publish);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		rc = mqtt_encode_subscribe(&sb, p->header.type, &p->u.subscribe);
		break;
	case MQTT_SUBACK:
		rc = mqtt_encode_suback(&sb, p->u.suback.packet_id, p->u.suback.codes,
					p->u.suback.n);
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
	case MQTT_DISCONNECT:
		rc = mqtt_encode_empty(&sb, p->header.type);
		break;
	default:
		rc = mqtt_encode_ack(&sb, p->header.type, p->u.packet_id);
		break;
	}
	if (rc < 0)
		abort();
	struct mqtt_packet q;
	struct berr err;
	if (mqtt_decode((const uint8_t *)sb.buf, sb.len, &q, &err) < 0)
		abort();
	if (q.header.type != p->header.type || q.header.remaining != p->header.remaining)
		abort();
	if (p->header.type == MQTT_PUBLISH) {
		same_str(p->u.publish.topic, q.u.publish.topic);
		if (p->u.publish.payload_len != q.u.publish.payload_len ||
		    p->u.publish.packet_id != q.u.publish.packet_id ||
		    p->u.publish.qos != q.u.publish.qos)
			abort();
	} else if (p->header.type == MQTT_CONNECT) {
		same_str(p->u.connect.client_id, q.u.connect.client_id);
		same_str(p->u.connect.username, q.u.connect.username);
		if (p->u.connect.password_len != q.u.connect.password_len)
			abort();
	} else if (p->header.type == MQTT_SUBSCRIBE || p->header.type == MQTT_UNSUBSCRIBE) {
		if (p->u.subscribe.n != q.u.subscribe.n)
			abort();
		for (size_t i = 0; i < p->u.subscribe.n; i++)
			same_str(p->u.subscribe.items[i].filter, q.u.subscribe.items[i].filter);
	}
	strbuf_release(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	while (off < size) {
		struct mqtt_fixed_header h;
		struct berr err;
		int rc = mqtt_fixed_header_read(data + off, size - off, &h, &err);
		if (rc != 0)
			return 0;
		size_t total = (size_t)h.header_len + h.remaining;
		if (total > size - off)
			return 0;
		/* A private copy, so reading past the packet would be caught. */
		uint8_t *pkt = malloc(total);
		memcpy(pkt, data + off, total);
		struct mqtt_packet p;
		if (mqtt_decode(pkt, total, &p, &err) == 0)
			reencode(&p);
		free(pkt);
		off += total;
	}
	return 0;
}
