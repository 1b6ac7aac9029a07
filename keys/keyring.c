#include "keys/keyring.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

#define REVOCATION_TYPE      "pcapferry-revocation-v1"
#define REVOCATION_MAX_BYTES 256

static int load_revocation(const char *dir, const char *idhex, pf_trust *t, pf_err *e);

static int ensure_dir(const char *dir, pf_err *e)
{
    return pf_mkdir_p(dir, 0755, e);
}

int pf_keyring_trust(const char *dir, const char *pubpath, pf_pubkey *added, pf_err *e)
{
    uint8_t *text = NULL;
    size_t len = 0;
    char name[NAME_MAX + 1], idhex[PF_KEYID_HEX_BYTES], path[PATH_MAX];
    char fresh[1024];
    int rc = -1;

    if (pf_read_file(pubpath, PF_KEYFILE_MAX_BYTES, PF_READ_SECURE, &text, &len, e) != 0)
        goto out;
    if (pf_pubkey_parse((const char *)text, len, pubpath, added, e) != 0)
        goto out;
    const uint8_t *nl = memchr(text, '\n', len);
    size_t first_line = nl != NULL ? (size_t)(nl - text) : len;
    if (memmem(text, first_line, "-secret-key-", 12) != NULL) {
        pf_err_set(e, PF_EUSAGE, "%s: is a secret key; trust takes the public key (.pub)", pubpath);
        goto out;
    }
    if (ensure_dir(dir, e) != 0)
        goto out;
    pf_hex(idhex, added->key_id, sizeof added->key_id);
    snprintf(name, sizeof name, "%s.pub", idhex);
    if (pf_path_join(path, sizeof path, dir, name, e) != 0)
        goto out;
    /* Store our own rendering, not the caller's bytes: the keyring then
     * holds exactly what was parsed and nothing else. */
    int n = pf_pubkey_format(added, fresh, sizeof fresh);
    if (n < 0) {
        pf_err_set(e, PF_EENV, "%s: key too large", pubpath);
        goto out;
    }
    if (access(path, F_OK) == 0) {
        rc = 0; /* already trusted: trusting twice is not an error */
        goto out;
    }
    if (pf_atomic_write(dir, name, fresh, (size_t)n, 0644, true, e) != 0)
        goto out;
    rc = 0;
out:
    pf_free_file(text, true);
    return rc;
}

int pf_keyring_revoke(const char *dir, const char *target, bool has_after, uint64_t after_seq,
                      uint8_t revoked_id[PF_KEYID_BYTES], pf_err *e)
{
    char idhex[PF_KEYID_HEX_BYTES], name[NAME_MAX + 1], body[REVOCATION_MAX_BYTES];
    if (!pf_unhex(revoked_id, PF_KEYID_BYTES, target)) {
        pf_pubkey pk;
        if (pf_pubkey_load(target, &pk, e) != 0) {
            pf_err_prefix(e, "not a key id (32 hex digits) nor a readable public key: ");
            return -1;
        }
        memcpy(revoked_id, pk.key_id, PF_KEYID_BYTES);
    }
    if (ensure_dir(dir, e) != 0)
        return -1;
    pf_hex(idhex, revoked_id, PF_KEYID_BYTES);
    snprintf(name, sizeof name, "%s.revoked", idhex);
    /* A revocation may be tightened, never loosened: loosening would
     * silently re-validate bundles someone decided not to trust. */
    pf_trust old;
    memset(&old, 0, sizeof old);
    if (load_revocation(dir, idhex, &old, e) != 0)
        return -1;
    if (old.revoked && (old.revoked_all || (has_after && after_seq > old.valid_through))) {
        if (old.revoked_all)
            return pf_err_set(e, PF_EUSAGE,
                              "key %s is already revoked entirely; a revocation "
                              "is never loosened",
                              idhex);
        return pf_err_set(e, PF_EUSAGE,
                          "key %s is already revoked after seq %llu; a revocation "
                          "is never loosened",
                          idhex, (unsigned long long)old.valid_through);
    }
    int n;
    if (has_after)
        n = snprintf(body, sizeof body, "%s\nvalid-through-seq: %llu\n", REVOCATION_TYPE,
                     (unsigned long long)after_seq);
    else
        n = snprintf(body, sizeof body, "%s\nvalid-through-seq: none\n", REVOCATION_TYPE);
    /* A later revoke replaces an earlier one: the operator may tighten it. */
    return pf_atomic_write(dir, name, body, (size_t)n, 0644, false, e);
}

static int load_revocation(const char *dir, const char *idhex, pf_trust *t, pf_err *e)
{
    char name[NAME_MAX + 1], path[PATH_MAX];
    uint8_t *text = NULL;
    size_t len = 0;
    int rc = -1;

    snprintf(name, sizeof name, "%s.revoked", idhex);
    if (pf_path_join(path, sizeof path, dir, name, e) != 0)
        return -1;
    if (access(path, F_OK) != 0) {
        if (errno == ENOENT)
            return 0;
        return pf_err_sys(e, errno, "%s: cannot access", path);
    }
    if (pf_read_file(path, REVOCATION_MAX_BYTES, 0, &text, &len, e) != 0)
        goto out;
    char buf[REVOCATION_MAX_BYTES + 1];
    memcpy(buf, text, len);
    buf[len] = '\0';
    const char *prefix = REVOCATION_TYPE "\nvalid-through-seq: ";
    size_t plen = strlen(prefix);
    char *val = buf + plen;
    char *nl = strchr(buf, '\n');
    if (strncmp(buf, prefix, plen) != 0 || nl == NULL || (nl = strchr(val, '\n')) == NULL) {
        pf_err_set(e, PF_EENV, "%s: malformed revocation file", path);
        goto out;
    }
    *nl = '\0';
    t->revoked = true;
    if (strcmp(val, "none") == 0) {
        t->revoked_all = true;
    } else if (!pf_parse_u64(val, &t->valid_through)) {
        pf_err_set(e, PF_EENV, "%s: malformed revocation file", path);
        goto out;
    }
    rc = 0;
out:
    pf_free_file(text, false);
    return rc;
}

int pf_keyring_lookup(const char *dir, const uint8_t key_id[PF_KEYID_BYTES], pf_trust *out,
                      pf_err *e)
{
    char idhex[PF_KEYID_HEX_BYTES], name[NAME_MAX + 1], path[PATH_MAX];
    struct stat st;
    memset(out, 0, sizeof *out);
    /* A mistyped --keyring must not make every bundle look untrusted. */
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pf_err_set(e, PF_EENV, "%s: cannot open keyring (no such directory)", dir);
    pf_hex(idhex, key_id, PF_KEYID_BYTES);
    snprintf(name, sizeof name, "%s.pub", idhex);
    if (pf_path_join(path, sizeof path, dir, name, e) != 0)
        return -1;
    if (access(path, F_OK) != 0) {
        if (errno == ENOENT)
            return pf_err_set(e, PF_EREJECT, "signing key %s is not trusted (not in keyring %s)",
                              idhex, dir);
        return pf_err_sys(e, errno, "%s: cannot access", path);
    }
    if (pf_pubkey_load(path, &out->key, e) != 0) {
        e->status = PF_EENV; /* our own keyring is damaged: not the bundle's fault */
        pf_err_prefix(e, "keyring damaged: ");
        return -1;
    }
    if (sodium_memcmp(out->key.key_id, key_id, PF_KEYID_BYTES) != 0)
        return pf_err_set(e, PF_EENV, "%s: keyring file holds a different key than its name says",
                          path);
    return load_revocation(dir, idhex, out, e);
}

int pf_trust_allows_seq(const pf_trust *t, uint64_t seq, pf_err *e)
{
    char idhex[PF_KEYID_HEX_BYTES];
    if (!t->revoked)
        return 0;
    pf_hex(idhex, t->key.key_id, PF_KEYID_BYTES);
    if (t->revoked_all)
        return pf_err_set(e, PF_EREJECT, "signing key %s (%s) is revoked", idhex, t->key.name);
    if (seq > t->valid_through)
        return pf_err_set(e, PF_EREJECT,
                          "signing key %s (%s) is revoked after seq %llu; this bundle has seq %llu",
                          idhex, t->key.name, (unsigned long long)t->valid_through,
                          (unsigned long long)seq);
    return 0;
}

static int cmp_trust(const void *a, const void *b)
{
    const pf_trust *x = a, *y = b;
    int c = strcmp(x->key.name, y->key.name);
    return c != 0 ? c : memcmp(x->key.key_id, y->key.key_id, PF_KEYID_BYTES);
}

int pf_keyring_list(const char *dir, pf_trust **out, size_t *count, pf_err *e)
{
    DIR *d = NULL;
    pf_trust *list = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;

    *out = NULL;
    *count = 0;
    d = opendir(dir);
    if (d == NULL) {
        pf_err_sys(e, errno, "%s: cannot open keyring", dir);
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint8_t id[PF_KEYID_BYTES];
        char idhex[PF_KEYID_HEX_BYTES];
        size_t len = strlen(de->d_name);
        if (len != 2 * PF_KEYID_BYTES + 4 || strcmp(de->d_name + len - 4, ".pub") != 0)
            continue;
        memcpy(idhex, de->d_name, 2 * PF_KEYID_BYTES);
        idhex[2 * PF_KEYID_BYTES] = '\0';
        if (!pf_unhex(id, sizeof id, idhex))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            pf_trust *grown = realloc(list, cap * sizeof *list);
            if (grown == NULL) {
                pf_err_set(e, PF_EENV, "out of memory");
                goto out;
            }
            list = grown;
        }
        if (pf_keyring_lookup(dir, id, &list[n], e) != 0)
            goto out;
        n++;
    }
    qsort(list, n, sizeof *list, cmp_trust);
    *out = list;
    *count = n;
    list = NULL;
    rc = 0;
out:
    free(list);
    if (d != NULL)
        closedir(d);
    return rc;
}
