/* Shared set-up for the C tests: a scratch directory, a sensor and a
 * central key with the sensor trusted, and small deterministic captures. */
#ifndef PF_FIXTURE_H
#define PF_FIXTURE_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "bundle/stream.h"
#include "check.h"
#include "common/buf.h"
#include "common/fsutil.h"

typedef struct fixture {
    char dir[PATH_MAX];
    char keyring[PATH_MAX];
    pf_seckey *sensor;
    pf_seckey *central;
} fixture;

static int fx_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void fx_rm_rf(const char *dir)
{
    nftw(dir, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Counts every entry, dot files included: "nothing left" means nothing. */
static inline int fx_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static inline void fx_path(char *out, const fixture *fx, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", fx->dir, name);
}

/* A classic pcap of n Ethernet/IPv4/UDP packets with seeded payloads. */
static inline void fx_write_pcap(const char *path, unsigned n, unsigned seed, unsigned paylen)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    uint32_t gh[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 262144, 1};
    fwrite(gh, sizeof gh, 1, f);
    uint32_t x = seed * 2654435761u + 1;
    for (unsigned i = 0; i < n; i++) {
        unsigned len = 42 + paylen;
        uint32_t rh[4] = {1700000000 + i / 1000, (i % 1000) * 1000, len, len};
        uint8_t pkt[42 + 65536];
        memset(pkt, 0, 42);
        memcpy(pkt, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00", 14);
        pkt[14] = 0x45;
        pkt[16] = (uint8_t)((len - 14) >> 8);
        pkt[17] = (uint8_t)(len - 14);
        pkt[22] = 64;
        pkt[23] = 17;
        memcpy(pkt + 26, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
        for (unsigned b = 0; b < paylen; b++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            pkt[42 + b] = (uint8_t)x;
        }
        fwrite(rh, sizeof rh, 1, f);
        fwrite(pkt, len, 1, f);
    }
    if (fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static inline void fx_init(fixture *fx, const char *name)
{
    pf_err e;
    pf_err_clear(&e);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(fx->dir, sizeof fx->dir, "%s/pf-%s-XXXXXX", tmp, name);
    if (mkdtemp(fx->dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(fx->keyring, sizeof fx->keyring, "%s/keyring", fx->dir);
    fx->sensor = pf_seckey_generate(PF_ROLE_SENSOR, "sensor1", &e);
    fx->central = pf_seckey_generate(PF_ROLE_CENTRAL, "central", &e);
    char keys[PATH_MAX], pub[PATH_MAX];
    snprintf(keys, sizeof keys, "%s/keys", fx->dir);
    pf_pubkey added;
    snprintf(pub, sizeof pub, "%s/sensor1.pub", keys);
    if (fx->sensor == NULL || fx->central == NULL || pf_seckey_save(fx->sensor, keys, &e) != 0 ||
        pf_keyring_trust(fx->keyring, pub, NULL, false, &added, &e) != 0) {
        fprintf(stderr, "fixture: %s\n", e.msg);
        exit(2);
    }
}

static inline void fx_free(fixture *fx)
{
    pf_seckey_free(fx->sensor);
    pf_seckey_free(fx->central);
    if (getenv("PF_KEEP_TMP") == NULL)
        fx_rm_rf(fx->dir);
}

/* Seals the given capture files into outdir with seq; returns 0 or -1. */
static inline int fx_create(const fixture *fx, const char *outdir, uint64_t seq,
                            const char *const *paths, size_t n, uint32_t chunk_size,
                            pf_create_result *res, pf_err *e)
{
    pf_create_input in[16];
    memset(in, 0, sizeof in);
    for (size_t i = 0; i < n && i < 16; i++)
        in[i].path = paths[i];
    pf_create_opts o = {.sensor = fx->sensor,
                        .central = &fx->central->pub,
                        .outdir = outdir,
                        .seq = seq,
                        .level = 1,
                        .chunk_size = chunk_size};
    return pf_bundle_create(&o, in, n, res, e);
}

/* Reads a whole (small) file into a malloc'd buffer. */
static inline uint8_t *fx_slurp(const char *path, size_t *len)
{
    uint8_t *buf = NULL;
    pf_err e;
    pf_err_clear(&e);
    if (pf_read_file(path, 1u << 30, 0, &buf, len, &e) != 0) {
        fprintf(stderr, "fx_slurp: %s\n", e.msg);
        exit(2);
    }
    return buf;
}

static inline void fx_spit(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(data, len, 1, f) != 1) || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

#endif
