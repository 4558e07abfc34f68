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
#define STORE_POOL_MAX	      2 /* removed segment files kept to be written again */

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
	uint64_t sync_gen;  /* the last sync job its handle is in */
	uint64_t opening;   /* bytes of its opening records (header, names, acks) */
	uint32_t mask;	    /* of its frames' checksums (0 in a version 1 log) */
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
	uint64_t unread;     /* messages the cursor has not passed */
	uint64_t held;	     /* messages not done */
	uint64_t bytes;	     /* their frames */
	bool dirty;	     /* acknowledgements changed since the last ACK record */
	bool known;	     /* has had messages: its ACK record goes into each new segment */
	bool scanned_ack;    /* store_scan found an ACK record for it */
	uint64_t scanned_at; /* the scan's count of records when it did */
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
	bool ready; /* new messages since the ready callback last ran */
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
	size_t end;	   /* bytes of the end mark written after it */
};

struct done {
	store_append_cb cb;
	void *arg;
	struct store_pos pos;
	size_t start; /* the frame in the batch's buffer */
	uint32_t len; /* 0: a message that went nowhere */
};

/* A segment that goes: its file removed, or kept for a later segment. */
struct unlink {
	uint64_t seg;
	uint64_t bytes;
	bool keep; /* asked for */
	bool kept; /* done: renamed to its free name */
};

#define PREP_HEADER_MAX 80

/* The next segment made from a kept file by the sync thread: renamed, its
 * header written and synced before any other frame of it is written, so
 * that a file's bytes past its end are only ever of earlier lives, with
 * smaller numbers (and masks that say so). */
struct prep_job {
	bool on;
	uint64_t id, from; /* the new segment, the kept file's */
	uint64_t max_size; /* longer files are cut to this */
	uint8_t header[PREP_HEADER_MAX];
	size_t len;
	int h; /* done: open on the file */
	int status;
	struct berr err;
};

enum prep_state { PREP_NONE, PREP_ASKED, PREP_READY };

/* Records the event loop encodes, then writes (pwrite) in one go at the
 * end of an epoll round. */
struct batch {
	uint8_t *buf;
	size_t len, cap;
	struct chunk *chunks;
	size_t n_chunks, cap_chunks;
	struct done *dones;
	size_t n_dones, cap_dones;
	struct unlink *unlinks; /* segments removed once what came before is synced */
	size_t n_unlinks, cap_unlinks;
	uint64_t unlink_bytes;
	int *closes; /* handles of removed segments, closed after that sync */
	size_t n_closes, cap_closes;
	bool new_file;
	struct prep_job prep;
};

/* What a written batch waits for: the sync thread's fdatasync (which
 * covers every batch written before it started: group commit), then its
 * completions run in the event loop. */
struct sync_job {
	struct sync_job *next;
	uint64_t gen;
	struct done *dones; /* callbacks */
	size_t n_dones;
	int *handles; /* to fdatasync */
	size_t n_handles;
	struct unlink *unlinks;
	size_t n_unlinks;
	uint64_t unlink_bytes;
	int *closes;
	size_t n_closes;
	bool new_file;
	struct prep_job prep;
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
	/* Files of removed segments (<id>.free), oldest first: a new segment
	 * is one of them written again, whose blocks the file system already
	 * has, so that its syncs write data alone. */
	struct unlink pool[STORE_POOL_MAX];
	size_t n_pool, pool_coming; /* kept, and being renamed to be kept */
	uint8_t prep_state;
	bool prep_obsolete; /* a newer segment came first: the prepared one goes */
	uint64_t prep_id;
	int prep_h;
	uint64_t prep_size;
	struct endpoint *endpoints;
	struct queue *dirty;
	struct orphan *orphans;
	struct waiting *wait_head, **wait_tail;
	size_t wait_bytes;
	int64_t now_ms;

	struct batch fill_batch;
	struct batch *fill;
	bool signaled; /* the event fd says there is work */
	bool unsynced; /* the active segment has bytes written, not synced */
	int efd;
	/* The sync thread: jobs queued by the loop, done ones back to it. */
	pthread_t thread;
	bool thread_running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sync_job *queued, **queued_tail;
	struct sync_job *completed, **completed_tail;
	bool syncing; /* the thread has jobs it took */
	bool stop;
	bool sync_failed; /* a sync failed: every later job fails too until a reopen */
	uint64_t next_gen, done_gen;
	size_t jobs_out; /* submitted, not yet completed */
	store_ready_cb ready_cb;
	void *ready_arg;

	uint8_t *rbuf; /* read cache: [roff, roff + rlen) of segment rseg */
	size_t rcap, rlen;
	uint64_t rseg, roff;

	uint64_t avail, total; /* free and whole bytes of the device, last seen */
	uint64_t grown;	       /* bytes written or reserved since then */
	uint64_t unlinking;    /* bytes of segments being removed */
	bool full_logged;

	struct rec_acked *ack_tmp; /* room for one ACK record's list */
	struct store_totals t;
	bool failed;
	struct berr fatal;
};

/* store_scan.c: reads the log at open; torn tails cut, damaged records
 * skipped, the queues set up from the last ACK records. */
NODISCARD int store_scan(struct store *s, struct berr *err);
void store_seg_name(uint64_t id, char *out);
/* The name of a removed segment's file kept for reuse. */
void store_free_name(uint64_t id, char *out);
struct segment *store_seg_find(struct store *s, uint64_t id);
/* The segment holding id, or the first after it. */
struct segment *store_seg_at_or_after(struct store *s, uint64_t id);
struct seg_queue *store_seg_queue(struct segment *seg, struct endpoint *ep, uint8_t bucket,
				  bool create);
/* Counts count unread messages of bytes in all, the last expiring at
 * max_expires, in sq, one of seg's queues. */
void store_seg_queue_count(struct segment *seg, struct seg_queue *sq, uint32_t count,
			   uint64_t bytes, int64_t max_expires);
struct endpoint *store_endpoint_get(struct store *s, const char *name, bool create);

/* store_writer.c */
NODISCARD int writer_start(struct store *s, struct berr *err);
void writer_stop(struct store *s);
/* Writes the filled batch (pwrite, from the event loop: the io takes the
 * bytes and writes them in another thread); -1 with err when a write
 * failed. */
NODISCARD int batch_write(struct store *s, struct batch *b, struct berr *err);
/* Hands a written batch's completions and syncs to the sync thread (or,
 * without one, syncs now). */
NODISCARD int sync_submit(struct store *s, struct batch *b, struct berr *err);
/* The jobs whose sync is done, oldest first (NULL when none). */
struct sync_job *sync_take_completed(struct store *s);
/* Waits until every submitted job is completed (close, reopen). */
void sync_drain(struct store *s);
void sync_job_free(struct sync_job *j);
void batch_reset(struct batch *b);
void batch_free(struct batch *b);
/* Room for len bytes at the end of seg, in the batch; NULL out of memory. */
uint8_t *batch_reserve(struct batch *b, struct segment *seg, size_t len);
int batch_add_done(struct batch *b, const struct done *d);
int batch_add_unlink(struct batch *b, uint64_t seg, uint64_t bytes, bool keep);
int batch_add_close(struct batch *b, int h);

/* store_log.c: ACK records of the queues whose acknowledgements changed,
 * into the filled batch. */
void store_write_acks(struct store *s);

#endif
