#include "keys/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"

#define TYPE_SENSOR_SECRET  "pcapferry-sensor-secret-key-v1"
#define TYPE_SENSOR_PUBLIC  "pcapferry-sensor-public-key-v1"
#define TYPE_CENTRAL_SECRET "pcapferry-central-secret-key-v1"
#define TYPE_CENTRAL_PUBLIC "pcapferry-central-public-key-v1"

void pf_key_id(uint8_t out[PF_KEYID_BYTES], const uint8_t *pk, size_t pk_len)
{
    crypto_generichash(out, PF_KEYID_BYTES, pk, pk_len, NULL, 0);
}

const char *pf_role_name(enum pf_key_role role)
{
    return role == PF_ROLE_CENTRAL ? "central" : "sensor";
}

void pf_pubkey_fingerprint(const pf_pubkey *pk, char *out, size_t cap)
{
    uint8_t h[PF_HASH_BYTES];
    crypto_generichash_state st;
    char b64[sodium_base64_ENCODED_LEN(PF_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, pk->sign_pk, sizeof pk->sign_pk);
    if (pk->role == PF_ROLE_CENTRAL)
        crypto_generichash_update(&st, pk->box_pk, sizeof pk->box_pk);
    crypto_generichash_final(&st, h, sizeof h);
    sodium_bin2base64(b64, sizeof b64, h, sizeof h, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    snprintf(out, cap, "pf1:%s", b64);
}

static void fill_key_id(pf_pubkey *pk)
{
    if (pk->role == PF_ROLE_CENTRAL)
        pf_key_id(pk->key_id, pk->box_pk, sizeof pk->box_pk);
    else
        pf_key_id(pk->key_id, pk->sign_pk, sizeof pk->sign_pk);
}

void pf_seckey_free(pf_seckey *sk)
{
    if (sk == NULL)
        return;
    sodium_free(sk->sign_sk); /* sodium_free wipes and accepts NULL */
    sodium_free(sk->box_sk);
    sodium_memzero(sk, sizeof *sk);
    free(sk);
}

static pf_seckey *seckey_alloc(enum pf_key_role role, pf_err *e)
{
    pf_seckey *sk = calloc(1, sizeof *sk);
    if (sk == NULL)
        goto fail;
    sk->pub.role = role;
    sk->sign_sk = sodium_malloc(PF_SIGN_SK_BYTES);
    if (sk->sign_sk == NULL)
        goto fail;
    if (role == PF_ROLE_CENTRAL) {
        sk->box_sk = sodium_malloc(PF_BOX_SK_BYTES);
        if (sk->box_sk == NULL)
            goto fail;
    }
    return sk;
fail:
    pf_seckey_free(sk);
    pf_err_set(e, PF_EENV, "out of secure memory");
    return NULL;
}

pf_seckey *pf_seckey_generate(enum pf_key_role role, const char *name, pf_err *e)
{
    if (!pf_name_valid(name)) {
        pf_err_set(e, PF_EUSAGE,
                   "'%s': invalid key name (1-%d of A-Z a-z 0-9 _ . -, not starting with . or -)",
                   name, PF_NAME_MAX);
        return NULL;
    }
    pf_seckey *sk = seckey_alloc(role, e);
    if (sk == NULL)
        return NULL;
    snprintf(sk->pub.name, sizeof sk->pub.name, "%s", name);
    if (crypto_sign_ed25519_keypair(sk->pub.sign_pk, sk->sign_sk) != 0 ||
        (role == PF_ROLE_CENTRAL && crypto_kx_keypair(sk->pub.box_pk, sk->box_sk) != 0)) {
        pf_seckey_free(sk);
        pf_err_set(e, PF_EENV, "key generation failed");
        return NULL;
    }
    fill_key_id(&sk->pub);
    return sk;
}

static int append(char *out, size_t cap, size_t *used, const char *field, const uint8_t *bin,
                  size_t binlen)
{
    char b64[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, bin, binlen, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(out + *used, cap - *used, "%s: %s\n", field, b64);
    sodium_memzero(b64, sizeof b64);
    if (n < 0 || (size_t)n >= cap - *used)
        return -1;
    *used += (size_t)n;
    return 0;
}

static int format_key(const pf_pubkey *pk, const pf_seckey *sk, char *out, size_t cap)
{
    char id[PF_KEYID_HEX_BYTES];
    const char *type;
    size_t used = 0;
    if (pk->role == PF_ROLE_CENTRAL)
        type = sk != NULL ? TYPE_CENTRAL_SECRET : TYPE_CENTRAL_PUBLIC;
    else
        type = sk != NULL ? TYPE_SENSOR_SECRET : TYPE_SENSOR_PUBLIC;
    pf_hex(id, pk->key_id, sizeof pk->key_id);
    int n = snprintf(out, cap, "%s\nname: %s\nkey-id: %s\n", type, pk->name, id);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    used = (size_t)n;
    if (pk->role == PF_ROLE_CENTRAL) {
        if (append(out, cap, &used, "x25519-public", pk->box_pk, sizeof pk->box_pk) != 0)
            return -1;
        if (sk != NULL && append(out, cap, &used, "x25519-secret", sk->box_sk, PF_BOX_SK_BYTES))
            return -1;
    }
    if (append(out, cap, &used, "ed25519-public", pk->sign_pk, sizeof pk->sign_pk) != 0)
        return -1;
    if (sk != NULL && append(out, cap, &used, "ed25519-secret", sk->sign_sk, PF_SIGN_SK_BYTES))
        return -1;
    return (int)used;
}

int pf_pubkey_format(const pf_pubkey *pk, char *out, size_t cap)
{
    return format_key(pk, NULL, out, cap);
}

int pf_seckey_save(const pf_seckey *sk, const char *dir, pf_err *e)
{
    char keyname[NAME_MAX + 1], pubname[NAME_MAX + 1], pubtext[1024];
    char *sectext = NULL;
    int rc = -1;

    if (pf_mkdir_p(dir, 0700, e) != 0)
        goto out;
    snprintf(keyname, sizeof keyname, "%s.key", sk->pub.name);
    snprintf(pubname, sizeof pubname, "%s.pub", sk->pub.name);
    /* Check both before writing either, so a refusal leaves nothing behind. */
    for (int i = 0; i < 2; i++) {
        char path[PATH_MAX];
        const char *name = i == 0 ? keyname : pubname;
        if (pf_path_join(path, sizeof path, dir, name, e) != 0)
            goto out;
        if (access(path, F_OK) == 0 || errno != ENOENT) {
            pf_err_set(e, PF_EENV, "%s: already exists; refusing to overwrite a key file", path);
            goto out;
        }
    }
    sectext = sodium_malloc(PF_KEYFILE_MAX_BYTES);
    if (sectext == NULL) {
        pf_err_set(e, PF_EENV, "out of secure memory");
        goto out;
    }
    int seclen = format_key(&sk->pub, sk, sectext, PF_KEYFILE_MAX_BYTES);
    int publen = format_key(&sk->pub, NULL, pubtext, sizeof pubtext);
    if (seclen < 0 || publen < 0) {
        pf_err_set(e, PF_EENV, "key file too large");
        goto out;
    }
    if (pf_atomic_write(dir, keyname, sectext, (size_t)seclen, 0600, true, e) != 0)
        goto out;
    if (pf_atomic_write(dir, pubname, pubtext, (size_t)publen, 0644, true, e) != 0)
        goto out;
    rc = 0;
out:
    sodium_free(sectext);
    return rc;
}

/* Field values point into the file text; secrets are decoded straight into
 * sodium_malloc memory and never copied elsewhere. */
struct fields {
    const char *type;
    size_t type_len;
    const char *val[6];
    size_t len[6];
};
static const char *const field_names[6] = {"name",          "key-id",         "x25519-public",
                                           "x25519-secret", "ed25519-public", "ed25519-secret"};
enum { F_NAME, F_KEYID, F_XPUB, F_XSEC, F_EPUB, F_ESEC };

static int split_fields(const char *text, size_t len, const char *what, struct fields *f, pf_err *e)
{
    memset(f, 0, sizeof *f);
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl != NULL ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl != NULL ? 1 : 0);
        lineno++;
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (lineno == 1) {
            f->type = line;
            f->type_len = ll;
            continue;
        }
        if (ll == 0)
            continue;
        const char *colon = memchr(line, ':', ll);
        if (colon == NULL)
            return pf_err_set(e, PF_EREJECT, "%s: line %d: expected 'field: value'", what, lineno);
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1;
        size_t vlen = ll - nlen - 1;
        while (vlen > 0 && *v == ' ') {
            v++;
            vlen--;
        }
        int idx = -1;
        for (int i = 0; i < 6; i++)
            if (strlen(field_names[i]) == nlen && memcmp(field_names[i], line, nlen) == 0)
                idx = i;
        if (idx < 0)
            return pf_err_set(e, PF_EREJECT, "%s: line %d: unknown field '%.*s'", what, lineno,
                              (int)(nlen > 40 ? 40 : nlen), line);
        if (f->val[idx] != NULL)
            return pf_err_set(e, PF_EREJECT, "%s: field '%s' appears twice", what,
                              field_names[idx]);
        f->val[idx] = v;
        f->len[idx] = vlen;
    }
    if (f->type == NULL)
        return pf_err_set(e, PF_EREJECT, "%s: empty key file", what);
    return 0;
}

static bool type_is(const struct fields *f, const char *t)
{
    return f->type_len == strlen(t) && memcmp(f->type, t, f->type_len) == 0;
}

static int decode_b64(const struct fields *f, int idx, uint8_t *out, size_t outlen,
                      const char *what, pf_err *e)
{
    size_t got = 0;
    const char *end = NULL;
    if (f->val[idx] == NULL)
        return pf_err_set(e, PF_EREJECT, "%s: missing field '%s'", what, field_names[idx]);
    if (sodium_base642bin(out, outlen, f->val[idx], f->len[idx], NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != outlen || end != f->val[idx] + f->len[idx])
        return pf_err_set(e, PF_EREJECT, "%s: field '%s' is not %zu bytes of base64", what,
                          field_names[idx], outlen);
    return 0;
}

/* Parses everything public and checks the key id; reports whether the file
 * is a secret one. */
static int parse_public(const struct fields *f, const char *what, pf_pubkey *pk, bool *secret,
                        pf_err *e)
{
    memset(pk, 0, sizeof *pk);
    if (type_is(f, TYPE_SENSOR_SECRET) || type_is(f, TYPE_SENSOR_PUBLIC))
        pk->role = PF_ROLE_SENSOR;
    else if (type_is(f, TYPE_CENTRAL_SECRET) || type_is(f, TYPE_CENTRAL_PUBLIC))
        pk->role = PF_ROLE_CENTRAL;
    else
        return pf_err_set(e, PF_EREJECT, "%s: not a pcapferry key file (unknown first line)", what);
    *secret = type_is(f, TYPE_SENSOR_SECRET) || type_is(f, TYPE_CENTRAL_SECRET);
    bool central = pk->role == PF_ROLE_CENTRAL;
    for (int i = 0; i < 6; i++) {
        bool allowed = i == F_NAME || i == F_KEYID || i == F_EPUB || (central && i == F_XPUB) ||
                       (*secret && i == F_ESEC) || (*secret && central && i == F_XSEC);
        if (f->val[i] != NULL && !allowed)
            return pf_err_set(e, PF_EREJECT, "%s: field '%s' does not belong in this key type",
                              what, field_names[i]);
    }
    if (f->val[F_NAME] == NULL || f->len[F_NAME] > PF_NAME_MAX)
        return pf_err_set(e, PF_EREJECT, "%s: missing or overlong 'name'", what);
    memcpy(pk->name, f->val[F_NAME], f->len[F_NAME]);
    pk->name[f->len[F_NAME]] = '\0';
    if (strlen(pk->name) != f->len[F_NAME])
        return pf_err_set(e, PF_EREJECT, "%s: key name contains a NUL byte", what);
    if (!pf_name_valid(pk->name))
        return pf_err_set(e, PF_EREJECT, "%s: invalid key name '%s'", what, pk->name);
    if (decode_b64(f, F_EPUB, pk->sign_pk, sizeof pk->sign_pk, what, e) != 0)
        return -1;
    if (central && decode_b64(f, F_XPUB, pk->box_pk, sizeof pk->box_pk, what, e) != 0)
        return -1;
    fill_key_id(pk);
    char idhex[PF_KEYID_HEX_BYTES] = "";
    if (f->val[F_KEYID] != NULL && f->len[F_KEYID] < sizeof idhex) {
        memcpy(idhex, f->val[F_KEYID], f->len[F_KEYID]);
        idhex[f->len[F_KEYID]] = '\0';
    }
    uint8_t id[PF_KEYID_BYTES];
    if (!pf_unhex(id, sizeof id, idhex) || sodium_memcmp(id, pk->key_id, sizeof id) != 0)
        return pf_err_set(e, PF_EREJECT, "%s: key-id does not match the key material", what);
    return 0;
}

int pf_pubkey_parse(const char *text, size_t len, const char *what, pf_pubkey *out, pf_err *e)
{
    struct fields f;
    bool secret;
    if (split_fields(text, len, what, &f, e) != 0)
        return -1;
    return parse_public(&f, what, out, &secret, e);
}

int pf_pubkey_load(const char *path, pf_pubkey *out, pf_err *e)
{
    uint8_t *text = NULL;
    size_t len = 0;
    /* Secure in case PATH is a secret key file. */
    if (pf_read_file(path, PF_KEYFILE_MAX_BYTES, PF_READ_SECURE, &text, &len, e) != 0)
        return -1;
    int rc = pf_pubkey_parse((const char *)text, len, path, out, e);
    pf_free_file(text, true);
    return rc;
}

static bool is_secret_file(const char *path)
{
    uint8_t *text = NULL;
    size_t len = 0;
    struct fields f;
    pf_err e;
    pf_err_clear(&e);
    bool secret = true; /* when in doubt, keep the permission error */
    if (pf_read_file(path, PF_KEYFILE_MAX_BYTES, PF_READ_SECURE, &text, &len, &e) == 0 &&
        split_fields((const char *)text, len, path, &f, &e) == 0)
        secret = type_is(&f, TYPE_SENSOR_SECRET) || type_is(&f, TYPE_CENTRAL_SECRET);
    pf_free_file(text, true);
    return secret;
}

pf_seckey *pf_seckey_load(const char *path, pf_err *e)
{
    uint8_t *text = NULL;
    size_t len = 0;
    pf_seckey *sk = NULL;
    struct fields f;
    pf_pubkey pub;
    bool secret = false;

    if (pf_read_file(path, PF_KEYFILE_MAX_BYTES, PF_READ_SECURE | PF_READ_PRIVATE, &text, &len,
                     e) != 0) {
        /* "--key NAME.pub" is a common slip: say that, not "too open". */
        pf_err probe;
        pf_pubkey pk;
        pf_err_clear(&probe);
        if (pf_pubkey_load(path, &pk, &probe) == 0 && !is_secret_file(path)) {
            pf_err_clear(e);
            pf_err_set(e, PF_EUSAGE, "%s: is a public key file; a secret key (.key) is needed",
                       path);
        }
        goto fail;
    }
    if (split_fields((const char *)text, len, path, &f, e) != 0)
        goto fail;
    if (parse_public(&f, path, &pub, &secret, e) != 0)
        goto fail;
    if (!secret) {
        pf_err_set(e, PF_EUSAGE, "%s: is a public key file; a secret key (.key) is needed", path);
        goto fail;
    }
    sk = seckey_alloc(pub.role, e);
    if (sk == NULL)
        goto fail;
    sk->pub = pub;
    if (decode_b64(&f, F_ESEC, sk->sign_sk, PF_SIGN_SK_BYTES, path, e) != 0)
        goto fail;
    /* The second half of an Ed25519 secret key is a copy of the public
     * key; rebuild the whole pair from the seed so a damaged seed is
     * caught here, not by every central host that rejects our bundles. */
    uint8_t derived[PF_SIGN_PK_BYTES], seed[crypto_sign_ed25519_SEEDBYTES];
    uint8_t *rebuilt = sodium_malloc(PF_SIGN_SK_BYTES);
    bool bad = rebuilt == NULL || crypto_sign_ed25519_sk_to_seed(seed, sk->sign_sk) != 0 ||
               crypto_sign_ed25519_seed_keypair(derived, rebuilt, seed) != 0 ||
               sodium_memcmp(derived, pub.sign_pk, sizeof derived) != 0 ||
               sodium_memcmp(rebuilt, sk->sign_sk, PF_SIGN_SK_BYTES) != 0;
    sodium_memzero(seed, sizeof seed);
    sodium_free(rebuilt);
    if (bad) {
        pf_err_set(e, PF_EREJECT, "%s: ed25519 secret and public halves do not match", path);
        goto fail;
    }
    if (pub.role == PF_ROLE_CENTRAL) {
        uint8_t xpk[PF_BOX_PK_BYTES];
        if (decode_b64(&f, F_XSEC, sk->box_sk, PF_BOX_SK_BYTES, path, e) != 0)
            goto fail;
        if (crypto_scalarmult_base(xpk, sk->box_sk) != 0 ||
            sodium_memcmp(xpk, pub.box_pk, sizeof xpk) != 0) {
            pf_err_set(e, PF_EREJECT, "%s: x25519 secret and public halves do not match", path);
            goto fail;
        }
    }
    pf_free_file(text, true);
    return sk;
fail:
    pf_free_file(text, true);
    pf_seckey_free(sk);
    return NULL;
}

pf_seckey *pf_seckey_load_as(const char *path, enum pf_key_role role, pf_err *e)
{
    pf_seckey *sk = pf_seckey_load(path, e);
    if (sk == NULL) {
        if (e->status == PF_EREJECT)
            e->status = PF_EUSAGE;
        return NULL;
    }
    if (sk->pub.role != role) {
        pf_err_set(e, PF_EUSAGE, "%s: a %s secret key is needed here, this is a %s key", path,
                   pf_role_name(role), pf_role_name(sk->pub.role));
        pf_seckey_free(sk);
        return NULL;
    }
    return sk;
}
