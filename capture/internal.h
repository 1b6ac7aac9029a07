/* What the capture daemon's stage files share (capture/sensor.c: set-up,
 * privileges, the packet path and the loop; capture/files.c: capture files,
 * rotation and crash recovery of the spool; capture/sealer.c: sealing the
 * spool into bundles, the quota and the seal journal). Not a public
 * interface: capture_cmd.c uses capture/sensor.h only. */
#ifndef PF_CAPTURE_INTERNAL_H
#define PF_CAPTURE_INTERNAL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "capture/sensor.h"
#include "common/text.h"
#include "capture/pcapfile.h"
#include "common/fsutil.h"

#define ACTIVE_PREFIX ".active-"
#define STATS_SUFFIX  ".stats.json"
#define CLOCK_JUMP_NS 1000000000LL
/* In the state directory: written before a batch is sealed, removed once
 * its plaintext is gone (see write_journal()). Not in the spool: a full
 * spool must not stop the sealer that empties it. */
#define SEAL_JOURNAL ".sealing.json"
/* Packets may still sit in the kernel ring for up to the capture timeout
 * (100 ms) after their time: the timer waits that long past a boundary so
 * every packet stamped before it lands in the file it belongs to. */
#define ROTATE_GRACE_NS 250000000LL

/* What the capture thread and the sealer share, under lock. */
struct shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool work, done, paused;
    uint64_t outbox_bytes, outbox_bundles, bundles_made;
    char last_bundle[PF_BUNDLE_NAME_MAX];
    uint64_t last_seq;
    int fatal;
    pf_err err;
    json_t *pending_stats; /* pcap name -> statistics the spool had no room for */
    /* pcap name -> the order it was handed over in this run. Spool names
     * sort by their first packet's time, which is not capture order (-r
     * files of other times, a clock stepped back): the sealer follows this,
     * so seq order is file order, as Arkime without --flush needs. */
    json_t *handed;
    json_int_t handed_next;
};

struct file_stats {
    uint64_t seen, saved, not_saved_dont_save, not_saved_paused, not_saved_disk_full;
    struct pcap_stat base;
    int64_t start_ns, offset_start_ns, clock_jump_ns;
};

struct sensor {
    const pf_sensor_opts *o;
    pf_sensor_signals *sig;
    pcap_t *p;
    bool live;
    int spool_fd, outbox_fd, state_fd;
    pf_flows flows;
    json_t *capture_settings;
    struct shared sh;
    /* capture thread */
    pf_pcapw w;
    bool open;
    char active[NAME_MAX + 16], ready[NAME_MAX + 1];
    struct file_stats fs;
    int link_type;
    uint32_t snaplen;
    bool nano;
    int64_t deadline_mono, last_offset;
    int64_t file_boundary; /* the current window ends here (wall or packet time) */
    int64_t last_ts;       /* newest packet time seen */
    bool rotate_now, disk_full;
    uint64_t carry_seen, carry_full; /* of a file dropped as unrecoverable */
    bool outbox_fs_full;             /* sealing waits for free space (sealer thread) */
    int64_t disk_full_until;
    unsigned counter;
    uint64_t total_seen, total_saved, total_not_saved;
    struct pcap_stat last_ps;
    pf_err *e;
    bool failed;
    FILE **inputs; /* -r: opened as root, before the privilege drop */
};

void cap_event(struct sensor *s, enum pf_event_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int cap_close_file(struct sensor *s, const char *reason, int64_t end, pf_err *e);
void cap_count_discarded(struct sensor *s);
int cap_finish_interrupted_seal(struct sensor *s, pf_err *e);
int cap_hand_over(int dirfd, const char *path, uid_t uid, gid_t gid, pf_err *e);
int64_t cap_mono_ns(void);
void cap_notify_sealer(struct sensor *s);
int cap_open_file(struct sensor *s, int64_t start_ns, pf_err *e);
int cap_recover_spool(struct sensor *s, pf_err *e);
int cap_rotate(struct sensor *s, const char *reason, int64_t end, int64_t next_start_ns, pf_err *e);
int64_t cap_window_floor(int64_t ns, unsigned seconds);
/* The sealer thread (capture/sealer.c). */
void *cap_sealer_main(void *arg);

#endif
