/* The request `berth exec` sends to a shim, and a Healthcheck as an image
 * or createOptions carries it, against hostile bytes; what parses must
 * come back unchanged through its JSON form. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/healthcheck.h"
#include "shim/exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct exec_request r;
	struct berr err;
	if (exec_request_parse((const char *)data, size, &r, &err) == 0) {
		char *json = NULL;
		size_t len = 0;
		if (exec_request_json(&r, &json, &len, &err) == 0) {
			struct exec_request back;
			if (exec_request_parse(json, len, &back, &err) != 0 ||
			    strcmp(back.args[0], r.args[0]))
				abort();
			exec_request_clear(&back);
			free(json);
		}
		exec_request_clear(&r);
	}
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct healthcheck h;
	if (healthcheck_parse_text(text, "fuzz", &h, &err) == 0) {
		struct instance_health out;
		if (healthcheck_resolve(&h, NULL, &out, &err) == 0) {
			if (out.test && (!out.test[0] || out.interval_ms < 1 || out.retries < 1))
				abort();
			strv_free(out.test);
		}
		healthcheck_clear(&h);
	}
	free(text);
	return 0;
}
