/* Image references, following the grammar of the distribution project's
 * reference package: [domain/]path[:tag][@digest]. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "registry/registry.h"

#define DOCKER_HUB     "docker.io"
#define DOCKER_HUB_API "registry-1.docker.io"

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool path_component_ok(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_lower_alnum(s[0]))
		return false;
	while (i < n) {
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == n)
			return true;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i == n || !is_lower_alnum(s[i]))
			return false;
	}
	return true;
}

/* host[:port], host being DNS labels or an IPv6 literal in brackets. */
static bool domain_ok(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0)
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || close == s + 1)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		i = (size_t)(close - s) + 1;
	} else {
		/* labels: [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? separated by dots */
		size_t label = 0;
		char prev = '.';
		for (; i < n && s[i] != ':'; i++) {
			char c = s[i];
			if (c == '.') {
				if (label == 0 || prev == '-')
					return false;
				label = 0;
			} else if (isalnum((unsigned char)c) || (c == '-' && label > 0)) {
				label++;
			} else {
				return false;
			}
			prev = c;
		}
		if (label == 0 || prev == '-')
			return false;
	}
	if (i == n)
		return true;
	if (s[i] != ':' || i + 1 == n || n - i - 1 > 5)
		return false;
	for (i++; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static bool tag_ok(const char *s, size_t n)
{
	if (n == 0 || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

int image_ref_parse(const char *s, struct image_ref *ref, struct berr *err)
{
	memset(ref, 0, sizeof(*ref));
	size_t len = strnlen(s, REF_STR_MAX);
	if (len == 0)
		return berr_set(err, 0, "empty image reference");
	if (len >= REF_STR_MAX)
		return berr_set(err, 0, "image reference longer than %d characters",
				REF_STR_MAX - 1);
	for (size_t i = 0; i < len; i++)
		if (!isgraph((unsigned char)s[i]))
			return berr_set(
			    err, 0, "image reference \"%s\": contains a space or control character",
			    s);

	size_t name_len = len;
	const char *at = memchr(s, '@', len);
	if (at) {
		size_t dlen = len - (size_t)(at - s) - 1;
		if (dlen >= DIGEST_STR_MAX)
			return berr_set(err, 0, "image reference \"%s\": malformed digest", s);
		memcpy(ref->digest, at + 1, dlen);
		ref->digest[dlen] = '\0';
		if (!digest_is_valid(ref->digest))
			return berr_set(err, 0,
					"image reference \"%s\": malformed digest (want sha256:<64 "
					"hex digits>)",
					s);
		name_len = (size_t)(at - s);
	}

	/* A tag is after the last ':' that follows the last '/'. */
	const char *name = s;
	const char *slash = NULL;
	for (size_t i = 0; i < name_len; i++)
		if (name[i] == '/')
			slash = name + i;
	const char *colon = NULL;
	for (const char *p = slash ? slash : name; p < name + name_len; p++)
		if (*p == ':')
			colon = p;
	if (colon) {
		size_t tlen = name_len - (size_t)(colon - name) - 1;
		if (!tag_ok(colon + 1, tlen))
			return berr_set(err, 0, "image reference \"%s\": invalid tag", s);
		memcpy(ref->tag, colon + 1, tlen);
		ref->tag[tlen] = '\0';
		name_len = (size_t)(colon - name);
	}
	if (name_len == 0)
		return berr_set(err, 0, "image reference \"%s\": no repository name", s);

	/* The first component is a domain when it looks like one. */
	const char *first_slash = memchr(name, '/', name_len);
	const char *path = name;
	size_t path_len = name_len;
	if (first_slash) {
		size_t dlen = (size_t)(first_slash - name);
		bool is_domain = (dlen == 9 && !memcmp(name, "localhost", 9));
		for (size_t i = 0; i < dlen && !is_domain; i++)
			if (name[i] == '.' || name[i] == ':' || isupper((unsigned char)name[i]))
				is_domain = true;
		if (is_domain) {
			if (!domain_ok(name, dlen) || dlen >= REF_DOMAIN_MAX)
				return berr_set(err, 0,
						"image reference \"%s\": invalid registry host", s);
			memcpy(ref->domain, name, dlen);
			ref->domain[dlen] = '\0';
			path = first_slash + 1;
			path_len = name_len - dlen - 1;
		}
	}
	if (path_len == 0)
		return berr_set(err, 0, "image reference \"%s\": no repository name", s);
	if (!ref->domain[0] || !strcmp(ref->domain, "index.docker.io"))
		snprintf(ref->domain, sizeof(ref->domain), "%s", DOCKER_HUB);

	const char *prefix = "";
	if (!strcmp(ref->domain, DOCKER_HUB) && !memchr(path, '/', path_len))
		prefix = "library/";
	if (strlen(ref->domain) + 1 + strlen(prefix) + path_len > 255)
		return berr_set(err, 0, "image reference \"%s\": name longer than 255 characters",
				s);
	for (size_t i = 0; i < path_len;) {
		const char *c = memchr(path + i, '/', path_len - i);
		size_t clen = c ? (size_t)(c - (path + i)) : path_len - i;
		if (!path_component_ok(path + i, clen))
			return berr_set(err, 0,
					"image reference \"%s\": invalid repository name "
					"(lower-case letters, digits and . _ - only)",
					s);
		i += clen + 1;
		if (c && i == path_len)
			return berr_set(err, 0, "image reference \"%s\": name ends with '/'", s);
	}
	snprintf(ref->path, sizeof(ref->path), "%s%.*s", prefix, (int)path_len, path);
	if (!ref->tag[0] && !ref->digest[0])
		snprintf(ref->tag, sizeof(ref->tag), "latest");
	return 0;
}

void image_ref_format(const struct image_ref *ref, char out[REF_STR_MAX])
{
	snprintf(out, REF_STR_MAX, "%s/%s%s%s%s%s", ref->domain, ref->path, ref->tag[0] ? ":" : "",
		 ref->tag, ref->digest[0] ? "@" : "", ref->digest);
}

const char *image_ref_api_host(const struct image_ref *ref)
{
	return strcmp(ref->domain, DOCKER_HUB) ? ref->domain : DOCKER_HUB_API;
}
