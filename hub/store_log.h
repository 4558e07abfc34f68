/* The durable store's state (private to store_log.c, store_scan.c and
 * store_writer.c).
 *
 * Nothing is kept in memory per stored message. Each queue (an endpoint at
 * one priority) has a cursor into the log and a short list of the messages
 * between its floor (everything before is done) and its cursor: those
 * leased, given back, or acknowledged while an older one is not. Each
 * segment keeps, per queue, how many of its messages the cursor has not
 * passed and how many are not done: a cursor skips a segment with none,
 * and a segment none of whose messages is live is removed. Records are
 * read with pread into one small buffer. */
#ifndef BERTH_HUB_STORE_LOG_H
#define BERTH_HUB_STORE_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hub/store.h"
#include "hub/store_io.h"
#include "hub/store_record.h"

#define SEGMENT_BYTES_DEFAULT (16 * 1024 * 1024)
#define SEGMENT_BYTES_MIN     1024
#define SEGMENTS_PER_BOUND    8	 /* a bounded store has at least this many segments */
#define SEGMENTS_PER_DEVICE   32 /* and a segment is at most this part of its device */
#define STORE_READ_CHUNK      (64 * 1024)
#define STORE_WAIT_MAX	      (1024 * 1024) /* bytes of appends waiting for space */
#define STORE_SEG_NAME_MAX    32

struct endpoint;

/* One queue's share of one segment. */
struct seg_queue {
	struct endpoint *ep;
	uint8_t bucket;
	uint32_t unread;       /* messages its cursor has not passed */
	uint64_t unread_bytes; /* their frames */
	uint32_t live;	       /* not done: unread, leased or given back */
	int64_t max_expires;
};

struct segment {
	struct segment *next; /* by id */
	uint64_t id;
	int h;		    /* handle, -1 when closed */
	uint64_t size;	    /* bytes, with those not yet written */
	uint64_t committed; /* bytes written and synced: what may be read */
	uint64_t first_seq; /* its messages have seqs from here on */
	uint64_t opening;   /* bytes of its opening records (header, names, acks) */
	bool sealed;	    /* appends go to a newer one */
	int64_t max_expires;
	struct seg_queue *qs;
	size_t n_qs, cap_qs;
	struct {
		uint64_t from, to;
	} * holes; /* damaged bytes found at open, which cursors jump over */
	size_t n_holes;
};

enum entry_state { ENTRY_LEASED, ENTRY_RELEASED, ENTRY_DONE };

/* A message of a queue between its floor and its cursor. */
struct entry {
	uint64_t seq;
	struct store_pos pos;
	uint32_t len; /* frame bytes */
	uint8_t state;
	bool redelivery;
	bool gone; /* its segment was dropped (drop-oldest) */
	int64_t enqueued_ms, expires_ms;
	struct hub_message *msg; /* while leased */
};

struct queue {
	struct endpoint *ep;
	uint8_t bucket;
	struct store_pos cursor; /* the next record to look at */
	uint64_t done_below;	 /* messages with a smaller seq ahead of the cursor are done */
	struct entry *out;	 /* by seq */
	size_t n_out, cap_out;
	size_t n_leased, n_released;
	bool have_next; /* next: the message at the cursor */
	struct entry next;
	uint64_t unread;  /* messages the cursor has not passed */
	uint64_t held;	  /* messages not done */
	uint64_t bytes;	  /* their frames */
	bool dirty;	  /* acknowledgements changed since the last ACK record */
	bool known;	  /* has had messages: its ACK record goes into each new segment */
	bool scanned_ack; /* store_scan found an ACK record for it */
	struct queue *dirty_next;
	uint64_t *ahead; /* acknowledged, not yet passed by the cursor (after a reopen) */
	size_t n_ahead;
};

struct endpoint {
	struct endpoint *next;
	char *name;
	uint32_t id;
	uint64_t defined_in; /* the segment whose ENDPOINT record names it, 0 none */
	struct queue q[STORE_BUCKETS];
	uint64_t expired, dropped_full, dropped_damaged;
};

/* A leased message whose queue went away with a reopen: freed on its ack
 * or release. */
struct orphan {
	struct orphan *next;
	char *endpoint;
	uint64_t seq;
	uint8_t bucket;
	struct hub_message *msg;
};

struct chunk {
	uint64_t seg;
	int h;
	uint64_t off;
	size_t start, len; /* in the batch's buffer */
};

struct done {
	store_append_cb cb;
	void *arg;
	struct store_pos pos;
	size_t start; /* the frame in the batch's buffer */
	uint32_t len; /* 0: a message that went nowhere */
};

/* Records on their way to the files, written and synced together. */
struct batch {
	uint8_t *buf;
	size_t len, cap;
	struct chunk *chunks;
	size_t n_chunks, cap_chunks;
	struct done *dones;
	size_t n_dones, cap_dones;
	uint64_t *unlinks; /* segments removed once the rest is synced */
	size_t n_unlinks, cap_unlinks;
	uint64_t unlink_bytes;
	bool new_file;
	bool sync;
	int status;
	struct berr err;
};

struct waiting {
	struct waiting *next;
	store_append_cb cb;
	void *arg;
	size_t len;
	uint8_t frame[];
};

struct store {
	struct store_options opt;
	struct store_io *io;
	bool own_io;
	bool threaded;
	uint64_t seg_bytes;
	struct segment *segs, *active;
	uint64_t next_seg_id, next_seq;
	uint32_t next_endpoint_id;
	uint64_t bytes; /* of every segment */
	struct endpoint *endpoints;
	struct queue *dirty;
	struct orphan *orphans;
	struct waiting *wait_head, **wait_tail;
	size_t wait_bytes;
	int64_t now_ms;

	struct batch batch[2];
	struct batch *fill, *flight; /* flight: with the writer, or being completed */
	bool busy;		     /* flight is with the writer */
	bool in_dispatch;	     /* completions run: nothing goes to the writer */
	bool unsynced;		     /* the active segment has bytes written, not synced */
	int efd;
	pthread_t thread;
	bool thread_running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool go, finished, stop;

	uint8_t *rbuf; /* read cache: [roff, roff + rlen) of segment rseg */
	size_t rcap, rlen;
	uint64_t rseg, roff;

	uint64_t avail, total; /* free and whole bytes of the device, last seen */
	uint64_t grown;	       /* bytes reserved in segments since then, not yet written */
	uint64_t unlinking;    /* bytes of segments being removed */
	bool full_logged;

	struct rec_acked *ack_tmp; /* room for one ACK record's list */
	struct store_totals t;
	bool failed;
	struct berr fatal;
};

/* store_scan.c: reads the log at open; torn tails cut, damaged records
 * skipped, the queues set up from the last ACK records. */
int store_scan(struct store *s, struct berr *err);
void store_seg_name(uint64_t id, char *out);
struct segment *store_seg_find(struct store *s, uint64_t id);
/* The segment holding id, or the first after it. */
struct segment *store_seg_at_or_after(struct store *s, uint64_t id);
struct seg_queue *store_seg_queue(struct segment *seg, struct endpoint *ep, uint8_t bucket,
				  bool create);
struct endpoint *store_endpoint_get(struct store *s, const char *name, bool create);

/* store_writer.c */
int writer_start(struct store *s, struct berr *err);
void writer_stop(struct store *s);
/* Hands the filled batch to the writer when it is idle (or, without a
 * thread, writes it now). */
void writer_kick(struct store *s);
/* The batch the writer finished, or NULL. */
struct batch *writer_finished(struct store *s);
void writer_run_batch(struct store *s, struct batch *b);
void batch_reset(struct batch *b);
void batch_free(struct batch *b);
/* Room for len bytes at the end of seg, in the batch; NULL out of memory. */
uint8_t *batch_reserve(struct batch *b, struct segment *seg, size_t len);
int batch_add_done(struct batch *b, const struct done *d);
int batch_add_unlink(struct batch *b, uint64_t seg, uint64_t bytes);
/* Waits for the batch with the writer and returns it (NULL when none). */
struct batch *writer_wait(struct store *s);

/* store_log.c: ACK records of the queues whose acknowledgements changed,
 * into the filled batch. */
void store_write_acks(struct store *s);

#endif
