/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Writing .owp session files (PROTOCOL.md 11): the file side of what
 * src/libowamp/ow-owp.h lays out. One writer for owampd's data directory,
 * owping -F/-T and owfetch, so that all three write the same octets the
 * same way.
 *
 * Two kinds of file:
 *
 *   - a receiver's (owampd's data directory, owping -F), written in place
 *     as the records arrive: the opening header, records appended, then at
 *     Stop-Sessions the records cleaned and the count, the skip ranges and
 *     "finished" patched in the reference's order (ow-owp.h), so that a
 *     concurrent reader never mistakes skip ranges for records and a crash
 *     leaves a file ow_owp_recover() repairs;
 *   - a fetched session's (owping -T, owfetch), written in one go: header,
 *     skip ranges, records.
 *
 * The caller opens the file (its flags, mode, locks and directory are its
 * own: O_EXCL and flock() for owampd, O_TRUNC for the clients) and closes
 * or unlinks it. Nothing here logs; errors are -errno or -OW_ERR_*.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ow-control.h"
#include "ow-owp.h"
#include "ow-types.h"

typedef struct OwpWriter {
        int fd;             /* -1: none */
        OwOwpHeader header; /* as written so far */
        uint32_t n_records; /* records in the file (after a finalize: those kept) */
        uint64_t size;      /* octets written: header, records, skip ranges */
        /* owp_writer_create_temp() only: the file's name while written,
         * and the name it gets once committed. */
        char *temp_path, *path;
} OwpWriter;

#define OWP_WRITER_NULL ((OwpWriter) { .fd = -1 })

/* Write the receiver's opening header (ow_owp_header_init_receiver()) at
 * offset 0 of fd, an empty file open for writing (and reading, for a
 * finalize that cleans). On success the writer holds fd; on failure fd
 * stays the caller's and w is unchanged. */
int owp_writer_start_receiver(OwpWriter *w, int fd, const OwSessionRequest *req);

/* Append n encoded records (OW_RECORD_SIZE octets each, as the worker
 * channel carries them) after those written. -EBADF without a file,
 * -EFBIG past 2^32-1 records. */
int owp_writer_append(OwpWriter *w, const uint8_t *records, size_t n);
/* The same from decoded records. */
int owp_writer_append_records(OwpWriter *w, const OwRecord *records, size_t n);

typedef struct OwpFinish {
        uint32_t next_seqno; /* the sender's Next Seqno (the caller clamps it to Number of Packets) */
        const OwSkipRange *skips;
        uint32_t n_skips;
        /* Drop first what Stop-Sessions invalidates (ow_owp_records_clean()),
         * reading the records back from the file; false when the caller
         * cleaned them already. */
        bool clean;
        OwTimestamp stop_time; /* for clean: the local time Stop-Sessions arrived */
        OwTimestamp timeout;   /* for clean: the session's Timeout */
        bool sync;             /* fdatasync() once finished */
} OwpFinish;

/* Stop-Sessions: clean (when asked), cut the file to the records kept,
 * then the count, the skip ranges and finished 1 with Next Seqno, in the
 * reference's order, and sync (when asked). A session the cleaning finds
 * invalid keeps its records and is marked finished 0 with the count and
 * no skip ranges (ow_owp_header_finish()); *ret_invalid says which. */
int owp_writer_finalize(OwpWriter *w, const OwpFinish *f, bool *ret_invalid);

/* A receiver's file that ends without Stop-Sessions: finished 2 and the
 * count (ow_owp_header_mark_incomplete()). -EBADF without a file. */
int owp_writer_mark_incomplete(OwpWriter *w);

/* The file's size as the file system has it, or what was written when
 * fstat() fails. */
uint64_t owp_writer_file_size(const OwpWriter *w);

/* Close the file: 0, or close()'s error (-errno). The writer holds no file
 * afterwards either way. A file of owp_writer_create_temp() that was not
 * committed is removed. */
int owp_writer_close(OwpWriter *w);

/* A receiver's file that appears under path only once it is whole (a
 * long-running client's, where a reader must never see one half
 * written): created as "path.XXXXXX" next to it (mode & ~umask), the
 * opening header written. Then append and finalize (or mark incomplete)
 * as above, and owp_writer_commit(): fsync, rename to path, close. */
int owp_writer_create_temp(OwpWriter *w, const char *path, mode_t mode, const OwSessionRequest *req);
int owp_writer_commit(OwpWriter *w);

/* A fetched session (the Fetch-Ack's finished, Next Seqno and counts,
 * the request with its slots, ack->n_skip_ranges skip ranges and
 * ack->n_records records) written to fd from its current offset: header,
 * skip ranges, records, as owping -T and the reference's owfetch write it. */
int owp_write_fetched(int fd, const OwSessionRequest *req, const OwFetchAck *ack, const OwSkipRange *skips,
                      const OwRecord *records);

/* Apply a repair ow_owp_recover() decided for the file fd: cut it to
 * rec->size when a partial record is left, then its patches in order.
 * On failure *ret_step says which step failed ("cutting its partial
 * record", "writing its header"). The caller syncs. */
int owp_file_repair(int fd, const OwOwpRecovery *rec, const char **ret_step);
