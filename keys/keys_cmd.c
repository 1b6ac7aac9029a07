/* pcapferry keys: argument parsing and printing only. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "common/text.h"
#include "keys/keyfile.h"
#include "keys/keyring.h"
#include "keys/keys_cmd.h"

const char pf_keys_usage[] =
    "usage: pcapferry keys generate sensor|central NAME [--out DIR]\n"
    "       pcapferry keys show FILE\n"
    "       pcapferry keys trust PUBFILE --keyring DIR [--name SENSOR] [--same-sensor]\n"
    "       pcapferry keys revoke PUBFILE|KEYID --keyring DIR [--after-seq N [--allow HASH]...]\n"
    "       pcapferry keys list --keyring DIR\n"
    "\n"
    "A sensor key (Ed25519) signs bundles. A central key (X25519 + Ed25519)\n"
    "receives bundles and signs receipts. NAME.key is secret (mode 0600);\n"
    "NAME.pub is what the other side trusts. Existing files are never\n"
    "overwritten.\n"
    "\n"
    "trust pins the key to a sensor name (--name, default the name in the\n"
    "file): bundles it signs are accepted only under that name. A name already\n"
    "pinned to another key needs --same-sensor (a key rotation of that sensor).\n"
    "revoke --after-seq N refuses bundles with seq > N; one with seq <= N is\n"
    "accepted only when its bundle hash is vouched for: named with --allow, or\n"
    "(import) named as prev_hash by a bundle already imported.\n";

static void print_key(const pf_pubkey *pk, const char *path)
{
    char id[PF_KEYID_HEX_BYTES], fp[80];
    pf_hex(id, pk->key_id, PF_KEYID_BYTES);
    pf_pubkey_fingerprint(pk, fp, sizeof fp);
    if (path != NULL)
        printf("file:        %s\n", path);
    printf("type:        %s\n",
           pk->role == PF_ROLE_CENTRAL ? "central (x25519 + ed25519)" : "sensor (ed25519)");
    printf("name:        %s\n", pk->name);
    printf("key id:      %s\n", id);
    if (pk->role == PF_ROLE_CENTRAL) {
        uint8_t rid[PF_KEYID_BYTES];
        pf_key_id(rid, pk->sign_pk, PF_SIGN_PK_BYTES);
        pf_hex(id, rid, PF_KEYID_BYTES);
        printf("receipt id:  %s\n", id);
    }
    printf("fingerprint: %s\n", fp);
}

struct opts {
    const char *out, *keyring, *name;
    bool has_after, same_sensor;
    uint64_t after;
    size_t nallow;
    uint8_t allow[PF_REVOKE_ALLOW_MAX][PF_HASH_BYTES];
};

static int parse(int argc, char **argv, struct opts *o, int *first_arg)
{
    static const struct option longopts[] = {{"out", required_argument, NULL, 'o'},
                                             {"keyring", required_argument, NULL, 'k'},
                                             {"after-seq", required_argument, NULL, 'a'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"same-sensor", no_argument, NULL, 's'},
                                             {"allow", required_argument, NULL, 'A'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    memset(o, 0, sizeof *o);
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:k:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o->out = optarg;
            break;
        case 'k':
            o->keyring = optarg;
            break;
        case 'a':
            if (!pf_parse_u64(optarg, &o->after))
                return pf_cli_usage("keys", "--after-seq: '%s' is not a sequence number", optarg);
            o->has_after = true;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 's':
            o->same_sensor = true;
            break;
        case 'A':
            if (o->nallow == PF_REVOKE_ALLOW_MAX)
                return pf_cli_usage("keys", "--allow: at most %d bundle hashes",
                                    PF_REVOKE_ALLOW_MAX);
            if (strlen(optarg) != 2 * PF_HASH_BYTES ||
                !pf_unhex(o->allow[o->nallow], PF_HASH_BYTES, optarg))
                return pf_cli_usage("keys",
                                    "--allow: '%s' is not a bundle hash (64 hex digits, as "
                                    "'bundle verify' prints it)",
                                    optarg);
            o->nallow++;
            break;
        case 'h':
            fputs(pf_keys_usage, stdout);
            exit(0);
        default:
            return pf_cli_usage("keys", "bad option");
        }
    }
    *first_arg = optind;
    return 0;
}

static int cmd_generate(int argc, char **argv, const struct opts *o)
{
    pf_err e;
    pf_err_clear(&e);
    if (argc != 2)
        return pf_cli_usage("keys", "keys generate needs a role (sensor or central) and a NAME");
    enum pf_key_role role;
    if (strcmp(argv[0], "sensor") == 0)
        role = PF_ROLE_SENSOR;
    else if (strcmp(argv[0], "central") == 0)
        role = PF_ROLE_CENTRAL;
    else
        return pf_cli_usage("keys", "'%s': the role is 'sensor' or 'central'", argv[0]);
    const char *dir = o->out != NULL ? o->out : ".";
    pf_seckey *sk = pf_seckey_generate(role, argv[1], &e);
    if (sk == NULL)
        return pf_cli_fail(&e);
    int rc = pf_seckey_save(sk, dir, &e);
    if (rc == 0) {
        printf("secret key:  %s/%s.key (keep it here; mode 0600)\n", dir, sk->pub.name);
        printf("public key:  %s/%s.pub (give it to the %s)\n", dir, sk->pub.name,
               role == PF_ROLE_SENSOR ? "central host: pcapferry keys trust"
                                      : "sensors: bundle create --to");
        print_key(&sk->pub, NULL);
    }
    pf_seckey_free(sk);
    return rc == 0 ? 0 : pf_cli_fail(&e);
}

int pf_keys_main(int argc, char **argv)
{
    static struct opts o;
    int first = 0;
    pf_err e;
    pf_err_clear(&e);
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(pf_keys_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    int rc = parse(argc - 1, argv + 1, &o, &first);
    if (rc != 0)
        return rc;
    int nargs = argc - 1 - first;
    char **args = argv + 1 + first;

    if (strcmp(sub, "generate") == 0)
        return cmd_generate(nargs, args, &o);
    if (strcmp(sub, "show") == 0) {
        if (nargs != 1)
            return pf_cli_usage("keys", "keys show takes one key file");
        pf_pubkey pk;
        if (pf_pubkey_load(args[0], &pk, &e) != 0)
            return pf_cli_fail(&e);
        print_key(&pk, args[0]);
        /* Showing a secret file is fine; showing it quietly while anyone
         * can read it is not. */
        pf_err perm;
        pf_err_clear(&perm);
        pf_seckey *sk = pf_seckey_load(args[0], &perm);
        if (sk == NULL && strstr(perm.msg, "too open") != NULL)
            fprintf(stderr, "pcapferry: warning: %s\n", perm.msg);
        pf_seckey_free(sk);
        return 0;
    }
    if (strcmp(sub, "trust") == 0 || strcmp(sub, "revoke") == 0 || strcmp(sub, "list") == 0) {
        if (o.keyring == NULL)
            return pf_cli_usage("keys", "keys %s needs --keyring DIR", sub);
    }
    if (strcmp(sub, "trust") == 0) {
        if (nargs != 1)
            return pf_cli_usage("keys", "keys trust takes one public key file");
        pf_pubkey pk;
        if (pf_keyring_trust(o.keyring, args[0], o.name, o.same_sensor, &pk, &e) != 0)
            return pf_cli_fail(&e);
        char id[PF_KEYID_HEX_BYTES];
        pf_hex(id, pk.key_id, PF_KEYID_BYTES);
        printf("trusted %s key '%s' (key id %s) in %s\n", pf_role_name(pk.role), pk.name, id,
               o.keyring);
        static pf_trust t;
        if (pf_keyring_lookup(o.keyring, pk.key_id, &t, &e) != 0)
            return pf_cli_fail(&e);
        printf("pinned to:   sensor '%s'%s\n", t.key.name,
               t.same_sensor ? " (another key of the same sensor)" : "");
        if (t.revoked) {
            if (t.revoked_all)
                printf("note: this key is revoked; the revocation stays\n");
            else
                printf("note: this key is revoked after seq %llu; the revocation stays\n",
                       (unsigned long long)t.valid_through);
        }
        return 0;
    }
    if (strcmp(sub, "revoke") == 0) {
        if (nargs != 1)
            return pf_cli_usage("keys", "keys revoke takes one public key file or key id");
        uint8_t id[PF_KEYID_BYTES];
        char hex[PF_KEYID_HEX_BYTES];
        if (o.nallow > 0 && !o.has_after)
            return pf_cli_usage("keys", "--allow needs --after-seq");
        if (pf_keyring_revoke(o.keyring, args[0], o.has_after, o.after,
                              (const uint8_t(*)[PF_HASH_BYTES])o.allow, o.nallow, id, &e) != 0)
            return pf_cli_fail(&e);
        pf_hex(hex, id, PF_KEYID_BYTES);
        if (o.has_after)
            printf("revoked key %s: bundles after seq %llu are refused; one up to seq %llu is "
                   "accepted only when its hash is vouched for (--allow, or a bundle already "
                   "imported names it as prev_hash)\n",
                   hex, (unsigned long long)o.after, (unsigned long long)o.after);
        else
            printf("revoked key %s: no bundle signed by it is accepted\n", hex);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        pf_trust *list = NULL;
        size_t n = 0;
        if (nargs != 0)
            return pf_cli_usage("keys", "keys list takes no arguments");
        if (pf_keyring_list(o.keyring, &list, &n, &e) != 0)
            return pf_cli_fail(&e);
        /* NAME is the pinned sensor name: the only name this key's bundles
         * are accepted under. */
        printf("%-24s %-8s %-32s %s\n", "NAME", "ROLE", "KEY ID", "STATUS");
        for (size_t i = 0; i < n; i++) {
            char id[PF_KEYID_HEX_BYTES], status[160];
            int sn = 0;
            pf_hex(id, list[i].key.key_id, PF_KEYID_BYTES);
            if (!list[i].revoked)
                sn = snprintf(status, sizeof status, "trusted");
            else if (list[i].revoked_all)
                sn = snprintf(status, sizeof status, "revoked");
            else
                sn = snprintf(status, sizeof status, "revoked after seq %llu",
                              (unsigned long long)list[i].valid_through);
            if (list[i].nallow > 0)
                sn += snprintf(status + sn, sizeof status - (size_t)sn, ", %zu hash%s allowed",
                               list[i].nallow, list[i].nallow == 1 ? "" : "es");
            if (list[i].same_sensor)
                snprintf(status + sn, sizeof status - (size_t)sn, ", same sensor");
            if (list[i].ambiguous)
                snprintf(status + sn, sizeof status - (size_t)sn,
                         ", AMBIGUOUS: name shared, run keys trust --same-sensor");
            printf("%-24s %-8s %-32s %s\n", list[i].key.name, pf_role_name(list[i].key.role), id,
                   status);
        }
        free(list);
        return 0;
    }
    return pf_cli_usage("keys", "unknown keys command '%s'", sub);
}
