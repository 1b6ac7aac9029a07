/* retrail: what a thief of a sensor's signing key can do to a trailer.
 *
 *   retrail BUNDLE SENSOR_SECRET_KEY HASH_HEX
 *
 * Rewrites BUNDLE's trailer in place so that it names HASH_HEX as the
 * bundle hash, signed with the (stolen) sensor key. The chunks stay as
 * they are, so the bundle still opens; only a reader that hashes the bytes
 * itself sees the lie. tests/cli/loop_cli.sh uses it to show that a
 * receipt for such a bundle cannot make a sensor prune the genuine one. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "common/text.h"

int main(int argc, char **argv)
{
    pf_err e;
    pf_header h;
    uint8_t hash[PF_HASH_BYTES], t[PF_TRAILER_BYTES];
    struct stat st;
    pf_err_clear(&e);
    if (argc != 4 || !pf_unhex(hash, sizeof hash, argv[3])) {
        fprintf(stderr, "usage: retrail BUNDLE SENSOR_SECRET_KEY HASH_HEX\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 2;
    pf_seckey *sk = pf_seckey_load(argv[2], &e);
    int fd = open(argv[1], O_RDWR | O_NOFOLLOW);
    if (sk == NULL || fd < 0 || fstat(fd, &st) != 0 || st.st_size <= (off_t)PF_TRAILER_BYTES ||
        pf_bundle_read_header_fd(fd, argv[1], &h, NULL, &e) != 0) {
        fprintf(stderr, "retrail: %s: %s\n", argv[1], e.msg[0] ? e.msg : "cannot read");
        return 1;
    }
    uint64_t body_len = (uint64_t)st.st_size - PF_TRAILER_BYTES;
    pf_trailer_build(t, &h, body_len, hash, sk->sign_sk);
    if (pwrite(fd, t, sizeof t, (off_t)body_len) != (ssize_t)sizeof t || fsync(fd) != 0) {
        perror(argv[1]);
        return 1;
    }
    close(fd);
    pf_seckey_free(sk);
    return 0;
}
