/* Key files for sensors and the central host.
 *
 * A sensor has one Ed25519 key that signs its bundles. The central host has
 * an X25519 key that bundles are encrypted to and an Ed25519 key that signs
 * receipts. Files are text: a type line, then "field: value" lines. */
#ifndef PF_KEYFILE_H
#define PF_KEYFILE_H

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/pf_err.h"
#include "common/text.h"

#define PF_KEYID_BYTES       16
#define PF_KEYID_HEX_BYTES   (2 * PF_KEYID_BYTES + 1)
#define PF_SIGN_PK_BYTES     crypto_sign_ed25519_PUBLICKEYBYTES
#define PF_SIGN_SK_BYTES     crypto_sign_ed25519_SECRETKEYBYTES
#define PF_SIG_BYTES         crypto_sign_ed25519_BYTES
#define PF_BOX_PK_BYTES      crypto_kx_PUBLICKEYBYTES
#define PF_BOX_SK_BYTES      crypto_kx_SECRETKEYBYTES
#define PF_HASH_BYTES        32
#define PF_KEYFILE_MAX_BYTES 4096

enum pf_key_role { PF_ROLE_SENSOR = 1, PF_ROLE_CENTRAL = 2 };

typedef struct pf_pubkey {
    enum pf_key_role role;
    char name[PF_NAME_MAX + 1];
    /* Sensor: id of sign_pk (what bundle headers name as the signer).
     * Central: id of box_pk (what bundle headers name as the recipient). */
    uint8_t key_id[PF_KEYID_BYTES];
    uint8_t sign_pk[PF_SIGN_PK_BYTES];
    uint8_t box_pk[PF_BOX_PK_BYTES]; /* central only */
} pf_pubkey;

typedef struct pf_seckey {
    pf_pubkey pub;
    uint8_t *sign_sk; /* sodium_malloc, PF_SIGN_SK_BYTES */
    uint8_t *box_sk;  /* sodium_malloc, PF_BOX_SK_BYTES; central only */
} pf_seckey;

/* BLAKE2b-128 of a public key: how headers and receipts name keys. */
void pf_key_id(uint8_t out[PF_KEYID_BYTES], const uint8_t *pk, size_t pk_len);
/* "pf1:" + base64 of BLAKE2b-256 over all public key material. */
void pf_pubkey_fingerprint(const pf_pubkey *pk, char *out, size_t cap);
const char *pf_role_name(enum pf_key_role role);

pf_seckey *pf_seckey_generate(enum pf_key_role role, const char *name, pf_err *e);
void pf_seckey_free(pf_seckey *sk);

/* Writes DIR/NAME.key (0600, O_EXCL|O_NOFOLLOW) and DIR/NAME.pub (0644).
 * Never replaces an existing file. */
int pf_seckey_save(const pf_seckey *sk, const char *dir, pf_err *e);

/* Loads a secret key file; refuses one readable by group or others, a
 * symlink, or one whose halves do not match. */
__attribute__((warn_unused_result)) pf_seckey *pf_seckey_load(const char *path, pf_err *e);

/* Loads our own secret key for a command: a wrong role or a damaged file
 * is configuration (PF_EUSAGE), never a "rejected input". */
pf_seckey *pf_seckey_load_as(const char *path, enum pf_key_role role, pf_err *e);

/* Loads a public key file, or the public half of a secret key file. */
__attribute__((warn_unused_result)) int pf_pubkey_load(const char *path, pf_pubkey *out, pf_err *e);

/* Parses the public key text (used by the keyring and tests). */
__attribute__((warn_unused_result)) int
pf_pubkey_parse(const char *text, size_t len, const char *what, pf_pubkey *out, pf_err *e);

/* Renders the public key file text into out. */
int pf_pubkey_format(const pf_pubkey *pk, char *out, size_t cap);

#endif
