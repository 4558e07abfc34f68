/* libmosquitto, loaded on first use (see common/lazy.h). */
#include <mosquitto.h>

#include "common/lazy.h"

LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_lib_version, (int *major, int *minor, int *revision),
	(major, minor, revision))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_lib_init, (void), ())
LAZY_FN(LAZY_MOSQUITTO, struct mosquitto *, mosquitto_new,
	(const char *id, bool clean_session, void *obj), (id, clean_session, obj))
LAZY_VOID_FN(LAZY_MOSQUITTO, mosquitto_destroy, (struct mosquitto * mosq), (mosq))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_username_pw_set,
	(struct mosquitto * mosq, const char *username, const char *password),
	(mosq, username, password))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_int_option,
	(struct mosquitto * mosq, enum mosq_opt_t option, int value), (mosq, option, value))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_void_option,
	(struct mosquitto * mosq, enum mosq_opt_t option, void *value), (mosq, option, value))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_connect_async,
	(struct mosquitto * mosq, const char *host, int port, int keepalive),
	(mosq, host, port, keepalive))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_disconnect, (struct mosquitto * mosq), (mosq))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_publish,
	(struct mosquitto * mosq, int *mid, const char *topic, int payloadlen, const void *payload,
	 int qos, bool retain),
	(mosq, mid, topic, payloadlen, payload, qos, retain))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_loop_read, (struct mosquitto * mosq, int max_packets),
	(mosq, max_packets))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_loop_write, (struct mosquitto * mosq, int max_packets),
	(mosq, max_packets))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_loop_misc, (struct mosquitto * mosq), (mosq))
LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_socket, (struct mosquitto * mosq), (mosq))
LAZY_FN(LAZY_MOSQUITTO, bool, mosquitto_want_write, (struct mosquitto * mosq), (mosq))
LAZY_VOID_FN(LAZY_MOSQUITTO, mosquitto_connect_callback_set,
	     (struct mosquitto * mosq, void (*cb)(struct mosquitto *, void *, int)), (mosq, cb))
LAZY_VOID_FN(LAZY_MOSQUITTO, mosquitto_disconnect_callback_set,
	     (struct mosquitto * mosq, void (*cb)(struct mosquitto *, void *, int)), (mosq, cb))
LAZY_VOID_FN(LAZY_MOSQUITTO, mosquitto_publish_callback_set,
	     (struct mosquitto * mosq, void (*cb)(struct mosquitto *, void *, int)), (mosq, cb))
LAZY_FN(LAZY_MOSQUITTO, const char *, mosquitto_strerror, (int mosq_errno), (mosq_errno))
LAZY_FN(LAZY_MOSQUITTO, const char *, mosquitto_connack_string, (int connack_code), (connack_code))
LAZY_VOID_FN(LAZY_MOSQUITTO, mosquitto_log_callback_set,
	     (struct mosquitto * mosq, void (*cb)(struct mosquitto *, void *, int, const char *)),
	     (mosq, cb))
