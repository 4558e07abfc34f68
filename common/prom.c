#include "common/prom.h"

static int escaped(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		int rc = *s == '\\'   ? strbuf_puts(out, "\\\\")
			 : *s == '"'  ? strbuf_puts(out, "\\\"")
			 : *s == '\n' ? strbuf_puts(out, "\\n")
				      : strbuf_append(out, s, 1);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int prom_head(struct strbuf *out, const char *name, const char *type, const char *help)
{
	return strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int prom_series(struct strbuf *out, const char *name, const struct prom_label *labels, size_t n,
		double value)
{
	if (strbuf_puts(out, name) < 0 || (n && strbuf_puts(out, "{") < 0))
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *v = labels[i].value ? labels[i].value : "";
		if (strbuf_printf(out, "%s%s=\"", i ? "," : "", labels[i].name) < 0 ||
		    (labels[i].prefix && *v && escaped(out, labels[i].prefix) < 0) ||
		    escaped(out, v) < 0 || strbuf_puts(out, "\"") < 0)
			return -1;
	}
	return strbuf_printf(out, "%s %.17g\n", n ? "}" : "", value);
}
