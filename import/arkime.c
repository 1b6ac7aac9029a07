#include "import/arkime.h"

#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool pf_arkime_link_type_ok(int link_type)
{
    /* NULL, Ethernet, RAW (12, 14, 101), Frame Relay, Linux SLL, radiotap,
     * NFLOG, IPv4, IPv6, 802.3br mPacket, SLL2 */
    static const int ok[] = {0, 1, 12, 14, 101, 107, 113, 127, 239, 228, 229, 274, 276};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i] == link_type)
            return true;
    return false;
}

enum pf_gate pf_arkime_gate(const pf_pcapinfo *info, bool read_truncated, char *reason, size_t cap)
{
    reason[0] = '\0';
    if (info->read_status != PF_READ_COMPLETE) {
        snprintf(reason, cap, "libpcap could not read the whole file (%s): %s",
                 pf_read_status_name(info->read_status), info->read_error);
        return PF_GATE_HOLD;
    }
    bool pcap = strcmp(info->format, "pcap") == 0;
    bool pcapng = strcmp(info->format, "pcapng") == 0;
    if (!pcap && !pcapng) {
        snprintf(reason, cap, "format '%s' is not a capture format Arkime reads", info->format);
        return PF_GATE_HOLD;
    }
    if (!pf_arkime_link_type_ok(info->link_type)) {
        snprintf(reason, cap,
                 "link type %d (%s) is not one Arkime's capture reads; it would stop ingesting",
                 info->link_type, info->link_type_name[0] ? info->link_type_name : "unknown");
        return PF_GATE_HOLD;
    }
    if (info->truncated_packets > 0 && !read_truncated) {
        snprintf(reason, cap,
                 "%llu packets are truncated (caplen < len); Arkime refuses them unless "
                 "readTruncatedPackets=true (then run the importer with "
                 "--arkime-read-truncated)",
                 (unsigned long long)info->truncated_packets);
        return PF_GATE_HOLD;
    }
    if (info->packets == 0) {
        snprintf(reason, cap, "no packets");
        return PF_GATE_EMPTY;
    }
    return pcapng ? PF_GATE_CONVERT : PF_GATE_DELIVER;
}

int pf_pcapng_to_pcap(int dirfd, const char *in_name, const char *out_name, uint64_t want_packets,
                      const char *what, pf_err *e)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    pcap_t *in = NULL, *dead = NULL;
    pcap_dumper_t *dump = NULL;
    FILE *inf = NULL, *outf = NULL;
    int infd = -1, outfd = -1, rc = -1;
    uint64_t packets = 0;

    infd = openat(dirfd, in_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (infd < 0 || (inf = fdopen(infd, "rb")) == NULL) {
        pf_err_sys(e, errno, "%s: cannot open staged file", what);
        goto out;
    }
    infd = -1;
    in = pcap_fopen_offline_with_tstamp_precision(inf, PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (in == NULL) {
        pf_err_set(e, PF_EREJECT, "%s: libpcap cannot read it for conversion: %s", what, errbuf);
        goto out;
    }
    inf = NULL; /* owned by in */
    dead = pcap_open_dead_with_tstamp_precision(pcap_datalink(in), pcap_snapshot(in),
                                                PCAP_TSTAMP_PRECISION_NANO);
    outfd = openat(dirfd, out_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (dead == NULL || outfd < 0 || (outf = fdopen(outfd, "wb")) == NULL) {
        pf_err_sys(e, errno, "%s: cannot create converted file", what);
        goto out;
    }
    outfd = -1;
    dump = pcap_dump_fopen(dead, outf);
    if (dump == NULL) {
        pf_err_set(e, PF_EENV, "%s: %s", what, pcap_geterr(dead));
        goto out;
    }
    outf = NULL; /* owned by dump */
    for (;;) {
        struct pcap_pkthdr *h;
        const u_char *data;
        int r = pcap_next_ex(in, &h, &data);
        if (r == PCAP_ERROR_BREAK)
            break;
        if (r != 1) {
            pf_err_set(e, PF_EREJECT, "%s: conversion read failed: %s", what, pcap_geterr(in));
            goto out;
        }
        pcap_dump((u_char *)dump, h, data);
        packets++;
    }
    if (packets != want_packets) {
        pf_err_set(e, PF_EREJECT, "%s: conversion read %llu packets, the manifest says %llu", what,
                   (unsigned long long)packets, (unsigned long long)want_packets);
        goto out;
    }
    FILE *f = pcap_dump_file(dump);
    if (pcap_dump_flush(dump) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        pf_err_sys(e, errno ? errno : EIO, "%s: writing the converted file failed", what);
        goto out;
    }
    rc = 0;
out:
    if (dump != NULL)
        pcap_dump_close(dump);
    if (outf != NULL)
        fclose(outf);
    if (outfd >= 0)
        close(outfd);
    if (dead != NULL)
        pcap_close(dead);
    if (in != NULL)
        pcap_close(in);
    if (inf != NULL)
        fclose(inf);
    if (infd >= 0)
        close(infd);
    if (rc != 0)
        unlinkat(dirfd, out_name, 0);
    return rc;
}

int pf_arkime_announce(int dirfd, const char *name, pf_err *e)
{
    int fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return pf_err_sys(e, errno, "%s: cannot announce to Arkime", name);
    if (close(fd) != 0)
        return pf_err_sys(e, errno, "%s: cannot announce to Arkime", name);
    return 0;
}
