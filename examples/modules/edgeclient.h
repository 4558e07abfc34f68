/* A small IoT Edge module client for berth's hub: MQTT 3.1.1 over the Unix
 * socket the runtime mounts at /run/berth/hub.sock, with the module's
 * identity and SAS token from the environment the runtime injects
 * (IOTEDGE_DEVICEID, IOTEDGE_MODULEID, IOTEDGE_IOTHUBHOSTNAME,
 * BERTH_HUB_SOCKET, BERTH_TOKEN_FILE). It speaks the edgeHub topics:
 * outputs, inputs, twin GET/PATCH and direct methods. Single-threaded and
 * blocking with poll(), so a module is a plain loop. */
#ifndef BERTH_EXAMPLE_EDGECLIENT_H
#define BERTH_EXAMPLE_EDGECLIENT_H

#include <stddef.h>

struct ec;

struct ec_handlers {
	/* A message on one of the module's inputs; props is the raw property bag. */
	void (*input)(struct ec *ec, const char *input, const char *props, const char *body,
		      size_t len, void *arg);
	/* A desired-properties patch (JSON), or the full desired section after
	 * ec_get_twin(). */
	void (*desired)(struct ec *ec, const char *json, size_t len, void *arg);
	/* A direct method call; answer with ec_method_reply(ec, rid, ...). */
	void (*method)(struct ec *ec, const char *name, const char *rid, const char *json,
		       size_t len, void *arg);
	void *arg;
};

/* Connects with the identity and token the runtime provides; retries until
 * the hub answers. Exits the process with a message on a fatal error. */
struct ec *ec_connect(const struct ec_handlers *h);
/* Sends a message on an output; props is an extra property bag
 * ("k=v&k2=v2", URL-encoded) or NULL. JSON bodies are marked as such. */
int ec_send(struct ec *ec, const char *output, const char *props, const char *json);
/* Asks for the twin; the desired section arrives through the desired handler. */
int ec_get_twin(struct ec *ec);
/* Sends a reported-properties patch (JSON object). */
int ec_report(struct ec *ec, const char *json);
int ec_method_reply(struct ec *ec, const char *rid, int status, const char *json);
/* Handles traffic for up to timeout_ms; keeps the connection alive and
 * reconnects when the hub restarts. */
void ec_poll(struct ec *ec, int timeout_ms);
const char *ec_module_id(struct ec *ec);

/* Finds "key": <number> in a flat JSON text; returns 1 and sets *out when found. */
int ec_json_number(const char *json, size_t len, const char *key, double *out);

#endif
