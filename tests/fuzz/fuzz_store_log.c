/* The store's log is outside input after a crash or on a bad disk. Arbitrary
 * bytes, first as one record (every decoder bounds every length; whatever
 * decodes, re-encodes to the same bytes), then as the file of a segment
 * opened by the store over the simulated disk: the scan cuts or skips what
 * does not check, never reads out of bounds, and whatever it keeps can be
 * leased and read. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "hub/store_record.h"
#include "tests/unit/store_simdisk.h"

static void one_record(const uint8_t *data, size_t size)
{
	static struct rec_acked acked[STORE_ACKED_MAX];
	struct rec_header h;
	struct rec_endpoint e;
	struct rec_message m;
	struct rec_ack a = {.acked = acked};
	size_t fl;
	rec_frame_check(data, size, &fl, 0);
	rec_decode_header(data, size, &h);
	rec_decode_endpoint(data, size, &e);
	if (rec_decode_ack(data, size, &a) == 0) {
		size_t n = rec_encode_ack(NULL, &a);
		uint8_t *f = malloc(n);
		rec_encode_ack(f, &a);
		if (n - STORE_FRAME_HEAD > size)
			abort(); /* LEB128 re-encoded is never longer */
		free(f);
	}
	if (rec_decode_message(data, size, &m) == 0) {
		const uint8_t *it = m.targets;
		struct rec_target t;
		while (rec_next_target(&m, &it, &t) > 0)
			if (t.bucket > STORE_PRIORITY_NONE)
				abort();
		struct hub_message msg;
		if (rec_decode_content(&m, &msg) == 0) {
			if (msg.body_len > MSG_MAX_BODY || msg.n_props > MSG_MAX_PROPS)
				abort();
			hub_message_clear(&msg);
		}
	}
}

static void drain(struct store *s, const char *prefix, int64_t now)
{
	struct store_item it;
	for (int i = 0; i < 10000 && store_lease(s, prefix, NULL, NULL, now, &it) == 0; i++) {
		volatile uint8_t sum = 0;
		for (size_t k = 0; k < it.msg->body_len; k++)
			sum ^= it.msg->body[k];
		store_ack(s, it.endpoint, it.seq);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		log_set_level(LOG_LVL_ERROR);
		quiet = true;
	}
	one_record(data, size);
	struct sim_disk *d = malloc(sizeof(*d));
	sim_init(d, 1);
	struct berr err;
	int h = d->io.ops->open(&d->io, "0000000000000001.log", true, &err);
	if (size)
		d->io.ops->pwrite(&d->io, h, data, size, 0, &err);
	d->io.ops->close(&d->io, h);
	sim_settle(d);
	struct store_options o = {.default_ttl_secs = 60, .segment_bytes = 4096};
	struct store *s;
	if (store_open_io(&o, &d->io, false, &s, &err) == 0) {
		int64_t now = (int64_t)time(NULL) * 1000;
		drain(s, "", now);
		store_expire(s, now);
		store_dispatch(s);
		store_close(s);
	}
	sim_free(d);
	free(d);
	return 0;
}
