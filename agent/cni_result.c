/* A CNI plugin's answer, read as outside input: a result (interfaces, ips,
 * routes, dns) or an error ({"code", "msg", "details"}). Every list and
 * string is bounded; indexes are checked against the lists they point
 * into. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cni.h"
#include "common/cleanup.h"
#include "common/json.h"

#define CNI_LIST_MAX   64
#define CNI_VALUES_MAX 4096
#define CNI_STR_MAX    4096

static const char *member_str(yajl_val obj, const char *key, size_t max)
{
	const char *s = json_str(json_get(obj, key));
	return s && strlen(s) <= max ? s : NULL;
}

static int list_of(yajl_val top, const char *key, yajl_val *out, struct berr *err)
{
	yajl_val v = json_get(top, key);
	*out = NULL;
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v))
		return berr_set(err, 0, "CNI result: %s: expected an array", key);
	if (v->u.array.len > CNI_LIST_MAX)
		return berr_set(err, 0, "CNI result: %s: more than %d entries", key, CNI_LIST_MAX);
	for (size_t i = 0; i < v->u.array.len; i++)
		if (!YAJL_IS_OBJECT(v->u.array.values[i]))
			return berr_set(err, 0, "CNI result: %s[%zu]: expected an object", key, i);
	*out = v;
	return 0;
}

/* "10.88.0.5/16" into its parts; false for anything else (IPv6 included). */
static bool ipv4_cidr(const char *s, char addr[INET_ADDRSTRLEN], unsigned *prefix)
{
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= INET_ADDRSTRLEN || !slash[1] ||
	    strlen(slash + 1) > 2 || strspn(slash + 1, "0123456789") != strlen(slash + 1))
		return false;
	char a[INET_ADDRSTRLEN];
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	struct in_addr in;
	int p = atoi(slash + 1);
	if (inet_pton(AF_INET, a, &in) != 1 || p < 1 || p > 32)
		return false;
	inet_ntop(AF_INET, &in, addr, INET_ADDRSTRLEN);
	*prefix = (unsigned)p;
	return true;
}

static void error_text(yajl_val top, char *out, size_t cap)
{
	const char *msg = member_str(top, "msg", CNI_STR_MAX);
	const char *details = member_str(top, "details", CNI_STR_MAX);
	yajl_val code = json_get(top, "code");
	if (!msg) {
		snprintf(out, cap, "%s", "");
		return;
	}
	snprintf(out, cap, "%.300s%s%.300s (code %lld)", msg, details && *details ? ": " : "",
		 details ? details : "", YAJL_IS_INTEGER(code) ? YAJL_GET_INTEGER(code) : 0LL);
}

void cni_error_message(const char *buf, size_t len, char *out, size_t cap)
{
	cleanup_yajl yajl_val top = NULL;
	struct berr ignored;
	if (cap)
		out[0] = '\0';
	if (json_parse_limited(buf, len, CNI_RESULT_MAX, CNI_VALUES_MAX, "CNI error", &top,
			       &ignored) < 0 ||
	    !YAJL_IS_OBJECT(top) || !json_get(top, "code"))
		return;
	error_text(top, out, cap);
}

int cni_result_parse(const char *buf, size_t len, struct cni_result *out, struct berr *err)
{
	cleanup_yajl yajl_val top = NULL;
	if (json_parse_limited(buf, len, CNI_RESULT_MAX, CNI_VALUES_MAX, "CNI result", &top, err) <
	    0)
		return -1;
	if (!YAJL_IS_OBJECT(top))
		return berr_set(err, 0, "CNI result: expected an object");
	if (json_get(top, "code")) {
		char msg[700];
		error_text(top, msg, sizeof(msg));
		return berr_set(err, 0, "CNI error: %s", msg[0] ? msg : "(no message)");
	}
	if (!member_str(top, "cniVersion", 16))
		return berr_set(err, 0, "CNI result: cniVersion: expected a version string");
	yajl_val ifaces, ips;
	if (list_of(top, "interfaces", &ifaces, err) < 0 || list_of(top, "ips", &ips, err) < 0)
		return -1;
	size_t n_ifaces = ifaces ? ifaces->u.array.len : 0;
	struct cni_result best, first;
	bool have_best = false, have_first = false;
	for (size_t i = 0; ips && i < ips->u.array.len; i++) {
		yajl_val ip = ips->u.array.values[i];
		const char *address = member_str(ip, "address", 64);
		if (!address)
			return berr_set(err, 0, "CNI result: ips[%zu].address: expected a string",
					i);
		struct cni_result r;
		memset(&r, 0, sizeof(r));
		if (!ipv4_cidr(address, r.address, &r.prefix))
			continue; /* IPv6, which berth's networks do not use */
		const char *gw = member_str(ip, "gateway", 64);
		struct in_addr g;
		if (gw && inet_pton(AF_INET, gw, &g) == 1)
			inet_ntop(AF_INET, &g, r.gateway, sizeof(r.gateway));
		yajl_val idx = json_get(ip, "interface");
		bool in_sandbox = false;
		if (idx) {
			if (!YAJL_IS_INTEGER(idx) || YAJL_GET_INTEGER(idx) < 0 ||
			    (size_t)YAJL_GET_INTEGER(idx) >= n_ifaces)
				return berr_set(err, 0,
						"CNI result: ips[%zu].interface: not an index of "
						"interfaces",
						i);
			yajl_val iface = ifaces->u.array.values[YAJL_GET_INTEGER(idx)];
			const char *name = member_str(iface, "name", IF_NAMESIZE - 1);
			const char *mac = member_str(iface, "mac", sizeof(r.mac) - 1);
			const char *sandbox = member_str(iface, "sandbox", CNI_STR_MAX);
			snprintf(r.ifname, sizeof(r.ifname), "%s", name ? name : "");
			snprintf(r.mac, sizeof(r.mac), "%s", mac ? mac : "");
			in_sandbox = sandbox && *sandbox;
		}
		if (in_sandbox && !have_best) {
			best = r;
			have_best = true;
		}
		if (!have_first) {
			first = r;
			have_first = true;
		}
	}
	if (!have_best && !have_first)
		return berr_set(err, 0, "CNI result: no IPv4 address");
	*out = have_best ? best : first;
	return 0;
}
