/* pcapferry bundle: argument parsing and printing only. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <unistd.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle/bundle.h"
#include "bundle/bundle_cmd.h"
#include "bundle/receipt.h"
#include "common/cli.h"
#include "common/text.h"

const char pf_bundle_usage[] =
    "usage: pcapferry bundle create --key SENSOR.key --to CENTRAL.pub --out DIR\n"
    "                               (--seq N | --state DIR) [--level N] [--threads N]\n"
    "                               [--allow-unreadable] FILE...\n"
    "       pcapferry bundle inspect [--json] BUNDLE\n"
    "       pcapferry bundle verify (--keyring DIR | --key SENSOR.pub) BUNDLE...\n"
    "       pcapferry bundle open --key CENTRAL.key --keyring DIR --out DIR BUNDLE\n"
    "       pcapferry bundle export --outbox DIR --key SENSOR.key|.pub [--central CENTRAL.pub]\n"
    "                               DEST\n"
    "       pcapferry bundle prune --outbox DIR --receipts DIR --central CENTRAL.pub\n"
    "\n"
    "create   packs capture files into one signed, encrypted bundle; prints its path\n"
    "inspect  shows the plaintext header (no keys needed)\n"
    "verify   checks with public keys only that a bundle is whole, unmodified and\n"
    "         signed by a trusted, unrevoked sensor; one line per bundle\n"
    "open     verifies everything, then writes the captures and the signed manifest\n"
    "         into DIR; if any check fails nothing is left in DIR\n"
    "export   copies bundles not yet on DEST (a mounted USB stick) into\n"
    "         DEST/pcapferry/<sensor>/, oldest first, verifies each copy, and consumes\n"
    "         the receipts found on DEST (with --central)\n"
    "prune    deletes the outbox bundles that signed receipts confirm as committed\n"
    "\n"
    "Exit status: 0 ok, 1 rejected, 2 usage or environment error, 75 incomplete\n"
    "(a bundle still being copied, or create's output directory is full; try again\n"
    "later).\n";

struct opts {
    const char *key, *to, *out, *state, *keyring, *outbox, *receipts, *central;
    uint64_t seq;
    int level, threads;
    bool json, allow_unreadable;
};

static int parse(int argc, char **argv, struct opts *o, int *first)
{
    enum {
        O_SEQ = 256,
        O_STATE,
        O_LEVEL,
        O_THREADS,
        O_JSON,
        O_KEYRING,
        O_ALLOW,
        O_OUTBOX,
        O_RECEIPTS,
        O_CENTRAL
    };
    static const struct option longopts[] = {{"key", required_argument, NULL, 'k'},
                                             {"to", required_argument, NULL, 't'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"seq", required_argument, NULL, O_SEQ},
                                             {"state", required_argument, NULL, O_STATE},
                                             {"level", required_argument, NULL, O_LEVEL},
                                             {"threads", required_argument, NULL, O_THREADS},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"keyring", required_argument, NULL, O_KEYRING},
                                             {"allow-unreadable", no_argument, NULL, O_ALLOW},
                                             {"outbox", required_argument, NULL, O_OUTBOX},
                                             {"receipts", required_argument, NULL, O_RECEIPTS},
                                             {"central", required_argument, NULL, O_CENTRAL},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    uint64_t v;
    memset(o, 0, sizeof *o);
    o->level = PF_DEFAULT_LEVEL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:t:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            o->key = optarg;
            break;
        case 't':
            o->to = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case O_SEQ:
            if (!pf_parse_u64(optarg, &o->seq) || o->seq == 0)
                return pf_cli_usage("bundle", "--seq: '%s' is not a sequence number >= 1", optarg);
            break;
        case O_STATE:
            o->state = optarg;
            break;
        case O_LEVEL:
            if (!pf_parse_u64(optarg, &v) || v < 1 || v > 19)
                return pf_cli_usage("bundle", "--level: '%s' is not a zstd level 1..19", optarg);
            o->level = (int)v;
            break;
        case O_THREADS:
            if (!pf_parse_u64(optarg, &v) || v > 64)
                return pf_cli_usage("bundle", "--threads: '%s' is not 0..64", optarg);
            o->threads = (int)v;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_KEYRING:
            o->keyring = optarg;
            break;
        case O_ALLOW:
            o->allow_unreadable = true;
            break;
        case O_OUTBOX:
            o->outbox = optarg;
            break;
        case O_RECEIPTS:
            o->receipts = optarg;
            break;
        case O_CENTRAL:
            o->central = optarg;
            break;
        case 'h':
            fputs(pf_bundle_usage, stdout);
            exit(0);
        default:
            return pf_cli_usage("bundle", "bad option");
        }
    }
    *first = optind;
    return 0;
}

/* Our own key file being broken is configuration (2), not a rejected
 * bundle or capture (1). */
static int key_fail(pf_err *e)
{
    if (e->status == PF_EREJECT)
        e->status = PF_EUSAGE;
    return pf_cli_fail(e);
}

static int cmd_create(int nargs, char **args, const struct opts *o)
{
    pf_err e;
    pf_seckey *sk = NULL;
    pf_pubkey central;
    pf_create_input *in = NULL;
    pf_create_result res;
    int rc;

    pf_err_clear(&e);
    if (o->key == NULL || o->to == NULL || o->out == NULL)
        return pf_cli_usage("bundle", "bundle create needs --key, --to and --out");
    if ((o->seq != 0) == (o->state != NULL))
        return pf_cli_usage("bundle", "bundle create needs exactly one of --seq N or --state DIR");
    if (nargs == 0)
        return pf_cli_usage("bundle", "bundle create needs at least one capture file");
    sk = pf_seckey_load(o->key, &e);
    if (sk == NULL)
        return key_fail(&e);
    if (sk->pub.role != PF_ROLE_SENSOR) {
        pf_seckey_free(sk);
        return pf_cli_usage("bundle", "%s: --key takes a sensor key", o->key);
    }
    if (pf_pubkey_load(o->to, &central, &e) != 0) {
        pf_seckey_free(sk);
        return key_fail(&e);
    }
    if (central.role != PF_ROLE_CENTRAL) {
        pf_seckey_free(sk);
        return pf_cli_usage("bundle", "%s: --to takes the central host's public key", o->to);
    }
    in = calloc((size_t)nargs, sizeof *in);
    if (in == NULL) {
        pf_seckey_free(sk);
        return 2;
    }
    for (int i = 0; i < nargs; i++)
        in[i].path = args[i];
    pf_create_opts co = {.sensor = sk,
                         .central = &central,
                         .outdir = o->out,
                         .state_dir = o->state,
                         .seq = o->seq,
                         .level = o->level,
                         .workers = o->threads,
                         .allow_unreadable = o->allow_unreadable};
    rc = pf_bundle_create(&co, in, (size_t)nargs, &res, &e);
    free(in);
    pf_seckey_free(sk);
    /* A full output directory is "try again later" (75), as for import and
     * export: nothing was left behind, and a rerun with room succeeds. */
    if (rc != 0 && pf_err_is_nospace(&e))
        e.status = PF_EINCOMPLETE;
    if (rc != 0)
        return pf_cli_fail(&e);
    printf("%s\n", res.path);
    fprintf(stderr,
            "pcapferry: sealed %zu file(s), %" PRIu64 " packets, %" PRIu64 " -> %" PRIu64
            " bytes, seq %" PRIu64 "%s\n",
            res.nfiles, res.packets, res.bytes_in, res.bytes_out, res.seq,
            res.damaged || res.unreadable ? " (some files damaged or unreadable: see manifest)"
                                          : "");
    return 0;
}

static int cmd_inspect(int nargs, char **args, const struct opts *o)
{
    pf_err e;
    pf_header h;
    uint64_t size = 0;
    char signer[PF_KEYID_HEX_BYTES], recip[PF_KEYID_HEX_BYTES], prev[2 * PF_HASH_BYTES + 1],
        hh[2 * PF_HASH_BYTES + 1], created[PF_ISOTIME_BYTES];
    pf_err_clear(&e);
    if (nargs != 1)
        return pf_cli_usage("bundle", "bundle inspect takes one bundle");
    if (pf_bundle_read_header(args[0], &h, &size, &e) != 0)
        return pf_cli_fail(&e);
    pf_hex(signer, h.signer_id, PF_KEYID_BYTES);
    pf_hex(recip, h.recipient_id, PF_KEYID_BYTES);
    pf_hex(prev, h.prev_hash, PF_HASH_BYTES);
    pf_hex(hh, h.hash, PF_HASH_BYTES);
    pf_isotime_ns(created, sizeof created, h.created_ns);
    if (o->json) {
        json_t *j = json_pack(
            "{s:s, s:i, s:s, s:s, s:s, s:I, s:I, s:s?, s:s, s:I, s:I, s:I, s:I, "
            "s:s, s:s}",
            "file", args[0], "format_version", PF_FORMAT_VERSION, "sensor", h.sensor,
            "signing_key_id", signer, "recipient_key_id", recip, "seq", (json_int_t)h.seq,
            "prev_seq", (json_int_t)h.prev_seq, "prev_hash", h.prev_seq ? prev : NULL, "created",
            created, "created_ns", (json_int_t)h.created_ns, "chunk_size", (json_int_t)h.chunk_size,
            "plain_len_max", (json_int_t)h.plain_len_max, "file_size", (json_int_t)size,
            "header_blake2b_256", hh, "signature", "not verified");
        if (j == NULL)
            return 2;
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (s == NULL)
            return 2;
        puts(s);
        free(s);
        return 0;
    }
    printf("file:             %s (%" PRIu64 " bytes)\n", args[0], size);
    printf("format version:   %d\n", PF_FORMAT_VERSION);
    printf("sensor:           %s\n", h.sensor);
    printf("signing key id:   %s\n", signer);
    printf("recipient key id: %s\n", recip);
    printf("seq:              %" PRIu64 "\n", h.seq);
    if (h.prev_seq != 0)
        printf("previous bundle:  seq %" PRIu64 ", %s\n", h.prev_seq, prev);
    else
        printf("previous bundle:  none named\n");
    printf("created:          %s\n", created);
    printf("chunk size:       %u\n", h.chunk_size);
    printf("content at most:  %" PRIu64 " bytes\n", h.plain_len_max);
    printf("header hash:      %s\n", hh);
    printf("(nothing verified: use 'bundle verify' with a keyring)\n");
    return 0;
}

static int cmd_verify(int nargs, char **args, const struct opts *o)
{
    bool env = false, rejected = false, incomplete = false;
    pf_pubkey own;
    bool use_key = o->keyring == NULL && o->key != NULL;
    if (o->keyring == NULL && o->key == NULL)
        return pf_cli_usage("bundle", "bundle verify needs --keyring DIR (or --key SENSOR.pub)");
    if (use_key) {
        pf_err ke;
        pf_err_clear(&ke);
        if (pf_pubkey_load(o->key, &own, &ke) != 0)
            return key_fail(&ke);
        if (own.role != PF_ROLE_SENSOR)
            return pf_cli_usage("bundle", "%s: --key takes a sensor's key", o->key);
    }
    if (nargs == 0)
        return pf_cli_usage("bundle", "bundle verify needs at least one bundle");
    for (int i = 0; i < nargs; i++) {
        pf_err e;
        pf_verified v;
        pf_err_clear(&e);
        int vr = use_key ? pf_bundle_verify_key(args[i], &own, &v, &e)
                         : pf_bundle_verify(args[i], o->keyring, &v, &e);
        if (vr == 0) {
            char hash[2 * PF_HASH_BYTES + 1];
            pf_hex(hash, v.bundle_hash, PF_HASH_BYTES);
            printf("%s: OK sensor=%s seq=%" PRIu64 " bytes=%" PRIu64 " hash=%s\n", args[i],
                   v.hdr.sensor, v.hdr.seq, v.bytes, hash);
            continue;
        }
        const char *label = e.status == PF_EINCOMPLETE ? "INCOMPLETE"
                            : e.status == PF_EREJECT   ? "REJECTED"
                                                       : "ERROR";
        const char *why = e.msg;
        size_t plen = strlen(args[i]);
        if (strncmp(why, args[i], plen) == 0 && strncmp(why + plen, ": ", 2) == 0)
            why += plen + 2;
        if (strncmp(why, "incomplete: ", 12) == 0)
            why += 12;
        printf("%s: %s: %s\n", args[i], label, why);
        env |= e.status == PF_EENV || e.status == PF_EUSAGE;
        rejected |= e.status == PF_EREJECT;
        incomplete |= e.status == PF_EINCOMPLETE;
    }
    return env ? 2 : rejected ? 1 : incomplete ? 75 : 0;
}

static int cmd_open(int nargs, char **args, const struct opts *o)
{
    pf_err e;
    pf_extracted x;
    pf_err_clear(&e);
    if (o->key == NULL || o->keyring == NULL || o->out == NULL)
        return pf_cli_usage("bundle", "bundle open needs --key, --keyring and --out");
    if (nargs != 1)
        return pf_cli_usage("bundle", "bundle open takes one bundle");
    pf_seckey *sk = pf_seckey_load(o->key, &e);
    if (sk == NULL)
        return key_fail(&e);
    if (sk->pub.role != PF_ROLE_CENTRAL) {
        pf_seckey_free(sk);
        return pf_cli_usage("bundle", "%s: --key takes the central secret key", o->key);
    }
    int rc = pf_bundle_open(args[0], sk, o->keyring, o->out, &x, &e);
    pf_seckey_free(sk);
    if (rc != 0)
        return pf_cli_fail(&e);
    for (size_t i = 0; i < x.manifest->nfiles; i++) {
        const pf_manifest_file *f = &x.manifest->files[i];
        printf("%s/%s\t%" PRIu64 " bytes\t%" PRIu64 " packets\t%s%s%s\n", o->out, f->name,
               f->info.size, f->info.packets, pf_read_status_name(f->info.read_status),
               f->info.read_error[0] ? ": " : "", f->info.read_error);
    }
    fprintf(stderr, "pcapferry: opened %s: sensor %s seq %" PRIu64 ", %zu file(s) verified\n",
            args[0], x.hdr.sensor, x.hdr.seq, x.manifest->nfiles);
    pf_extracted_clear(&x);
    return 0;
}

static void print_event(void *ctx, enum pf_event_level level, const char *line)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    (void)ctx;
    if (level <= PF_EV_INFO)
        fprintf(stderr, "pcapferry: %s: %s\n", names[level], line);
}

static void print_progress(void *ctx, size_t done, size_t total, uint64_t bytes)
{
    (void)ctx;
    if (isatty(2))
        fprintf(stderr, "\r\033[Kexporting: %zu/%zu bundles, %.1f MB", done, total,
                (double)bytes / 1e6);
}

static int load_central(const char *path, pf_pubkey *out, pf_err *e)
{
    if (pf_pubkey_load(path, out, e) != 0)
        return key_fail(e);
    if (out->role != PF_ROLE_CENTRAL)
        return pf_cli_usage("bundle", "%s: --central takes the central host's public key", path);
    return 0;
}

static int prune_report(const pf_prune_result *r)
{
    fprintf(stderr,
            "pcapferry: receipts: %zu read, %zu refused; bundles: %zu deleted, %zu already "
            "gone, %zu kept (hash differs), %zu reported rejected by the central host\n",
            r->receipts, r->receipts_bad, r->deleted, r->already_gone, r->hash_mismatch,
            r->rejected);
    return r->receipts_bad > 0 || r->hash_mismatch > 0 ? 1 : 0;
}

static int cmd_prune(int nargs, const struct opts *o)
{
    pf_err e;
    pf_pubkey central;
    pf_prune_result r;
    pf_err_clear(&e);
    if (o->outbox == NULL || o->receipts == NULL || o->central == NULL || nargs != 0)
        return pf_cli_usage("bundle", "bundle prune needs --outbox, --receipts and --central");
    int rc = load_central(o->central, &central, &e);
    if (rc != 0)
        return rc;
    int fd = open(o->outbox, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        pf_err_sys(&e, errno, "%s: cannot open outbox", o->outbox);
        return pf_cli_fail(&e);
    }
    rc = pf_bundle_prune(fd, o->outbox, o->receipts, &central, print_event, NULL, &r, &e);
    close(fd);
    if (rc != 0)
        return pf_cli_fail(&e);
    return prune_report(&r);
}

static int cmd_export(int nargs, char **args, const struct opts *o)
{
    pf_err e;
    pf_pubkey sensor, central;
    pf_export_result r;
    pf_err_clear(&e);
    if (o->outbox == NULL || o->key == NULL || nargs != 1)
        return pf_cli_usage("bundle", "bundle export needs --outbox DIR, --key SENSOR.key (or "
                                      ".pub) and one DEST directory");
    if (pf_pubkey_load(o->key, &sensor, &e) != 0)
        return key_fail(&e);
    if (sensor.role != PF_ROLE_SENSOR)
        return pf_cli_usage("bundle", "%s: --key takes the sensor's key", o->key);
    if (o->central != NULL) {
        int rc = load_central(o->central, &central, &e);
        if (rc != 0)
            return rc;
    }
    int rc =
        pf_bundle_export(o->outbox, args[0], &sensor, print_event, print_progress, NULL, &r, &e);
    if (isatty(2))
        fputs("\r\033[K", stderr);
    if (rc != 0)
        return pf_cli_fail(&e);
    fprintf(stderr, "pcapferry: exported %zu bundle(s) (%.1f MB), %zu already on %s, %zu failed\n",
            r.copied, (double)r.bytes_copied / 1e6, r.already_there, args[0], r.failed);
    if (r.dest_full)
        fprintf(stderr,
                "pcapferry: %s is full: %zu bundle(s), %" PRIu64 " bytes remain for the next "
                "stick\n",
                args[0], r.remaining, r.bytes_remaining);
    int status = r.failed > 0 ? 1 : 0;
    if (o->central != NULL) {
        char rdir[PATH_MAX];
        pf_prune_result pr;
        snprintf(rdir, sizeof rdir, "%s/%s", args[0], PF_RECEIPTS_DIR);
        int fd = open(o->outbox, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0 && access(rdir, F_OK) == 0) {
            if (pf_bundle_prune(fd, o->outbox, rdir, &central, print_event, NULL, &pr, &e) != 0) {
                close(fd);
                return pf_cli_fail(&e);
            }
            if (prune_report(&pr) != 0)
                status = 1;
        }
        if (fd >= 0)
            close(fd);
    }
    fprintf(stderr, "pcapferry: run 'sync' and wait for it to return before unmounting %s\n",
            args[0]);
    return r.dest_full && status == 0 ? 75 : status;
}

int pf_bundle_main(int argc, char **argv)
{
    struct opts o;
    int first = 0;
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(pf_bundle_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    int rc = parse(argc - 1, argv + 1, &o, &first);
    if (rc != 0)
        return rc;
    int nargs = argc - 1 - first;
    char **args = argv + 1 + first;
    if (strcmp(sub, "create") == 0)
        return cmd_create(nargs, args, &o);
    if (strcmp(sub, "inspect") == 0)
        return cmd_inspect(nargs, args, &o);
    if (strcmp(sub, "verify") == 0)
        return cmd_verify(nargs, args, &o);
    if (strcmp(sub, "open") == 0)
        return cmd_open(nargs, args, &o);
    if (strcmp(sub, "export") == 0)
        return cmd_export(nargs, args, &o);
    if (strcmp(sub, "prune") == 0)
        return cmd_prune(nargs, &o);
    return pf_cli_usage("bundle", "unknown bundle command '%s'", sub);
}
