#include "shim/user.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 4096
#define FIELDS_MAX   8

/* Parses a decimal id; ids are 32-bit and (uid_t)-1 is never a valid one. */
static bool parse_id(const char *s, size_t len, uint32_t *out)
{
	if (len == 0 || len > 10)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

struct line {
	const char *f[FIELDS_MAX];
	size_t len[FIELDS_MAX];
	int n;
};

/* Splits the next line of a colon-separated file; *pos advances past it.
 * Returns false at the end. Over-long lines are reported with n = 0. */
static bool next_line(const char *buf, size_t *pos, struct line *l)
{
	if (!buf || !buf[*pos])
		return false;
	const char *start = buf + *pos;
	const char *nl = strchr(start, '\n');
	size_t len = nl ? (size_t)(nl - start) : strlen(start);
	*pos += len + (nl ? 1 : 0);
	l->n = 0;
	if (len > LINE_MAX_LEN || len == 0 || start[0] == '#')
		return true;
	const char *p = start, *end = start + len;
	while (l->n < FIELDS_MAX) {
		const char *c = memchr(p, ':', (size_t)(end - p));
		const char *fe = c ? c : end;
		l->f[l->n] = p;
		l->len[l->n] = (size_t)(fe - p);
		l->n++;
		if (!c)
			break;
		p = c + 1;
	}
	return true;
}

static bool field_is(const struct line *l, int i, const char *s)
{
	return i < l->n && l->len[i] == strlen(s) && !memcmp(l->f[i], s, l->len[i]);
}

struct pw_entry {
	char name[256];
	uint32_t uid, gid;
	char home[256];
	bool found;
};

/* name:passwd:uid:gid:gecos:home:shell */
static void passwd_find(const char *passwd, const char *name, const uint32_t *uid,
			struct pw_entry *e)
{
	size_t pos = 0;
	struct line l;
	e->found = false;
	while (next_line(passwd, &pos, &l)) {
		uint32_t u, g;
		if (l.n < 7 || !parse_id(l.f[2], l.len[2], &u) || !parse_id(l.f[3], l.len[3], &g))
			continue;
		if (l.len[0] == 0 || l.len[0] >= sizeof(e->name) || l.len[5] >= sizeof(e->home))
			continue;
		if (name ? !field_is(&l, 0, name) : u != *uid)
			continue;
		memcpy(e->name, l.f[0], l.len[0]);
		e->name[l.len[0]] = '\0';
		memcpy(e->home, l.f[5], l.len[5]);
		e->home[l.len[5]] = '\0';
		e->uid = u;
		e->gid = g;
		e->found = true;
		return;
	}
}

/* name:passwd:gid:member,member */
static bool group_find(const char *group, const char *name, uint32_t *gid)
{
	size_t pos = 0;
	struct line l;
	while (next_line(group, &pos, &l)) {
		uint32_t g;
		if (l.n < 4 || !parse_id(l.f[2], l.len[2], &g))
			continue;
		if (field_is(&l, 0, name)) {
			*gid = g;
			return true;
		}
	}
	return false;
}

static bool has_member(const struct line *l, const char *user)
{
	size_t ulen = strlen(user);
	const char *p = l->f[3], *end = l->f[3] + l->len[3];
	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *me = c ? c : end;
		if ((size_t)(me - p) == ulen && !memcmp(p, user, ulen))
			return true;
		p = me + 1;
	}
	return false;
}

static int supplementary_groups(const char *group, const char *user, struct user_ids *out,
				struct berr *err)
{
	size_t pos = 0;
	struct line l;
	while (next_line(group, &pos, &l)) {
		uint32_t g;
		if (l.n < 4 || !parse_id(l.f[2], l.len[2], &g) || !has_member(&l, user))
			continue;
		bool dup = false;
		for (size_t i = 0; i < out->n_groups && !dup; i++)
			dup = out->groups[i] == g;
		if (dup)
			continue;
		if (out->n_groups == USER_GROUPS_MAX)
			return berr_set(err, 0, "user %s is in more than %d groups", user,
					USER_GROUPS_MAX);
		out->groups[out->n_groups++] = g;
	}
	return 0;
}

int user_resolve(const char *spec, const char *passwd, const char *group, struct user_ids *out,
		 struct berr *err)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->home, sizeof(out->home), "/");
	if (!spec || !spec[0])
		spec = "0";
	if (strlen(spec) > 512)
		return berr_set(err, 0, "user: longer than 512 bytes");
	char buf[513];
	snprintf(buf, sizeof(buf), "%s", spec);
	char *grp = strchr(buf, ':');
	if (grp)
		*grp++ = '\0';
	if (!buf[0] || (grp && !grp[0]))
		return berr_set(err, 0, "user \"%s\": expected USER[:GROUP]", spec);

	struct pw_entry pw;
	uint32_t id;
	if (parse_id(buf, strlen(buf), &id)) {
		passwd_find(passwd, NULL, &id, &pw);
		out->uid = id;
		out->gid = pw.found ? pw.gid : 0;
	} else {
		passwd_find(passwd, buf, NULL, &pw);
		if (!pw.found)
			return berr_set(err, 0, "user \"%s\" is not in the image's /etc/passwd",
					buf);
		out->uid = pw.uid;
		out->gid = pw.gid;
	}
	if (pw.found && pw.home[0])
		snprintf(out->home, sizeof(out->home), "%s", pw.home);

	if (grp) {
		if (parse_id(grp, strlen(grp), &id))
			out->gid = id;
		else if (!group_find(group, grp, &out->gid))
			return berr_set(err, 0, "group \"%s\" is not in the image's /etc/group",
					grp);
	}
	/* As initgroups(3): the primary group, then every group listing the
	 * user. With an explicit group, as runc, that group alone. */
	if (!grp) {
		out->groups[out->n_groups++] = out->gid;
		if (pw.found && supplementary_groups(group, pw.name, out, err) < 0)
			return -1;
	}
	return 0;
}
