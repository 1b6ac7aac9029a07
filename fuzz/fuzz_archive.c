/* fuzz_archive: the archive entry gate behind valid crypto.
 *
 * Random mutations of a sealed bundle die at the AEAD, so this harness
 * seals the input itself as the bundle's content (the tar bytes) with the
 * fixed test keys and pf_sealer, then runs pf_bundle_extract on it. So
 * libarchive, the entry gate (types, names, sizes, order), the end-of-
 * archive checks and the manifest binding all see arbitrary tar bytes.
 * The sealing is deterministic (fuzz_common.h), so the seed tars' manifests,
 * signed by the test sensor and bound to that exact header, are accepted
 * and mutations start from the deepest path. Checks:
 *  - a failed extraction leaves the staging directory empty;
 *  - a successful one staged exactly the manifest's files, each with the
 *    size and BLAKE2b-256 the manifest names, and pf_bundle_open of the same
 *    bundle succeeds too and moves them into place. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char bundle_path[PATH_MAX], stage_dir[PATH_MAX], out_dir[PATH_MAX];
static int stage_fd = -1;

static void check_staged(const pf_extracted *x)
{
    for (size_t i = 0; i < x->manifest->nfiles; i++) {
        const pf_manifest_file *f = &x->manifest->files[i];
        char path[PATH_MAX];
        uint8_t hash[PF_HASH_BYTES];
        uint8_t *buf = NULL;
        size_t len = 0;
        pf_err e;
        pf_err_clear(&e);
        snprintf(path, sizeof path, "%s/%s", stage_dir, x->staged[i]);
        FZ_ASSERT(x->staged[i][0] != '\0', "manifest file '%s' has no staged copy", f->name);
        FZ_ASSERT(pf_read_file(path, 1u << 30, 0, &buf, &len, &e) == 0, "%s", e.msg);
        crypto_generichash(hash, sizeof hash, buf, len, NULL, 0);
        pf_free_file(buf, false);
        FZ_ASSERT(len == f->info.size && memcmp(hash, f->info.blake2b, PF_HASH_BYTES) == 0,
                  "staged '%s' is not what the manifest says", f->name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pf_extracted x;
    pf_err e;
    if (!fz.ready) {
        fz_init();
        snprintf(bundle_path, sizeof bundle_path, "%s/content.pcapferry", fz.dir);
        fz_subdir(stage_dir, "stage");
        fz_subdir(out_dir, "out");
        stage_fd = open(stage_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (stage_fd < 0)
            fz_die(stage_dir, strerror(errno));
    }
    fz_seal_content(bundle_path, data, size);
    fz_rng_reset(5);

    int fd = open(bundle_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fz_die(bundle_path, strerror(errno));
    pf_err_clear(&e);
    int rc = pf_bundle_extract(fd, "fuzz", fz.central, fz.keyring, stage_fd, ".f", &x, &e);
    close(fd);
    fz_note("extract", rc, &e);
    if (rc != 0) {
        FZ_ASSERT(e.status != PF_OK, "extract failed without a status");
        int left = fz_empty_dir(stage_dir);
        FZ_ASSERT(left == 0, "failed extract (%s) left %d staged entries", e.msg, left);
        return 0;
    }
    check_staged(&x);
    int n = fz_empty_dir(stage_dir);
    FZ_ASSERT(n == (int)x.manifest->nfiles, "%d staged entries, manifest lists %zu", n,
              x.manifest->nfiles);
    size_t nfiles = x.manifest->nfiles;
    pf_extracted_clear(&x);

    /* The same bundle through bundle open: names and moves. */
    pf_err_clear(&e);
    rc = pf_bundle_open(bundle_path, fz.central, fz.keyring, out_dir, &x, &e);
    fz_note("open", rc, &e);
    n = fz_empty_dir(out_dir);
    if (rc == 0) {
        FZ_ASSERT(n == (int)nfiles + 2, "%d entries after open, manifest lists %zu", n, nfiles);
        pf_extracted_clear(&x);
    } else {
        /* Only a capture named like the provenance copy may be refused here. */
        FZ_ASSERT(strstr(e.msg, "manifest copy") != NULL, "extract accepted, open refused: %s",
                  e.msg);
        FZ_ASSERT(n == 0, "failed open left %d entries", n);
    }
    return 0;
}
