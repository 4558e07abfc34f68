/* Names of system properties, and what a hub message owns. */
#include "hub/message.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *bag;
	const char *route;
} sys_names[MSG_SYS_COUNT] = {
    [MSG_SYS_MESSAGE_ID] = {"$.mid", "$messageId"},
    [MSG_SYS_CORRELATION_ID] = {"$.cid", "$correlationId"},
    [MSG_SYS_USER_ID] = {"$.uid", "$userId"},
    [MSG_SYS_TO] = {"$.to", "$to"},
    [MSG_SYS_EXPIRY] = {"$.exp", "$absoluteExpiryTime"},
    [MSG_SYS_CONTENT_TYPE] = {"$.ct", "$contentType"},
    [MSG_SYS_CONTENT_ENCODING] = {"$.ce", "$contentEncoding"},
    [MSG_SYS_OUTPUT_NAME] = {"$.on", "$outputName"},
    [MSG_SYS_CONNECTION_DEVICE_ID] = {"$.cdid", "$connectionDeviceId"},
    [MSG_SYS_CONNECTION_MODULE_ID] = {"$.cmid", "$connectionModuleId"},
    [MSG_SYS_CREATION_TIME] = {"$.ctime", "$creationTimeUtc"},
    [MSG_SYS_SCHEMA] = {"$.schema", "$messageSchema"},
    [MSG_SYS_INPUT_NAME] = {NULL, "$inputName"},
};

const char *msg_sys_bag_key(enum msg_sys s)
{
	return (unsigned)s < MSG_SYS_COUNT ? sys_names[s].bag : NULL;
}

const char *msg_sys_route_name(enum msg_sys s)
{
	return (unsigned)s < MSG_SYS_COUNT ? sys_names[s].route : NULL;
}

const char *msg_prop_get(const struct hub_message *m, const char *key)
{
	for (size_t i = 0; i < m->n_props; i++)
		if (m->props[i].key && strcmp(m->props[i].key, key) == 0)
			return m->props[i].value;
	return NULL;
}

void hub_message_clear(struct hub_message *m)
{
	for (int s = 0; s < MSG_SYS_COUNT; s++)
		free(m->sys[s]);
	for (size_t i = 0; i < m->n_props; i++) {
		free(m->props[i].key);
		free(m->props[i].value);
	}
	free(m->props);
	free(m->body);
	memset(m, 0, sizeof(*m));
}

void hub_message_free(struct hub_message *m)
{
	if (!m)
		return;
	hub_message_clear(m);
	free(m);
}
