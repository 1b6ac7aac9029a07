/* Shared set-up for the libFuzzer harnesses and the seed generator.
 *
 * Everything a harness needs is made once per process: fixed sensor and
 * central keys (from constant seeds, so every harness and every seed file
 * agree on them), a scratch directory with a keyring that trusts the
 * sensor, and a deterministic random source.
 *
 * Deterministic randomness: libsodium's random source is replaced by a
 * seeded PRNG (randombytes_set_implementation, before sodium_init), and
 * harnesses reset it before every input. That makes every run of an input
 * behave the same (reproducible crashes) and, more importantly, makes the
 * header that fz_archive_sealer() writes identical in every process: the
 * seed generator can sign manifests bound to that header's hash, so the
 * archive harness reaches the manifest checks behind the crypto. None of
 * this is secure; it is test-only code that never links into pcapferry. */
#ifndef PF_FUZZ_COMMON_H
#define PF_FUZZ_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "bundle/stream.h"
#include "common/fsutil.h"
#include "keys/keyfile.h"
#include "keys/keyring.h"

#define FZ_SENSOR_NAME  "fuzzsensor"
#define FZ_CENTRAL_NAME "fuzzcentral"
/* The sealing parameters of fz_archive_sealer (and so of the archive
 * corpus's manifests). */
#define FZ_ARCHIVE_SEQ        7
#define FZ_ARCHIVE_CREATED_NS 1700000000123456789LL
#define FZ_ARCHIVE_CHUNK      (16u * 1024)
#define FZ_ARCHIVE_PLAIN_MAX  (1ULL << 30)

/* A harness failure that is not a crash (a broken property): print why
 * and abort, which libFuzzer records as a crash with the input. */
#define FZ_ASSERT(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz property violated at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static inline void fz_die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz set-up: %s: %s\n", what, why != NULL ? why : "(no reason)");
    exit(2);
}

/* With PF_FUZZ_VERBOSE set, harnesses say what the library answered for
 * each input (to check that seeds reach the deep paths). */
static inline void fz_note(const char *what, int rc, const pf_err *e)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("PF_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s: %s\n", what, rc == 0 ? "ok" : e->msg);
}

/* Known, reported and not yet fixed program bugs a harness would otherwise
 * stop at on every run: scripts/fuzz lists them in PF_FUZZ_KNOWN (from
 * fuzz/known-bugs.txt) while fuzzing, so the campaign can look past them.
 * Regression runs never set it: their inputs fail until the fix lands. */
static inline bool fz_known(const char *id)
{
    const char *list = getenv("PF_FUZZ_KNOWN");
    size_t n = strlen(id);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, id, n) == 0)
            return true;
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

/* ---- deterministic randombytes (xoshiro256**) ---- */

static uint64_t fz_rng_s[4];

static inline uint64_t fz_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void fz_rng_reset(uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        fz_rng_s[i] = fz_splitmix(&seed);
}

static inline uint64_t fz_rng_next(void)
{
    uint64_t *s = fz_rng_s;
    uint64_t x = s[1] * 5;
    uint64_t r = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return r;
}

static inline const char *fz_rng_name(void)
{
    return "pcapferry-fuzz-deterministic";
}

static inline uint32_t fz_rng_random(void)
{
    return (uint32_t)(fz_rng_next() >> 32);
}

static inline void fz_rng_buf(void *const buf, const size_t size)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t v = fz_rng_next();
        size_t n = size - i < 8 ? size - i : 8;
        memcpy(p + i, &v, n);
    }
}

static randombytes_implementation fz_rng_impl = {
    .implementation_name = fz_rng_name,
    .random = fz_rng_random,
    .stir = NULL,
    .uniform = NULL,
    .buf = fz_rng_buf,
    .close = NULL,
};

/* ---- fixed keys and scratch space ---- */

static struct {
    bool ready;
    pf_seckey *sensor;
    pf_seckey *central;
    char dir[PATH_MAX];     /* scratch root, removed at exit */
    char keyring[PATH_MAX]; /* trusts the sensor */
    char keys[PATH_MAX];    /* the .key/.pub files of both keys */
} fz;

/* Builds a pf_seckey from fixed seeds, as pf_seckey_generate would from
 * random ones. */
static inline pf_seckey *fz_make_key(enum pf_key_role role, const char *name, uint8_t seedbyte)
{
    uint8_t seed[32];
    pf_seckey *sk = calloc(1, sizeof *sk);
    if (sk == NULL)
        fz_die(name, "out of memory");
    sk->pub.role = role;
    snprintf(sk->pub.name, sizeof sk->pub.name, "%s", name);
    sk->sign_sk = sodium_malloc(PF_SIGN_SK_BYTES);
    if (sk->sign_sk == NULL)
        fz_die(name, "out of secure memory");
    memset(seed, seedbyte, sizeof seed);
    crypto_sign_ed25519_seed_keypair(sk->pub.sign_pk, sk->sign_sk, seed);
    if (role == PF_ROLE_CENTRAL) {
        sk->box_sk = sodium_malloc(PF_BOX_SK_BYTES);
        if (sk->box_sk == NULL)
            fz_die(name, "out of secure memory");
        memset(seed, (uint8_t)(seedbyte + 1), sizeof seed);
        crypto_kx_seed_keypair(sk->pub.box_pk, sk->box_sk, seed);
        pf_key_id(sk->pub.key_id, sk->pub.box_pk, sizeof sk->pub.box_pk);
    } else {
        pf_key_id(sk->pub.key_id, sk->pub.sign_pk, sizeof sk->pub.sign_pk);
    }
    return sk;
}

static inline int fz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void fz_rm_rf(const char *dir)
{
    nftw(dir, fz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void fz_cleanup(void)
{
    if (fz.ready && getenv("PF_FUZZ_KEEP_TMP") == NULL)
        fz_rm_rf(fz.dir);
}

/* Makes (or empties) DIR/name and returns its path in out. */
static inline void fz_subdir(char *out, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", fz.dir, name);
    if (mkdir(out, 0700) != 0 && errno != EEXIST)
        fz_die(out, strerror(errno));
}

static inline void fz_init(void)
{
    pf_err e;
    char pub[PATH_MAX];
    pf_pubkey added;
    if (fz.ready)
        return;
    fz_rng_reset(1);
    if (randombytes_set_implementation(&fz_rng_impl) != 0 || sodium_init() < 0)
        fz_die("libsodium", "cannot initialise");
    pf_err_clear(&e);
    fz.sensor = fz_make_key(PF_ROLE_SENSOR, FZ_SENSOR_NAME, 0x51);
    fz.central = fz_make_key(PF_ROLE_CENTRAL, FZ_CENTRAL_NAME, 0xc1);
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fz.dir, sizeof fz.dir, "%s/pf-fuzz-XXXXXX", tmp);
    if (mkdtemp(fz.dir) == NULL)
        fz_die(fz.dir, strerror(errno));
    fz.ready = true;
    atexit(fz_cleanup);
    snprintf(fz.keys, sizeof fz.keys, "%s/keys", fz.dir);
    snprintf(fz.keyring, sizeof fz.keyring, "%s/keyring", fz.dir);
    snprintf(pub, sizeof pub, "%s/%s.pub", fz.keys, FZ_SENSOR_NAME);
    if (pf_seckey_save(fz.sensor, fz.keys, &e) != 0 ||
        pf_seckey_save(fz.central, fz.keys, &e) != 0 ||
        pf_keyring_trust(fz.keyring, pub, NULL, false, &added, &e) != 0)
        fz_die("keys", e.msg);
}

/* Writes data to path (created or truncated) with the given mode. */
static inline void fz_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        fz_die(path, strerror(errno));
    if (fchmod(fd, mode) != 0)
        fz_die(path, strerror(errno));
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fz_die(path, strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    if (close(fd) != 0)
        fz_die(path, strerror(errno));
}

/* Removes every entry of a flat directory (and one level of
 * subdirectories); returns how many entries there were. */
static inline int fz_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        n++;
        if (unlink(path) != 0 && (errno == EISDIR || errno == EPERM)) {
            fz_empty_dir(path);
            rmdir(path);
        }
    }
    closedir(d);
    return n;
}

/* The sealer every archive-harness input and archive seed goes through:
 * fixed parameters and a freshly reset random source, so its header (and
 * the header hash a manifest names) is the same every time. */
static inline void fz_archive_params(pf_seal_params *p)
{
    memset(p, 0, sizeof *p);
    p->seq = FZ_ARCHIVE_SEQ;
    p->prev_seq = FZ_ARCHIVE_SEQ - 1;
    memset(p->prev_hash, 0xab, sizeof p->prev_hash);
    p->created_ns = FZ_ARCHIVE_CREATED_NS;
    p->chunk_size = FZ_ARCHIVE_CHUNK;
    p->plain_len_max = FZ_ARCHIVE_PLAIN_MAX;
    p->level = 1;
    p->workers = 0;
}

static inline pf_sealer *fz_archive_sealer(int fd, const char *what, pf_err *e)
{
    pf_seal_params p;
    fz_archive_params(&p);
    fz_rng_reset(0xa5c417e);
    return pf_sealer_new(fz.sensor, &fz.central->pub, &p, fd, what, e);
}

/* Seals content into path as a complete bundle with fz_archive_sealer. */
static inline void fz_seal_content(const char *path, const uint8_t *data, size_t len)
{
    pf_err e;
    uint8_t hash[PF_HASH_BYTES];
    pf_err_clear(&e);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fz_die(path, strerror(errno));
    pf_sealer *s = fz_archive_sealer(fd, path, &e);
    if (s == NULL || (len > 0 && pf_sealer_write(s, data, len, &e) != 0) ||
        pf_sealer_finish(s, hash, NULL, &e) != 0)
        fz_die(path, e.msg);
    pf_sealer_free(s);
    if (close(fd) != 0)
        fz_die(path, strerror(errno));
}

#endif
