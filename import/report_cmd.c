/* pcapferry report: options and output files only. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "common/config.h"
#include "common/fsutil.h"
#include "common/text.h"
#include "import/report.h"
#include "import/report_cmd.h"

#define DEFAULT_CONFIG "/etc/pcapferry/import.conf"
#define MAX_SENSORS    64

const char pf_report_usage[] =
    "usage: pcapferry report [options]\n"
    "\n"
    "From the import state alone, writes one self-contained HTML file showing every\n"
    "sensor on one time axis: captured windows, drops, missing bundles and the time\n"
    "they must cover, rejected and held bundles, clock trouble, silent periods.\n"
    "Prints the path of what it wrote.\n"
    "\n"
    "  --state DIR        import state (default: 'state' in the import config)\n"
    "  --ingest DIR       Arkime's ingest directory, to show delivered paths in full\n"
    "  --quarantine DIR   as given to import (default STATE/quarantine)\n"
    "  --from TIME        start of the time axis, UTC: 2023-11-14T22:14:05Z,\n"
    "  --to TIME          '2023-11-14 22:14', 2023-11-14 or @UNIXSECONDS\n"
    "                     (default: first to last packet of the sensors shown)\n"
    "  --sensor NAME      only this sensor (repeatable)\n"
    "  --out FILE         the HTML file (default pcapferry-report-<time>.html here)\n"
    "  --svg FILE         also write the time line alone as SVG\n"
    "  --json             write the data as JSON instead (to --out, or stdout)\n"
    "  --detail-max N     draw file by file up to N bundles in range, else aggregate\n"
    "                     per time bucket (default 3000)\n"
    "  --config FILE      read state, ingest, quarantine (default " DEFAULT_CONFIG ")\n"
    "\n"
    "Exit status: 0 ok; 2 usage, configuration or environment.\n";

struct settings {
    char *state, *ingest, *quarantine;
};

static int config_setting(void *ctx, const char *k, const char *v, int lineno, pf_err *e)
{
    struct settings *s = ctx;
    (void)lineno;
    (void)e;
    /* import.conf holds the importer's other settings too: skip them */
    if (strcmp(k, "state") == 0)
        return pf_cli_set_str(&s->state, v);
    if (strcmp(k, "ingest") == 0)
        return pf_cli_set_str(&s->ingest, v);
    if (strcmp(k, "quarantine") == 0)
        return pf_cli_set_str(&s->quarantine, v);
    return 0;
}

/* Writes FILE the atomic way (dot temp name, fsync, rename). */
static int write_out(const char *path, const char *data, size_t len, pf_err *e)
{
    char dir[PATH_MAX];
    const char *base = pf_basename(path);
    if (base == path)
        snprintf(dir, sizeof dir, ".");
    else if ((size_t)(base - path) >= sizeof dir)
        return pf_err_set(e, PF_EUSAGE, "%s: path too long", path);
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(base - path), path);
    if (base[0] == '\0')
        return pf_err_set(e, PF_EUSAGE, "%s: not a file name", path);
    return pf_atomic_write(dir, base, data, len, 0644, false, e);
}

int pf_report_main(int argc, char **argv)
{
    enum {
        O_STATE = 256,
        O_INGEST,
        O_QUAR,
        O_FROM,
        O_TO,
        O_SENSOR,
        O_OUT,
        O_SVG,
        O_JSON,
        O_DETAIL,
        O_CONFIG,
        O_HELP
    };
    static const struct option longopts[] = {{"state", required_argument, NULL, O_STATE},
                                             {"ingest", required_argument, NULL, O_INGEST},
                                             {"quarantine", required_argument, NULL, O_QUAR},
                                             {"from", required_argument, NULL, O_FROM},
                                             {"to", required_argument, NULL, O_TO},
                                             {"sensor", required_argument, NULL, O_SENSOR},
                                             {"out", required_argument, NULL, O_OUT},
                                             {"svg", required_argument, NULL, O_SVG},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"detail-max", required_argument, NULL, O_DETAIL},
                                             {"config", required_argument, NULL, O_CONFIG},
                                             {"help", no_argument, NULL, O_HELP},
                                             {NULL, 0, NULL, 0}};
    struct settings cli = {0}, conf = {0};
    const char *sensors[MAX_SENSORS], *out_path = NULL, *svg_path = NULL, *config = NULL;
    size_t nsensors = 0;
    bool json = false;
    uint64_t detail = 0;
    pf_report_opts o = {0};
    json_t *doc = NULL;
    char *text = NULL, *svg = NULL, defname[64];
    size_t len = 0, svglen = 0;
    pf_err e;
    int rc = 2, c;

    pf_err_clear(&e);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_STATE:
        case O_INGEST:
        case O_QUAR:
            if (pf_cli_set_str(c == O_STATE    ? &cli.state
                               : c == O_INGEST ? &cli.ingest
                                               : &cli.quarantine,
                               optarg) != 0)
                goto out;
            break;
        case O_FROM:
        case O_TO:
            if (!pf_report_parse_time(optarg, c == O_FROM ? &o.from_ns : &o.to_ns)) {
                rc = pf_cli_usage("report", "%s: cannot read '%s' as a UTC time",
                                  c == O_FROM ? "--from" : "--to", optarg);
                goto out;
            }
            *(c == O_FROM ? &o.have_from : &o.have_to) = true;
            break;
        case O_SENSOR:
            if (!pf_name_valid(optarg)) {
                rc = pf_cli_usage("report", "--sensor: '%s' is not a sensor name", optarg);
                goto out;
            }
            if (nsensors == MAX_SENSORS) {
                rc = pf_cli_usage("report", "at most %d --sensor options", MAX_SENSORS);
                goto out;
            }
            sensors[nsensors++] = optarg;
            break;
        case O_OUT:
            out_path = optarg;
            break;
        case O_SVG:
            svg_path = optarg;
            break;
        case O_JSON:
            json = true;
            break;
        case O_DETAIL:
            if (!pf_parse_u64(optarg, &detail) || detail > 10000000) {
                rc = pf_cli_usage("report", "--detail-max: '%s' is not a number up to 10000000",
                                  optarg);
                goto out;
            }
            break;
        case O_CONFIG:
            config = optarg;
            break;
        case 'h':
        case O_HELP:
            fputs(pf_report_usage, stdout);
            rc = 0;
            goto out;
        default:
            rc = pf_cli_usage("report", "unknown option");
            goto out;
        }
    }
    if (optind < argc) {
        rc = pf_cli_usage("report", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (pf_config_load(config ? config : DEFAULT_CONFIG, config != NULL, config_setting, &conf,
                       &e) != 0) {
        rc = pf_cli_fail(&e);
        goto out;
    }
    o.state_dir = cli.state ? cli.state : conf.state;
    o.ingest_dir = cli.ingest ? cli.ingest : conf.ingest;
    o.quarantine_dir = cli.quarantine ? cli.quarantine : conf.quarantine;
    if (o.state_dir == NULL) {
        rc = pf_cli_usage("report", "--state DIR is required (or 'state' in the config file)");
        goto out;
    }
    if (o.have_from && o.have_to && o.to_ns <= o.from_ns) {
        rc = pf_cli_usage("report", "--to must be later than --from");
        goto out;
    }
    o.sensors = sensors;
    o.nsensors = nsensors;
    o.detail_max = (size_t)detail;
    o.now_ns = pf_now_ns();
    if (pf_report_build(&o, &doc, &e) != 0) {
        rc = pf_cli_fail(&e);
        goto out;
    }
    if (json) {
        text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text == NULL) {
            pf_err_set(&e, PF_EENV, "out of memory");
            rc = pf_cli_fail(&e);
            goto out;
        }
        len = strlen(text);
    } else if (pf_report_html(doc, &text, &len, &e) != 0) {
        rc = pf_cli_fail(&e);
        goto out;
    }
    if (json && out_path == NULL) {
        printf("%s\n", text);
    } else {
        if (out_path == NULL) {
            char when[32];
            pf_compact_time(when, sizeof when, o.now_ns);
            snprintf(defname, sizeof defname, "pcapferry-report-%s.html", when);
            out_path = defname;
        }
        if (write_out(out_path, text, len, &e) != 0) {
            rc = pf_cli_fail(&e);
            goto out;
        }
        printf("%s\n", out_path);
    }
    if (svg_path != NULL) {
        if (pf_report_svg(doc, &svg, &svglen, &e) != 0 ||
            write_out(svg_path, svg, svglen, &e) != 0) {
            rc = pf_cli_fail(&e);
            goto out;
        }
        printf("%s\n", svg_path);
    }
    fprintf(stderr,
            "pcapferry report: %zu sensor(s), %s to %s, %s: %zu windows, %zu gaps, %zu drop "
            "windows, %zu rejected, %zu held, %zu clock events, %zu silent periods\n",
            json_array_size(json_object_get(doc, "sensors")),
            json_string_value(json_object_get(doc, "from")),
            json_string_value(json_object_get(doc, "to")),
            strcmp(json_string_value(json_object_get(doc, "mode")), "files") == 0 ? "file by file"
                                                                                  : "aggregated",
            json_array_size(json_object_get(doc, "windows")) +
                json_array_size(json_object_get(doc, "buckets")),
            json_array_size(json_object_get(doc, "gaps")),
            json_array_size(json_object_get(doc, "drops")),
            json_array_size(json_object_get(doc, "rejected")),
            json_array_size(json_object_get(doc, "held")),
            json_array_size(json_object_get(doc, "clock")),
            json_array_size(json_object_get(doc, "silent")));
    rc = 0;
out:
    free(text);
    free(svg);
    json_decref(doc);
    free(cli.state);
    free(cli.ingest);
    free(cli.quarantine);
    free(conf.state);
    free(conf.ingest);
    free(conf.quarantine);
    return rc;
}
