/* sensor: a simulated temperature and humidity sensor. Every interval
 * (desired property "interval_ms", default 1000) it sends a JSON reading on
 * its output "temperature" and reports how many it has sent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "edgeclient.h"

static int interval_ms = 1000;

static void on_desired(struct ec *ec, const char *json, size_t len, void *arg)
{
	double v;
	if (ec_json_number(json, len, "interval_ms", &v) && v >= 100 && v <= 3600000) {
		interval_ms = (int)v;
		printf("sensor: interval set to %d ms\n", interval_ms);
		fflush(stdout);
		char rep[64];
		snprintf(rep, sizeof(rep), "{\"interval_ms\":%d}", interval_ms);
		ec_report(ec, rep);
	}
}

int main(void)
{
	struct ec_handlers h = { .desired = on_desired };
	struct ec *ec = ec_connect(&h);
	srand((unsigned)time(NULL));
	for (unsigned long n = 1;; n++) {
		/* A slow daily-like swing between about 18 and 32 degrees, with noise. */
		double t = 25.0 + 7.0 * sin((double)n / 8.0) + (rand() % 100) / 100.0;
		double hum = 45.0 + 10.0 * cos((double)n / 11.0);
		char body[160];
		snprintf(body, sizeof(body),
			 "{\"machine\":{\"temperature\":%.2f},\"humidity\":%.1f,\"seq\":%lu}", t, hum,
			 n);
		ec_send(ec, "temperature", NULL, body);
		if (n % 10 == 0) {
			char rep[64];
			snprintf(rep, sizeof(rep), "{\"sent\":%lu}", n);
			ec_report(ec, rep);
		}
		ec_poll(ec, interval_ms);
	}
}
