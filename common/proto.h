/* proto.h - the control protocol's vocabulary, for the daemon and vdsctl alike.
 *
 * The control socket speaks one JSON object per line each way (fs/control/req.c).
 * What both ends must spell the same way is here: the phases of a migration (which
 * are also what its on-disk journal records), the commands, and the keys of
 * requests and replies. A name written twice could drift apart; written here, the
 * compiler makes both ends agree.
 */
#ifndef VDS_PROTO_H
#define VDS_PROTO_H

#include <stdbool.h>

/* A migration's phase, in the order a successful one goes through them. The
 * journal (fs/mig/journal.c) records the same names. */
enum mig_phase {
	MIG_QUEUED,		/* waiting for the scheduler */
	MIG_PREPARING,		/* making the differencing file (journal only) */
	MIG_COPYING,		/* overlay on, base being copied */
	MIG_CONVERGING,		/* mirror on, one merge pass */
	MIG_SWITCHING,		/* the copy becomes the file */
	MIG_CANCELLING,		/* rolling back into the base */
	MIG_DONE,		/* final: the file lives on the destination */
	MIG_FAILED,		/* final */
	MIG_CANCELLED,		/* final */
	MIG_NPHASES
};

/* "queued", "copying", ... for a phase; "?" for a value out of range. */
const char *mig_phase_name(enum mig_phase p);
/* The phase called name, or -1. */
int mig_phase_parse(const char *name);
/* done, failed, cancelled: nothing will change any more. */
static inline bool mig_phase_final(enum mig_phase p)
{
	return p >= MIG_DONE;
}

/* Commands ("cmd"). */
#define CMD_DATASTORES	"datastores"
#define CMD_WHERE	"where"
#define CMD_MIGRATE	"migrate"
#define CMD_STATUS	"status"
#define CMD_CANCEL	"cancel"
#define CMD_EVENTS	"events"
#define CMD_TEST_RELEASE "test-release"	/* test builds only (fs/mig/testpoint.h) */

/* Keys of requests and replies. */
#define K_CMD		"cmd"
#define K_OK		"ok"
#define K_ERROR		"error"
#define K_NOTE		"note"
#define K_ID		"id"
#define K_IDS		"ids"
#define K_PATH		"path"
#define K_PATHS		"paths"
#define K_MOVES		"moves"
#define K_TO		"to"
#define K_FROM		"from"
#define K_BWLIMIT	"bwlimit"
#define K_PARALLEL	"parallel"
#define K_SPACE_MARGIN	"space_margin"
#define K_SPACE_CHECK	"space_check"
#define K_DATASTORES	"datastores"
#define K_NAME		"name"
#define K_FS		"fs"
#define K_SIZE		"size"
#define K_FREE		"free"
#define K_HELD		"held"
#define K_MIGRATIONS	"migrations"
#define K_WHERE		"where"
#define K_DATASTORE	"datastore"
#define K_TYPE		"type"
#define K_MIGRATION	"migration"
#define K_DROPPED	"dropped"
#define K_KEEP_FINISHED	"keep_finished"
#define K_EVENTS	"events"
#define K_SEQ		"seq"
#define K_TS_NS		"ts_ns"
#define K_EVENT		"event"
#define K_PHASE		"phase"
#define K_BYTES_COPIED	"bytes_copied"
#define K_BYTES_TOTAL	"bytes_total"
#define K_RATE		"rate"
#define K_ETA_S		"eta_s"
#define K_DIFF_BYTES	"diff_bytes"
#define K_MERGED_BYTES	"merged_bytes"
#define K_COPY_MS	"copy_ms"
#define K_CONVERGE_MS	"converge_ms"
#define K_FLUSH_MS	"flush_ms"
#define K_PAUSE_MS	"pause_ms"
#define K_CLEANUP_MS	"cleanup_ms"
#define K_QUEUED_NS	"queued_ns"
#define K_STARTED_NS	"started_ns"
#define K_ENDED_NS	"ended_ns"
#define K_STARTED_SEQ	"started_seq"
#define K_ENDED_SEQ	"ended_seq"
#define K_RECOVERED	"recovered"
#define K_RESUMED	"resumed"
#define K_RESUMED_FROM	"resumed_from"
#define K_RECOPIED	"bytes_recopied"
#define K_HELD_AT	"held_at"

#endif
