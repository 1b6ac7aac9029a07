/* pcapferry provenance: options and printing only. The proof is
 * bundle/provenance.c's; the import state only says where the kept
 * manifest is and adds what the central host recorded. */
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle/provenance.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/fsutil.h"
#include "common/text.h"
#include "import/report.h"
#include "import/report_cmd.h"
#include "keys/keyring.h"

#define DEFAULT_CONFIG "/etc/pcapferry/import.conf"

const char pf_provenance_usage[] =
    "usage: pcapferry provenance [--json] [--state DIR] [--keyring DIR] FILE\n"
    "       pcapferry provenance [--json] --manifest M.manifest.json [--sig M.manifest.sig]\n"
    "                            [--header M.header] (--pub SENSOR.pub | --keyring DIR) FILE\n"
    "\n"
    "Says where a delivered capture file (or a copy of it) came from and proves it\n"
    "offline: sensor, seq, bundle, capture window, packets, drops, interface and\n"
    "filter, and whether its bytes still match the BLAKE2b-256 the sensor signed.\n"
    "\n"
    "On the central host it finds the kept signed manifest in the import state\n"
    "(state and keyring default to the import config). Anywhere else give the kept\n"
    "manifest and the sensor's public key: --sig defaults to the manifest's name\n"
    "with .manifest.sig, --header to .header when that file exists.\n"
    "\n"
    "  --config FILE  import settings (default " DEFAULT_CONFIG ")\n"
    "  --json         print one JSON object\n"
    "\n"
    "Exit status: 0 the file is what the sensor signed (or the importer's pcapng to\n"
    "pcap conversion of it, with the same packets); 1 it is not, or the signature\n"
    "does not verify; 2 usage or environment (missing files, unknown file).\n";

struct settings {
    char *state, *keyring;
};

static int config_setting(void *ctx, const char *k, const char *v, int lineno, pf_err *e)
{
    struct settings *s = ctx;
    (void)lineno;
    (void)e;
    if (strcmp(k, "state") == 0)
        return pf_cli_set_str(&s->state, v);
    if (strcmp(k, "keyring") == 0)
        return pf_cli_set_str(&s->keyring, v);
    return 0;
}

static const char *match_name(enum pf_prov_match m)
{
    switch (m) {
    case PF_PROV_EXACT:
        return "verified";
    case PF_PROV_CONVERTED:
        return "converted";
    case PF_PROV_MISMATCH:
        return "mismatch";
    case PF_PROV_NOT_LISTED:
        break;
    }
    return "not-listed";
}

static json_t *jtime(bool have, int64_t ns)
{
    char iso[PF_ISOTIME_BYTES];
    if (!have)
        return json_null();
    pf_isotime_ns(iso, sizeof iso, ns);
    return json_string(iso);
}

static json_t *stat_of(const pf_manifest_file *f, const char *k)
{
    json_t *v = f != NULL && f->capture_stats ? json_object_get(f->capture_stats, k) : NULL;
    return v != NULL ? json_incref(v) : json_null();
}

static json_t *capture_of(const pf_manifest *m, const char *k)
{
    json_t *v = m->capture != NULL ? json_object_get(m->capture, k) : NULL;
    return v != NULL ? json_incref(v) : json_null();
}

/* Everything printed, as one object: the text form prints these fields. */
static json_t *describe(const char *file, const pf_provenance *p, const pf_located *loc,
                        const char *manifest_path, const char *header_path, const pf_trust *trust)
{
    const pf_manifest *m = p->manifest;
    const pf_manifest_file *f = p->entry >= 0 ? &m->files[p->entry] : NULL;
    char hex[2 * PF_HASH_BYTES + 1], fp[80];
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(file));
    json_object_set_new(o, "result", json_string(match_name(p->match)));
    json_object_set_new(o, "explanation", p->why[0] ? json_string(p->why) : json_null());
    json_object_set_new(o, "sensor", json_string(m->sensor));
    pf_hex(hex, p->key.key_id, PF_KEYID_BYTES);
    json_object_set_new(o, "sensor_key_id", json_string(hex));
    json_object_set_new(o, "sensor_key_name", json_string(p->key.name));
    pf_pubkey_fingerprint(&p->key, fp, sizeof fp);
    json_object_set_new(o, "sensor_key_fingerprint", json_string(fp));
    if (trust != NULL)
        json_object_set_new(
            o, "key_status",
            json_string(!trust->revoked ? "trusted"
                        : trust->revoked_all || m->seq > trust->valid_through
                            ? "revoked (this bundle is after the revocation)"
                            : "revoked after a later seq (this bundle stays valid)"));
    json_object_set_new(o, "seq", json_integer((json_int_t)m->seq));
    json_object_set_new(o, "prev_seq", json_integer((json_int_t)m->prev_seq));
    json_object_set_new(o, "entry", f ? json_integer(p->entry + 1) : json_null());
    json_object_set_new(o, "entries", json_integer((json_int_t)m->nfiles));
    json_object_set_new(o, "original_name", f ? json_string(f->name) : json_null());
    pf_hex(hex, m->header_hash, PF_HASH_BYTES);
    json_object_set_new(o, "header_blake2b_256", json_string(hex));
    json_object_set_new(o, "header_verified", json_boolean(p->have_header));
    json_object_set_new(o, "bundle_blake2b_256",
                        loc && loc->bundle_hash[0] ? json_string(loc->bundle_hash) : json_null());
    json_object_set_new(o, "bundle_created", jtime(true, m->created_ns));
    json_object_set_new(o, "signed_blake2b_256",
                        f ? json_string((pf_hex(hex, f->info.blake2b, PF_HASH_BYTES), hex))
                          : json_null());
    pf_hex(hex, p->file.blake2b, PF_HASH_BYTES);
    json_object_set_new(o, "file_blake2b_256", json_string(hex));
    json_object_set_new(o, "signed_size", f ? json_integer((json_int_t)f->info.size) : json_null());
    json_object_set_new(o, "file_size", json_integer((json_int_t)p->file.size));
    json_object_set_new(o, "signed_format", f ? json_string(f->info.format) : json_null());
    json_object_set_new(o, "file_format", json_string(p->file.format));
    json_object_set_new(o, "packets", f ? json_integer((json_int_t)f->info.packets) : json_null());
    json_object_set_new(o, "file_packets", json_integer((json_int_t)p->file.packets));
    json_object_set_new(o, "first_packet", jtime(f && f->info.have_ts, f ? f->info.min_ns : 0));
    json_object_set_new(o, "last_packet", jtime(f && f->info.have_ts, f ? f->info.max_ns : 0));
    json_object_set_new(o, "window_start", stat_of(f, "window_start"));
    json_object_set_new(o, "window_end", stat_of(f, "window_end"));
    json_object_set_new(o, "rotated_by", stat_of(f, "rotated_by"));
    json_object_set_new(o, "received", stat_of(f, "received"));
    json_object_set_new(o, "dropped_kernel", stat_of(f, "dropped_kernel"));
    json_object_set_new(o, "dropped_interface", stat_of(f, "dropped_interface"));
    json_object_set_new(o, "clock_jump_ns", stat_of(f, "clock_jump_ns"));
    json_object_set_new(o, "interface", capture_of(m, "interface"));
    json_object_set_new(o, "filter", capture_of(m, "filter"));
    json_object_set_new(o, "snaplen", capture_of(m, "snaplen"));
    json_object_set_new(o, "link_type_name", f ? json_string(f->info.link_type_name) : json_null());
    json_object_set_new(o, "hostname", capture_of(m, "hostname"));
    json_object_set_new(o, "capture_source", capture_of(m, "source"));
    json_object_set_new(o, "manifest", json_string(manifest_path));
    json_object_set_new(o, "header", header_path ? json_string(header_path) : json_null());
    if (loc != NULL) {
        json_object_set_new(o, "import_state", json_string(loc->state));
        json_object_set_new(o, "imported", jtime(true, loc->imported_at * 1000000000LL));
        json_object_set_new(o, "imported_from", json_string(loc->source));
        json_object_set_new(o, "converted_by_importer", json_boolean(loc->converted));
    }
    return o;
}

static void line(const char *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char *k, const char *fmt, ...)
{
    va_list ap;
    printf("%-17s", k);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static const char *s_or(json_t *o, const char *k, const char *dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static long long i_or(json_t *o, const char *k, long long dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

static void print_text(json_t *o, const pf_provenance *p)
{
    const char *res = s_or(o, "result", "");
    line("file:", "%s", s_or(o, "file", ""));
    if (p->match == PF_PROV_EXACT)
        line("result:",
             "VERIFIED: these bytes are file %lld of %lld that sensor %s signed in "
             "bundle seq %lld",
             i_or(o, "entry", 0), i_or(o, "entries", 0), s_or(o, "sensor", ""), i_or(o, "seq", 0));
    else if (p->match == PF_PROV_CONVERTED)
        line("result:",
             "CONVERTED: the sensor signed the pcapng original (%s), not these bytes; "
             "%s. Proven: the packet count and time range; not proven: the bytes",
             s_or(o, "original_name", "?"), p->why);
    else
        line("result:", "%s: %s", strcmp(res, "mismatch") == 0 ? "MISMATCH" : "NOT LISTED", p->why);
    line("sensor:", "%s (key %s, %s, %s)", s_or(o, "sensor", ""), s_or(o, "sensor_key_id", ""),
         s_or(o, "sensor_key_fingerprint", ""),
         s_or(o, "key_status", "key given on the command line"));
    line("seq:", "%lld (previous bundle: seq %lld)", i_or(o, "seq", 0), i_or(o, "prev_seq", 0));
    line("bundle hash:", "%s",
         s_or(o, "bundle_blake2b_256", "(not known offline: see the header hash)"));
    line("header hash:", "%s%s", s_or(o, "header_blake2b_256", ""),
         p->have_header ? " (header signature verified)" : " (named by the signed manifest)");
    line("bundle created:", "%s", s_or(o, "bundle_created", ""));
    line("original name:", "%s (file %lld of %lld in the bundle)", s_or(o, "original_name", "?"),
         i_or(o, "entry", 0), i_or(o, "entries", 0));
    if (json_is_string(json_object_get(o, "window_start")))
        line("capture window:", "%s to %s (rotated by %s)", s_or(o, "window_start", "?"),
             s_or(o, "window_end", "?"), s_or(o, "rotated_by", "?"));
    else
        line("capture window:", "not recorded (not made by pcapferry capture)");
    line("packets:", "%lld, first %s, last %s", i_or(o, "packets", 0), s_or(o, "first_packet", "-"),
         s_or(o, "last_packet", "-"));
    if (json_is_integer(json_object_get(o, "dropped_kernel")))
        line("drops:", "%lld by the kernel, %lld by the interface (%lld received)",
             i_or(o, "dropped_kernel", 0), i_or(o, "dropped_interface", 0), i_or(o, "received", 0));
    else
        line("drops:", "not recorded (read from files with capture -r, or not made by "
                       "pcapferry capture)");
    const char *src = s_or(o, "capture_source", NULL);
    if (src != NULL && strcmp(src, "files") == 0)
        line("interface:",
             "none: read from files (capture -r), snaplen %lld, link type %s, "
             "host %s",
             i_or(o, "snaplen", 0), s_or(o, "link_type_name", "?"), s_or(o, "hostname", "?"));
    else if (json_is_string(json_object_get(o, "interface")))
        line("interface:", "%s, filter '%s', snaplen %lld, link type %s, host %s",
             s_or(o, "interface", "?"), s_or(o, "filter", ""), i_or(o, "snaplen", 0),
             s_or(o, "link_type_name", "?"), s_or(o, "hostname", "?"));
    else
        line("interface:", "not recorded (bundle create, not pcapferry capture); link type %s",
             s_or(o, "link_type_name", "?"));
    line("signed hash:", "%s (%lld bytes, %s)", s_or(o, "signed_blake2b_256", "-"),
         i_or(o, "signed_size", 0), s_or(o, "signed_format", "?"));
    line("file hash:", "%s (%lld bytes, %s; b2sum -l 256)", s_or(o, "file_blake2b_256", ""),
         i_or(o, "file_size", 0), s_or(o, "file_format", "?"));
    line("manifest:", "%s (signature verified)", s_or(o, "manifest", ""));
    if (json_object_get(o, "imported") != NULL)
        line("imported:", "%s from %s (%s%s)", s_or(o, "imported", ""),
             s_or(o, "imported_from", ""), s_or(o, "import_state", ""),
             json_is_true(json_object_get(o, "converted_by_importer"))
                 ? ", converted from pcapng by the importer"
                 : "");
}

static int read_small(const char *path, size_t max, uint8_t **buf, size_t *len, pf_err *e)
{
    return pf_read_file(path, max, 0, buf, len, e);
}

int pf_provenance_main(int argc, char **argv)
{
    enum { O_STATE = 256, O_KEYRING, O_MANIFEST, O_SIG, O_HEADER, O_PUB, O_JSON, O_CONFIG, O_HELP };
    static const struct option longopts[] = {{"state", required_argument, NULL, O_STATE},
                                             {"keyring", required_argument, NULL, O_KEYRING},
                                             {"manifest", required_argument, NULL, O_MANIFEST},
                                             {"sig", required_argument, NULL, O_SIG},
                                             {"header", required_argument, NULL, O_HEADER},
                                             {"pub", required_argument, NULL, O_PUB},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"config", required_argument, NULL, O_CONFIG},
                                             {"help", no_argument, NULL, O_HELP},
                                             {NULL, 0, NULL, 0}};
    struct settings cli = {0}, conf = {0};
    const char *manifest = NULL, *sigpath = NULL, *header = NULL, *pub = NULL, *config = NULL;
    bool json = false;
    char sigbuf[PATH_MAX], hdrbuf[PATH_MAX], hex[2 * PF_HASH_BYTES + 1];
    uint8_t *mtext = NULL, *sig = NULL, *htext = NULL, fhash[PF_HASH_BYTES];
    size_t mlen = 0, siglen = 0, hlen = 0, ntrust = 0, hint = 0;
    pf_trust *trust = NULL;
    pf_pubkey *keys = NULL, one;
    size_t nkeys = 0;
    pf_located loc, *locp = NULL;
    pf_provenance p;
    json_t *o = NULL;
    pf_err e;
    int rc = 2, c;

    memset(&p, 0, sizeof p);
    pf_err_clear(&e);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_STATE:
            if (pf_cli_set_str(&cli.state, optarg) != 0)
                goto out;
            break;
        case O_KEYRING:
            if (pf_cli_set_str(&cli.keyring, optarg) != 0)
                goto out;
            break;
        case O_MANIFEST:
            manifest = optarg;
            break;
        case O_SIG:
            sigpath = optarg;
            break;
        case O_HEADER:
            header = optarg;
            break;
        case O_PUB:
            pub = optarg;
            break;
        case O_JSON:
            json = true;
            break;
        case O_CONFIG:
            config = optarg;
            break;
        case 'h':
        case O_HELP:
            fputs(pf_provenance_usage, stdout);
            rc = 0;
            goto out;
        default:
            rc = pf_cli_usage("provenance", "unknown option");
            goto out;
        }
    }
    if (optind + 1 != argc) {
        rc = pf_cli_usage("provenance", "give exactly one capture FILE");
        goto out;
    }
    const char *file = argv[optind];
    if (manifest == NULL && pf_config_load(config ? config : DEFAULT_CONFIG, config != NULL,
                                           config_setting, &conf, &e) != 0) {
        rc = pf_cli_fail(&e);
        goto out;
    }
    const char *keyring = cli.keyring ? cli.keyring : manifest == NULL ? conf.keyring : NULL;
    if (manifest == NULL) {
        /* On the central host: the import state says which manifest. */
        const char *state = cli.state ? cli.state : conf.state;
        if (state == NULL || keyring == NULL) {
            rc = pf_cli_usage("provenance", "give --state and --keyring (or 'state' and "
                                            "'keyring' in the import config), or --manifest "
                                            "and --pub");
            goto out;
        }
        int r = pf_report_locate(state, file, NULL, &loc, &e);
        if (r == 1) {
            /* a renamed copy: look it up by its hash */
            if (pf_hash_file(file, fhash, &e) != 0) {
                rc = pf_cli_fail(&e);
                goto out;
            }
            pf_hex(hex, fhash, PF_HASH_BYTES);
            r = pf_report_locate(state, file, hex, &loc, &e);
        }
        if (r < 0) {
            rc = pf_cli_fail(&e);
            goto out;
        }
        if (r == 1) {
            pf_err_set(&e, PF_EUSAGE,
                       "%s: the import state in %s knows no delivered file of this name or "
                       "hash (give --manifest and --pub to check it against a kept manifest)",
                       file, state);
            rc = pf_cli_fail(&e);
            goto out;
        }
        locp = &loc;
        manifest = loc.manifest;
        sigpath = loc.sig;
        if (access(loc.header, F_OK) == 0)
            header = loc.header;
        hint = (size_t)loc.n;
    } else {
        if (sigpath == NULL || header == NULL) {
            /* X.manifest.json -> X.manifest.sig, X.header */
            size_t ml = strlen(manifest);
            const char *suffix = ".manifest.json";
            size_t sl = strlen(suffix);
            if (ml > sl && strcmp(manifest + ml - sl, suffix) == 0 && ml < sizeof sigbuf - 16) {
                if (sigpath == NULL) {
                    snprintf(sigbuf, sizeof sigbuf, "%.*s.manifest.sig", (int)(ml - sl), manifest);
                    sigpath = sigbuf;
                }
                if (header == NULL) {
                    snprintf(hdrbuf, sizeof hdrbuf, "%.*s.header", (int)(ml - sl), manifest);
                    if (access(hdrbuf, F_OK) == 0)
                        header = hdrbuf;
                }
            } else if (sigpath == NULL) {
                rc = pf_cli_usage("provenance", "--sig is needed: %s does not end in %s", manifest,
                                  suffix);
                goto out;
            }
        }
        if ((pub == NULL) == (keyring == NULL)) {
            rc = pf_cli_usage("provenance", "give the sensor's key: --pub FILE or --keyring DIR");
            goto out;
        }
    }
    if (pub != NULL) {
        if (pf_pubkey_load(pub, &one, &e) != 0) {
            rc = pf_cli_fail(&e);
            goto out;
        }
        keys = &one;
        nkeys = 1;
    } else {
        if (pf_keyring_list(keyring, &trust, &ntrust, &e) != 0) {
            rc = pf_cli_fail(&e);
            goto out;
        }
        keys = calloc(ntrust + 1, sizeof *keys);
        if (keys == NULL) {
            pf_err_set(&e, PF_EENV, "out of memory");
            rc = pf_cli_fail(&e);
            goto out;
        }
        for (size_t i = 0; i < ntrust; i++)
            keys[nkeys++] = trust[i].key;
    }
    if (read_small(manifest, PF_MANIFEST_MAX_BYTES, &mtext, &mlen, &e) != 0 ||
        read_small(sigpath, 4096, &sig, &siglen, &e) != 0 ||
        (header != NULL && read_small(header, PF_HEADER_MAX_BYTES, &htext, &hlen, &e) != 0)) {
        rc = pf_cli_fail(&e);
        goto out;
    }
    if (siglen != PF_SIG_BYTES) {
        pf_err_set(&e, PF_EREJECT, "%s: not a signature (%zu bytes, expected %d)", sigpath, siglen,
                   PF_SIG_BYTES);
        rc = pf_cli_fail(&e);
        goto out;
    }
    if (pf_provenance_check(file, mtext, mlen, sig, htext, hlen, keys, nkeys, hint, &p, &e) != 0) {
        pf_err_prefix(&e, "%s: ", manifest);
        rc = pf_cli_fail(&e);
        goto out;
    }
    const pf_trust *t = NULL;
    for (size_t i = 0; i < ntrust; i++)
        if (memcmp(trust[i].key.key_id, p.key.key_id, PF_KEYID_BYTES) == 0)
            t = &trust[i];
    o = describe(file, &p, locp, manifest, header, t);
    if (json) {
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s != NULL)
            printf("%s\n", s);
        free(s);
    } else {
        print_text(o, &p);
    }
    rc = p.match == PF_PROV_EXACT || p.match == PF_PROV_CONVERTED ? 0 : 1;
    if (rc != 0)
        fprintf(stderr, "pcapferry: %s: %s\n", file,
                p.match == PF_PROV_MISMATCH ? "does NOT match what the sensor signed"
                                            : "is not listed in this manifest");
out:
    json_decref(o);
    pf_provenance_free(&p);
    pf_free_file(mtext, false);
    pf_free_file(sig, false);
    pf_free_file(htext, false);
    if (keys != &one)
        free(keys);
    free(trust);
    free(cli.state);
    free(cli.keyring);
    free(conf.state);
    free(conf.keyring);
    return rc;
}
