/* Which credentials and transport settings a pull uses: the daemon
 * config's "registries" (by host) and a deployment's registryCredentials
 * (by address), the caller's own settings first. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "oci/oci.h"
#include "registry/registry.h"

/* "https://myacr.azurecr.io/" -> "myacr.azurecr.io" */
static bool address_matches(const char *address, const struct image_ref *r)
{
	const char *a = address;
	if (!strncasecmp(a, "https://", 8))
		a += 8;
	else if (!strncasecmp(a, "http://", 7))
		a += 7;
	size_t n = strcspn(a, "/");
	const char *hosts[] = {r->domain, image_ref_api_host(r)};
	for (size_t i = 0; i < 2; i++)
		if (strlen(hosts[i]) == n && !strncasecmp(a, hosts[i], n))
			return true;
	/* Docker Hub goes by several names. */
	if (!strcmp(r->domain, "docker.io") &&
	    ((n == 15 && !strncasecmp(a, "index.docker.io", n)) ||
	     (n == 14 && !strncasecmp(a, "hub.docker.com", n))))
		return true;
	return false;
}

static int from_registries(yajl_val regs, const struct image_ref *r, struct oci_pull_opts *opts,
			   struct berr *err)
{
	yajl_val e = json_get(regs, r->domain);
	if (!e)
		e = json_get(regs, image_ref_api_host(r));
	if (!e)
		return 0;
	char path[REF_DOMAIN_MAX + 16];
	snprintf(path, sizeof(path), "registries.%s", r->domain);
	if (!YAJL_IS_OBJECT(e))
		return berr_set(err, 0, "%s: expected an object", path);
	bool insecure = false;
	const char *user = NULL, *pass = NULL, *ca = NULL;
	if (json_get_bool(e, "insecure", path, false, &insecure, err) < 0 ||
	    json_get_str(e, "username", path, false, &user, err) < 0 ||
	    json_get_str(e, "password", path, false, &pass, err) < 0 ||
	    json_get_str(e, "ca_file", path, false, &ca, err) < 0)
		return -1;
	opts->insecure = opts->insecure || insecure;
	if (user && !opts->username) {
		opts->username = user;
		opts->password = pass ? pass : "";
	}
	if (ca && !opts->ca_file)
		opts->ca_file = ca;
	return 0;
}

static int from_deployment(yajl_val creds, const struct image_ref *r, struct oci_pull_opts *opts,
			   struct berr *err)
{
	if (!YAJL_IS_OBJECT(creds))
		return berr_set(err, 0, "registryCredentials: expected an object");
	for (size_t i = 0; i < creds->u.object.len; i++) {
		yajl_val e = creds->u.object.values[i];
		char path[256];
		snprintf(path, sizeof(path), "registryCredentials.%.200s", creds->u.object.keys[i]);
		const char *address = NULL, *user = NULL, *pass = NULL;
		if (json_expect_object(e, path, err) < 0 ||
		    json_get_str(e, "address", path, true, &address, err) < 0 ||
		    json_get_str(e, "username", path, false, &user, err) < 0 ||
		    json_get_str(e, "password", path, false, &pass, err) < 0)
			return -1;
		if (!address_matches(address, r) || !user)
			continue;
		if (!opts->username) {
			opts->username = user;
			opts->password = pass ? pass : "";
		}
		return 0;
	}
	return 0;
}

int oci_pull_opts_for(const char *ref, yajl_val registries, yajl_val registry_credentials,
		      struct oci_pull_opts *opts, struct berr *err)
{
	struct image_ref r;
	if (image_ref_parse(ref, &r, err) < 0)
		return -1;
	if (registries && !YAJL_IS_NULL(registries)) {
		if (!YAJL_IS_OBJECT(registries))
			return berr_set(err, 0, "registries: expected an object");
		if (from_registries(registries, &r, opts, err) < 0)
			return -1;
	}
	if (registry_credentials && !YAJL_IS_NULL(registry_credentials) &&
	    from_deployment(registry_credentials, &r, opts, err) < 0)
		return -1;
	return 0;
}
