#include "common/mountinfo.h"

#include <stddef.h>
#include <string.h>

void mountinfo_unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

void mountinfo_filter_options(const char *list, bool (*keep)(const char *item, size_t len),
			      char *out, size_t cap)
{
	size_t n = 0;
	if (cap)
		out[0] = '\0';
	for (const char *w = list; *w;) {
		size_t len = strcspn(w, ",");
		if (len && keep(w, len) && n + len + 2 <= cap) {
			if (n)
				out[n++] = ',';
			memcpy(out + n, w, len);
			n += len;
			out[n] = '\0';
		}
		w += len + (w[len] == ',');
	}
}

int mountinfo_parse_line(char *line, struct mountinfo_entry *e)
{
	char *f[6] = {NULL}, *save = NULL;
	char *tok = strtok_r(line, " ", &save);
	for (size_t i = 0; i < 6; i++, tok = strtok_r(NULL, " ", &save)) {
		if (!tok)
			return -1;
		f[i] = tok;
	}
	/* Optional fields ("shared:1", ...) run up to a lone "-". */
	while (tok && strcmp(tok, "-"))
		tok = strtok_r(NULL, " ", &save);
	if (!tok)
		return -1;
	e->fstype = strtok_r(NULL, " ", &save);
	e->source = e->fstype ? strtok_r(NULL, " ", &save) : NULL;
	e->super_options = e->source ? strtok_r(NULL, " ", &save) : NULL;
	if (!e->super_options)
		return -1;
	e->root = f[3];
	e->mount_point = f[4];
	e->options = f[5];
	mountinfo_unescape(e->root);
	mountinfo_unescape(e->mount_point);
	return 0;
}
