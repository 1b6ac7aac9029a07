/* pcapferry import: options, config file, progress and printing only. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/config.h"
#include "common/log.h"
#include "common/text.h"
#include "import/import_cmd.h"
#include "import/importer.h"

#define DEFAULT_CONFIG "/etc/pcapferry/import.conf"
#define MAX_SOURCES    64
#define MAX_EXEC_ARGS  63

const char pf_import_usage[] =
    "usage: pcapferry import [options] SOURCE...\n"
    "       pcapferry import --status --state DIR [--json]\n"
    "\n"
    "Verifies every bundle under SOURCE (bundle files or directories, searched\n"
    "recursively: a USB stick, an rsync target) and delivers its captures\n"
    "exactly once into INGEST/<sensor>/, where Arkime's capture -m -R picks them up.\n"
    "\n"
    "  --key FILE               the central secret key\n"
    "  --keyring DIR            trusted sensor keys (pcapferry keys trust)\n"
    "  --state DIR              import state: database, lock, signed manifests\n"
    "  --ingest DIR             the directory Arkime watches\n"
    "  --quarantine DIR         rejected bundles and held files (default STATE/quarantine)\n"
    "  --receipts DIR           also write the signed receipts to DIR/<sensor>/ (rsync\n"
    "                           setups; for a USB export they go back onto the stick)\n"
    "  --exec 'CMD ARGS'        run for each delivered pcap, no shell; {file} {sensor}\n"
    "                           {seq} are replaced, e.g. '/opt/arkime/bin/capture --copy\n"
    "                           -n {sensor} -t sensor:{sensor} -r {file}'\n"
    "  --arkime-read-truncated  Arkime has readTruncatedPackets=true: deliver pcaps\n"
    "                           with truncated packets instead of holding them\n"
    "  --delete-source          remove each source bundle once committed (rsync targets)\n"
    "  --watch                  stay up: import bundles as they land; SIGTERM stops\n"
    "  --rescan SECONDS         --watch: full rescan interval (default 60)\n"
    "  --settle-ms N            pause after creating a sensor directory so Arkime can\n"
    "                           watch it (default 1000)\n"
    "  --batch N                bundles per group commit: one flush per step for N\n"
    "                           bundles (default 64); 1: each bundle on its own\n"
    "  --jobs N                 import N sensors' bundles side by side, each sensor's\n"
    "                           in seq order (default: the number of CPUs)\n"
    "  --arkime-socket PATH     hand each file to capture's --command-socket (add-file\n"
    "                           --notify) and wait for its answer, instead of announcing\n"
    "                           it to monitor mode\n"
    "  --config FILE            settings as 'key = value' (default " DEFAULT_CONFIG ")\n"
    "  -q, --quiet              only errors and the summary;  -v, --verbose: more\n"
    "  --syslog                 log events and the summary to syslog (daemon facility)\n"
    "\n"
    "Every option can be set in the config file, plus 'source = DIR' lines, so day to\n"
    "day it is 'pcapferry import /media/usb'.\n"
    "Exit status: 0 ok; 1 a bundle was rejected; 2 usage or environment; 75 retry later\n"
    "(incomplete bundles, disk full, another import running).\n";

#define IMPORT_BATCH_MAX 4096u

struct settings {
    char *key, *keyring, *state, *ingest, *quarantine, *exec, *receipts, *arkime_socket;
    char *sources[MAX_SOURCES];
    size_t nsources;
    bool read_truncated, delete_source, watch, status, json, syslog;
    unsigned rescan, settle_ms, batch, jobs;
    int verbosity; /* -1 quiet, 0 normal, 1 verbose */
};

static int config_setting(void *ctx, const char *k, const char *v, int lineno, pf_err *e)
{
    struct settings *s = ctx;
    uint64_t u;
    (void)lineno;
    if (strcmp(k, "key") == 0)
        return pf_cli_set_str(&s->key, v);
    if (strcmp(k, "keyring") == 0)
        return pf_cli_set_str(&s->keyring, v);
    if (strcmp(k, "state") == 0)
        return pf_cli_set_str(&s->state, v);
    if (strcmp(k, "ingest") == 0)
        return pf_cli_set_str(&s->ingest, v);
    if (strcmp(k, "quarantine") == 0)
        return pf_cli_set_str(&s->quarantine, v);
    if (strcmp(k, "exec") == 0)
        return pf_cli_set_str(&s->exec, v);
    if (strcmp(k, "receipts") == 0)
        return pf_cli_set_str(&s->receipts, v);
    if (strcmp(k, "arkime-socket") == 0)
        return pf_cli_set_str(&s->arkime_socket, v);
    if (strcmp(k, "source") == 0) {
        if (s->nsources >= MAX_SOURCES)
            return pf_err_set(e, PF_EUSAGE, "too many sources");
        s->sources[s->nsources] = strdup(v);
        return s->sources[s->nsources++] != NULL ? 0 : -1;
    }
    if (strcmp(k, "arkime-read-truncated") == 0 && pf_cli_parse_bool(v, &s->read_truncated))
        return 0;
    if (strcmp(k, "delete-source") == 0 && pf_cli_parse_bool(v, &s->delete_source))
        return 0;
    if (strcmp(k, "syslog") == 0 && pf_cli_parse_bool(v, &s->syslog))
        return 0;
    if (strcmp(k, "rescan") == 0 && pf_parse_u64(v, &u) && u > 0 && u < 86400) {
        s->rescan = (unsigned)u;
        return 0;
    }
    if (strcmp(k, "settle-ms") == 0 && pf_parse_u64(v, &u) && u < 60000) {
        s->settle_ms = (unsigned)u;
        return 0;
    }
    if (strcmp(k, "jobs") == 0 && pf_parse_u64(v, &u) && u >= 1 && u <= PF_IMPORT_JOBS_MAX) {
        s->jobs = (unsigned)u;
        return 0;
    }
    if (strcmp(k, "batch") == 0 && pf_parse_u64(v, &u) && u >= 1 && u <= IMPORT_BATCH_MAX) {
        s->batch = (unsigned)u;
        return 0;
    }
    return pf_err_set(e, PF_EUSAGE, "unknown setting or bad value: %s = %s", k, v);
}

static void free_settings(struct settings *s)
{
    free(s->key);
    free(s->keyring);
    free(s->state);
    free(s->ingest);
    free(s->quarantine);
    free(s->exec);
    free(s->receipts);
    free(s->arkime_socket);
    for (size_t i = 0; i < s->nsources; i++)
        free(s->sources[i]);
}

static volatile int stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct ui {
    int verbosity;
    bool tty;
    struct timespec start;
    bool progress_shown;
};

static void on_event(void *ctx, enum pf_event_level level, const char *line)
{
    struct ui *ui = ctx;
    int threshold = ui->verbosity < 0 ? PF_EV_WARN : ui->verbosity == 0 ? PF_EV_INFO : PF_EV_DEBUG;
    if ((int)level > threshold)
        return;
    if (ui->progress_shown) {
        fputs("\r\033[K", stderr);
        ui->progress_shown = false;
    }
    /* stderr (journal-aware) or syslog */
    pf_log_line((enum pf_log_level)level, "import", line);
}

static void on_progress(void *ctx, const pf_import_progress *p)
{
    struct ui *ui = ctx;
    struct timespec now;
    if (!ui->tty || ui->verbosity < 0)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs =
        (double)(now.tv_sec - ui->start.tv_sec) + (double)(now.tv_nsec - ui->start.tv_nsec) / 1e9;
    double mb = (double)p->bytes_done / 1e6;
    fprintf(stderr, "\r\033[Kimporting: %zu/%zu bundles, %.1f/%.1f MB, %.1f MB/s", p->done,
            p->total, mb, (double)p->bytes_total / 1e6, secs > 0 ? mb / secs : 0.0);
    ui->progress_shown = true;
}

static void split_exec(char *cmd, char **argv, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(cmd, " \t"); tok != NULL && n < max; tok = strtok(NULL, " \t"))
        argv[n++] = tok;
    argv[n] = NULL;
}

static void print_ts(char *out, size_t cap, int64_t ns)
{
    if (ns == 0)
        snprintf(out, cap, "-");
    else
        pf_isotime_ns(out, cap, ns);
}

static int print_status(const struct settings *s)
{
    pf_err e;
    pf_sensor_status *v = NULL;
    size_t n = 0;
    pf_err_clear(&e);
    if (pf_import_status(s->state, &v, &n, &e) != 0)
        return pf_cli_fail(&e);
    if (s->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            char first[PF_ISOTIME_BYTES], last[PF_ISOTIME_BYTES];
            print_ts(first, sizeof first, v[i].first_ts);
            print_ts(last, sizeof last, v[i].last_ts);
            json_array_append_new(
                arr,
                json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:I, s:I, s:s, s:I, s:I}",
                          "sensor", v[i].sensor, "last_seq", (json_int_t)v[i].last_seq, "bundles",
                          (json_int_t)v[i].bundles, "files", (json_int_t)v[i].files, "packets",
                          (json_int_t)v[i].packets, "bytes", (json_int_t)v[i].bytes, "first_packet",
                          first, "last_packet", last, "drops_reported", (json_int_t)v[i].drops,
                          "gaps", (json_int_t)v[i].ngaps, "missing_seqs", v[i].gaps, "quarantined",
                          (json_int_t)v[i].quarantined, "held_files", (json_int_t)v[i].held));
        }
        char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(arr);
        if (text != NULL)
            puts(text);
        free(text);
        free(v);
        return 0;
    }
    printf("%-16s %10s %8s %8s %12s %14s %-24s %-24s %8s %6s %6s %5s\n", "SENSOR", "LAST SEQ",
           "BUNDLES", "FILES", "PACKETS", "BYTES", "FIRST PACKET", "LAST PACKET", "DROPS", "GAPS",
           "QUAR", "HELD");
    for (size_t i = 0; i < n; i++) {
        char first[PF_ISOTIME_BYTES], last[PF_ISOTIME_BYTES];
        print_ts(first, sizeof first, v[i].first_ts);
        print_ts(last, sizeof last, v[i].last_ts);
        first[19] = last[19] = '\0'; /* seconds are enough in a table */
        printf("%-16s %10" PRIu64 " %8" PRIu64 " %8" PRIu64 " %12" PRIu64 " %14" PRIu64
               " %-24s %-24s %8" PRIu64 " %6" PRIu64 " %6" PRIu64 " %5" PRIu64 "\n",
               v[i].sensor, v[i].last_seq, v[i].bundles, v[i].files, v[i].packets, v[i].bytes,
               first, last, v[i].drops, v[i].ngaps, v[i].quarantined, v[i].held);
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].ngaps > 0)
            printf("missing from %s: seq %s\n", v[i].sensor, v[i].gaps);
    free(v);
    return 0;
}

int pf_import_main(int argc, char **argv)
{
    enum {
        O_KEY = 256,
        O_KEYRING,
        O_STATE,
        O_INGEST,
        O_QUAR,
        O_EXEC,
        O_TRUNC,
        O_DELETE,
        O_WATCH,
        O_RESCAN,
        O_SETTLE,
        O_CONFIG,
        O_STATUS,
        O_JSON,
        O_RECEIPTS,
        O_SYSLOG,
        O_SOCK,
        O_BATCH,
        O_JOBS
    };
    static const struct option longopts[] = {{"key", required_argument, NULL, O_KEY},
                                             {"keyring", required_argument, NULL, O_KEYRING},
                                             {"state", required_argument, NULL, O_STATE},
                                             {"ingest", required_argument, NULL, O_INGEST},
                                             {"quarantine", required_argument, NULL, O_QUAR},
                                             {"exec", required_argument, NULL, O_EXEC},
                                             {"arkime-read-truncated", no_argument, NULL, O_TRUNC},
                                             {"delete-source", no_argument, NULL, O_DELETE},
                                             {"watch", no_argument, NULL, O_WATCH},
                                             {"rescan", required_argument, NULL, O_RESCAN},
                                             {"settle-ms", required_argument, NULL, O_SETTLE},
                                             {"config", required_argument, NULL, O_CONFIG},
                                             {"status", no_argument, NULL, O_STATUS},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"receipts", required_argument, NULL, O_RECEIPTS},
                                             {"syslog", no_argument, NULL, O_SYSLOG},
                                             {"arkime-socket", required_argument, NULL, O_SOCK},
                                             {"batch", required_argument, NULL, O_BATCH},
                                             {"jobs", required_argument, NULL, O_JOBS},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct settings s = {.rescan = 60, .settle_ms = 1000, .batch = 64};
    struct settings cli = {.rescan = 0, .settle_ms = UINT32_MAX, .batch = 0, .jobs = 0};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    s.jobs = ncpu < 1 ? 1 : ncpu > PF_IMPORT_JOBS_MAX ? PF_IMPORT_JOBS_MAX : (unsigned)ncpu;
    const char *config = NULL;
    pf_err e;
    pf_seckey *central = NULL;
    pf_importer *imp = NULL;
    char *exec_argv[MAX_EXEC_ARGS + 1];
    int rc = 2, c;
    uint64_t u;

    pf_err_clear(&e);
    optind = 1;
    while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
        switch (c) {
        case O_KEY:
            pf_cli_set_str(&cli.key, optarg);
            break;
        case O_KEYRING:
            pf_cli_set_str(&cli.keyring, optarg);
            break;
        case O_STATE:
            pf_cli_set_str(&cli.state, optarg);
            break;
        case O_INGEST:
            pf_cli_set_str(&cli.ingest, optarg);
            break;
        case O_QUAR:
            pf_cli_set_str(&cli.quarantine, optarg);
            break;
        case O_EXEC:
            pf_cli_set_str(&cli.exec, optarg);
            break;
        case O_TRUNC:
            cli.read_truncated = true;
            break;
        case O_DELETE:
            cli.delete_source = true;
            break;
        case O_WATCH:
            cli.watch = true;
            break;
        case O_RESCAN:
            if (!pf_parse_u64(optarg, &u) || u == 0 || u >= 86400)
                return pf_cli_usage("import", "--rescan: '%s' is not 1..86399 seconds", optarg);
            cli.rescan = (unsigned)u;
            break;
        case O_SETTLE:
            if (!pf_parse_u64(optarg, &u) || u >= 60000)
                return pf_cli_usage("import", "--settle-ms: '%s' is not 0..59999", optarg);
            cli.settle_ms = (unsigned)u;
            break;
        case O_JOBS:
            if (!pf_parse_u64(optarg, &u) || u == 0 || u > PF_IMPORT_JOBS_MAX)
                return pf_cli_usage("import", "--jobs: '%s' is not 1..%d", optarg,
                                    PF_IMPORT_JOBS_MAX);
            cli.jobs = (unsigned)u;
            break;
        case O_BATCH:
            if (!pf_parse_u64(optarg, &u) || u == 0 || u > IMPORT_BATCH_MAX)
                return pf_cli_usage("import", "--batch: '%s' is not 1..%u", optarg,
                                    IMPORT_BATCH_MAX);
            cli.batch = (unsigned)u;
            break;
        case O_CONFIG:
            config = optarg;
            break;
        case O_STATUS:
            cli.status = true;
            break;
        case O_JSON:
            cli.json = true;
            break;
        case O_RECEIPTS:
            pf_cli_set_str(&cli.receipts, optarg);
            break;
        case O_SOCK:
            pf_cli_set_str(&cli.arkime_socket, optarg);
            break;
        case O_SYSLOG:
            cli.syslog = true;
            break;
        case 'q':
            cli.verbosity = -1;
            break;
        case 'v':
            cli.verbosity = 1;
            break;
        case 'h':
            free_settings(&cli);
            fputs(pf_import_usage, stdout);
            return 0;
        default:
            free_settings(&cli);
            return pf_cli_usage("import", "bad option");
        }
    }
    /* The config file first, the command line over it. */
    if (pf_config_load(config != NULL ? config : DEFAULT_CONFIG, config != NULL, config_setting, &s,
                       &e) != 0) {
        rc = pf_cli_fail(&e);
        goto out;
    }
#define OVERRIDE(f)                                                                                \
    if (cli.f != NULL) {                                                                           \
        free(s.f);                                                                                 \
        s.f = cli.f;                                                                               \
        cli.f = NULL;                                                                              \
    }
    OVERRIDE(key)
    OVERRIDE(keyring)
    OVERRIDE(state)
    OVERRIDE(ingest)
    OVERRIDE(quarantine)
    OVERRIDE(exec)
    OVERRIDE(receipts)
    OVERRIDE(arkime_socket)
#undef OVERRIDE
    s.read_truncated |= cli.read_truncated;
    s.delete_source |= cli.delete_source;
    s.syslog |= cli.syslog;
    s.watch = cli.watch;
    s.status = cli.status;
    s.json = cli.json;
    s.verbosity = cli.verbosity;
    if (cli.rescan != 0)
        s.rescan = cli.rescan;
    if (cli.settle_ms != UINT32_MAX)
        s.settle_ms = cli.settle_ms;
    if (cli.batch != 0)
        s.batch = cli.batch;
    if (cli.jobs != 0)
        s.jobs = cli.jobs;
    if (optind < argc) { /* sources on the command line replace the configured ones */
        for (size_t i = 0; i < s.nsources; i++)
            free(s.sources[i]);
        s.nsources = 0;
        for (int i = optind; i < argc && s.nsources < MAX_SOURCES; i++)
            s.sources[s.nsources++] = strdup(argv[i]);
    }

    if (s.status) {
        if (s.state == NULL) {
            rc = pf_cli_usage("import", "--status needs --state DIR");
            goto out;
        }
        rc = print_status(&s);
        goto out;
    }
    if (s.key == NULL || s.keyring == NULL || s.state == NULL || s.ingest == NULL) {
        rc = pf_cli_usage("import", "import needs --key, --keyring, --state and --ingest (on the "
                                    "command line or in the config file)");
        goto out;
    }
    if (s.nsources == 0) {
        rc = pf_cli_usage("import", "no SOURCE given (bundle files or directories)");
        goto out;
    }
    central = pf_seckey_load_as(s.key, PF_ROLE_CENTRAL, &e);
    if (central == NULL) {
        rc = pf_cli_fail(&e);
        goto out;
    }
    if (s.exec != NULL)
        split_exec(s.exec, exec_argv, MAX_EXEC_ARGS);
    pf_log_open(s.syslog);
    struct ui ui = {.verbosity = s.verbosity, .tty = isatty(2) != 0 && !s.syslog};
    clock_gettime(CLOCK_MONOTONIC, &ui.start);
    pf_import_opts o = {.central = central,
                        .keyring = s.keyring,
                        .state_dir = s.state,
                        .ingest_dir = s.ingest,
                        .quarantine_dir = s.quarantine,
                        .receipts_dir = s.receipts,
                        .exec_argv = s.exec != NULL && exec_argv[0] != NULL ? exec_argv : NULL,
                        .read_truncated = s.read_truncated,
                        .delete_source = s.delete_source,
                        .settle_ms = s.settle_ms,
                        .batch = s.batch,
                        .jobs = s.jobs,
                        .arkime_socket = s.arkime_socket,
                        .event = on_event,
                        .progress = on_progress,
                        .ctx = &ui};
    imp = pf_importer_open(&o, &e);
    if (imp == NULL) {
        rc = pf_cli_fail(&e);
        if (pf_log_to_syslog())
            pf_log_line(PF_LOG_ERROR, "import", e.msg[0] ? e.msg : "failed");
        goto out;
    }
    pf_import_counts n;
    memset(&n, 0, sizeof n);
    int r;
    if (s.watch) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        r = pf_importer_watch(imp, s.sources, s.nsources, s.rescan, &stop_requested, &n, &e);
    } else {
        r = pf_importer_run(imp, s.sources, s.nsources, &n, &e);
    }
    if (ui.progress_shown)
        fputs("\r\033[K", stderr);
    char summary[512], rfail[96] = "", cut[96] = "";
    if (n.receipts_failed > 0)
        snprintf(rfail, sizeof rfail, ", %zu receipt(s) NOT written: sources kept, run again",
                 n.receipts_failed);
    if (n.files_trimmed > 0 || n.files_split > 0)
        snprintf(cut, sizeof cut, ", %zu trimmed, %zu pcapng split (originals held)",
                 n.files_trimmed, n.files_split);
    snprintf(summary, sizeof summary,
             "%zu new, %zu already imported, %zu rejected, %zu gaps "
             "(%zu files delivered, %zu held, %zu incomplete bundles%s%s%s)",
             n.imported, n.duplicates, n.rejected, n.gaps, n.files_delivered, n.files_held,
             n.incomplete, cut, n.equivocations ? ", EQUIVOCATION seen: see the log" : "", rfail);
    if (pf_log_to_syslog())
        pf_log_line(n.rejected > 0 || n.equivocations ? PF_LOG_WARN : PF_LOG_INFO, "import",
                    summary);
    else
        fprintf(stderr, "pcapferry import: %s\n", summary);
    if (r != 0) {
        rc = pf_cli_fail(&e);
        if (pf_log_to_syslog())
            pf_log_line(PF_LOG_ERROR, "import", e.msg[0] ? e.msg : "failed");
    } else if (n.rejected > 0)
        rc = 1;
    else if ((n.incomplete > 0 || n.receipts_failed > 0) && !s.watch)
        rc = 75; /* try again later (--watch retries them itself) */
    else
        rc = 0;
out:
    pf_importer_close(imp);
    pf_seckey_free(central);
    free_settings(&s);
    free_settings(&cli);
    return rc;
}
