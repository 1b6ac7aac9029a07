/*
 * primitives: CPU seconds per GB of each building block pcapferry's sealer
 * and opener use, with the same libraries and the same chunking, on a real
 * pcap of the corpus held in memory. Used by bench/profile.sh to split the
 * profile's libsodium share between BLAKE2b and ChaCha20-Poly1305 (the
 * distribution's libsodium and libzstd carry no symbols).
 *
 *   primitives FILE.pcap [ROUNDS]
 *
 * Prints one line per primitive: name, bytes processed per round, CPU
 * seconds per GB (10^9 bytes of input), MB/s. Then the fixed costs of one
 * small bundle (issue 14's fleet: 128 KiB each), in CPU microseconds per
 * operation, and their sum: the floor under import's time per bundle
 * whatever the code around them does. File operations run in the
 * directory $PRIM_DIR (default: the current one), on its file system.
 */
#include <fcntl.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define CHUNK (1u << 20)

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *name, size_t bytes, int rounds, double secs)
{
    double gb = (double)bytes * rounds / 1e9;
    printf("%-34s %12zu %8.3f %8.0f\n", name, bytes, secs / gb, gb * 1e3 / secs);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (b == NULL || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(b);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* zstd streaming compression into 1 MiB output chunks, as the sealer does */
static size_t zstd_stream(const uint8_t *in, size_t len, int level, uint8_t *out, size_t cap)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    ZSTD_inBuffer ib = {in, len, 0};
    size_t total = 0;
    for (;;) {
        ZSTD_outBuffer ob = {out + total, cap - total < CHUNK ? cap - total : CHUNK, 0};
        size_t left = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
        total += ob.pos;
        if (ZSTD_isError(left)) {
            fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(left));
            exit(1);
        }
        if (left == 0)
            break;
    }
    ZSTD_freeCCtx(c);
    return total;
}

static void report_us(const char *name, int n, double secs)
{
    printf("%-44s %10.1f\n", name, secs / n * 1e6);
}

static void *thread_nop(void *arg)
{
    return arg;
}

#define SMALL (128u * 1024)

/* CPU microseconds per operation a 128 KiB bundle costs on import. */
static double small_bundle_floor(const uint8_t *data, size_t len)
{
    const int n = 2000;
    size_t sl = len < SMALL ? len : SMALL;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], sig[64], msg[300];
    uint8_t hash[32], key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    unsigned char hdr[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    uint8_t *ct = malloc(SMALL + 64), *pt = malloc(SMALL + 64), *z = malloc(ZSTD_compressBound(sl));
    double t, sum = 0, us;
    volatile uint8_t sink = 0;
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof msg);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);

    printf("\n%-44s %10s\n", "one 128 KiB bundle's fixed costs", "CPU us");
    t = cpu_now();
    for (int i = 0; i < n; i++)
        sink ^= (uint8_t)crypto_sign_verify_detached(sig, msg, sizeof msg, pk);
    us = (cpu_now() - t) / n * 1e6;
    report_us("Ed25519 verify (x3: header, manifest, trailer)", n, (cpu_now() - t));
    sum += 3 * us;

    uint8_t cpk[crypto_kx_PUBLICKEYBYTES], csk[crypto_kx_SECRETKEYBYTES];
    uint8_t epk[crypto_kx_PUBLICKEYBYTES], esk[crypto_kx_SECRETKEYBYTES], rx[32], tx[32];
    crypto_kx_keypair(cpk, csk);
    crypto_kx_keypair(epk, esk);
    t = cpu_now();
    for (int i = 0; i < n; i++)
        sink ^= (uint8_t)crypto_kx_server_session_keys(rx, tx, cpk, csk, epk);
    us = (cpu_now() - t) / n * 1e6;
    report_us("X25519 key agreement", n, cpu_now() - t);
    sum += us;

    crypto_secretstream_xchacha20poly1305_keygen(key);
    crypto_secretstream_xchacha20poly1305_state st;
    crypto_secretstream_xchacha20poly1305_init_push(&st, hdr, key);
    unsigned long long cl = 0;
    crypto_secretstream_xchacha20poly1305_push(&st, ct, &cl, data, sl, NULL, 0,
                                               crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    t = cpu_now();
    for (int i = 0; i < n; i++) {
        unsigned long long pln;
        unsigned char tag;
        crypto_secretstream_xchacha20poly1305_init_pull(&st, hdr, key);
        sink ^= (uint8_t)crypto_secretstream_xchacha20poly1305_pull(&st, pt, &pln, &tag, ct, cl,
                                                                    NULL, 0);
    }
    us = (cpu_now() - t) / n * 1e6;
    report_us("XChaCha20-Poly1305 init + pull 128 KiB", n, cpu_now() - t);
    sum += us;

    t = cpu_now();
    for (int i = 0; i < n; i++)
        crypto_generichash(hash, 32, data, sl, NULL, 0), sink ^= hash[0];
    us = (cpu_now() - t) / n * 1e6;
    report_us("BLAKE2b-256 of 128 KiB (the pcap's)", n, cpu_now() - t);
    sum += us;

    size_t zl = ZSTD_compress(z, ZSTD_compressBound(sl), data, sl, 1);
    ZSTD_DCtx *d = ZSTD_createDCtx();
    t = cpu_now();
    for (int i = 0; i < n; i++)
        sink ^= (uint8_t)ZSTD_decompressDCtx(d, pt, SMALL + 64, z, zl);
    us = (cpu_now() - t) / n * 1e6;
    report_us("zstd -d 128 KiB (context reused)", n, cpu_now() - t);
    sum += us;
    ZSTD_freeDCtx(d);

    /* what the kernel charges for one delivered file: create, write,
     * close, rename into place; and the source's unlink */
    const char *dir = getenv("PRIM_DIR") != NULL ? getenv("PRIM_DIR") : ".";
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        char a[64], b[64];
        const int nf = 500;
        t = cpu_now();
        for (int i = 0; i < nf; i++) {
            snprintf(a, sizeof a, ".prim-%d.part", i);
            snprintf(b, sizeof b, "prim-%d.pcap", i);
            int fd = openat(dfd, a, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd < 0 || write(fd, data, sl) != (ssize_t)sl || close(fd) != 0 ||
                renameat(dfd, a, dfd, b) != 0) {
                perror("primitives: file");
                break;
            }
        }
        double made = cpu_now() - t;
        t = cpu_now();
        for (int i = 0; i < nf; i++) {
            snprintf(b, sizeof b, "prim-%d.pcap", i);
            unlinkat(dfd, b, 0);
        }
        double gone = cpu_now() - t;
        report_us("file: create, write 128 KiB, close, rename", nf, made);
        report_us("file: unlink 128 KiB", nf, gone);
        sum += (made + gone) / nf * 1e6;
        close(dfd);
    }

    t = cpu_now();
    for (int i = 0; i < n; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, thread_nop, NULL) == 0)
            pthread_join(th, NULL);
    }
    report_us("thread create + join (not in the floor)", n, cpu_now() - t);
    t = cpu_now();
    for (int i = 0; i < n; i++) {
        void *m = sodium_malloc(64);
        sodium_free(m);
    }
    report_us("sodium_malloc + free (not in the floor)", n, cpu_now() - t);
    printf("%-44s %10.1f\n", "floor: the sum of the lines above it", sum);
    fprintf(stderr, "(sink %u)\n", (unsigned)sink);
    free(ct);
    free(pt);
    free(z);
    return sum;
}

int main(int argc, char **argv)
{
    if (argc < 2 || sodium_init() < 0) {
        fprintf(stderr, "usage: primitives FILE.pcap [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    size_t len;
    uint8_t *data = slurp(argv[1], &len);
    if (data == NULL) {
        perror(argv[1]);
        return 2;
    }
    size_t cap = ZSTD_compressBound(len);
    uint8_t *z = malloc(cap), *copy = malloc(len), *ct = malloc(CHUNK + 64),
            *pt = malloc(CHUNK + 64);
    uint8_t hash[32], key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    unsigned char hdr[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    double t;
    volatile uint8_t sink = 0;

    printf("%-34s %12s %8s %8s\n", "primitive", "bytes", "s/GB", "MB/s");

    t = cpu_now();
    for (int r = 0; r < rounds; r++)
        memcpy(copy, data, len), sink ^= copy[r];
    report("memcpy", len, rounds, cpu_now() - t);

    t = cpu_now();
    for (int r = 0; r < rounds; r++) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, 32);
        for (size_t off = 0; off < len; off += CHUNK)
            crypto_generichash_update(&st, data + off, len - off < CHUNK ? len - off : CHUNK);
        crypto_generichash_final(&st, hash, 32);
    }
    report("BLAKE2b-256 (libsodium)", len, rounds, cpu_now() - t);

    crypto_secretstream_xchacha20poly1305_keygen(key);
    t = cpu_now();
    for (int r = 0; r < rounds; r++) {
        crypto_secretstream_xchacha20poly1305_state st;
        crypto_secretstream_xchacha20poly1305_init_push(&st, hdr, key);
        for (size_t off = 0; off < len; off += CHUNK) {
            unsigned long long cl;
            size_t n = len - off < CHUNK ? len - off : CHUNK;
            crypto_secretstream_xchacha20poly1305_push(&st, ct, &cl, data + off, n, NULL, 0, 0);
        }
    }
    report("XChaCha20-Poly1305 push", len, rounds, cpu_now() - t);

    /* decryption of the same stream, chunk by chunk */
    {
        crypto_secretstream_xchacha20poly1305_state ps, pl;
        crypto_secretstream_xchacha20poly1305_init_push(&ps, hdr, key);
        size_t nch = (len + CHUNK - 1) / CHUNK;
        uint8_t *cts = malloc(nch * (CHUNK + 64));
        unsigned long long *cls = calloc(nch, sizeof *cls);
        for (size_t i = 0; i < nch; i++) {
            size_t off = i * CHUNK, n = len - off < CHUNK ? len - off : CHUNK;
            crypto_secretstream_xchacha20poly1305_push(&ps, cts + i * (CHUNK + 64), &cls[i],
                                                       data + off, n, NULL, 0, 0);
        }
        t = cpu_now();
        for (int r = 0; r < rounds; r++) {
            crypto_secretstream_xchacha20poly1305_init_pull(&pl, hdr, key);
            for (size_t i = 0; i < nch; i++) {
                unsigned long long pln;
                unsigned char tag;
                if (crypto_secretstream_xchacha20poly1305_pull(
                        &pl, pt, &pln, &tag, cts + i * (CHUNK + 64), cls[i], NULL, 0) != 0) {
                    fprintf(stderr, "pull failed\n");
                    return 1;
                }
            }
        }
        report("XChaCha20-Poly1305 pull", len, rounds, cpu_now() - t);
        free(cts);
        free(cls);
    }

    size_t zlen = 0;
    for (int level = 1; level <= 3; level += 2) {
        char name[64];
        t = cpu_now();
        for (int r = 0; r < rounds; r++)
            zlen = zstd_stream(data, len, level, z, cap);
        snprintf(name, sizeof name, "zstd -%d compress (ratio %.4f)", level, (double)len / zlen);
        report(name, len, rounds, cpu_now() - t);
    }
    /* decompression of the level-3 output, per pcap byte produced */
    t = cpu_now();
    for (int r = 0; r < rounds; r++) {
        ZSTD_DCtx *d = ZSTD_createDCtx();
        ZSTD_inBuffer ib = {z, zlen, 0};
        while (ib.pos < ib.size) {
            ZSTD_outBuffer ob = {pt, CHUNK, 0};
            size_t rr = ZSTD_decompressStream(d, &ob, &ib);
            if (ZSTD_isError(rr)) {
                fprintf(stderr, "zstd -d: %s\n", ZSTD_getErrorName(rr));
                return 1;
            }
            sink ^= pt[0];
        }
        ZSTD_freeDCtx(d);
    }
    report("zstd -d (per pcap byte)", len, rounds, cpu_now() - t);

    /* libpcap reading every record, as the sealer's scan does (page cache) */
    t = cpu_now();
    uint64_t pkts = 0;
    for (int r = 0; r < rounds; r++) {
        char err[PCAP_ERRBUF_SIZE];
        FILE *f = fmemopen(data, len, "rb");
        pcap_t *p = pcap_fopen_offline(f, err);
        if (p == NULL) {
            fprintf(stderr, "pcap: %s\n", err);
            return 1;
        }
        struct pcap_pkthdr *h;
        const u_char *d;
        while (pcap_next_ex(p, &h, &d) == 1)
            pkts++;
        pcap_close(p);
    }
    report("libpcap pcap_next_ex (fmemopen)", len, rounds, cpu_now() - t);
    fprintf(stderr, "(%llu packets per round, sink %u)\n", (unsigned long long)(pkts / rounds),
            (unsigned)sink);
    small_bundle_floor(data, len);
    return 0;
}
