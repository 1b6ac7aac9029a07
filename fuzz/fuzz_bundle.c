/* fuzz_bundle: the whole reader on a bundle file.
 *
 * The input is written to a file and given to pf_bundle_verify (public
 * keys only) and pf_bundle_open (the central secret key, extraction into
 * an output directory), with the fixed test keys and a keyring that trusts
 * the test sensor. Seeds are real bundles sealed with those keys. Checks:
 *  - verify against the keyring and against the sensor key agree, and a
 *    verified bundle's trailer states its bundle hash;
 *  - open succeeding implies verify succeeding, with the same bundle hash
 *    and length (verify is a strict subset of what open checks);
 *  - a failed open leaves the output directory empty (all or nothing);
 *  - a successful open puts exactly the manifest's files (plus its copy of
 *    the manifest and signature) there, with the sizes the manifest says. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char in_path[PATH_MAX], out_dir[PATH_MAX];

static off_t file_size(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pf_verified v;
    pf_extracted x;
    pf_header h;
    pf_err e;
    if (!fz.ready) {
        fz_init();
        snprintf(in_path, sizeof in_path, "%s/input.pcapferry", fz.dir);
        fz_subdir(out_dir, "out");
    }
    fz_rng_reset(4);
    fz_write_file(in_path, data, size, 0644);

    pf_err_clear(&e);
    (void)pf_bundle_read_header(in_path, &h, NULL, &e);
    pf_err_clear(&e);
    int vrc = pf_bundle_verify(in_path, fz.keyring, &v, &e);
    fz_note("verify", vrc, &e);
    FZ_ASSERT(vrc == 0 || e.status != PF_OK, "verify failed without a status");
    FZ_ASSERT(vrc != 0 || v.bytes == size, "verify accepted %llu of %zu bytes",
              (unsigned long long)v.bytes, size);
    /* The same check against the sensor key itself (the keyring trusts it,
     * unrevoked), and the unverified trailer hash export compares copies by. */
    pf_verified vk;
    pf_err_clear(&e);
    int krc = pf_bundle_verify_key(in_path, &fz.sensor->pub, &vk, &e);
    FZ_ASSERT(krc == vrc, "verify with the keyring says %d, with the key %d", vrc, krc);
    uint8_t th[PF_HASH_BYTES];
    int trc = pf_bundle_trailer_hash(in_path, th);
    FZ_ASSERT(vrc != 0 || (trc == 0 && memcmp(th, v.bundle_hash, PF_HASH_BYTES) == 0),
              "a verified bundle's trailer hash is not its bundle hash");

    pf_err_clear(&e);
    int orc = pf_bundle_open(in_path, fz.central, fz.keyring, out_dir, &x, &e);
    fz_note("open", orc, &e);
    if (orc != 0) {
        int left = fz_empty_dir(out_dir);
        FZ_ASSERT(left == 0, "failed open (%s) left %d entries in the output directory", e.msg,
                  left);
        return 0;
    }
    FZ_ASSERT(vrc == 0, "open accepted a bundle that verify rejected");
    FZ_ASSERT(memcmp(v.bundle_hash, x.bundle_hash, PF_HASH_BYTES) == 0 && v.bytes == x.bundle_bytes,
              "open and verify disagree about the bundle hash or length");
    for (size_t i = 0; i < x.manifest->nfiles; i++) {
        const pf_manifest_file *f = &x.manifest->files[i];
        FZ_ASSERT(file_size(out_dir, f->name) == (off_t)f->info.size,
                  "'%s' is not in place with its manifest size", f->name);
    }
    int n = fz_empty_dir(out_dir);
    FZ_ASSERT(n == (int)x.manifest->nfiles + 2, "%d entries after open, manifest lists %zu", n,
              x.manifest->nfiles);
    pf_extracted_clear(&x);
    return 0;
}
