/* Key files and the keyring. */
#include "fixture.h"

static fixture fx;

static void write_text(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    fx_spit(path, (const uint8_t *)text, strlen(text));
    chmod(path, mode);
}

static void test_roundtrip(void)
{
    pf_err e;
    char dir[PATH_MAX], key[PATH_MAX], pub[PATH_MAX];
    pf_err_clear(&e);
    fx_path(dir, &fx, "rt");
    pf_seckey *c = pf_seckey_generate(PF_ROLE_CENTRAL, "hq", &e);
    CHECK(c != NULL && pf_seckey_save(c, dir, &e) == 0);
    snprintf(key, sizeof key, "%s/hq.key", dir);
    snprintf(pub, sizeof pub, "%s/hq.pub", dir);
    struct stat st;
    CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(stat(pub, &st) == 0 && (st.st_mode & 0777) == 0644);
    pf_seckey *l = pf_seckey_load(key, &e);
    CHECK_MSG(l != NULL, "%s", e.msg);
    if (l != NULL) {
        CHECK(l->pub.role == PF_ROLE_CENTRAL && strcmp(l->pub.name, "hq") == 0 &&
              memcmp(l->pub.key_id, c->pub.key_id, PF_KEYID_BYTES) == 0 &&
              memcmp(l->sign_sk, c->sign_sk, PF_SIGN_SK_BYTES) == 0 &&
              memcmp(l->box_sk, c->box_sk, PF_BOX_SK_BYTES) == 0);
        pf_seckey_free(l);
    }
    pf_pubkey pk, pk2;
    CHECK(pf_pubkey_load(pub, &pk, &e) == 0 && memcmp(&pk.box_pk, c->pub.box_pk, 32) == 0);
    /* the public half of a secret file is readable too (keys show) */
    CHECK(pf_pubkey_load(key, &pk2, &e) == 0 && memcmp(pk2.key_id, pk.key_id, 16) == 0);
    /* a public file is not a secret key */
    pf_err_clear(&e);
    CHECK(pf_seckey_load(pub, &e) == NULL);
    CHECK_ERR(e, PF_EUSAGE, "public key file");

    /* never overwrite: a second save refuses and leaves the file as it was */
    size_t before_len, after_len;
    uint8_t *before = fx_slurp(key, &before_len);
    pf_seckey *c2 = pf_seckey_generate(PF_ROLE_CENTRAL, "hq", &e);
    pf_err_clear(&e);
    CHECK(pf_seckey_save(c2, dir, &e) != 0);
    CHECK_ERR(e, PF_EENV, "already exists");
    uint8_t *after = fx_slurp(key, &after_len);
    CHECK(before_len == after_len && memcmp(before, after, before_len) == 0);
    free(before);
    free(after);
    pf_seckey_free(c2);

    /* too open: any group or other bit */
    const mode_t modes[] = {0644, 0640, 0604, 0610, 0601, 0660};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        chmod(key, modes[i]);
        pf_err_clear(&e);
        CHECK(pf_seckey_load(key, &e) == NULL);
        CHECK_ERR(e, PF_EENV, "too open");
    }
    chmod(key, 0400);
    pf_err_clear(&e);
    l = pf_seckey_load(key, &e);
    CHECK_MSG(l != NULL, "0400 is fine: %s", e.msg);
    pf_seckey_free(l);

    /* a symlink to a key is refused */
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s/link.key", dir);
    CHECK(symlink(key, link) == 0);
    pf_err_clear(&e);
    CHECK(pf_seckey_load(link, &e) == NULL);
    CHECK_ERR(e, PF_EENV, "symbolic link");
    pf_seckey_free(c);
}

static void test_damaged_files(void)
{
    pf_err e;
    char path[PATH_MAX];
    fx_path(path, &fx, "bad.key");
    pf_seckey *s = pf_seckey_generate(PF_ROLE_SENSOR, "s", &e);
    char dir[PATH_MAX];
    fx_path(dir, &fx, "good");
    CHECK(pf_seckey_save(s, dir, &e) == 0);
    char good[PATH_MAX];
    snprintf(good, sizeof good, "%s/s.key", dir);
    size_t len;
    uint8_t *text = fx_slurp(good, &len);
    text = realloc(text, len + 1);
    text[len] = '\0';
    const char *t = (const char *)text;

    struct {
        const char *from, *to, *needle;
    } cases[] = {
        {"pcapferry-sensor-secret-key-v1", "pcapferry-sensor-secret-key-v9", "not a pcapferry"},
        {"key-id: ", "key-id: 00", "key-id does not match"},
        {"name: s", "name: t", ""}, /* the name is not in the key id, but...*/
        {"name: s", "nome: s", "unknown field"},
        {"ed25519-secret: ", "ed25519-secret: AAAA", "not 64 bytes"},
        {"ed25519-public: ", "ed25519-public: x", "base64"},
        {"ed25519-public: ", "ed25519-secret: ", "appears twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[4096];
        const char *at = strstr(t, cases[i].from);
        if (at == NULL) {
            CHECK_MSG(0, "key text lacks %s", cases[i].from);
            continue;
        }
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - t), t, cases[i].to,
                 at + strlen(cases[i].from));
        write_text(path, buf, 0600);
        pf_err_clear(&e);
        pf_seckey *l = pf_seckey_load(path, &e);
        if (cases[i].needle[0] == '\0') {
            /* renaming a key is harmless: the name is a label, the key id
             * is what trust hangs on */
            CHECK(l != NULL);
        } else {
            CHECK_MSG(l == NULL && strstr(e.msg, cases[i].needle) != NULL, "case %zu: %s", i,
                      e.msg);
        }
        pf_seckey_free(l);
    }
    /* a secret half that does not belong to the public half */
    pf_seckey *s2 = pf_seckey_generate(PF_ROLE_SENSOR, "s", &e);
    char b64[200];
    sodium_bin2base64(b64, sizeof b64, s2->sign_sk, PF_SIGN_SK_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    char buf[4096];
    const char *at = strstr(t, "ed25519-secret: ");
    snprintf(buf, sizeof buf, "%.*sed25519-secret: %s\n", (int)(at - t), t, b64);
    write_text(path, buf, 0600);
    pf_err_clear(&e);
    CHECK(pf_seckey_load(path, &e) == NULL);
    CHECK_ERR(e, PF_EREJECT, "do not match");
    write_text(path, "", 0600);
    pf_err_clear(&e);
    CHECK(pf_seckey_load(path, &e) == NULL);
    CHECK_ERR(e, PF_EREJECT, "empty key file");
    pf_seckey_free(s2);
    pf_seckey_free(s);
    free(text);

    pf_err_clear(&e);
    CHECK(pf_seckey_generate(PF_ROLE_SENSOR, "../x", &e) == NULL);
    CHECK_ERR(e, PF_EUSAGE, "invalid key name");
}

static void test_keyring(void)
{
    pf_err e;
    pf_trust t;
    pf_trust *list = NULL;
    size_t n = 0;
    pf_err_clear(&e);
    /* with the importer's lookup cache on: every change below must be seen
     * by the next lookup (keys trust / revoke rename into the directory) */
    pf_keyring_cache_enable(true);
    /* fx_init trusted sensor1 */
    CHECK(pf_keyring_lookup(fx.keyring, fx.sensor->pub.key_id, &t, &e) == 0 && !t.revoked &&
          strcmp(t.key.name, "sensor1") == 0);
    CHECK(pf_keyring_lookup(fx.keyring, fx.sensor->pub.key_id, &t, &e) == 0 && !t.revoked);
    CHECK(pf_keyring_list(fx.keyring, &list, &n, &e) == 0 && n == 1);
    free(list);
    uint8_t unknown[PF_KEYID_BYTES] = {1};
    pf_err_clear(&e);
    CHECK(pf_keyring_lookup(fx.keyring, unknown, &t, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "not trusted");
    /* trusting a secret key file is refused */
    char key[PATH_MAX];
    pf_pubkey added;
    snprintf(key, sizeof key, "%s/keys/sensor1.key", fx.dir);
    pf_err_clear(&e);
    CHECK(pf_keyring_trust(fx.keyring, key, NULL, false, &added, &e) != 0);
    CHECK_ERR(e, PF_EUSAGE, "secret key");
    /* revocation, then its scope */
    uint8_t id[PF_KEYID_BYTES];
    char hex[PF_KEYID_HEX_BYTES];
    pf_hex(hex, fx.sensor->pub.key_id, PF_KEYID_BYTES);
    CHECK(pf_keyring_revoke(fx.keyring, hex, true, 7, NULL, 0, id, &e) == 0);
    CHECK(pf_keyring_lookup(fx.keyring, fx.sensor->pub.key_id, &t, &e) == 0 && t.revoked &&
          !t.revoked_all && t.valid_through == 7 && t.nallow == 0);
    pf_err_clear(&e);
    bool need = false;
    /* seq <= 7 is no longer simply valid: it needs a vouched hash */
    CHECK(pf_trust_check_seq(&t, 7, &need, &e) == 0 && need);
    CHECK(pf_trust_check_seq(&t, 8, &need, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "revoked after seq 7");
    /* a keyring file whose content is another key than its name says */
    char other_pub[PATH_MAX], forged[PATH_MAX];
    pf_seckey *o = pf_seckey_generate(PF_ROLE_SENSOR, "evil", &e);
    char odir[PATH_MAX];
    fx_path(odir, &fx, "evil");
    CHECK(pf_seckey_save(o, odir, &e) == 0);
    snprintf(other_pub, sizeof other_pub, "%s/evil.pub", odir);
    uint8_t ghost[PF_KEYID_BYTES];
    memset(ghost, 0xee, sizeof ghost);
    char ghex[PF_KEYID_HEX_BYTES];
    pf_hex(ghex, ghost, PF_KEYID_BYTES);
    snprintf(forged, sizeof forged, "%s/%s.pub", fx.keyring, ghex);
    size_t plen;
    uint8_t *ptext = fx_slurp(other_pub, &plen);
    fx_spit(forged, ptext, plen);
    free(ptext);
    pf_err_clear(&e);
    CHECK(pf_keyring_lookup(fx.keyring, ghost, &t, &e) != 0);
    CHECK_ERR(e, PF_EENV, "different key than its name says");
    pf_seckey_free(o);
}

static void make_pub(const char *dir, const char *name, char *pub, size_t cap, pf_seckey **out)
{
    pf_err e;
    pf_err_clear(&e);
    pf_seckey *k = pf_seckey_generate(PF_ROLE_SENSOR, name, &e);
    CHECK(k != NULL && pf_seckey_save(k, dir, &e) == 0);
    snprintf(pub, cap, "%s/%s.pub", dir, name);
    *out = k;
}

/* Issue 12 item 2: the name a key is trusted under is pinned. */
static void test_pinned_identity(void)
{
    pf_err e;
    pf_trust t;
    pf_pubkey added;
    char ring[PATH_MAX], kdir[PATH_MAX], a[PATH_MAX], a2[PATH_MAX], b[PATH_MAX];
    pf_seckey *ka, *ka2, *kb;
    fx_path(ring, &fx, "ring-pin");
    fx_path(kdir, &fx, "pinkeys");
    make_pub(kdir, "plantA", a, sizeof a, &ka);
    make_pub(kdir, "plantB", b, sizeof b, &kb);
    /* a second key of plantA whose file says plantA too */
    char kdir2[PATH_MAX];
    fx_path(kdir2, &fx, "pinkeys2");
    make_pub(kdir2, "plantA", a2, sizeof a2, &ka2);

    pf_err_clear(&e);
    CHECK_MSG(pf_keyring_trust(ring, a, NULL, false, &added, &e) == 0, "%s", e.msg);
    CHECK(pf_keyring_trust(ring, b, "plant-b", false, &added, &e) == 0 &&
          strcmp(added.name, "plant-b") == 0);
    CHECK(pf_keyring_lookup(ring, kb->pub.key_id, &t, &e) == 0 &&
          strcmp(t.key.name, "plant-b") == 0);
    /* the header name must be the pinned one, not the key file's */
    pf_err_clear(&e);
    CHECK(pf_trust_allows_sensor(&t, "plant-b", &e) == 0);
    CHECK(pf_trust_allows_sensor(&t, "plantB", &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "trusted as sensor 'plant-b'");
    pf_err_clear(&e);
    CHECK(pf_trust_allows_sensor(&t, "plantA", &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "bundle says sensor 'plantA'");
    /* a bad --name */
    pf_err_clear(&e);
    CHECK(pf_keyring_trust(ring, a2, "../x", false, &added, &e) != 0);
    CHECK_ERR(e, PF_EUSAGE, "--name");
    /* a pinned name never changes */
    pf_err_clear(&e);
    CHECK(pf_keyring_trust(ring, b, "plantA", false, &added, &e) != 0);
    CHECK_ERR(e, PF_EUSAGE, "already trusted as sensor 'plant-b'");
    /* a second key under a pinned name needs --same-sensor */
    pf_err_clear(&e);
    CHECK(pf_keyring_trust(ring, a2, NULL, false, &added, &e) != 0);
    CHECK_ERR(e, PF_EUSAGE, "already pinned");
    pf_err_clear(&e);
    CHECK(pf_keyring_lookup(ring, ka2->pub.key_id, &t, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "not trusted");
    pf_err_clear(&e);
    CHECK(pf_keyring_trust(ring, a2, "nobody", true, &added, &e) != 0);
    CHECK_ERR(e, PF_EUSAGE, "no key is trusted as sensor 'nobody'");
    pf_err_clear(&e);
    CHECK_MSG(pf_keyring_trust(ring, a2, NULL, true, &added, &e) == 0, "%s", e.msg);
    CHECK(pf_keyring_lookup(ring, ka2->pub.key_id, &t, &e) == 0 && t.same_sensor &&
          strcmp(t.key.name, "plantA") == 0);
    CHECK(pf_keyring_lookup(ring, ka->pub.key_id, &t, &e) == 0 && !t.same_sensor);

    /* A 0.1.0 keyring: two keys under one name and no record: lookups of
     * either refuse with a pointer to the migration; list shows them. */
    char old[PATH_MAX], idhex[PF_KEYID_HEX_BYTES], path[PATH_MAX];
    fx_path(old, &fx, "ring-010");
    CHECK(pf_keyring_trust(old, a, NULL, false, &added, &e) == 0);
    pf_hex(idhex, ka2->pub.key_id, PF_KEYID_BYTES);
    snprintf(path, sizeof path, "%s/%s.pub", old, idhex);
    size_t len;
    uint8_t *text = fx_slurp(a2, &len);
    fx_spit(path, text, len); /* what 0.1.0 let "keys trust" do */
    free(text);
    pf_err_clear(&e);
    CHECK(pf_keyring_lookup(old, ka->pub.key_id, &t, &e) != 0);
    CHECK_ERR(e, PF_EENV, "nothing says they are the same sensor");
    pf_err_clear(&e);
    CHECK(pf_keyring_lookup(old, ka2->pub.key_id, &t, &e) != 0);
    CHECK_ERR(e, PF_EENV, "Upgrading from 0.1.0");
    pf_trust *list = NULL;
    size_t n = 0;
    CHECK(pf_keyring_list(old, &list, &n, &e) == 0 && n == 2 && list[0].ambiguous &&
          list[1].ambiguous);
    free(list);
    /* the documented migration: say the newer key is the same sensor */
    pf_err_clear(&e);
    CHECK_MSG(pf_keyring_trust(old, a2, NULL, true, &added, &e) == 0, "%s", e.msg);
    CHECK(pf_keyring_lookup(old, ka->pub.key_id, &t, &e) == 0);
    CHECK(pf_keyring_lookup(old, ka2->pub.key_id, &t, &e) == 0 && t.same_sensor);
    /* a forged record for another name does not count */
    snprintf(path, sizeof path, "%s/%s.same-sensor", old, idhex);
    write_text(path, "pcapferry-same-sensor-v1\nsensor: plantB\n", 0644);
    pf_err_clear(&e);
    CHECK(pf_keyring_lookup(old, ka->pub.key_id, &t, &e) != 0);
    CHECK_ERR(e, PF_EENV, "both trusted as sensor 'plantA'");
    pf_seckey_free(ka);
    pf_seckey_free(ka2);
    pf_seckey_free(kb);
}

/* Issue 12 item 3: revocation files with vouched-for hashes. */
static void test_revocation_allow(void)
{
    pf_err e;
    pf_trust t;
    char ring[PATH_MAX], path[PATH_MAX], hex[PF_KEYID_HEX_BYTES];
    uint8_t id[PF_KEYID_BYTES], h[2][PF_HASH_BYTES];
    fx_path(ring, &fx, "ring-allow");
    pf_hex(hex, fx.sensor->pub.key_id, PF_KEYID_BYTES);
    memset(h[0], 0x11, PF_HASH_BYTES);
    memset(h[1], 0x22, PF_HASH_BYTES);
    pf_err_clear(&e);
    /* --allow without --after-seq is meaningless */
    CHECK(pf_keyring_revoke(ring, hex, false, 0, (const uint8_t(*)[PF_HASH_BYTES])h, 1, id, &e) !=
          0);
    CHECK_ERR(e, PF_EUSAGE, "--allow needs --after-seq");
    pf_err_clear(&e);
    CHECK(pf_keyring_revoke(ring, hex, true, 10, (const uint8_t(*)[PF_HASH_BYTES])h, 1, id, &e) ==
          0);
    /* a tighter revoke keeps the vouched hashes and adds new ones */
    CHECK(pf_keyring_revoke(ring, hex, true, 9, (const uint8_t(*)[PF_HASH_BYTES])h + 1, 1, id,
                            &e) == 0);
    /* fixture's keyring holds the key; copy it so lookup finds it */
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s/%s.pub", fx.keyring, hex);
    snprintf(path, sizeof path, "%s/%s.pub", ring, hex);
    size_t len;
    uint8_t *text = fx_slurp(src, &len);
    fx_spit(path, text, len);
    free(text);
    CHECK_MSG(pf_keyring_lookup(ring, fx.sensor->pub.key_id, &t, &e) == 0, "%s", e.msg);
    CHECK(t.revoked && t.valid_through == 9 && t.nallow == 2 && pf_trust_hash_allowed(&t, h[0]) &&
          pf_trust_hash_allowed(&t, h[1]));
    uint8_t other[PF_HASH_BYTES];
    memset(other, 0x33, sizeof other);
    CHECK(!pf_trust_hash_allowed(&t, other));
    /* never loosened, allow or not */
    pf_err_clear(&e);
    CHECK(pf_keyring_revoke(ring, hex, true, 10, (const uint8_t(*)[PF_HASH_BYTES])h, 1, id, &e) !=
          0);
    CHECK_ERR(e, PF_EUSAGE, "never loosened");
    /* damaged allow lines make the keyring fail loudly, not pass quietly */
    snprintf(path, sizeof path, "%s/%s.revoked", ring, hex);
    const char *bad[] = {"pcapferry-revocation-v1\nvalid-through-seq: 9\nallow: 12\n",
                         "pcapferry-revocation-v1\nvalid-through-seq: 9\nbogus: 1\n",
                         "pcapferry-revocation-v1\nvalid-through-seq: 9\nallow: "
                         "zz11111111111111111111111111111111111111111111111111111111111111\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i], 0644);
        pf_err_clear(&e);
        CHECK(pf_keyring_lookup(ring, fx.sensor->pub.key_id, &t, &e) != 0);
        CHECK_ERR(e, PF_EENV, "malformed revocation");
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 2;
    fx_init(&fx, "keys");
    test_roundtrip();
    test_damaged_files();
    test_keyring();
    pf_keyring_cache_enable(false);
    test_pinned_identity();
    test_revocation_allow();
    fx_free(&fx);
    return check_summary("test_keys");
}
