/* The records of the store's log (private to hub/), as they are on disk.
 *
 * A segment file is a run of frames:
 *     u32 len   payload bytes, little endian (1 .. STORE_RECORD_MAX)
 *     u32 crc   CRC32C of the four len bytes, then of the payload, XORed
 *               with the segment's mask (none for the HEADER record)
 *     payload   u8 type, then what the type says, all integers LEB128
 * and begins with a HEADER record. A segment file is reused once nothing in
 * it is live: the mask, a function of the segment number, tells its frames
 * from those of the file's earlier lives past its end. A message is one MESSAGE record however
 * many endpoints it goes to; endpoints are named by ENDPOINT records and
 * referred to by number; ACK records hold one queue's acknowledgements.
 * After a crash the files are outside input: every decoder bounds every
 * length and refuses what does not add up. */
#ifndef BERTH_HUB_STORE_RECORD_H
#define BERTH_HUB_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/message.h"
#include "hub/store.h"

#define STORE_LOG_VERSION     2 /* 1: no checksum masks (read, never written) */
#define STORE_LOG_VERSION_MIN 1
#define STORE_LOG_MAGIC	      "BERTHLOG"
#define STORE_FRAME_HEAD      8
#define STORE_RECORD_MAX      (2 * 1024 * 1024) /* a 256 KiB body with 64 large properties fits */
#define STORE_TARGETS_MAX     256		/* endpoints of one message (the routes' bound) */
#define STORE_ACKED_MAX	      1024		/* acknowledged messages above a queue's floor */
#define STORE_BUCKETS	      11		/* priorities 0-9, then routes without one */
#define STORE_PRIORITY_NONE   10

enum store_rec_type {
	REC_HEADER = 1,
	REC_ENDPOINT = 2,
	REC_MESSAGE = 3,
	REC_ACK = 4,
};

/* Where a record is: segment number and byte offset in it. */
struct store_pos {
	uint64_t seg;
	uint64_t off;
};

struct rec_header {
	uint32_t version;
	uint64_t segment;
	uint64_t next_seq; /* no message with a smaller seq was written after this */
	int64_t created_ms;
};

struct rec_endpoint {
	uint32_t id;
	char name[STORE_ENDPOINT_MAX + 1];
};

struct rec_target {
	uint32_t endpoint;
	uint8_t bucket; /* 0-9, STORE_PRIORITY_NONE */
	uint32_t ttl_secs;
};

/* A message record's head; the targets and the content stay encoded. */
struct rec_message {
	uint64_t seq;
	int64_t enqueued_ms;
	uint32_t n_targets;
	const uint8_t *targets, *targets_end;
	const uint8_t *content, *content_end;
};

struct rec_acked {
	uint64_t seq;
	uint64_t seg;
};

/* A queue's acknowledgements: every message of (endpoint, bucket) with a seq
 * below floor_seq is done, and so are those in acked (increasing seqs, all
 * above floor_seq); floor is where the first message not done may be. The
 * decoder fills acked, which has room for STORE_ACKED_MAX. */
struct rec_ack {
	uint32_t endpoint;
	uint8_t bucket;
	uint64_t floor_seq;
	struct store_pos floor;
	uint32_t n_acked;
	struct rec_acked *acked;
};

/* The checksum mask of segment seg's frames (version 2), never 0 for a
 * segment, and back: the segment number's low 32 bits of a mask. */
uint32_t rec_mask_of(uint64_t seg);
uint32_t rec_mask_segment(uint32_t mask);
/* The frame at buf, its checksum XORed with mask: 1 whole and intact
 * (*frame bytes in all), 0 cut short by the end of avail, -1 not a frame
 * (bad length or checksum). */
int rec_frame_check(const uint8_t *buf, size_t avail, size_t *frame, uint32_t mask);
/* The mask that would make the whole frame at buf intact (*frame bytes):
 * 1, 0 cut short, -1 not a frame (bad length). */
int rec_frame_mask(const uint8_t *buf, size_t avail, size_t *frame, uint32_t *mask);
/* The end mark of a segment's frames (STORE_END_MARK bytes: a frame
 * length of 0, then the mask XORed with a constant, so that neither a
 * length damaged to 0 nor an earlier life's mark reads as one). */
#define STORE_END_MARK 8
void rec_end_mark(uint8_t *p, uint32_t mask);
bool rec_is_end_mark(const uint8_t *p, uint32_t mask);
/* XORs mask into the checksums of the whole frames in buf[0, len). */
void rec_frames_mask(uint8_t *buf, size_t len, uint32_t mask);
/* Writes len and crc in front of a payload already at buf + STORE_FRAME_HEAD. */
void rec_frame_seal(uint8_t *buf, size_t payload_len);

/* Payload decoders: 0, or -1 when it is not a valid record of that type. */
int rec_decode_header(const uint8_t *p, size_t len, struct rec_header *out);
int rec_decode_endpoint(const uint8_t *p, size_t len, struct rec_endpoint *out);
int rec_decode_message(const uint8_t *p, size_t len, struct rec_message *out);
/* The next target of m (*it starts at m->targets): 1, 0 after the last. */
int rec_next_target(const struct rec_message *m, const uint8_t **it, struct rec_target *t);
/* The content into a hub message (its strings and body malloc'd): 0, -1
 * malformed, -2 out of memory. */
int rec_decode_content(const struct rec_message *m, struct hub_message *out);
int rec_decode_ack(const uint8_t *p, size_t len, struct rec_ack *out);

/* Encoders write whole frames (header included) at dst and return their
 * size; called with dst NULL they only return it. rec_renumber() sets the
 * seq of an encoded message frame and seals it again. */
size_t rec_encode_header(uint8_t *dst, const struct rec_header *h);
size_t rec_encode_endpoint(uint8_t *dst, uint32_t id, const char *name);
size_t rec_encode_message(uint8_t *dst, uint64_t seq, const struct hub_message *m,
			  const struct rec_target *targets, size_t n);
size_t rec_encode_ack(uint8_t *dst, const struct rec_ack *a);
void rec_renumber(uint8_t *frame, uint64_t seq);

#endif
