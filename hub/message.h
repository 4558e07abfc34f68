/* Private to hub/: a message as the hub routes and stores it: system
 * properties, application properties and an opaque body, plus what its route
 * decided (priority, TTL). */
#ifndef BERTH_HUB_MESSAGE_H
#define BERTH_HUB_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#define MSG_MAX_BODY  (256 * 1024) /* IoT Hub's message size limit */
#define MSG_MAX_PROPS 64

/* System properties; the property-bag key and the route-language name of each
 * are in msg_sys_bag_key() and msg_sys_route_name(). */
enum msg_sys {
	MSG_SYS_MESSAGE_ID,	      /* $.mid   $messageId */
	MSG_SYS_CORRELATION_ID,	      /* $.cid   $correlationId */
	MSG_SYS_USER_ID,	      /* $.uid   $userId */
	MSG_SYS_TO,		      /* $.to    $to */
	MSG_SYS_EXPIRY,		      /* $.exp   $absoluteExpiryTime */
	MSG_SYS_CONTENT_TYPE,	      /* $.ct    $contentType */
	MSG_SYS_CONTENT_ENCODING,     /* $.ce    $contentEncoding */
	MSG_SYS_OUTPUT_NAME,	      /* $.on    $outputName */
	MSG_SYS_CONNECTION_DEVICE_ID, /* $.cdid  $connectionDeviceId */
	MSG_SYS_CONNECTION_MODULE_ID, /* $.cmid  $connectionModuleId */
	MSG_SYS_CREATION_TIME,	      /* $.ctime $creationTimeUtc */
	MSG_SYS_SCHEMA,		      /* $.schema $messageSchema */
	MSG_SYS_INPUT_NAME,	      /* (delivery only) the input a message arrives on */
	MSG_SYS_COUNT
};

struct msg_prop {
	char *key;
	char *value;
};

struct hub_message {
	char *sys[MSG_SYS_COUNT]; /* NULL when unset */
	struct msg_prop *props;	  /* application properties, in arrival order */
	size_t n_props;
	unsigned char *body;
	size_t body_len;
	/* Set by routing, kept with the message by the store. */
	uint8_t priority; /* 0 (highest) .. 9 */
	uint32_t ttl_secs;
	int64_t enqueued_ms; /* Unix time in ms when the hub accepted it */
};

/* "$.mid" ..., or NULL for MSG_SYS_INPUT_NAME (not carried in property bags). */
const char *msg_sys_bag_key(enum msg_sys s);
/* "$messageId" ... */
const char *msg_sys_route_name(enum msg_sys s);
/* The application property named key, or NULL. */
const char *msg_prop_get(const struct hub_message *m, const char *key);
/* Frees what the message owns (every string, the props array, the body)
 * and leaves it empty; for messages that are not themselves malloc'd. */
void hub_message_clear(struct hub_message *m);
/* hub_message_clear(), then frees m itself (NULL is allowed). */
void hub_message_free(struct hub_message *m);

#endif
