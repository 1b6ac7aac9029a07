/* pcapferry capture: options, config file, environment, signals and
 * printing only. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/capture_cmd.h"
#include "bundle/bundle.h"
#include "capture/sensor.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/log.h"
#include "common/text.h"

#define DEFAULT_CONFIG "/etc/pcapferry/sensor.conf"
#define MAX_READ_FILES 4096

const char pf_capture_usage[] =
    "usage: pcapferry capture [-i IFACE | -r FILE [-r FILE]...] [options] [BPF filter]\n"
    "\n"
    "Captures with libpcap, rotates by size or clock-aligned time, and seals every\n"
    "finished pcap into a bundle in the outbox (the sensor cannot read it back).\n"
    "\n"
    "tcpdump-compatible:\n"
    "  -i IFACE        interface ('any' is refused unless --allow-any)\n"
    "  -r FILE         read a capture file instead; repeat -r for several\n"
    "  -s SNAPLEN      bytes kept per packet (default 262144; 0 means that too)\n"
    "  -B KIB          kernel buffer size in KiB\n"
    "  -p              do not put the interface in promiscuous mode\n"
    "  -f EXPR         BPF filter (or give it as trailing arguments)\n"
    "  -Z USER         drop privileges to USER after opening the interface\n"
    "  -C MB           rotate when a file reaches MB million bytes\n"
    "  -G SECONDS      rotate every SECONDS, aligned to the clock\n"
    "sealing:\n"
    "  --key SENSOR.key --to CENTRAL.pub --spool DIR --outbox DIR --state DIR\n"
    "  --level N       zstd level (default 1)      --threads N  zstd workers\n"
    "  --bundle-max-size SIZE   group pcaps into bundles up to SIZE (default: one each)\n"
    "  --dont-save 'BPF:N'      keep only the first N packets of flows matching BPF\n"
    "storage:\n"
    "  --outbox-max SIZE  --min-free SIZE  --when-full drop-oldest|stop\n"
    "other:\n"
    "  --receipts DIR   receipts from the central host placed here delete exactly the\n"
    "                   bundles they confirm as committed\n"
    "  --allow-any  --no-drop  --seal-empty  --status-interval SECONDS\n"
    "  -c FILE      config file, 'key = value' (default " DEFAULT_CONFIG ")\n"
    "  -q, -v       quieter, more verbose\n"
    "  --syslog     log events to syslog (daemon facility) instead of stderr\n"
    "\n"
    "Environment (the BalanceTonPCAP sensor's env.txt keeps working): PCAP_INTERFACE,\n"
    "PCAP_CAPTURE_SIZE (snaplen), PCAP_FILE_SIZE (seconds: it was passed to tcpdump -G),\n"
    "PCAP_BPF_FILTER, PCAP_SENSOR_NAME (must match the key's name); PCAP_FILE_ROTATE\n"
    "is ignored (storage is bounded by --outbox-max instead).\n"
    "Signals: TERM/INT seal and exit; HUP rotates now; USR1 logs statistics.\n";

struct settings {
    char *iface, *filter, *user, *key, *to, *spool, *outbox, *state, *receipts;
    char *read_files[MAX_READ_FILES];
    size_t nread;
    uint64_t snaplen, buffer_kib, rotate_mb, rotate_seconds, level, threads, bundle_max;
    uint64_t outbox_max, min_free, status_seconds;
    bool no_promisc, allow_any, no_drop, seal_empty, when_full_stop, syslog;
    pf_dont_save rules[PF_DONT_SAVE_MAX];
    size_t nrules;
    int verbosity;
};

/* One setting by its long name, from the config file or the command line. */
static int apply(struct settings *s, const char *k, const char *v, pf_err *e)
{
    uint64_t u;
    char **strs[] = {&s->iface, &s->filter, &s->user,  &s->key,     &s->to,
                     &s->spool, &s->outbox, &s->state, &s->receipts};
    const char *snames[] = {"interface", "filter", "user",  "key",     "to",
                            "spool",     "outbox", "state", "receipts"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strcmp(k, snames[i]) == 0)
            return pf_cli_set_str(strs[i], v);
    struct {
        const char *name;
        uint64_t *slot;
        bool size;
        uint64_t max;
    } nums[] = {{"snaplen", &s->snaplen, false, 262144},
                {"buffer", &s->buffer_kib, false, 4u << 20},
                {"rotate-size", &s->rotate_mb, false, 1u << 20},
                {"rotate-seconds", &s->rotate_seconds, false, 7 * 86400},
                {"level", &s->level, false, 19},
                {"threads", &s->threads, false, 64},
                {"bundle-max-size", &s->bundle_max, true, UINT64_MAX},
                {"outbox-max", &s->outbox_max, true, UINT64_MAX},
                {"min-free", &s->min_free, true, UINT64_MAX},
                {"status-interval", &s->status_seconds, false, 3600}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (strcmp(k, nums[i].name) != 0)
            continue;
        bool ok = nums[i].size ? pf_parse_size(v, &u) : pf_parse_u64(v, &u);
        if (!ok || u > nums[i].max)
            return pf_err_set(e, PF_EUSAGE, "%s: '%s' is not a valid value", k, v);
        *nums[i].slot = u;
        return 0;
    }
    struct {
        const char *name;
        bool *slot;
    } bools[] = {{"no-promisc", &s->no_promisc},
                 {"allow-any", &s->allow_any},
                 {"no-drop", &s->no_drop},
                 {"seal-empty", &s->seal_empty},
                 {"syslog", &s->syslog}};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
        if (strcmp(k, bools[i].name) == 0) {
            if (!pf_cli_parse_bool(v, bools[i].slot))
                return pf_err_set(e, PF_EUSAGE, "%s: '%s' is not true or false", k, v);
            return 0;
        }
    if (strcmp(k, "when-full") == 0) {
        if (strcmp(v, "stop") == 0)
            s->when_full_stop = true;
        else if (strcmp(v, "drop-oldest") == 0)
            s->when_full_stop = false;
        else
            return pf_err_set(e, PF_EUSAGE, "when-full: '%s' is drop-oldest or stop", v);
        return 0;
    }
    if (strcmp(k, "dont-save") == 0) {
        if (s->nrules >= PF_DONT_SAVE_MAX)
            return pf_err_set(e, PF_EUSAGE, "at most %d --dont-save rules", PF_DONT_SAVE_MAX);
        if (pf_dont_save_parse(v, &s->rules[s->nrules], e) != 0)
            return -1;
        s->nrules++;
        return 0;
    }
    return pf_err_set(e, PF_EUSAGE, "unknown setting '%s'", k);
}

static int config_setting(void *ctx, const char *k, const char *v, int lineno, pf_err *e)
{
    (void)lineno;
    return apply(ctx, k, v, e);
}

/* The BalanceTonPCAP sensor's environment (xme/fpc entrypoint.sh). */
static int apply_env(struct settings *s, const char **sensor_name, pf_err *e)
{
    const char *v;
    if ((v = getenv("PCAP_INTERFACE")) != NULL && *v && apply(s, "interface", v, e) != 0)
        return -1;
    if ((v = getenv("PCAP_CAPTURE_SIZE")) != NULL && *v &&
        apply(s, "snaplen", strcmp(v, "0") == 0 ? "262144" : v, e) != 0)
        return -1;
    /* That sensor passed PCAP_FILE_SIZE to tcpdump -G: seconds. */
    if ((v = getenv("PCAP_FILE_SIZE")) != NULL && *v && apply(s, "rotate-seconds", v, e) != 0)
        return -1;
    if ((v = getenv("PCAP_BPF_FILTER")) != NULL && *v && apply(s, "filter", v, e) != 0)
        return -1;
    *sensor_name = getenv("PCAP_SENSOR_NAME");
    return 0;
}

static volatile sig_atomic_t *stop_flag, *rotate_flag, *report_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        *rotate_flag = 1;
    else if (sig == SIGUSR1)
        *report_flag = 1;
    else
        *stop_flag = 1;
}

static void on_event(void *ctx, enum pf_event_level level, const char *line)
{
    int verbosity = *(int *)ctx;
    int threshold = verbosity < 0 ? PF_EV_WARN : verbosity == 0 ? PF_EV_INFO : PF_EV_DEBUG;
    if ((int)level > threshold)
        return;
    /* stderr (journal-aware) or syslog; one line, one write */
    pf_log_line((enum pf_log_level)level, "capture", line);
}

static void free_settings(struct settings *s)
{
    char *strs[] = {s->iface, s->filter, s->user,  s->key,     s->to,
                    s->spool, s->outbox, s->state, s->receipts};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(strs[i]);
    for (size_t i = 0; i < s->nread; i++)
        free(s->read_files[i]);
}

int pf_capture_main(int argc, char **argv)
{
    enum {
        O_KEY = 256,
        O_TO,
        O_SPOOL,
        O_OUTBOX,
        O_STATE,
        O_LEVEL,
        O_THREADS,
        O_BMAX,
        O_DONT,
        O_OMAX,
        O_MINFREE,
        O_WHENFULL,
        O_ANY,
        O_NODROP,
        O_EMPTY,
        O_STATUS,
        O_RECEIPTS,
        O_SYSLOG
    };
    static const struct option longopts[] = {{"key", required_argument, NULL, O_KEY},
                                             {"to", required_argument, NULL, O_TO},
                                             {"spool", required_argument, NULL, O_SPOOL},
                                             {"outbox", required_argument, NULL, O_OUTBOX},
                                             {"state", required_argument, NULL, O_STATE},
                                             {"level", required_argument, NULL, O_LEVEL},
                                             {"threads", required_argument, NULL, O_THREADS},
                                             {"bundle-max-size", required_argument, NULL, O_BMAX},
                                             {"dont-save", required_argument, NULL, O_DONT},
                                             {"outbox-max", required_argument, NULL, O_OMAX},
                                             {"min-free", required_argument, NULL, O_MINFREE},
                                             {"when-full", required_argument, NULL, O_WHENFULL},
                                             {"allow-any", no_argument, NULL, O_ANY},
                                             {"no-drop", no_argument, NULL, O_NODROP},
                                             {"seal-empty", no_argument, NULL, O_EMPTY},
                                             {"status-interval", required_argument, NULL, O_STATUS},
                                             {"receipts", required_argument, NULL, O_RECEIPTS},
                                             {"syslog", no_argument, NULL, O_SYSLOG},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    static const char *const long_keys[] = {
        [O_KEY - 256] = "key",           [O_TO - 256] = "to",
        [O_SPOOL - 256] = "spool",       [O_OUTBOX - 256] = "outbox",
        [O_STATE - 256] = "state",       [O_LEVEL - 256] = "level",
        [O_THREADS - 256] = "threads",   [O_BMAX - 256] = "bundle-max-size",
        [O_DONT - 256] = "dont-save",    [O_OMAX - 256] = "outbox-max",
        [O_MINFREE - 256] = "min-free",  [O_WHENFULL - 256] = "when-full",
        [O_ANY - 256] = "allow-any",     [O_NODROP - 256] = "no-drop",
        [O_EMPTY - 256] = "seal-empty",  [O_STATUS - 256] = "status-interval",
        [O_RECEIPTS - 256] = "receipts", [O_SYSLOG - 256] = "syslog"};
    struct settings s = {.snaplen = 262144, .level = PF_DEFAULT_LEVEL, .status_seconds = 5};
    pf_err e;
    const char *config = NULL, *sensor_name = NULL;
    pf_seckey *sk = NULL;
    pf_pubkey central;
    int rc = 2, c;
    /* command-line settings are applied after the file and environment */
    struct {
        const char *k;
        char *v;
    } cli[256];
    size_t ncli = 0;

    pf_err_clear(&e);
    optind = 1;
    while ((c = getopt_long(argc, argv, "+i:r:s:B:pf:Z:C:G:c:qvh", longopts, NULL)) != -1) {
        const char *k = NULL;
        switch (c) {
        case 'i':
            k = "interface";
            break;
        case 's':
            k = "snaplen";
            if (strcmp(optarg, "0") == 0)
                optarg = (char *)"262144"; /* tcpdump: 0 means the default */
            break;
        case 'B':
            k = "buffer";
            break;
        case 'p':
            k = "no-promisc";
            optarg = (char *)"true";
            break;
        case 'f':
            k = "filter";
            break;
        case 'Z':
            k = "user";
            break;
        case 'C':
            k = "rotate-size";
            break;
        case 'G':
            k = "rotate-seconds";
            break;
        case 'r':
            if (s.nread >= MAX_READ_FILES) {
                rc = pf_cli_usage("capture", "too many -r files");
                goto out;
            }
            s.read_files[s.nread++] = strdup(optarg);
            continue;
        case 'c':
            config = optarg;
            continue;
        case 'q':
            s.verbosity = -1;
            continue;
        case 'v':
            s.verbosity = 1;
            continue;
        case 'h':
            fputs(pf_capture_usage, stdout);
            rc = 0;
            goto out;
        default:
            if (c >= 256 && c - 256 < (int)(sizeof long_keys / sizeof long_keys[0])) {
                k = long_keys[c - 256];
                if (c == O_ANY || c == O_NODROP || c == O_EMPTY || c == O_SYSLOG)
                    optarg = (char *)"true";
                break;
            }
            rc = pf_cli_usage("capture", "bad option");
            goto out;
        }
        if (ncli < sizeof cli / sizeof cli[0]) {
            cli[ncli].k = k;
            cli[ncli].v = optarg;
            ncli++;
        }
    }
    if (pf_config_load(config != NULL ? config : DEFAULT_CONFIG, config != NULL, config_setting, &s,
                       &e) != 0 ||
        apply_env(&s, &sensor_name, &e) != 0) {
        rc = pf_cli_fail(&e);
        goto out;
    }
    for (size_t i = 0; i < ncli; i++)
        if (apply(&s, cli[i].k, cli[i].v, &e) != 0) {
            rc = pf_cli_fail(&e);
            goto out;
        }
    if (optind < argc) { /* tcpdump style: the filter is the remaining words */
        size_t len = 1;
        for (int i = optind; i < argc; i++)
            len += strlen(argv[i]) + 1;
        char *f = calloc(1, len);
        for (int i = optind; f != NULL && i < argc; i++) {
            strcat(f, argv[i]);
            if (i + 1 < argc)
                strcat(f, " ");
        }
        free(s.filter);
        s.filter = f;
    }
    if (s.nread > 0 && s.iface != NULL) {
        rc = pf_cli_usage("capture", "-i and -r exclude each other");
        goto out;
    }
    if (s.nread == 0 && s.iface == NULL) {
        rc = pf_cli_usage("capture", "capture needs -i IFACE or -r FILE");
        goto out;
    }
    if (s.key == NULL || s.to == NULL || s.spool == NULL || s.outbox == NULL || s.state == NULL) {
        rc = pf_cli_usage("capture", "capture needs --key, --to, --spool, --outbox and --state "
                                     "(on the command line or in the config file)");
        goto out;
    }
    if (s.user != NULL && s.no_drop) {
        rc = pf_cli_usage("capture", "-Z and --no-drop exclude each other");
        goto out;
    }
    sk = pf_seckey_load_as(s.key, PF_ROLE_SENSOR, &e);
    if (sk == NULL) {
        rc = pf_cli_fail(&e);
        goto out;
    }
    if (sensor_name != NULL && *sensor_name && strcmp(sensor_name, sk->pub.name) != 0) {
        rc = pf_cli_usage("capture",
                          "PCAP_SENSOR_NAME=%s but the key %s belongs to sensor '%s': bundles "
                          "carry the key's name; generate a key with that name or unset it",
                          sensor_name, s.key, sk->pub.name);
        goto out;
    }
    if (pf_pubkey_load(s.to, &central, &e) != 0 || central.role != PF_ROLE_CENTRAL) {
        if (e.status == PF_OK)
            pf_err_set(&e, PF_EUSAGE, "%s: --to takes the central host's public key", s.to);
        if (e.status == PF_EREJECT)
            e.status = PF_EUSAGE;
        rc = pf_cli_fail(&e);
        goto out;
    }
    pf_log_open(s.syslog);
    if (getenv("PCAP_FILE_ROTATE") != NULL && s.verbosity >= 0)
        pf_log_line(PF_LOG_WARN, "capture",
                    "PCAP_FILE_ROTATE ignored (tcpdump -W made tcpdump stop after that many "
                    "files; pcapferry bounds storage with --outbox-max)");

    pf_sensor_signals sig = {0};
    stop_flag = &sig.stop;
    rotate_flag = &sig.rotate;
    report_flag = &sig.report;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns at once */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    pf_sensor_opts o = {.iface = s.iface,
                        .read_files = s.read_files,
                        .nread = s.nread,
                        .snaplen = (uint32_t)s.snaplen,
                        .buffer_kib = (int)s.buffer_kib,
                        .promisc = !s.no_promisc,
                        .filter = s.filter,
                        .user = s.user,
                        .no_drop = s.no_drop,
                        .allow_any = s.allow_any,
                        .rotate_bytes = s.rotate_mb * 1000000,
                        .rotate_seconds = (unsigned)s.rotate_seconds,
                        .seal_empty = s.seal_empty,
                        .sensor = sk,
                        .central = &central,
                        .spool = s.spool,
                        .outbox = s.outbox,
                        .state = s.state,
                        .level = (int)s.level,
                        .workers = (int)s.threads,
                        .bundle_max = s.bundle_max,
                        .nrules = s.nrules,
                        .outbox_max = s.outbox_max,
                        .min_free = s.min_free,
                        .when_full_stop = s.when_full_stop,
                        .status_seconds = (unsigned)s.status_seconds,
                        .receipts_dir = s.receipts,
                        .event = on_event,
                        .ctx = &s.verbosity};
    memcpy(o.rules, s.rules, sizeof o.rules);
    rc = pf_sensor_run(&o, &sig, &e) == 0 ? 0 : pf_cli_fail(&e);
    if (rc != 0 && pf_log_to_syslog()) /* the daemon's last word, where its log goes */
        pf_log_line(PF_LOG_ERROR, "capture", e.msg[0] ? e.msg : "failed");
out:
    pf_seckey_free(sk);
    free_settings(&s);
    return rc;
}
