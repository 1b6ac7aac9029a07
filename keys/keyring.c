#include "keys/keyring.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

#define REVOCATION_TYPE      "pcapferry-revocation-v1"
#define REVOCATION_MAX_BYTES (256 + PF_REVOKE_ALLOW_MAX * 80)
#define SAME_SENSOR_TYPE     "pcapferry-same-sensor-v1"
#define SAME_SENSOR_MAX      (64 + PF_NAME_MAX)

static int load_revocation(const char *dir, const char *idhex, pf_trust *t, pf_err *e);

static int ensure_dir(const char *dir, pf_err *e)
{
    return pf_mkdir_p(dir, 0755, e);
}

/* Reads DIR/<idhex><suffix>, a record beside a trusted key. Returns 1 with
 * *text (pf_free_file) when there is one, 0 when there is none, -1 on error;
 * path receives its path for messages. */
static int read_record(const char *dir, const char *idhex, const char *suffix, size_t max,
                       char path[PATH_MAX], uint8_t **text, size_t *len, pf_err *e)
{
    char name[NAME_MAX + 1];
    snprintf(name, sizeof name, "%s%s", idhex, suffix);
    if (pf_path_join(path, PATH_MAX, dir, name, e) != 0)
        return -1;
    if (access(path, F_OK) != 0) {
        if (errno == ENOENT)
            return 0;
        return pf_err_sys(e, errno, "%s: cannot access", path);
    }
    return pf_read_file(path, max, 0, text, len, e) == 0 ? 1 : -1;
}

/* Is there a same-sensor record for this key, naming this sensor? */
static int read_same_sensor(const char *dir, const char *idhex, const char *sensor, bool *out,
                            pf_err *e)
{
    char path[PATH_MAX], want[SAME_SENSOR_MAX + 1];
    uint8_t *text = NULL;
    size_t len = 0;

    *out = false;
    int got = read_record(dir, idhex, ".same-sensor", SAME_SENSOR_MAX, path, &text, &len, e);
    if (got <= 0)
        return got;
    int n = snprintf(want, sizeof want, "%s\nsensor: %s\n", SAME_SENSOR_TYPE, sensor);
    /* A record for another name (the key was pinned again) does not count. */
    *out = n > 0 && (size_t)n == len && memcmp(text, want, len) == 0;
    pf_free_file(text, false);
    return 0;
}

static int load_pub(const char *dir, const char *idhex, pf_pubkey *pk, pf_err *e)
{
    char name[NAME_MAX + 1], path[PATH_MAX];
    snprintf(name, sizeof name, "%s.pub", idhex);
    if (pf_path_join(path, sizeof path, dir, name, e) != 0)
        return -1;
    if (pf_pubkey_load(path, pk, e) != 0) {
        e->status = PF_EENV; /* our own keyring is damaged: not the bundle's fault */
        pf_err_prefix(e, "keyring damaged: ");
        return -1;
    }
    return 0;
}

/* The other keys pinned to `sensor`: how many, how many of them carry no
 * same-sensor record, and the id of one of them. */
struct name_users {
    size_t n, unmarked;
    char some_id[PF_KEYID_HEX_BYTES];
    char unmarked_id[PF_KEYID_HEX_BYTES];
};

static int scan_name(const char *dir, const char *sensor, const uint8_t skip[PF_KEYID_BYTES],
                     struct name_users *u, pf_err *e)
{
    DIR *d = NULL;
    int rc = -1;
    memset(u, 0, sizeof *u);
    d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        return pf_err_sys(e, errno, "%s: cannot open keyring", dir);
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
        if (!pf_unhex(id, sizeof id, idhex) ||
            (skip != NULL && memcmp(id, skip, PF_KEYID_BYTES) == 0))
            continue;
        pf_pubkey pk;
        bool marked;
        if (load_pub(dir, idhex, &pk, e) != 0)
            goto out;
        if (strcmp(pk.name, sensor) != 0)
            continue;
        if (read_same_sensor(dir, idhex, sensor, &marked, e) != 0)
            goto out;
        u->n++;
        memcpy(u->some_id, idhex, sizeof idhex);
        if (!marked) {
            u->unmarked++;
            memcpy(u->unmarked_id, idhex, sizeof idhex);
        }
    }
    rc = 0;
out:
    closedir(d);
    return rc;
}

int pf_keyring_trust(const char *dir, const char *pubpath, const char *name, bool same_sensor,
                     pf_pubkey *added, pf_err *e)
{
    uint8_t *text = NULL;
    size_t len = 0;
    char fname[NAME_MAX + 1], mname[NAME_MAX + 1], idhex[PF_KEYID_HEX_BYTES], path[PATH_MAX];
    char fresh[1024], marker[SAME_SENSOR_MAX + 1];
    struct name_users u;
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
    if (name != NULL) {
        if (!pf_name_valid(name)) {
            pf_err_set(e, PF_EUSAGE,
                       "--name '%s': a sensor name is 1-%d letters, digits, '.', '_' or '-'", name,
                       PF_NAME_MAX);
            goto out;
        }
        snprintf(added->name, sizeof added->name, "%s", name);
    }
    if (ensure_dir(dir, e) != 0)
        goto out;
    pf_hex(idhex, added->key_id, sizeof added->key_id);
    snprintf(fname, sizeof fname, "%s.pub", idhex);
    snprintf(mname, sizeof mname, "%s.same-sensor", idhex);
    if (pf_path_join(path, sizeof path, dir, fname, e) != 0)
        goto out;
    int mlen = snprintf(marker, sizeof marker, "%s\nsensor: %s\n", SAME_SENSOR_TYPE, added->name);
    if (access(path, F_OK) == 0) {
        /* Already trusted: the pinned name never changes (bundles already
         * imported under it would change owner), but the operator may now
         * say that it shares its name with another key on purpose. */
        pf_pubkey old;
        if (load_pub(dir, idhex, &old, e) != 0)
            goto out;
        if (strcmp(old.name, added->name) != 0) {
            pf_err_set(e, PF_EUSAGE,
                       "key %s is already trusted as sensor '%s'; a pinned name never changes "
                       "(trust it without --name, or revoke it and trust a new key)",
                       idhex, old.name);
            goto out;
        }
        *added = old;
        if (same_sensor && pf_atomic_write(dir, mname, marker, (size_t)mlen, 0644, false, e) != 0)
            goto out;
        rc = 0; /* already trusted: trusting twice is not an error */
        goto out;
    }
    if (scan_name(dir, added->name, added->key_id, &u, e) != 0)
        goto out;
    if (u.n > 0 && !same_sensor) {
        pf_err_set(e, PF_EUSAGE,
                   "sensor name '%s' is already pinned to key %s; if %s is a new key of that same "
                   "sensor (a key rotation), add --same-sensor; otherwise give it its own name "
                   "with --name",
                   added->name, u.some_id, pubpath);
        goto out;
    }
    if (u.n == 0 && same_sensor) {
        pf_err_set(e, PF_EUSAGE, "--same-sensor: no key is trusted as sensor '%s' yet",
                   added->name);
        goto out;
    }
    /* Store our own rendering, not the caller's bytes: the keyring then
     * holds exactly what was parsed, under the pinned name. */
    int n = pf_pubkey_format(added, fresh, sizeof fresh);
    if (n < 0) {
        pf_err_set(e, PF_EENV, "%s: key too large", pubpath);
        goto out;
    }
    /* The record first: a crash between the two leaves a record without a
     * key, which means nothing, never a second unexplained key. */
    if (same_sensor && pf_atomic_write(dir, mname, marker, (size_t)mlen, 0644, false, e) != 0)
        goto out;
    if (pf_atomic_write(dir, fname, fresh, (size_t)n, 0644, true, e) != 0)
        goto out;
    rc = 0;
out:
    pf_free_file(text, true);
    return rc;
}

static bool has_hash(const pf_trust *t, const uint8_t h[PF_HASH_BYTES])
{
    for (size_t i = 0; i < t->nallow; i++)
        if (sodium_memcmp(t->allow[i], h, PF_HASH_BYTES) == 0)
            return true;
    return false;
}

int pf_keyring_revoke(const char *dir, const char *target, bool has_after, uint64_t after_seq,
                      const uint8_t (*allow)[PF_HASH_BYTES], size_t nallow,
                      uint8_t revoked_id[PF_KEYID_BYTES], pf_err *e)
{
    char idhex[PF_KEYID_HEX_BYTES], name[NAME_MAX + 1];
    char *body = NULL;
    pf_trust *old = NULL;
    int rc = -1;

    if (!pf_unhex(revoked_id, PF_KEYID_BYTES, target)) {
        pf_pubkey pk;
        if (pf_pubkey_load(target, &pk, e) != 0) {
            pf_err_prefix(e, "not a key id (32 hex digits) nor a readable public key: ");
            return -1;
        }
        memcpy(revoked_id, pk.key_id, PF_KEYID_BYTES);
    }
    if (nallow > 0 && !has_after)
        return pf_err_set(e, PF_EUSAGE,
                          "--allow needs --after-seq: a key revoked entirely vouches for nothing");
    if (ensure_dir(dir, e) != 0)
        return -1;
    pf_hex(idhex, revoked_id, PF_KEYID_BYTES);
    snprintf(name, sizeof name, "%s.revoked", idhex);
    old = calloc(1, sizeof *old);
    body = malloc(REVOCATION_MAX_BYTES);
    if (old == NULL || body == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    /* A revocation may be tightened, never loosened: loosening would
     * silently re-validate bundles someone decided not to trust. Naming
     * more hashes is not loosening: each names one bundle already made. */
    if (load_revocation(dir, idhex, old, e) != 0)
        goto out;
    if (old->revoked && (old->revoked_all || (has_after && after_seq > old->valid_through))) {
        if (old->revoked_all)
            pf_err_set(e, PF_EUSAGE,
                       "key %s is already revoked entirely; a revocation is never loosened", idhex);
        else
            pf_err_set(e, PF_EUSAGE,
                       "key %s is already revoked after seq %llu; a revocation is never loosened",
                       idhex, (unsigned long long)old->valid_through);
        goto out;
    }
    if (!has_after)
        old->nallow = 0;
    for (size_t i = 0; i < nallow; i++) {
        if (has_hash(old, allow[i]))
            continue;
        if (old->nallow == PF_REVOKE_ALLOW_MAX) {
            pf_err_set(e, PF_EUSAGE, "a revocation vouches for at most %d bundle hashes",
                       PF_REVOKE_ALLOW_MAX);
            goto out;
        }
        memcpy(old->allow[old->nallow++], allow[i], PF_HASH_BYTES);
    }
    int n;
    if (has_after)
        n = snprintf(body, REVOCATION_MAX_BYTES, "%s\nvalid-through-seq: %llu\n", REVOCATION_TYPE,
                     (unsigned long long)after_seq);
    else
        n = snprintf(body, REVOCATION_MAX_BYTES, "%s\nvalid-through-seq: none\n", REVOCATION_TYPE);
    for (size_t i = 0; i < old->nallow; i++) {
        char hex[2 * PF_HASH_BYTES + 1];
        pf_hex(hex, old->allow[i], PF_HASH_BYTES);
        n += snprintf(body + n, REVOCATION_MAX_BYTES - (size_t)n, "allow: %s\n", hex);
    }
    /* A later revoke replaces an earlier one: the operator may tighten it. */
    rc = pf_atomic_write(dir, name, body, (size_t)n, 0644, false, e);
out:
    free(body);
    free(old);
    return rc;
}

static int load_revocation(const char *dir, const char *idhex, pf_trust *t, pf_err *e)
{
    char path[PATH_MAX];
    uint8_t *text = NULL;
    size_t len = 0;
    char *buf = NULL;
    int rc = -1;

    int got = read_record(dir, idhex, ".revoked", REVOCATION_MAX_BYTES, path, &text, &len, e);
    if (got <= 0)
        return got;
    buf = malloc(len + 1);
    if (buf == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
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
    /* Then "allow: <bundle hash>" lines, nothing else. */
    for (char *line = nl + 1; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl == NULL || strncmp(line, "allow: ", 7) != 0 || t->nallow == PF_REVOKE_ALLOW_MAX) {
            pf_err_set(e, PF_EENV, "%s: malformed revocation file", path);
            goto out;
        }
        *nl = '\0';
        if (strlen(line + 7) != 2 * PF_HASH_BYTES ||
            !pf_unhex(t->allow[t->nallow], PF_HASH_BYTES, line + 7)) {
            pf_err_set(e, PF_EENV, "%s: malformed revocation file (bad allow line)", path);
            goto out;
        }
        t->nallow++;
    }
    rc = 0;
out:
    free(buf);
    pf_free_file(text, false);
    return rc;
}

static int lookup(const char *dir, const uint8_t key_id[PF_KEYID_BYTES], bool strict, pf_trust *out,
                  pf_err *e)
{
    char idhex[PF_KEYID_HEX_BYTES], name[NAME_MAX + 1], path[PATH_MAX];
    struct stat st;
    struct name_users u;
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
    if (load_pub(dir, idhex, &out->key, e) != 0)
        return -1;
    if (sodium_memcmp(out->key.key_id, key_id, PF_KEYID_BYTES) != 0)
        return pf_err_set(e, PF_EENV, "%s: keyring file holds a different key than its name says",
                          path);
    if (read_same_sensor(dir, idhex, out->key.name, &out->same_sensor, e) != 0)
        return -1;
    /* Two keys under one name are one sensor only when the operator said
     * so; a keyring from 0.1.0 may hold such pairs that nobody vouched
     * for, and guessing would let one sensor speak for another. */
    if (scan_name(dir, out->key.name, key_id, &u, e) != 0)
        return -1;
    out->ambiguous = u.n > 0 && u.unmarked + (out->same_sensor ? 0 : 1) > 1;
    if (out->ambiguous && strict)
        return pf_err_set(e, PF_EENV,
                          "keyring %s: keys %s and %s are both trusted as sensor '%s' and nothing "
                          "says they are the same sensor (a keyring from pcapferry 0.1.0?); "
                          "run 'pcapferry keys trust --same-sensor' on the newer key, or revoke "
                          "one (docs/DEPLOY.md, \"Upgrading from 0.1.0\")",
                          dir, u.unmarked_id[0] != '\0' ? u.unmarked_id : u.some_id, idhex,
                          out->key.name);
    return load_revocation(dir, idhex, out, e);
}

/* The lookup cache (see keyring.h): successful lookups of one directory,
 * valid while its stat says it did not change. */
static struct {
    pthread_mutex_t lock;
    bool on;
    char dir[PATH_MAX];
    struct stat st;
    pf_trust *v;
    size_t n, cap;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void cache_clear_locked(void)
{
    free(cache.v);
    cache.v = NULL;
    cache.n = cache.cap = 0;
    cache.dir[0] = '\0';
}

void pf_keyring_cache_enable(bool on)
{
    pthread_mutex_lock(&cache.lock);
    cache.on = on;
    cache_clear_locked();
    pthread_mutex_unlock(&cache.lock);
}

void pf_keyring_cache_reset(void)
{
    pthread_mutex_lock(&cache.lock);
    cache_clear_locked();
    pthread_mutex_unlock(&cache.lock);
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int pf_keyring_lookup(const char *dir, const uint8_t key_id[PF_KEYID_BYTES], pf_trust *out,
                      pf_err *e)
{
    struct stat st;
    bool use;
    pthread_mutex_lock(&cache.lock);
    use = cache.on && strlen(dir) < sizeof cache.dir && stat(dir, &st) == 0;
    if (use) {
        if (strcmp(cache.dir, dir) != 0 || !same_stat(&st, &cache.st)) {
            cache_clear_locked();
            snprintf(cache.dir, sizeof cache.dir, "%s", dir);
            cache.st = st;
        }
        for (size_t i = 0; i < cache.n; i++)
            if (sodium_memcmp(cache.v[i].key.key_id, key_id, PF_KEYID_BYTES) == 0) {
                *out = cache.v[i];
                pthread_mutex_unlock(&cache.lock);
                return 0;
            }
    }
    pthread_mutex_unlock(&cache.lock);
    /* stat before the read: a change during it leaves a newer stat, so the
     * entry stored below is dropped at the next lookup */
    int rc = lookup(dir, key_id, true, out, e);
    if (rc != 0 || !use)
        return rc;
    pthread_mutex_lock(&cache.lock);
    if (cache.on && strcmp(cache.dir, dir) == 0 && same_stat(&st, &cache.st)) {
        if (cache.n == cache.cap) {
            size_t cap = cache.cap ? 2 * cache.cap : 16;
            pf_trust *g = realloc(cache.v, cap * sizeof *g);
            if (g != NULL) {
                cache.v = g;
                cache.cap = cap;
            }
        }
        if (cache.n < cache.cap)
            cache.v[cache.n++] = *out;
    }
    pthread_mutex_unlock(&cache.lock);
    return 0;
}

int pf_trust_allows_sensor(const pf_trust *t, const char *sensor, pf_err *e)
{
    char idhex[PF_KEYID_HEX_BYTES];
    if (strcmp(t->key.name, sensor) == 0)
        return 0;
    pf_hex(idhex, t->key.key_id, PF_KEYID_BYTES);
    return pf_err_set(e, PF_EREJECT,
                      "bundle says sensor '%s' but its signing key %s is trusted as sensor '%s'",
                      sensor, idhex, t->key.name);
}

int pf_trust_check_seq(const pf_trust *t, uint64_t seq, bool *need_vouch, pf_err *e)
{
    char idhex[PF_KEYID_HEX_BYTES];
    *need_vouch = false;
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
    /* Whoever holds the stolen key can number a new bundle below the
     * cut-off; only its hash tells a bundle made before the revocation. */
    *need_vouch = true;
    return 0;
}

bool pf_trust_hash_allowed(const pf_trust *t, const uint8_t hash[PF_HASH_BYTES])
{
    return has_hash(t, hash);
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
        /* Ambiguous keys are listed, so the operator can see what to fix. */
        if (lookup(dir, id, false, &list[n], e) != 0)
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
