/* Who is connecting: client id "<device>/<module>", the username edgeHub
 * expects, a SAS token signed with the module's key, and, on the Unix
 * socket, the peer process's cgroup, which must be that module's instance
 * (or the host). Every refusal is logged with the reason; the client only
 * sees the CONNACK code:
 *   2  the client id is not <device>/<module> of this device
 *   4  no or malformed user name, no password
 *   5  unknown module, a token that does not verify (wrong key, resource or
 *      expired: IoT Hub and edgeHub answer 5 here too), or a process of
 *      another instance presenting the token. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cgroup_proc.h"
#include "common/log.h"
#include "common/sas.h"
#include "hub/broker.h"

#define USERNAME_MAX 1024

/* "api-version" must be there, with a value; other parameters are ignored. */
static bool query_has_api_version(const char *q, size_t len)
{
	size_t i = 0;
	while (i < len) {
		const char *amp = memchr(q + i, '&', len - i);
		size_t end = amp ? (size_t)(amp - q) : len;
		if (end - i > 12 && !memcmp(q + i, "api-version=", 12))
			return true;
		i = end + 1;
	}
	return false;
}

int auth_parse_username(const char *u, size_t len, char *device, char *module, size_t cap)
{
	if (!u || len == 0 || len > USERNAME_MAX || memchr(u, '\0', len))
		return -1;
	/* "<host>/<device>/<module>/?<query>", or "<host>/<device>/<module>/<query>" */
	size_t path_len;
	const char *q;
	const char *mark = memmem(u, len, "/?", 2);
	if (mark) {
		path_len = (size_t)(mark - u);
		q = mark + 2;
	} else {
		const char *slash = memrchr(u, '/', len);
		if (!slash)
			return -1;
		path_len = (size_t)(slash - u);
		q = slash + 1;
	}
	size_t qlen = len - (size_t)(q - u);
	if (!query_has_api_version(q, qlen))
		return -1;
	const char *s1 = memchr(u, '/', path_len);
	const char *s2 = s1 ? memchr(s1 + 1, '/', path_len - (size_t)(s1 + 1 - u)) : NULL;
	if (!s1 || !s2 || s1 == u || memchr(s2 + 1, '/', path_len - (size_t)(s2 + 1 - u)))
		return -1;
	if (!hub_name_copy(s1 + 1, (size_t)(s2 - s1 - 1), device, cap) ||
	    !hub_name_copy(s2 + 1, path_len - (size_t)(s2 + 1 - u), module, cap))
		return -1;
	return 0;
}

static uint8_t refuse(struct client *c, uint8_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static uint8_t refuse(struct client *c, uint8_t code, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s: CONNECT refused (code %u): %s", c->label, code, why);
	return code;
}

uint8_t auth_check(struct client *c, const struct mqtt_connect *p, char *module, size_t cap)
{
	const struct hub_config *cfg = c->b->cfg;
	char id[2 * HUB_NAME_MAX + 2];
	if (p->client_id.len == 0 || p->client_id.len >= sizeof(id))
		return refuse(c, MQTT_CONNACK_ID_REJECTED, "client id must be %s/<module>",
			      cfg->device_id);
	memcpy(id, p->client_id.p, p->client_id.len);
	id[p->client_id.len] = '\0';
	char *slash = strchr(id, '/');
	char device[HUB_NAME_MAX + 1];
	if (!slash || !hub_name_copy(id, (size_t)(slash - id), device, sizeof(device)) ||
	    strcmp(device, cfg->device_id) ||
	    !hub_name_copy(slash + 1, strlen(slash + 1), module, cap))
		return refuse(c, MQTT_CONNACK_ID_REJECTED,
			      "client id \"%.200s\" is not %s/<module>", id, cfg->device_id);
	client_set_identity(c, id);
	const struct hub_module *mod = hub_config_module(cfg, module);
	if (!mod)
		return refuse(c, MQTT_CONNACK_NOT_AUTHORIZED, "module %s is not deployed", module);
	if (!p->has_username)
		return refuse(c, MQTT_CONNACK_BAD_CREDENTIALS, "no user name");
	char udev[HUB_NAME_MAX + 1], umod[HUB_NAME_MAX + 1];
	if (auth_parse_username(p->username.p, p->username.len, udev, umod, sizeof(udev)) < 0)
		return refuse(c, MQTT_CONNACK_BAD_CREDENTIALS,
			      "user name is not <hub>/%s/<module>/?api-version=...",
			      cfg->device_id);
	if (strcmp(udev, cfg->device_id) || strcmp(umod, module))
		return refuse(c, MQTT_CONNACK_BAD_CREDENTIALS,
			      "user name names %s, not the client id's module %s", umod, module);
	if (!p->has_password || p->password_len == 0)
		return refuse(c, MQTT_CONNACK_BAD_CREDENTIALS, "no SAS token as password");
	char token[SAS_TOKEN_MAX + 1];
	if (p->password_len > SAS_TOKEN_MAX || memchr(p->password, '\0', p->password_len))
		return refuse(c, MQTT_CONNACK_NOT_AUTHORIZED, "password is not a SAS token");
	memcpy(token, p->password, p->password_len);
	token[p->password_len] = '\0';
	char resource[SAS_RESOURCE_MAX];
	struct berr err;
	if (sas_resource(cfg->hostname, cfg->device_id, module, resource, sizeof(resource)) < 0)
		return refuse(c, MQTT_CONNACK_NOT_AUTHORIZED, "resource name too long");
	if (sas_token_verify(token, mod->key, resource, c->b->now_ms / 1000, &err) < 0)
		return refuse(c, MQTT_CONNACK_NOT_AUTHORIZED, "token refused: %s", err.msg);
	if (c->tcp)
		return MQTT_CONNACK_ACCEPTED;
	char instance[HUB_NAME_MAX + 1];
	int rc = c->pidfd >= 0
		     ? cgroup_instance_of_pidfd(c->pidfd, instance, sizeof(instance), &err)
		     : cgroup_instance_of_pid(c->pid, instance, sizeof(instance), &err);
	if (rc < 0)
		return refuse(c, MQTT_CONNACK_NOT_AUTHORIZED,
			      "cannot tell which instance the peer belongs to: %s", err.msg);
	if (rc == 0 && strcmp(instance, module))
		return refuse(c, MQTT_CONNACK_NOT_AUTHORIZED,
			      "a process of instance %s presented module %s's token", instance,
			      module);
	return MQTT_CONNACK_ACCEPTED;
}
