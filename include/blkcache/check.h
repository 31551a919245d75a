/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Offline consistency check of a cache device (and, optionally, of the label
 * on its origin).  Nothing is written.  Every finding is passed to a
 * callback; the library never prints.
 *
 * Severity rule.  A crash (kill -9, or a power loss on a device that honours
 * flushes) can only leave states that recovery is designed for; those are
 * NOTICEs.  Anything a crash cannot produce is an ERROR:
 *
 *   notice: a valid segment header beyond the end of the log (written out
 *           of order, the one before it not), a data checksum mismatch in a
 *           segment that nothing vouches for as flushed (a torn segment: the
 *           log ends at its first bad entry, as recovery decides), a header with a bad
 *           checksum in the free positions just after the log, where writes
 *           in flight at a crash land (at most min(nr_segments/2, 1024), the
 *           most segment buffers a server can have).
 *   error:  a damaged superblock copy (even when the other one is fine), a
 *           log that ends before a segment that a later header's flushed_seq
 *           or the superblock's last_seq says had been written (recovery
 *           would silently drop writes known to be on disk), a data checksum
 *           mismatch in a segment vouched for as flushed (recovery does not
 *           verify those), a valid header holding impossible values (wrong
 *           ring position, bad entries, flushed_seq >= seq, a sequence too
 *           far beyond the end to have been in flight), a valid header older
 *           than the segment last written at its position (a lost write), a
 *           damaged header or garbage where a written-back segment was and
 *           no write can have been in flight, a header of this format whose
 *           geometry is wrong, and origin label mismatches.
 *
 * "Vouched for": segment S is known to have been written when a valid header
 * has flushed_seq >= S, or the superblock has last_seq >= S (with the CLEAN
 * flag after a flush; without it, once the write of S had completed).
 */
#ifndef BLKCACHE_CHECK_H
#define BLKCACHE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bc_check_severity {
	BC_CHECK_NOTICE = 1, /* a normal state after a crash: recovery handles it */
	BC_CHECK_ERROR = 2,  /* damage, or a state no crash can leave */
};

/* Where a finding is; which location fields of the finding are set. */
enum bc_check_area {
	BC_CHECK_DEVICE,     /* the cache device as a whole */
	BC_CHECK_SUPERBLOCK, /* sb_copy */
	BC_CHECK_LOG,        /* the log as a whole (seq/pos: where it ends, if set) */
	BC_CHECK_SEGMENT,    /* seq (0 if the header gives none), pos */
	BC_CHECK_ENTRY,      /* seq, pos, entry, block */
	BC_CHECK_DATA,       /* seq, pos, entry, block: the entry's data block */
	BC_CHECK_LABEL,      /* the label on the origin */
};

/* What recovery (the start of 'serve') would make of it. */
enum bc_check_recovery {
	BC_CHECK_REC_COPES,     /* handled; nothing known to be written is lost */
	BC_CHECK_REC_DATA_LOSS, /* serve starts, but data is lost or wrong */
	BC_CHECK_REC_REFUSES,   /* serve refuses to start */
};

struct bc_check_finding {
	enum bc_check_severity severity;
	enum bc_check_area area;
	enum bc_check_recovery recovery;
	int sb_copy;      /* 0 or 1; -1 when not about a superblock copy */
	uint64_t seq;     /* segment sequence number; 0 = none */
	int64_t pos;      /* ring position; -1 = none */
	int64_t entry;    /* entry index in the segment; -1 = none */
	uint64_t block;   /* origin block of the entry (when entry >= 0) */
	const char *msg;  /* what is wrong and what recovery does; valid during the call */
	/* bc_cache_check_origin() only: */
	const char *origin; /* format v3: the origin whose record or ring it is about, or NULL */
};

struct bc_check_ops {
	void (*finding)(void *arg, const struct bc_check_finding *f);
};

struct bc_check_result {
	bool superblock_ok;         /* a valid superblock copy was found (fields below) */
	bool ring_checked;          /* the ring and the log were checked */
	bool origin_checked;        /* an origin was given and opened */
	bool origin_labeled;        /* it carries a label (else: identity recorded on the cache) */
	int sb_copy;                /* current copy, -1 if none */
	uint64_t sb_generation;
	char cache_uuid[37], origin_uuid[37];     /* printed form */
	uint64_t cache_size, export_size, origin_size;
	uint32_t segment_size, nr_segments, header_blocks, data_blocks;
	uint32_t mode, flags;       /* enum bc_mode, BC_SB_* */
	bool clean_shutdown, detached; /* flags BC_SB_CLEAN, BC_SB_DETACHED */
	uint64_t written_back_seq, last_seq;
	uint64_t chain_end;         /* last segment of the header chain from written_back_seq+1 */
	uint64_t log_end;           /* where recovery ends the log (at a torn segment's first
				     * bad entry: the segment stays if entries precede it) */
	uint64_t flushed_seq;       /* recovery's flushed point: no data verification up to it */
	uint64_t log_segments;      /* log_end - written_back_seq */
	uint64_t entries, dirty_entries; /* in the log up to log_end */
	uint64_t data_blocks_verified, data_mismatches;
	uint64_t headers_valid, headers_beyond; /* valid headers of this format; beyond log_end */
	char end_reason[160];       /* why the chain ends where it does */
	unsigned errors, notices;
	char why[320];              /* when bc_cache_check() fails: why nothing could be checked */
	/* bc_cache_check_origin() only (bc_cache_check() fills the fields above): */
	uint32_t format_version;
	uint32_t origins;           /* format v3: attached origins in the table */
	uint32_t origins_checked;   /* rings checked (the fields above describe the last) */
	uint32_t reserved0;
	char origin_name[64];       /* the last origin checked */
	char origin_names[1024];    /* every attached origin, quoted, separated by ", " */
};

/*
 * Check the cache device at @cache_path and, if @origin_path is not NULL,
 * the label on that origin.  Findings go to @ops->finding (may be NULL);
 * @res gets the summary.  Returns 0 when the check ran (res->errors says
 * whether problems were found), or -errno when it could not run at all
 * (a device cannot be opened: -EBUSY when a running server holds it; out of
 * memory), with res->why set.
 */
int bc_cache_check(const char *cache_path, const char *origin_path, const struct bc_check_ops *ops,
		   void *arg, struct bc_check_result *res);
/* The same, for format v3 caches with several origins: checks the origin
 * table and the ring of the origin named @origin_name, else of the origin
 * that is @origin_path, else of every attached origin in turn (findings
 * name their origin). */
int bc_cache_check_origin(const char *cache_path, const char *origin_path, const char *origin_name,
			  const struct bc_check_ops *ops, void *arg, struct bc_check_result *res);

/* "superblock copy 1", "segment seq 12 at ring position 12, entry 3 (origin
 * block 4096)", ... into @buf; returns @buf. */
const char *bc_check_locate(const struct bc_check_finding *f, char *buf, size_t len);
/* "copes", "data loss", "refuses to start" */
const char *bc_check_recovery_name(enum bc_check_recovery r);

#endif
