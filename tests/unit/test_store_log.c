/* The durable store's log over a simulated disk: records and checksums,
 * what survives a reopen, a kill and a damaged file, expiry, the limits
 * and their policies, and a failed sync; then the sync thread over real
 * files: group commit, and a failed sync there. */
#include "unit.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/crc32c.h"
#include "hub/route.h"
#include "hub/store_log.h"
#include "hub/store_record.h"
#include "store_simdisk.h"

#define EP_IN  "/modules/b/inputs/in1"
#define EP_IN2 "/modules/b/inputs/in2"

static struct sim_disk disk;
static int completed, failed;
static int64_t T0;

static int setup(void **state)
{
	sim_init(&disk, 42);
	completed = failed = 0;
	T0 = (int64_t)time(NULL) * 1000;
	return 0;
}

static int teardown(void **state)
{
	sim_free(&disk);
	return 0;
}

static struct store *sopen_opts(const struct store_options *o)
{
	struct store *s;
	struct berr err;
	if (store_open_io(o, &disk.io, false, &s, &err) < 0)
		fail_msg("store_open_io: %s", err.msg);
	return s;
}

static struct store *sopen(size_t max, size_t seg)
{
	struct store_options o = {.max_bytes = max, .default_ttl_secs = 3600, .segment_bytes = seg};
	return sopen_opts(&o);
}

static void on_done(void *arg, int status, const struct berr *err)
{
	if (status == 0)
		completed++;
	else
		failed++;
}

static int put_at(struct store *s, const char *endpoint, uint32_t prio, uint32_t ttl, int64_t when,
		  const char *body)
{
	struct hub_message m = {
	    .body = (unsigned char *)body, .body_len = strlen(body), .enqueued_ms = when};
	struct store_target t = {endpoint, prio, ttl};
	struct berr err;
	return store_append(s, &m, &t, 1, on_done, NULL, &err);
}

static void put(struct store *s, const char *endpoint, uint32_t prio, const char *body)
{
	assert_int_equal(put_at(s, endpoint, prio, 0, T0, body), 0);
}

/* The next leased body (static buffer), or NULL. */
static const char *take(struct store *s, const char *prefix, struct store_item *it)
{
	static char buf[4096];
	if (store_lease(s, prefix, NULL, NULL, T0 + 1000, it) != 0)
		return NULL;
	memcpy(buf, it->msg->body, it->msg->body_len);
	buf[it->msg->body_len] = '\0';
	return buf;
}

static void take_ack(struct store *s, const char *prefix, const char *want)
{
	struct store_item it;
	const char *got = take(s, prefix, &it);
	assert_non_null(got);
	assert_string_equal(got, want);
	store_ack(s, it.endpoint, it.seq);
}

static struct store_stats stats_of(struct store *s, const char *endpoint);
static void find_stats(const struct store_stats *st, void *arg)
{
	struct store_stats *want = arg;
	if (!strcmp(st->endpoint, want->endpoint))
		*want = *st;
}
static struct store_stats stats_of(struct store *s, const char *endpoint)
{
	struct store_stats st = {.endpoint = endpoint};
	store_foreach(s, find_stats, &st);
	return st;
}

static struct sim_file *active_file(void)
{
	struct sim_file *last = NULL;
	for (int i = 0; i < SIM_FILES; i++)
		if (disk.f[i].used && disk.f[i].linked && strstr(disk.f[i].name, ".log") &&
		    (!last || strcmp(disk.f[i].name, last->name) > 0))
			last = &disk.f[i];
	return last;
}

/* ---- checksums and records ---- */

static void crc32c_matches_known_values_on_both_paths(void **state)
{
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c_table_only(0, "123456789", 9), 0xE3069283u);
	uint8_t buf[1031];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 9; off++) {
		for (size_t len = 0; len + off <= sizeof(buf); len += 97) {
			uint32_t a = crc32c(0, buf + off, len);
			assert_int_equal(a, crc32c_table_only(0, buf + off, len));
			uint32_t split = crc32c(crc32c(0, buf + off, len / 3), buf + off + len / 3,
						len - len / 3);
			assert_int_equal(a, split);
		}
	}
}

static void a_message_record_round_trips(void **state)
{
	struct msg_prop props[2] = {{"temp", "21.5"}, {"empty", ""}};
	unsigned char body[] = {'a', 0, 'b', 0xff};
	struct hub_message m = {.props = props,
				.n_props = 2,
				.body = body,
				.body_len = sizeof(body),
				.enqueued_ms = 1700000000123};
	m.sys[MSG_SYS_CONNECTION_MODULE_ID] = "sensor";
	m.sys[MSG_SYS_CONTENT_TYPE] = "application/json";
	struct rec_target t[2] = {{7, 3, 60}, {9, STORE_PRIORITY_NONE, 7200}};
	size_t len = rec_encode_message(NULL, 42, &m, t, 2);
	uint8_t *f = malloc(len);
	assert_int_equal(rec_encode_message(f, 42, &m, t, 2), len);
	size_t fl;
	assert_int_equal(rec_frame_check(f, len, &fl, 0), 1);
	assert_int_equal(fl, len);
	struct rec_message rm;
	assert_int_equal(rec_decode_message(f + STORE_FRAME_HEAD, len - STORE_FRAME_HEAD, &rm), 0);
	assert_int_equal(rm.seq, 42);
	assert_int_equal(rm.enqueued_ms, 1700000000123);
	const uint8_t *it = rm.targets;
	struct rec_target got;
	assert_int_equal(rec_next_target(&rm, &it, &got), 1);
	assert_int_equal(got.endpoint, 7);
	assert_int_equal(got.bucket, 3);
	assert_int_equal(got.ttl_secs, 60);
	assert_int_equal(rec_next_target(&rm, &it, &got), 1);
	assert_int_equal(got.bucket, STORE_PRIORITY_NONE);
	assert_int_equal(rec_next_target(&rm, &it, &got), 0);
	struct hub_message out;
	assert_int_equal(rec_decode_content(&rm, &out), 0);
	assert_string_equal(out.sys[MSG_SYS_CONNECTION_MODULE_ID], "sensor");
	assert_string_equal(out.sys[MSG_SYS_CONTENT_TYPE], "application/json");
	assert_null(out.sys[MSG_SYS_MESSAGE_ID]);
	assert_int_equal(out.n_props, 2);
	assert_string_equal(out.props[1].key, "empty");
	assert_string_equal(out.props[1].value, "");
	assert_int_equal(out.body_len, sizeof(body));
	assert_memory_equal(out.body, body, sizeof(body));
	hub_message_clear(&out);
	rec_renumber(f, 43);
	assert_int_equal(rec_frame_check(f, len, &fl, 0), 1);
	assert_int_equal(rec_decode_message(f + STORE_FRAME_HEAD, len - STORE_FRAME_HEAD, &rm), 0);
	assert_int_equal(rm.seq, 43);
	free(f);
}

static void records_cut_short_or_altered_are_refused(void **state)
{
	struct hub_message m = {.body = (unsigned char *)"hello", .body_len = 5, .enqueued_ms = 5};
	struct rec_target t = {1, 0, 10};
	size_t len = rec_encode_message(NULL, 1, &m, &t, 1);
	uint8_t f[256];
	rec_encode_message(f, 1, &m, &t, 1);
	struct rec_message rm;
	const uint8_t *p = f + STORE_FRAME_HEAD;
	size_t plen = len - STORE_FRAME_HEAD;
	for (size_t cut = 0; cut < plen; cut++)
		assert_int_equal(rec_decode_message(p, cut, &rm), -1);
	size_t fl;
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			f[i] ^= (uint8_t)(1 << bit);
			assert_int_not_equal(rec_frame_check(f, len, &fl, 0), 1);
			f[i] ^= (uint8_t)(1 << bit);
		}
	}
	assert_int_equal(rec_frame_check(f, len, &fl, 0), 1);
	assert_int_equal(rec_frame_check(f, len - 1, &fl, 0), 0);
	uint8_t zeros[64] = {0};
	assert_int_equal(rec_frame_check(zeros, sizeof(zeros), &fl, 0), -1);
	/* An overlong varint, a bad bucket, a NUL inside a name. */
	uint8_t bad1[] = {REC_ENDPOINT, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
			  0x80,		0x80, 0x80, 0x80, 0x01, 1,    'x'};
	struct rec_endpoint e;
	assert_int_equal(rec_decode_endpoint(bad1, sizeof(bad1), &e), -1);
	uint8_t bad2[] = {REC_ENDPOINT, 1, 3, 'a', 0, 'b'};
	assert_int_equal(rec_decode_endpoint(bad2, sizeof(bad2), &e), -1);
	uint8_t good[] = {REC_ENDPOINT, 1, 3, 'a', '/', 'b'};
	assert_int_equal(rec_decode_endpoint(good, sizeof(good), &e), 0);
	assert_string_equal(e.name, "a/b");
	struct rec_acked acked[STORE_ACKED_MAX];
	struct rec_ack a = {.acked = acked};
	uint8_t bad3[] = {REC_ACK, 1, 11, 0, 1, 0, 0};
	assert_int_equal(rec_decode_ack(bad3, sizeof(bad3), &a), -1);
	uint8_t bad4[] = {REC_ACK, 1, 3, 5, 1, 0, 1, 0, 1}; /* an acked seq equal to the floor */
	assert_int_equal(rec_decode_ack(bad4, sizeof(bad4), &a), -1);
}

/* ---- what survives ---- */

static void messages_survive_a_reopen_best_priority_first(void **state)
{
	struct store *s = sopen(0, 0);
	put(s, EP_IN, ROUTE_DEFAULT_PRIORITY, "one");
	put(s, EP_IN, ROUTE_DEFAULT_PRIORITY, "two");
	put(s, EP_IN2, 0, "urgent");
	put(s, EP_IN, ROUTE_DEFAULT_PRIORITY, "three");
	assert_int_equal(completed, 0);
	store_dispatch(s);
	assert_int_equal(completed, 4);
	store_close(s);
	s = sopen(0, 0);
	take_ack(s, "/modules/b/", "urgent");
	take_ack(s, "/modules/b/", "one");
	take_ack(s, "/modules/b/", "two");
	take_ack(s, "/modules/b/", "three");
	struct store_item it;
	assert_null(take(s, "/modules/b/", &it));
	store_close(s);
}

static void acknowledged_messages_stay_gone_out_of_order_too(void **state)
{
	struct store *s = sopen(0, 0);
	const char *bodies[] = {"m1", "m2", "m3", "m4", "m5"};
	for (int i = 0; i < 5; i++)
		put(s, EP_IN, 1, bodies[i]);
	store_dispatch(s);
	struct store_item it[5];
	for (int i = 0; i < 5; i++)
		assert_non_null(take(s, EP_IN, &it[i]));
	store_ack(s, EP_IN, it[0].seq);
	store_ack(s, EP_IN, it[1].seq);
	store_ack(s, EP_IN, it[3].seq);
	store_close(s);
	s = sopen(0, 0);
	take_ack(s, EP_IN, "m3");
	take_ack(s, EP_IN, "m5");
	struct store_item none;
	assert_null(take(s, EP_IN, &none));
	store_close(s);
}

static void acknowledgements_written_before_a_kill_are_kept(void **state)
{
	struct store *s = sopen(0, 0);
	put(s, EP_IN, 0, "a");
	put(s, EP_IN, 0, "b");
	put(s, EP_IN, 0, "c");
	store_dispatch(s);
	take_ack(s, EP_IN, "a");
	take_ack(s, EP_IN, "b");
	store_dispatch(s); /* the ACK record is written, not synced */
	long synced = disk.synced_writes;
	sim_kill(&disk);
	assert_int_equal(disk.synced_writes, synced);
	store_close(s);
	sim_revive(&disk);
	s = sopen(0, 0);
	take_ack(s, EP_IN, "c");
	struct store_item none;
	assert_null(take(s, EP_IN, &none));
	store_close(s);
}

static void one_message_for_two_endpoints_is_written_once(void **state)
{
	struct store *s = sopen(0, 0);
	uint64_t before = store_bytes(s);
	char body[1000];
	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	struct hub_message m = {.body = (unsigned char *)body, .body_len = 999, .enqueued_ms = T0};
	struct store_target t[2] = {{EP_IN, 0, 0}, {STORE_UPSTREAM, 1, 0}};
	struct berr err;
	assert_int_equal(store_append(s, &m, t, 2, on_done, NULL, &err), 0);
	store_dispatch(s);
	uint64_t grew = store_bytes(s) - before;
	assert_true(grew > 999 && grew < 999 + 200); /* both names, one body */
	take_ack(s, EP_IN, body);
	take_ack(s, STORE_UPSTREAM, body);
	store_close(s);
}

static void a_torn_tail_is_cut_and_what_came_before_kept(void **state)
{
	struct store *s = sopen(0, 0);
	put(s, EP_IN, 0, "first");
	store_dispatch(s);
	put(s, EP_IN, 0, "second");
	store_dispatch(s);
	put(s, EP_IN, 0, "third, torn");
	store_dispatch(s);
	store_close(s);
	struct sim_file *f = active_file();
	/* The last frame loses its last bytes: in a preallocated segment,
	 * what was never written reads as zeros. */
	uint8_t *torn = memmem(f->data, f->len, "third, torn", 11);
	assert_non_null(torn);
	memset(torn + 7, 0, 4);
	sim_settle(&disk);
	s = sopen(0, 0);
	struct store_totals t;
	store_get_totals(s, &t);
	assert_true(t.cut_bytes > 0);
	assert_int_equal(t.recovered, 2);
	take_ack(s, EP_IN, "first");
	take_ack(s, EP_IN, "second");
	struct store_item none;
	assert_null(take(s, EP_IN, &none));
	store_close(s);
}

static void a_damaged_record_in_the_middle_costs_only_itself(void **state)
{
	struct store *s = sopen(0, 0);
	put(s, EP_IN, 0, "one-AAAA");
	put(s, EP_IN, 0, "two-BBBB");
	put(s, EP_IN, 0, "three-CC");
	put(s, EP_IN, 0, "four-DDD");
	store_dispatch(s);
	store_close(s);
	struct sim_file *f = active_file();
	uint8_t *hit = memmem(f->data, f->len, "two-BBBB", 8);
	assert_non_null(hit);
	hit[5] ^= 0x10;
	sim_settle(&disk);
	s = sopen(0, 0);
	struct store_totals t;
	store_get_totals(s, &t);
	assert_int_equal(t.damaged, 1);
	assert_int_equal(t.cut_bytes, 0);
	take_ack(s, EP_IN, "one-AAAA");
	take_ack(s, EP_IN, "three-CC");
	take_ack(s, EP_IN, "four-DDD");
	store_close(s);
}

static void a_log_of_an_unknown_version_is_refused(void **state)
{
	struct store *s = sopen(0, 0);
	put(s, EP_IN, 0, "x");
	store_dispatch(s);
	store_close(s);
	struct sim_file *f = active_file();
	/* payload: type, "BERTHLOG", then the version */
	assert_int_equal(f->data[STORE_FRAME_HEAD + 9], STORE_LOG_VERSION);
	f->data[STORE_FRAME_HEAD + 9] = STORE_LOG_VERSION + 1;
	rec_frame_seal(f->data, f->data[0] | f->data[1] << 8);
	sim_settle(&disk);
	struct store_options o = {.default_ttl_secs = 60};
	struct berr err;
	assert_int_equal(store_open_io(&o, &disk.io, false, &s, &err), -1);
	assert_non_null(strstr(err.msg, "version 3"));
	/* The positive control: the version it was written with opens. */
	f->data[STORE_FRAME_HEAD + 9] = STORE_LOG_VERSION;
	rec_frame_seal(f->data, f->data[0] | f->data[1] << 8);
	s = sopen(0, 0);
	take_ack(s, EP_IN, "x");
	store_close(s);
}

/* ---- time to live ---- */

static void expired_messages_are_never_leased_and_are_counted(void **state)
{
	struct store *s = sopen(0, 0);
	assert_int_equal(put_at(s, EP_IN, 0, 10, T0, "short"), 0); /* the route's 10 s */
	put(s, EP_IN, 0, "default");				   /* the store's 3600 s */
	store_dispatch(s);
	struct store_item it;
	assert_int_equal(store_lease(s, EP_IN, NULL, NULL, T0 + 11000, &it), 0);
	assert_memory_equal(it.msg->body, "default", 7);
	store_release(s, it.endpoint, it.seq);
	assert_int_equal(store_expire(s, T0 + 3601000), 1);
	assert_int_equal(store_lease(s, EP_IN, NULL, NULL, T0 + 3601000, &it), 1);
	struct store_stats st = stats_of(s, EP_IN);
	assert_int_equal(st.expired, 2);
	assert_int_equal(st.messages, 0);
	store_close(s);
}

static void time_to_live_runs_while_the_store_is_closed(void **state)
{
	struct store *s = sopen(0, 0);
	int64_t past = T0 - 20000;
	assert_int_equal(put_at(s, EP_IN, 0, 5, past, "gone by now"), 0);
	assert_int_equal(put_at(s, EP_IN, 0, 3600, past, "still good"), 0);
	store_dispatch(s);
	store_close(s);
	s = sopen(0, 0);
	take_ack(s, EP_IN, "still good");
	struct store_item none;
	assert_null(take(s, EP_IN, &none));
	assert_int_equal(stats_of(s, EP_IN).expired, 1);
	store_close(s);
}

/* ---- limits ---- */

static char body500[501];

static void fill_body(void)
{
	memset(body500, 'p', 500);
	body500[500] = '\0';
}

static void reject_holds_appends_back_until_space_returns(void **state)
{
	fill_body();
	struct store_options o = {.max_bytes = 16 * 1024, .default_ttl_secs = 3600};
	struct store *s = sopen_opts(&o);
	int n = 0;
	while (n < 100) {
		assert_int_equal(put_at(s, EP_IN, 0, 0, T0, body500), 0);
		n++;
		store_dispatch(s);
		if (completed < n)
			break;
	}
	assert_true(n < 100);
	struct store_totals t;
	store_get_totals(s, &t);
	assert_true(t.full);
	assert_int_equal(t.held_back, 1);
	assert_true(t.bytes <= o.max_bytes);
	/* The held one waits, whatever the ticks. */
	store_expire(s, T0 + 1000);
	store_dispatch(s);
	assert_int_equal(completed, n - 1);
	/* Delivered and acknowledged, the old segments go; the waiting message
	 * is stored. */
	for (int i = 0; i < n - 1; i++)
		take_ack(s, EP_IN, body500);
	store_dispatch(s);
	store_expire(s, T0 + 1000);
	store_dispatch(s);
	assert_int_equal(completed, n);
	assert_int_equal(failed, 0);
	take_ack(s, EP_IN, body500);
	store_close(s);
}

static void drop_oldest_makes_room_and_counts_what_it_dropped(void **state)
{
	fill_body();
	struct store_options o = {
	    .max_bytes = 16 * 1024, .default_ttl_secs = 3600, .full = STORE_FULL_DROP_OLDEST};
	struct store *s = sopen_opts(&o);
	char body[600];
	for (int i = 0; i < 100; i++) {
		snprintf(body, sizeof(body), "%03d%s", i, body500);
		assert_int_equal(put_at(s, EP_IN, 0, 0, T0, body), 0);
		store_dispatch(s);
	}
	assert_int_equal(completed, 100);
	struct store_totals t;
	store_get_totals(s, &t);
	assert_true(t.bytes <= o.max_bytes);
	struct store_stats st = stats_of(s, EP_IN);
	assert_true(st.dropped_full > 50);
	assert_int_equal(st.dropped_full + st.messages, 100);
	/* What is left is the newest, in order. */
	struct store_item it;
	const char *first = take(s, EP_IN, &it);
	assert_int_equal(atoi(first), (int)st.dropped_full);
	store_close(s);
}

static void the_free_space_floor_holds_appends_back(void **state)
{
	fill_body();
	disk.capacity = 64 * 1024;
	struct store_options o = {.default_ttl_secs = 3600, .min_free_percent = 50};
	struct store *s = sopen_opts(&o);
	int n = 0;
	while (n < 200) {
		assert_int_equal(put_at(s, EP_IN, 0, 0, T0, body500), 0);
		n++;
		store_dispatch(s);
		if (completed < n)
			break;
	}
	assert_true(n > 20 && n < 80);
	struct store_totals t;
	store_get_totals(s, &t);
	assert_true(t.full);
	assert_true(t.free_bytes >= 32 * 1024 - 600);
	store_close(s);
}

/* ---- failures ---- */

static void a_failed_sync_is_not_acknowledged_and_the_store_reopens(void **state)
{
	struct store *s = sopen(0, 0);
	put(s, EP_IN, 0, "before");
	store_dispatch(s);
	assert_int_equal(completed, 1);
	struct store_item held;
	assert_non_null(take(s, EP_IN, &held)); /* leased across the reopen */
	disk.fail_sync_at = disk.syncs + 1;
	put(s, EP_IN, 0, "lost");
	store_dispatch(s);
	assert_int_equal(failed, 1);
	assert_int_equal(completed, 1);
	struct berr err;
	assert_int_equal(store_error(s, &err), 0);
	struct store_totals t;
	store_get_totals(s, &t);
	assert_int_equal(t.write_errors, 1);
	/* The lease from before still acknowledges. */
	assert_memory_equal(held.msg->body, "before", 6);
	store_ack(s, held.endpoint, held.seq);
	put(s, EP_IN, 0, "after");
	store_dispatch(s);
	assert_int_equal(completed, 2);
	struct store_item it;
	const char *got = take(s, EP_IN, &it);
	/* "lost" was written before its sync failed: it may be on disk, but it
	 * was never acknowledged; "before" is not delivered again. */
	if (got && !strcmp(got, "lost")) {
		store_ack(s, it.endpoint, it.seq);
		got = take(s, EP_IN, &it);
	}
	assert_non_null(got);
	assert_string_equal(got, "after");
	store_close(s);
}

static void segments_go_when_nothing_in_them_is_live(void **state)
{
	fill_body();
	struct store *s = sopen(0, 4096);
	for (int i = 0; i < 40; i++) {
		put(s, EP_IN, 0, body500);
		store_dispatch(s);
	}
	int files = sim_count(&disk);
	assert_true(files > 4);
	for (int i = 0; i < 40; i++)
		take_ack(s, EP_IN, body500);
	store_dispatch(s);
	store_expire(s, T0 + 1000);
	store_dispatch(s);
	/* Their files are removed, or kept to be written again. */
	assert_true(sim_count_named(&disk, ".log") <= 2);
	assert_true(sim_count_named(&disk, ".free") <= STORE_POOL_MAX);
	assert_int_equal(sim_count(&disk),
			 sim_count_named(&disk, ".log") + sim_count_named(&disk, ".free"));
	store_close(s);
	s = sopen(0, 4096);
	struct store_item none;
	assert_null(take(s, EP_IN, &none));
	store_close(s);
}

/* ---- files of removed segments written again ---- */

static const char *numbered(int i)
{
	static char b[501];
	memset(b, 'a' + i % 26, 500);
	b[500] = '\0';
	snprintf(b, 12, "n%04d:", i);
	b[strlen(b)] = 'q';
	return b;
}

/* Forty messages of 500 bytes, taken and acknowledged: the segments that
 * held them go, two of their files kept. */
static struct store *fill_and_empty(size_t seg)
{
	fill_body();
	struct store *s = sopen(0, seg);
	for (int i = 0; i < 40; i++) {
		put(s, EP_IN, 0, body500);
		store_dispatch(s);
	}
	for (int i = 0; i < 40; i++)
		take_ack(s, EP_IN, body500);
	store_dispatch(s);
	store_expire(s, T0 + 1000);
	store_dispatch(s);
	assert_true(sim_count_named(&disk, ".free") >= 1);
	return s;
}

static struct sim_file *file_at(const char *suffix, int nth)
{
	for (int i = 0; i < SIM_FILES; i++) {
		size_t n = strlen(disk.f[i].name);
		if (disk.f[i].used && disk.f[i].linked && n > strlen(suffix) &&
		    !strcmp(disk.f[i].name + n - strlen(suffix), suffix) && nth-- == 0)
			return &disk.f[i];
	}
	return NULL;
}

/* The frames of a segment file as the log wrote them: the header, then
 * frames with the segment's mask. Returns where they end; *last_msg is the
 * offset of the last MESSAGE record (0 when none). */
static uint64_t frames_end(const struct sim_file *f, uint64_t *last_msg)
{
	uint64_t id = strtoull(f->name, NULL, 16), off = 0;
	size_t fl;
	*last_msg = 0;
	while (rec_frame_check(f->data + off, f->len - off, &fl, off ? rec_mask_of(id) : 0) == 1) {
		if (f->data[off + STORE_FRAME_HEAD] == REC_MESSAGE)
			*last_msg = off;
		off += fl;
	}
	return off;
}

/* Whether bytes of an earlier life of the file (not zeros) lie past the end
 * mark at end. */
static bool earlier_life_after(const struct sim_file *f, uint64_t end)
{
	for (uint64_t i = end + STORE_END_MARK; i < f->len; i++)
		if (f->data[i])
			return true;
	return false;
}

/* The newest segment with a message in it. */
static struct sim_file *last_with_message(void)
{
	struct sim_file *best = NULL;
	for (int i = 0; i < SIM_FILES; i++) {
		struct sim_file *f = &disk.f[i];
		uint64_t m;
		if (f->used && f->linked && strstr(f->name, ".log") && (frames_end(f, &m), m) &&
		    (!best || strcmp(f->name, best->name) > 0))
			best = f;
	}
	return best;
}

static void removed_segment_files_are_written_again(void **state)
{
	struct store *s = fill_and_empty(4096);
	static char before[SIM_FILES][64];
	for (int i = 0; i < SIM_FILES; i++)
		snprintf(before[i], sizeof(before[i]), "%s", disk.f[i].used ? disk.f[i].name : "");
	int files = sim_count(&disk);
	/* Messages until the newest one is in a file that had another name:
	 * a removed segment's, written again. */
	struct sim_file *f = NULL;
	int n = 0;
	while (!f && n < 40) {
		put(s, EP_IN, 0, numbered(n++));
		store_dispatch(s);
		struct sim_file *last = last_with_message();
		int i = (int)(last - disk.f);
		if (before[i][0] && strcmp(before[i], last->name))
			f = last;
	}
	assert_non_null(f);
	assert_true(sim_count(&disk) <= files + 1);
	/* Past the frames of its new life: the end mark, then its old life. */
	uint64_t last, end = frames_end(f, &last);
	uint64_t id = strtoull(f->name, NULL, 16);
	assert_true(rec_is_end_mark(f->data + end, rec_mask_of(id)));
	assert_true(earlier_life_after(f, end));
	store_close(s);
	/* Reopened: every message, in order, and not one byte seen as damage. */
	s = sopen(0, 4096);
	struct store_totals t;
	store_get_totals(s, &t);
	assert_int_equal(t.damaged, 0);
	assert_int_equal(t.cut_bytes, 0);
	for (int i = 0; i < n; i++)
		take_ack(s, EP_IN, numbered(i));
	struct store_item none;
	assert_null(take(s, EP_IN, &none));
	store_close(s);
}

static void a_torn_tail_in_a_file_written_again_costs_only_the_torn_record(void **state)
{
	struct store *s = fill_and_empty(4096);
	for (int i = 0; i < 6; i++) {
		put(s, EP_IN, 0, numbered(i));
		store_dispatch(s);
	}
	store_close(s);
	/* The last message of the newest segment is torn: an earlier life's
	 * bytes follow it, not zeros. */
	struct sim_file *f = last_with_message();
	uint64_t last, end = frames_end(f, &last);
	assert_true(earlier_life_after(f, end));
	f->data[last + STORE_FRAME_HEAD + 20] ^= 0x40;
	sim_settle(&disk);
	s = sopen(0, 4096);
	struct store_totals t;
	store_get_totals(s, &t);
	assert_int_equal(t.cut_bytes, end - last);
	assert_int_equal(t.damaged, 0);
	/* The control: the messages before the torn one are all there. */
	for (int i = 0; i < 5; i++)
		take_ack(s, EP_IN, numbered(i));
	struct store_item none;
	assert_null(take(s, EP_IN, &none));
	store_close(s);
}

static void a_kept_file_renamed_before_its_header_was_written_holds_nothing(void **state)
{
	struct store *s = fill_and_empty(4096);
	put(s, EP_IN, 0, "stays");
	store_dispatch(s);
	store_close(s);
	/* A power cut between the rename of a kept file and its header: it
	 * has the next number and an old segment's frames. */
	struct sim_file *active = active_file();
	uint64_t next = strtoull(active->name, NULL, 16) + 1;
	char name[STORE_SEG_NAME_MAX];
	store_seg_name(next, name);
	struct sim_file *f = file_at(".free", 0);
	struct berr err;
	char from[64];
	snprintf(from, sizeof(from), "%s", f->name);
	assert_int_equal(disk.io.ops->rename(&disk.io, from, name, &err), 0);
	sim_settle(&disk);
	s = sopen(0, 4096);
	struct store_totals t;
	store_get_totals(s, &t);
	assert_int_equal(t.damaged, 0);
	assert_int_equal(t.recovered, 1);
	take_ack(s, EP_IN, "stays");
	struct store_item none;
	assert_null(take(s, EP_IN, &none));
	/* Its frames were not taken for anything: new messages go on. */
	put(s, EP_IN, 0, "after");
	store_dispatch(s);
	store_close(s);
	s = sopen(0, 4096);
	take_ack(s, EP_IN, "after");
	assert_null(take(s, EP_IN, &none));
	store_close(s);
}

static void released_messages_come_back_as_redeliveries(void **state)
{
	struct store *s = sopen(0, 0);
	put(s, EP_IN, 0, "one");
	put(s, EP_IN, 0, "two");
	store_dispatch(s);
	struct store_item a, b, again;
	assert_non_null(take(s, EP_IN, &a));
	assert_non_null(take(s, EP_IN, &b));
	assert_false(a.redelivery);
	store_ack(s, a.endpoint, a.seq);
	store_release(s, b.endpoint, b.seq);
	assert_string_equal(take(s, EP_IN, &again), "two");
	assert_true(again.redelivery);
	assert_int_equal(again.seq, b.seq);
	store_ack(s, again.endpoint, again.seq);
	assert_int_equal(stats_of(s, EP_IN).messages, 0);
	store_close(s);
}

/* ---- the sync thread, over real files ---- */

/* The POSIX I/O with a gate on sync: a sync waits until the test lets it
 * through, and the fail_at'th one fails, so the test knows what each
 * fdatasync of the sync thread covered. */
struct gate_io {
	struct store_io io;
	struct store_io *inner;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool on;
	int started, allowed, fail_at;
};

static struct gate_io gate;

#define INNER gate.inner
static int g_open(struct store_io *io, const char *name, bool create, struct berr *err)
{
	return INNER->ops->open(INNER, name, create, err);
}
static ssize_t g_pread(struct store_io *io, int h, void *buf, size_t len, uint64_t off,
		       struct berr *err)
{
	return INNER->ops->pread(INNER, h, buf, len, off, err);
}
static int g_pwrite(struct store_io *io, int h, const void *buf, size_t len, uint64_t off,
		    struct berr *err)
{
	return INNER->ops->pwrite(INNER, h, buf, len, off, err);
}
static int g_sync(struct store_io *io, int h, struct berr *err)
{
	pthread_mutex_lock(&gate.mu);
	int n = 0;
	if (gate.on) {
		n = ++gate.started;
		pthread_cond_broadcast(&gate.cv);
		while (gate.started > gate.allowed)
			pthread_cond_wait(&gate.cv, &gate.mu);
	}
	pthread_mutex_unlock(&gate.mu);
	if (n && n == gate.fail_at)
		return berr_set(err, EIO, "gated sync");
	return INNER->ops->sync(INNER, h, err);
}
static int g_truncate(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	return INNER->ops->truncate(INNER, h, len, err);
}
static int g_allocate(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	return INNER->ops->allocate(INNER, h, len, err);
}
static int g_size(struct store_io *io, int h, uint64_t *len, struct berr *err)
{
	return INNER->ops->size(INNER, h, len, err);
}
static void g_close(struct store_io *io, int h)
{
	INNER->ops->close(INNER, h);
}
static int g_unlink(struct store_io *io, const char *name, struct berr *err)
{
	return INNER->ops->unlink(INNER, name, err);
}
static int g_sync_dir(struct store_io *io, struct berr *err)
{
	return INNER->ops->sync_dir(INNER, err);
}
static int g_list(struct store_io *io, int (*fn)(const char *name, void *arg), void *arg,
		  struct berr *err)
{
	return INNER->ops->list(INNER, fn, arg, err);
}
static int g_space(struct store_io *io, uint64_t *avail, uint64_t *total, struct berr *err)
{
	return INNER->ops->space(INNER, avail, total, err);
}
static void g_destroy(struct store_io *io)
{
}
static int g_rename(struct store_io *io, const char *from, const char *to, struct berr *err)
{
	return INNER->ops->rename(INNER, from, to, err);
}
#undef INNER

static const struct store_io_ops gate_ops = {
    .open = g_open,
    .pread = g_pread,
    .pwrite = g_pwrite,
    .sync = g_sync,
    .truncate = g_truncate,
    .allocate = g_allocate,
    .size = g_size,
    .close = g_close,
    .unlink = g_unlink,
    .sync_dir = g_sync_dir,
    .list = g_list,
    .space = g_space,
    .destroy = g_destroy,
    .rename = g_rename,
};

static char gate_dir[64];

static int gate_setup(void **state)
{
	completed = failed = 0;
	T0 = (int64_t)time(NULL) * 1000;
	snprintf(gate_dir, sizeof(gate_dir), "/tmp/berth-store-test-XXXXXX");
	assert_non_null(mkdtemp(gate_dir));
	struct berr err;
	if (store_io_posix(gate_dir, true, &gate.inner, &err) < 0)
		fail_msg("store_io_posix: %s", err.msg);
	gate.io.ops = &gate_ops;
	gate.io.where = gate_dir;
	pthread_mutex_init(&gate.mu, NULL);
	pthread_cond_init(&gate.cv, NULL);
	gate.on = false;
	gate.started = gate.allowed = gate.fail_at = 0;
	return 0;
}

static int gate_teardown(void **state)
{
	gate.inner->ops->destroy(gate.inner);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", gate_dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static struct store *gate_open(void)
{
	struct store_options o = {.default_ttl_secs = 3600};
	struct store *s;
	struct berr err;
	if (store_open_io(&o, &gate.io, true, &s, &err) < 0)
		fail_msg("store_open_io: %s", err.msg);
	pthread_mutex_lock(&gate.mu);
	gate.on = true;
	pthread_mutex_unlock(&gate.mu);
	return s;
}

/* Waits until the sync thread is inside its nth gated sync. */
static void gate_wait_started(int n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&gate.mu);
	while (gate.started < n)
		if (pthread_cond_timedwait(&gate.cv, &gate.mu, &until) == ETIMEDOUT)
			break;
	int started = gate.started;
	pthread_mutex_unlock(&gate.mu);
	assert_int_equal(started, n);
}

static void gate_allow(int n)
{
	pthread_mutex_lock(&gate.mu);
	gate.allowed = n;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
}

/* Runs the store's completions as the event loop does until *count
 * reaches want (10 s at most). */
static void dispatch_until(struct store *s, const int *count, int want)
{
	for (int i = 0; i < 1000 && *count < want; i++) {
		struct pollfd p = {store_event_fd(s), POLLIN, 0};
		if (poll(&p, 1, 10) > 0)
			store_dispatch(s);
	}
	assert_int_equal(*count, want);
}

static void a_sync_covers_everything_written_while_the_previous_one_ran(void **state)
{
	struct store *s = gate_open();
	put(s, EP_IN, 0, "first");
	store_dispatch(s); /* the end of a loop round: written, handed to the sync thread */
	gate_wait_started(1);
	put(s, EP_IN, 0, "second");
	store_dispatch(s);
	put(s, EP_IN, 0, "third");
	store_dispatch(s);
	/* Written, not yet synced: a receiver may lease them, no sender has
	 * its completion. */
	take_ack(s, EP_IN, "first");
	take_ack(s, EP_IN, "second");
	take_ack(s, EP_IN, "third");
	assert_int_equal(completed, 0);
	gate_allow(1);
	dispatch_until(s, &completed, 1);
	/* One sync takes both appends that waited, however many rounds
	 * wrote them. */
	gate_wait_started(2);
	assert_int_equal(completed, 1);
	gate_allow(2);
	dispatch_until(s, &completed, 3);
	gate_allow(1000);
	store_close(s);
	assert_int_equal(failed, 0);
}

static void a_failed_sync_of_the_sync_thread_fails_its_batch_and_the_store_reopens(void **state)
{
	struct store *s = gate_open();
	gate_allow(1000);
	put(s, EP_IN, 0, "kept");
	dispatch_until(s, &completed, 1);
	pthread_mutex_lock(&gate.mu);
	gate.fail_at = gate.started + 1;
	pthread_mutex_unlock(&gate.mu);
	put(s, EP_IN, 0, "not acknowledged");
	dispatch_until(s, &failed, 1);
	assert_int_equal(completed, 1);
	struct berr err;
	assert_int_equal(store_error(s, &err), 0);
	struct store_totals t;
	store_get_totals(s, &t);
	assert_int_equal(t.write_errors, 1);
	/* The store goes on from what is on disk: a new append is synced and
	 * acknowledged, and what was acknowledged before is there. */
	put(s, EP_IN, 0, "after");
	dispatch_until(s, &completed, 2);
	take_ack(s, EP_IN, "kept");
	struct store_item it;
	const char *got = take(s, EP_IN, &it);
	if (got && !strcmp(got, "not acknowledged")) { /* written before its sync failed */
		store_ack(s, it.endpoint, it.seq);
		got = take(s, EP_IN, &it);
	}
	assert_non_null(got);
	assert_string_equal(got, "after");
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(crc32c_matches_known_values_on_both_paths),
	    cmocka_unit_test(a_message_record_round_trips),
	    cmocka_unit_test(records_cut_short_or_altered_are_refused),
	    cmocka_unit_test_setup_teardown(messages_survive_a_reopen_best_priority_first, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(acknowledged_messages_stay_gone_out_of_order_too, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(acknowledgements_written_before_a_kill_are_kept, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(one_message_for_two_endpoints_is_written_once, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(a_torn_tail_is_cut_and_what_came_before_kept, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(a_damaged_record_in_the_middle_costs_only_itself, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(a_log_of_an_unknown_version_is_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(expired_messages_are_never_leased_and_are_counted,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(time_to_live_runs_while_the_store_is_closed, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(reject_holds_appends_back_until_space_returns, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(drop_oldest_makes_room_and_counts_what_it_dropped,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(the_free_space_floor_holds_appends_back, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(a_failed_sync_is_not_acknowledged_and_the_store_reopens,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(segments_go_when_nothing_in_them_is_live, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(removed_segment_files_are_written_again, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		a_torn_tail_in_a_file_written_again_costs_only_the_torn_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		a_kept_file_renamed_before_its_header_was_written_holds_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(released_messages_come_back_as_redeliveries, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		a_sync_covers_everything_written_while_the_previous_one_ran, gate_setup,
		gate_teardown),
	    cmocka_unit_test_setup_teardown(
		a_failed_sync_of_the_sync_thread_fails_its_batch_and_the_store_reopens, gate_setup,
		gate_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
