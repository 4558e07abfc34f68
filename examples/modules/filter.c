/* filter: receives readings on its input "readings", forwards those hotter
 * than a threshold on its output "alerts" (with application property
 * alert=high), and counts them in its reported properties. The threshold
 * comes from the desired property "threshold" or the direct method
 * "setThreshold" ({"threshold": 28}). */
#include <stdio.h>
#include <string.h>

#include "edgeclient.h"

static double threshold = 27.0;
static unsigned long seen, forwarded;

static void report(struct ec *ec)
{
	char rep[128];
	snprintf(rep, sizeof(rep), "{\"threshold\":%.2f,\"seen\":%lu,\"forwarded\":%lu}", threshold,
		 seen, forwarded);
	ec_report(ec, rep);
}

static void on_input(struct ec *ec, const char *input, const char *props, const char *body,
		     size_t len, void *arg)
{
	double t;
	seen++;
	if (!ec_json_number(body, len, "temperature", &t))
		return;
	if (t > threshold) {
		forwarded++;
		printf("filter: %.2f > %.2f on %s: alert sent upstream\n", t, threshold, input);
		fflush(stdout);
		ec_send(ec, "alerts", "alert=high", body);
	}
	if (seen % 10 == 0)
		report(ec);
}

static void on_desired(struct ec *ec, const char *json, size_t len, void *arg)
{
	double v;
	if (ec_json_number(json, len, "threshold", &v)) {
		threshold = v;
		printf("filter: threshold %.2f (desired properties)\n", threshold);
		fflush(stdout);
		report(ec);
	}
}

static void on_method(struct ec *ec, const char *name, const char *rid, const char *json,
		      size_t len, void *arg)
{
	double v;
	if (strcmp(name, "setThreshold") || !ec_json_number(json, len, "threshold", &v)) {
		ec_method_reply(ec, rid, 400, "{\"error\":\"expected setThreshold {\\\"threshold\\\": N}\"}");
		return;
	}
	threshold = v;
	printf("filter: threshold %.2f (direct method)\n", threshold);
	fflush(stdout);
	char reply[64];
	snprintf(reply, sizeof(reply), "{\"threshold\":%.2f}", threshold);
	ec_method_reply(ec, rid, 200, reply);
	report(ec);
}

int main(void)
{
	struct ec_handlers h = { .input = on_input, .desired = on_desired, .method = on_method };
	struct ec *ec = ec_connect(&h);
	for (;;)
		ec_poll(ec, 60000);
}
