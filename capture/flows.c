#include "capture/flows.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"

#define FLOW_IDLE_SECONDS 600
#define PROBE_LIMIT       16

int pf_dont_save_parse(const char *spec, pf_dont_save *out, pf_err *e)
{
    memset(out, 0, sizeof *out);
    const char *colon = strrchr(spec, ':');
    size_t elen = colon != NULL ? (size_t)(colon - spec) : 0;
    if (colon == NULL || elen == 0 || elen >= sizeof out->expr ||
        !pf_parse_u64(colon + 1, &out->keep))
        return pf_err_set(e, PF_EUSAGE,
                          "--dont-save '%s': expected 'BPF:N', e.g. 'port 22:10' (keep the first "
                          "N packets of each matching flow)",
                          spec);
    memcpy(out->expr, spec, elen);
    out->expr[elen] = '\0';
    return 0;
}

int pf_flows_init(pf_flows *f, pcap_t *p, pf_err *e)
{
    f->link_type = pcap_datalink(p);
    for (size_t i = 0; i < f->nrules; i++) {
        if (pcap_compile(p, &f->rules[i].prog, f->rules[i].expr, 1, PCAP_NETMASK_UNKNOWN) != 0)
            return pf_err_set(e, PF_EUSAGE, "--dont-save '%s': %s", f->rules[i].expr,
                              pcap_geterr(p));
        f->rules[i].compiled = true;
    }
    if (f->nrules > 0) {
        f->slots = calloc(PF_FLOW_SLOTS, sizeof *f->slots);
        if (f->slots == NULL)
            return pf_err_set(e, PF_EENV, "out of memory");
    }
    randombytes_buf(f->hash_key, sizeof f->hash_key);
    return 0;
}

void pf_flows_free(pf_flows *f)
{
    for (size_t i = 0; i < f->nrules; i++)
        if (f->rules[i].compiled)
            pcap_freecode(&f->rules[i].prog);
    free(f->slots);
    f->slots = NULL;
}

/* The flow key: protocol and both endpoints, ordered so both directions
 * of a conversation share it. Returns its length, 0 if not IP. */
static size_t flow_key(int link_type, const uint8_t *d, uint32_t caplen, uint8_t key[40])
{
    uint32_t off = 0;
    uint16_t etype = 0;
    switch (link_type) {
    case DLT_EN10MB:
        if (caplen < 14)
            return 0;
        etype = (uint16_t)(d[12] << 8 | d[13]);
        off = 14;
        while ((etype == 0x8100 || etype == 0x88a8) && off + 4 <= caplen) {
            etype = (uint16_t)(d[off + 2] << 8 | d[off + 3]);
            off += 4;
        }
        break;
    case DLT_RAW:
    case 228: /* LINKTYPE_IPV4 */
    case 229: /* LINKTYPE_IPV6 */
        if (caplen < 1)
            return 0;
        etype = (d[0] >> 4) == 6 ? 0x86dd : 0x0800;
        break;
    case DLT_LINUX_SLL:
        if (caplen < 16)
            return 0;
        etype = (uint16_t)(d[14] << 8 | d[15]);
        off = 16;
        break;
    default:
        return 0;
    }
    const uint8_t *a, *b;
    size_t alen, l4off;
    uint8_t proto;
    if (etype == 0x0800 && off + 20 <= caplen) {
        size_t ihl = (size_t)(d[off] & 15) * 4;
        proto = d[off + 9];
        a = d + off + 12;
        b = d + off + 16;
        alen = 4;
        l4off = off + ihl;
    } else if (etype == 0x86dd && off + 40 <= caplen) {
        proto = d[off + 6];
        a = d + off + 8;
        b = d + off + 24;
        alen = 16;
        l4off = off + 40;
    } else {
        return 0;
    }
    uint8_t pa[2] = {0, 0}, pb[2] = {0, 0};
    if ((proto == 6 || proto == 17 || proto == 132) && l4off + 4 <= caplen) {
        memcpy(pa, d + l4off, 2);
        memcpy(pb, d + l4off + 2, 2);
    }
    /* order the endpoints */
    int c = memcmp(a, b, alen);
    if (c > 0 || (c == 0 && memcmp(pa, pb, 2) > 0)) {
        const uint8_t *t = a;
        a = b;
        b = t;
        uint8_t tp[2];
        memcpy(tp, pa, 2);
        memcpy(pa, pb, 2);
        memcpy(pb, tp, 2);
    }
    size_t n = 0;
    key[n++] = proto;
    memcpy(key + n, a, alen);
    n += alen;
    memcpy(key + n, b, alen);
    n += alen;
    memcpy(key + n, pa, 2);
    n += 2;
    memcpy(key + n, pb, 2);
    n += 2;
    return n;
}

bool pf_flows_keep(pf_flows *f, const struct pcap_pkthdr *h, const uint8_t *data)
{
    if (f->nrules == 0)
        return true;
    for (size_t r = 0; r < f->nrules; r++) {
        if (pcap_offline_filter(&f->rules[r].prog, h, data) == 0)
            continue;
        uint8_t key[40];
        size_t klen = flow_key(f->link_type, data, h->caplen, key);
        if (klen == 0)
            return true; /* not a flow we can follow: keep it */
        uint64_t hv;
        /* keyed hash: crafted traffic cannot aim at one slot */
        crypto_shorthash_siphash24((uint8_t *)&hv, key, klen, f->hash_key);
        hv |= 1; /* 0 marks an empty slot */
        int64_t now = (int64_t)h->ts.tv_sec;
        pf_flow_slot *victim = NULL;
        for (uint32_t i = 0; i < PROBE_LIMIT; i++) {
            pf_flow_slot *s = &f->slots[(hv + i) & (PF_FLOW_SLOTS - 1)];
            if (s->key_hash == hv && s->rule == r) {
                s->last_seen = now;
                if (s->packets < f->rules[r].keep) {
                    s->packets++;
                    return true;
                }
                f->rules[r].not_saved++;
                return false;
            }
            if (s->key_hash == 0 || now - s->last_seen > FLOW_IDLE_SECONDS) {
                victim = s;
                break;
            }
            if (victim == NULL || s->last_seen < victim->last_seen)
                victim = s; /* table full here: reuse the stalest */
        }
        victim->key_hash = hv;
        victim->rule = (uint32_t)r;
        victim->last_seen = now;
        victim->packets = 0;
        if (f->rules[r].keep > 0) {
            victim->packets = 1;
            return true;
        }
        f->rules[r].not_saved++;
        return false;
    }
    return true;
}
