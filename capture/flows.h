/* --dont-save 'BPF:N': like Arkime's dontSaveBPFs, keep only the first N
 * packets of each flow that matches BPF (e.g. "port 22:10" keeps the SSH
 * handshake, not the encrypted bulk). Flows are keyed by the unordered
 * pair of endpoints and the protocol, in a bounded table. */
#ifndef PF_FLOWS_H
#define PF_FLOWS_H

#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/pf_err.h"

#define PF_DONT_SAVE_MAX 16
#define PF_FLOW_SLOTS    (1u << 16)

typedef struct pf_dont_save {
    char expr[512];
    uint64_t keep;
    struct bpf_program prog;
    bool compiled;
    uint64_t not_saved; /* packets this rule withheld, since the last reset */
} pf_dont_save;

typedef struct pf_flow_slot {
    uint64_t key_hash; /* 0: empty */
    uint32_t rule;
    uint32_t packets;
    int64_t last_seen; /* seconds */
} pf_flow_slot;

typedef struct pf_flows {
    pf_dont_save rules[PF_DONT_SAVE_MAX];
    size_t nrules;
    int link_type;
    pf_flow_slot *slots;
    uint8_t hash_key[16];
} pf_flows;

/* Parses "EXPR:N" (the last colon separates; EXPR may contain colons). */
int pf_dont_save_parse(const char *spec, pf_dont_save *out, pf_err *e);

/* Compiles the rules for a handle's link type and allocates the table. */
int pf_flows_init(pf_flows *f, pcap_t *p, pf_err *e);
void pf_flows_free(pf_flows *f);

/* true: save this packet. false: its flow already had its N packets. */
bool pf_flows_keep(pf_flows *f, const struct pcap_pkthdr *h, const uint8_t *data);

#endif
