/* Power cuts under the store (store_simdisk.h): a random workload of
 * appends, completions, leases, acknowledgements and releases runs until the
 * power goes at a random write-side operation; the disk then keeps only what
 * the cut lets survive (unsynced bytes lost, the last write torn at any
 * offset, writes reordered, bits flipped), and the store is opened again.
 * After every cut:
 *  - every message whose append completed (its sender had its PUBACK) and
 *    that no acknowledgement made durable is there, exactly once, in order
 *    (best priority first, then oldest);
 *  - nothing that comes back is corrupted (each body is checked whole);
 *  - a message acknowledged before a completed sync never comes back.
 * STORE_POWERCUT_CUTS and STORE_POWERCUT_SEED in the environment change the
 * number of cuts (default 2000) and the seed. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "hub/route.h"
#include "hub/store_log.h"
#include "store_simdisk.h"

#define N_EPS	     3
#define MAX_MSGS     200000
#define OPS_PER_TURN 60

static const char *const endpoints[N_EPS] = {"/modules/m/inputs/a", "/modules/m/inputs/b",
					     STORE_UPSTREAM};
static const uint32_t priorities[] = {0, 4, ROUTE_DEFAULT_PRIORITY};

enum tstate {
	T_NONE,	       /* not a target */
	T_PENDING,     /* appended, no completion yet */
	T_UNSURE,      /* failed or cut off: may or may not be there */
	T_STORED,      /* the sender had its PUBACK: must be there until acknowledged */
	T_ACKED_MAYBE, /* acknowledged, maybe not yet durably */
	T_ACKED,       /* acknowledged durably: must never come back */
	T_GONE,	       /* an unsure one that was not there: never comes back */
};

struct model_msg {
	uint8_t state[N_EPS];
	uint8_t bucket[N_EPS];
	uint32_t len;
	long issued;	   /* event time of its append */
	long acked[N_EPS]; /* event time of each acknowledgement */
};

/* The store logs every reopen; the loop runs with stderr quiet and gives
 * it back before a failure is reported. */
static int saved_stderr = -1;

static void quiet(bool on)
{
	fflush(stderr);
	if (on && saved_stderr < 0) {
		saved_stderr = dup(2);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		close(null);
	} else if (!on && saved_stderr >= 0) {
		dup2(saved_stderr, 2);
		close(saved_stderr);
		saved_stderr = -1;
	}
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		quiet(false);                                                                      \
		fail_msg(__VA_ARGS__);                                                             \
	} while (0)

struct maybe {
	uint32_t id;
	int e;
};

static struct maybe *maybes; /* the T_ACKED_MAYBE targets */
static size_t n_maybes;

static struct model_msg *msgs;
static uint32_t n_msgs;
static long now_event, last_failure;
static uint64_t rng;
static int64_t T0;
static struct sim_disk disk;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint8_t bucket_of(uint32_t p)
{
	return p <= 9 ? (uint8_t)p : STORE_PRIORITY_NONE;
}

/* The body of message id: its number, then bytes derived from it. */
static size_t body_of(uint32_t id, uint32_t len, char *out)
{
	int n = snprintf(out, 32, "%u:", id);
	uint32_t x = id * 2654435761u + 1;
	for (uint32_t i = (uint32_t)n; i < len; i++) {
		x = x * 1103515245u + 12345u;
		out[i] = (char)('a' + (x >> 16) % 26);
	}
	return len > (uint32_t)n ? len : (size_t)n;
}

static void check_body(const struct hub_message *m, uint32_t *id, const char *where)
{
	char want[1024], got[1024];
	if (m->body_len >= sizeof(got))
		FAIL("%s: a body of %zu bytes", where, m->body_len);
	memcpy(got, m->body, m->body_len);
	got[m->body_len] = '\0';
	char *end;
	unsigned long v = strtoul(got, &end, 10);
	if (end == got || *end != ':' || v >= n_msgs)
		FAIL("%s: corrupted body \"%.40s\"", where, got);
	*id = (uint32_t)v;
	size_t n = body_of(*id, msgs[*id].len, want);
	if (n != m->body_len || memcmp(want, got, n))
		FAIL("%s: message %u comes back corrupted", where, *id);
}

static int ep_index(const char *name)
{
	for (int i = 0; i < N_EPS; i++)
		if (!strcmp(endpoints[i], name))
			return i;
	FAIL("unknown endpoint %s", name);
	return -1;
}

static void on_done(void *arg, int status, const struct berr *err)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	now_event++;
	if (status != 0)
		last_failure = now_event;
	for (int e = 0; e < N_EPS; e++)
		if (msgs[id].state[e] == T_PENDING)
			msgs[id].state[e] = status == 0 ? T_STORED : T_UNSURE;
	if (status != 0)
		return;
	/* Acknowledgements made before this append was issued went to disk
	 * with it or before it, and were synced with it. */
	size_t k = 0;
	for (size_t i = 0; i < n_maybes; i++) {
		struct model_msg *mm = &msgs[maybes[i].id];
		int e = maybes[i].e;
		if (mm->state[e] != T_ACKED_MAYBE)
			continue;
		if (mm->acked[e] < msgs[id].issued && mm->acked[e] > last_failure)
			mm->state[e] = T_ACKED;
		else
			maybes[k++] = maybes[i];
	}
	n_maybes = k;
}

static void acked_maybe(uint32_t id, int e)
{
	msgs[id].state[e] = T_ACKED_MAYBE;
	msgs[id].acked[e] = ++now_event;
	maybes[n_maybes].id = id;
	maybes[n_maybes++].e = e;
}

static struct store *open_store(const char *when)
{
	struct store_options o = {.default_ttl_secs = 86400, .segment_bytes = 2048};
	struct store *s;
	struct berr err;
	if (store_open_io(&o, &disk.io, false, &s, &err) < 0)
		FAIL("%s: the store does not open: %s", when, err.msg);
	return s;
}

static void append(struct store *s)
{
	if (n_msgs == MAX_MSGS)
		return;
	uint32_t id = n_msgs++;
	struct model_msg *mm = &msgs[id];
	memset(mm, 0, sizeof(*mm));
	mm->len = (uint32_t)(8 + rnd() % 300);
	char body[1024];
	size_t blen = body_of(id, mm->len, body);
	struct hub_message m = {.body = (unsigned char *)body, .body_len = blen, .enqueued_ms = T0};
	struct store_target t[N_EPS];
	size_t n = 0;
	int first = (int)(rnd() % N_EPS);
	int count = 1 + (int)(rnd() % 2);
	for (int k = 0; k < count; k++) {
		int e = (first + k) % N_EPS;
		uint32_t p = priorities[rnd() % 3];
		t[n++] = (struct store_target){endpoints[e], p, 0};
		mm->bucket[e] = bucket_of(p);
		mm->state[e] = T_PENDING;
	}
	mm->issued = ++now_event;
	struct berr err;
	if (store_append(s, &m, t, n, on_done, (void *)(uintptr_t)id, &err) < 0)
		for (int e = 0; e < N_EPS; e++)
			if (mm->state[e] == T_PENDING)
				mm->state[e] = T_GONE; /* refused at once: never written */
}

static void lease_one(struct store *s, bool release)
{
	int e = (int)(rnd() % N_EPS);
	struct store_item it;
	if (store_lease(s, endpoints[e], NULL, NULL, T0, &it) != 0)
		return;
	uint32_t id;
	check_body(it.msg, &id, "lease");
	if (release) {
		store_release(s, it.endpoint, it.seq);
		return;
	}
	store_ack(s, it.endpoint, it.seq);
	if (msgs[id].state[e] == T_STORED || msgs[id].state[e] == T_PENDING ||
	    msgs[id].state[e] == T_UNSURE)
		acked_maybe(id, e);
}

/* Everything the store holds for each endpoint, leased and compared with
 * the model; about half of it acknowledged, the rest given back. */
static void verify(struct store *s, int turn)
{
	static uint32_t *got;
	static struct store_item *items;
	if (!got) {
		got = malloc(MAX_MSGS * sizeof(*got));
		items = malloc(MAX_MSGS * sizeof(*items));
	}
	static uint8_t *seen;
	if (!seen)
		seen = malloc(MAX_MSGS);
	for (int e = 0; e < N_EPS; e++) {
		size_t n = 0;
		memset(seen, 0, n_msgs);
		while (store_lease(s, endpoints[e], NULL, NULL, T0, &items[n]) == 0) {
			uint32_t id;
			char where[96];
			snprintf(where, sizeof(where), "turn %d, %s", turn, endpoints[e]);
			check_body(items[n].msg, &id, where);
			if (ep_index(items[n].endpoint) != e)
				FAIL("%s: leased from another endpoint", where);
			if (seen[id])
				FAIL("%s: message %u twice", where, id);
			seen[id] = 1;
			uint8_t st = msgs[id].state[e];
			if (st == T_NONE || st == T_ACKED || st == T_GONE)
				FAIL("%s: message %u (state %d) comes back", where, id, st);
			if (n) {
				uint32_t prev = got[n - 1];
				uint8_t pb = msgs[prev].bucket[e], b = msgs[id].bucket[e];
				if (pb > b || (pb == b && prev > id))
					FAIL("%s: message %u (priority %d) after %u (priority %d)",
					     where, id, b, prev, pb);
			}
			got[n++] = id;
		}
		for (uint32_t id = 0; id < n_msgs; id++) {
			uint8_t st = msgs[id].state[e];
			if (st == T_STORED && !seen[id])
				FAIL("turn %d, %s: acknowledged message %u is lost", turn,
				     endpoints[e], id);
			if (!seen[id] && (st == T_UNSURE || st == T_PENDING))
				msgs[id].state[e] = T_GONE;
			if (!seen[id] && st == T_ACKED_MAYBE)
				msgs[id].state[e] = T_ACKED;
			if (seen[id])
				msgs[id].state[e] = T_STORED;
		}
		for (size_t i = 0; i < n; i++) {
			if (rnd() % 2) {
				store_ack(s, items[i].endpoint, items[i].seq);
				acked_maybe(got[i], e);
			} else {
				store_release(s, items[i].endpoint, items[i].seq);
			}
		}
	}
}

static void power_cuts(void **state)
{
	long want = 2000;
	const char *env = getenv("STORE_POWERCUT_CUTS");
	if (env)
		want = atol(env);
	env = getenv("STORE_POWERCUT_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed5eedull;
	rng = seed;
	T0 = (int64_t)time(NULL) * 1000;
	msgs = calloc(MAX_MSGS, sizeof(*msgs));
	maybes = calloc(MAX_MSGS * N_EPS, sizeof(*maybes));
	quiet(true);
	sim_init(&disk, seed ^ 0xabcdef);
	long cuts = 0, clean = 0, turn = 0;
	long modes[SIM_MODES] = {0};
	while (cuts < want) {
		char when[64];
		snprintf(when, sizeof(when), "turn %ld (seed %#llx)", turn,
			 (unsigned long long)seed);
		struct store *s = open_store(when);
		verify(s, (int)turn);
		bool cut = rnd() % 8 != 0;
		if (cut)
			sim_arm(&disk, (long)(rnd() % 40));
		for (int op = 0; op < OPS_PER_TURN; op++) {
			uint64_t r = rnd() % 100;
			if (r < 50)
				append(s);
			else if (r < 75)
				store_dispatch(s);
			else if (r < 92)
				lease_one(s, false);
			else
				lease_one(s, true);
		}
		if (cut && !disk.dead) {
			store_dispatch(s);
			disk.dead = true;
		}
		if (cut) {
			cuts++;
			store_close(s); /* the power is gone: it writes nothing */
		} else {
			store_close(s);
			clean++;
			/* A clean close synced every acknowledgement. */
			for (uint32_t i = 0; i < n_msgs; i++)
				for (int e = 0; e < N_EPS; e++)
					if (msgs[i].state[e] == T_ACKED_MAYBE)
						msgs[i].state[e] = T_ACKED;
		}
		enum sim_cut_mode mode = (enum sim_cut_mode)(rnd() % SIM_MODES);
		modes[mode]++;
		sim_cut(&disk, mode);
		turn++;
	}
	struct store *s = open_store("the end");
	verify(s, (int)turn);
	store_close(s);
	quiet(false);
	print_message("%ld power cuts (lost %ld, torn %ld, reordered %ld, flipped %ld), %ld clean "
		      "stops, %u messages\n",
		      cuts, modes[SIM_LOSE_UNSYNCED], modes[SIM_TEAR_LAST], modes[SIM_REORDER],
		      modes[SIM_FLIP_BITS], clean, n_msgs);
	assert_true(cuts >= want);
	sim_free(&disk);
	free(msgs);
	free(maybes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(power_cuts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
