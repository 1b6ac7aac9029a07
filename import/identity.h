/* The importer's side of sensor identity and revocation (issue 12).
 *
 * A sensor is its key: a bundle is only ever looked up, counted and
 * delivered under the name its signing key is pinned to in the keyring, so a
 * header naming another sensor is refused (import_one, with the one key
 * look-up and signature check it makes) before its (sensor, seq) is compared
 * with anything. A key revoked after seq N gets a bundle with seq
 * <= N accepted only when its hash is vouched for: named in the revocation,
 * or named as prev_hash by a bundle of that sensor already imported. */
#ifndef PF_IMPORT_IDENTITY_H
#define PF_IMPORT_IDENTITY_H

#include <stdbool.h>

#include "bundle/bundle.h"
#include "import/db.h"

/* The revocation check with the import state. On 0, when *has_vouched, pass
 * vouched to pf_bundle_extract_opts. -1 with e: PF_EREJECT refused (after
 * the cut-off, revoked entirely, or the chain shows another bundle or none
 * at that place); PF_EINCOMPLETE nothing vouches for it yet: leave it for a
 * later run; PF_EENV stop. */
int pf_identity_check_revocation(pf_db *db, const pf_trust *t, int fd, const pf_header *h,
                                 uint8_t vouched[PF_HASH_BYTES], bool *has_vouched, pf_err *e);

#endif
