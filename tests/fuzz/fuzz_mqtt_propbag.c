/* Property bags from topics: parsing arbitrary text fails cleanly or gives
 * properties that write back to a bag that parses to the same properties. */
#include <stdlib.h>
#include <string.h>

#include "hub/propbag.h"

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hub_message m = {0}, back = {0};
	struct berr err;
	if (propbag_parse((const char *)data, size, &m, &err) == 0) {
		if (m.n_props > MSG_MAX_PROPS)
			abort();
		struct strbuf sb = STRBUF_INIT;
		if (propbag_write(&m, 0, &sb) < 0)
			abort();
		if (sb.buf && (strchr(sb.buf, '/') || strchr(sb.buf, '#') || strchr(sb.buf, '+')))
			abort();
		if (propbag_parse(sb.buf ? sb.buf : "", sb.len, &back, &err) < 0)
			abort();
		for (int i = 0; i < MSG_SYS_COUNT; i++)
			if (!same(m.sys[i], back.sys[i]))
				abort();
		if (back.n_props != m.n_props)
			abort();
		for (size_t i = 0; i < m.n_props; i++)
			if (strcmp(m.props[i].key, back.props[i].key) ||
			    strcmp(m.props[i].value, back.props[i].value))
				abort();
		strbuf_release(&sb);
	}
	hub_message_clear(&m);
	hub_message_clear(&back);
	return 0;
}
