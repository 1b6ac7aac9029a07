/* fuzz_keyfile: key file text, as the keyring, --to and --key read it.
 *
 * pf_pubkey_parse on the raw bytes (not NUL-terminated, so an overread
 * shows), then pf_seckey_load on the same bytes in a 0600 file (which also
 * runs its "is this a .pub given as --key" fallback on failure). Checks:
 *  - the key's name is the whole "name:" value (no NUL cuts it short);
 *  - a parsed public key formats (pf_pubkey_format) and parses back equal;
 *  - a loaded secret key's public half equals what pf_pubkey_parse read,
 *    and it really is a key pair: a signature made with it verifies. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char key_path[PATH_MAX];

static bool same_pub(const pf_pubkey *a, const pf_pubkey *b)
{
    return a->role == b->role && strcmp(a->name, b->name) == 0 &&
           memcmp(a->key_id, b->key_id, sizeof a->key_id) == 0 &&
           memcmp(a->sign_pk, b->sign_pk, sizeof a->sign_pk) == 0 &&
           (a->role != PF_ROLE_CENTRAL || memcmp(a->box_pk, b->box_pk, sizeof a->box_pk) == 0);
}

/* The length of the "name:" field's value as keys/keyfile.c splits lines
 * (CR LF or LF, spaces after the colon skipped); SIZE_MAX if none. */
static size_t name_field_len(const uint8_t *t, size_t len)
{
    size_t pos = 0;
    bool first = true;
    while (pos < len) {
        const uint8_t *line = t + pos, *nl = memchr(line, '\n', len - pos);
        size_t ll = nl != NULL ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl != NULL ? 1 : 0);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (first) {
            first = false;
            continue;
        }
        if (ll >= 5 && memcmp(line, "name:", 5) == 0) {
            size_t i = 5;
            while (i < ll && line[i] == ' ')
                i++;
            return ll - i;
        }
    }
    return SIZE_MAX;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pf_pubkey pk, back;
    pf_err e;
    char text[1024];
    if (!fz.ready) {
        fz_init();
        snprintf(key_path, sizeof key_path, "%s/input.key", fz.dir);
    }
    fz_rng_reset(6);

    /* An exact-size heap copy, so ASan sees any read past the end. */
    char *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    pf_err_clear(&e);
    int prc = pf_pubkey_parse(copy, size, "fuzz", &pk, &e);
    free(copy);
    fz_note("pubkey_parse", prc, &e);
    if (prc == 0) {
        size_t nlen = name_field_len(data, size);
        FZ_ASSERT(nlen == strlen(pk.name) || fz_known("keyfile-nul-in-name"),
                  "the name field has %zu bytes, the key's name '%s' %zu", nlen, pk.name,
                  strlen(pk.name));
        FZ_ASSERT(pf_name_valid(pk.name), "accepted key name '%s'", pk.name);
        int n = pf_pubkey_format(&pk, text, sizeof text);
        FZ_ASSERT(n > 0, "a parsed key does not format");
        pf_err_clear(&e);
        FZ_ASSERT(pf_pubkey_parse(text, (size_t)n, "again", &back, &e) == 0,
                  "formatted key does not parse: %s", e.msg);
        FZ_ASSERT(same_pub(&pk, &back), "key changed in the round trip");
        char fp[64];
        pf_pubkey_fingerprint(&pk, fp, sizeof fp);
    }

    if (size > PF_KEYFILE_MAX_BYTES)
        return 0; /* refused by size before parsing */
    fz_write_file(key_path, data, size, 0600);
    pf_err_clear(&e);
    pf_seckey *sk = pf_seckey_load(key_path, &e);
    fz_note("seckey_load", sk != NULL ? 0 : -1, &e);
    if (sk != NULL) {
        FZ_ASSERT(prc == 0 && same_pub(&pk, &sk->pub),
                  "seckey_load's public half differs from pubkey_parse's");
        uint8_t sig[PF_SIG_BYTES];
        static const uint8_t msg[] = "fuzz";
        pf_sign_ctx(sig, "fuzz-ctx", msg, sizeof msg, sk->sign_sk);
        FZ_ASSERT(pf_verify_ctx(sig, "fuzz-ctx", msg, sizeof msg, sk->pub.sign_pk),
                  "loaded secret key does not match its public key");
        pf_seckey_free(sk);
    }
    return 0;
}
