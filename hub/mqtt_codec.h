/* The MQTT 3.1.1 wire codec (OASIS standard), shared by the hub, its unit
 * tests and its fuzz targets. Decoding never allocates: strings and payloads
 * are views into the packet buffer, valid while that buffer is. Every length
 * is checked against the packet before it is used; a packet that breaks a
 * rule of the standard is refused with a message naming the rule. */
#ifndef BERTH_HUB_MQTT_CODEC_H
#define BERTH_HUB_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/strbuf.h"

#define MQTT_PROTOCOL_LEVEL   4		 /* 3.1.1 */
#define MQTT_MAX_REMAINING    268435455u /* four length bytes of 7 bits */
#define MQTT_MAX_FILTERS      64	 /* per SUBSCRIBE / UNSUBSCRIBE packet */
#define MQTT_FIXED_HEADER_MAX 5

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
};

enum mqtt_connack_code {
	MQTT_CONNACK_ACCEPTED = 0,
	MQTT_CONNACK_BAD_VERSION = 1,
	MQTT_CONNACK_ID_REJECTED = 2,
	MQTT_CONNACK_UNAVAILABLE = 3,
	MQTT_CONNACK_BAD_CREDENTIALS = 4,
	MQTT_CONNACK_NOT_AUTHORIZED = 5,
};

#define MQTT_SUBACK_FAILURE 0x80

/* A length-counted string inside a packet (not NUL-terminated). */
struct mqtt_str {
	const char *p;
	uint16_t len;
};

struct mqtt_fixed_header {
	uint8_t type;	    /* enum mqtt_type */
	uint8_t flags;	    /* low nibble of the first byte */
	uint32_t remaining; /* length of what follows the fixed header */
	uint8_t header_len; /* 2..5 */
};

struct mqtt_connect {
	struct mqtt_str protocol; /* "MQTT" (or "MQIsdp" from 3.1 clients) */
	uint8_t level;		  /* when not 4, nothing after it was decoded */
	bool clean_session;
	uint16_t keepalive;
	struct mqtt_str client_id;
	bool will;
	uint8_t will_qos;
	bool will_retain;
	struct mqtt_str will_topic;
	const uint8_t *will_payload;
	uint16_t will_len;
	bool has_username;
	struct mqtt_str username;
	bool has_password;
	const uint8_t *password; /* binary data, not necessarily UTF-8 */
	uint16_t password_len;
};

struct mqtt_connack {
	bool session_present;
	uint8_t code;
};

struct mqtt_publish {
	bool dup;
	uint8_t qos;
	bool retain;
	struct mqtt_str topic;
	uint16_t packet_id; /* QoS 1 and 2 only */
	const uint8_t *payload;
	size_t payload_len;
};

struct mqtt_topic_request {
	struct mqtt_str filter;
	uint8_t qos; /* SUBSCRIBE only */
};

/* SUBSCRIBE and UNSUBSCRIBE. */
struct mqtt_subscribe {
	uint16_t packet_id;
	size_t n;
	struct mqtt_topic_request items[MQTT_MAX_FILTERS];
};

struct mqtt_suback {
	uint16_t packet_id;
	size_t n;
	uint8_t codes[MQTT_MAX_FILTERS];
};

/* Any packet; which member is set follows header.type. PUBACK, PUBREC,
 * PUBREL, PUBCOMP and UNSUBACK carry only packet_id; PINGREQ, PINGRESP and
 * DISCONNECT nothing. */
struct mqtt_packet {
	struct mqtt_fixed_header header;
	union {
		struct mqtt_connect connect;
		struct mqtt_connack connack;
		struct mqtt_publish publish;
		struct mqtt_subscribe subscribe; /* also UNSUBSCRIBE */
		struct mqtt_suback suback;
		uint16_t packet_id;
	} u;
};

const char *mqtt_type_name(uint8_t type);

/* Reads the fixed header at the start of buf. Returns 0 when complete, 1 when
 * more bytes are needed, -1 when malformed (reserved type 0 or 15, or a
 * remaining length that would need a fifth byte). Flags are not checked
 * here; mqtt_decode() does. */
NODISCARD int mqtt_fixed_header_read(const uint8_t *buf, size_t len, struct mqtt_fixed_header *out,
				     struct berr *err);

/* Decodes one whole packet: buf holds exactly header_len + remaining bytes.
 * Checks the fixed-header flags of every type, every string's length and
 * UTF-8, topic-name and topic-filter rules, QoS values, packet identifiers,
 * CONNECT flag consistency, and that nothing trails the packet. */
NODISCARD int mqtt_decode(const uint8_t *buf, size_t len, struct mqtt_packet *out,
			  struct berr *err);

/* Encoders append one packet to out (which keeps its cap); 0 or -1 when the
 * buffer cannot take it or a field is out of range. */
int mqtt_encode_connect(struct strbuf *out, const struct mqtt_connect *c);
int mqtt_encode_connack(struct strbuf *out, bool session_present, uint8_t code);
int mqtt_encode_publish(struct strbuf *out, const struct mqtt_publish *p);
/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK. */
int mqtt_encode_ack(struct strbuf *out, uint8_t type, uint16_t packet_id);
int mqtt_encode_subscribe(struct strbuf *out, uint8_t type, const struct mqtt_subscribe *s);
int mqtt_encode_suback(struct strbuf *out, uint16_t packet_id, const uint8_t *codes, size_t n);
/* PINGREQ, PINGRESP, DISCONNECT. */
int mqtt_encode_empty(struct strbuf *out, uint8_t type);

/* Size on the wire of a PUBLISH with these lengths (for queue accounting). */
size_t mqtt_publish_size(size_t topic_len, uint8_t qos, size_t payload_len);

/* Writes the remaining-length field; returns its byte count (1-4), or 0 when
 * value exceeds MQTT_MAX_REMAINING. */
size_t mqtt_remaining_length_encode(uint32_t value, uint8_t out[4]);

/* UTF-8 as the standard requires of strings: well formed (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF) and no U+0000. */
bool mqtt_utf8_valid(const char *s, size_t len);
/* A topic name to publish to: not empty, valid UTF-8, no wildcards. */
bool mqtt_topic_name_valid(const char *s, size_t len);
/* A topic filter: not empty, valid UTF-8, '+' alone in its level, '#' alone
 * in the last level. */
bool mqtt_topic_filter_valid(const char *s, size_t len);
/* Does the (valid) filter match the (valid) topic name? Wildcards at the
 * first level never match a topic that starts with '$'; "a/#" matches "a". */
bool mqtt_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen);

#endif
