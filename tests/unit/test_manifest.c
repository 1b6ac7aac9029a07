/* Manifest encode/parse: round trip, strictness, and header binding. */
#include "fixture.h"

static pf_manifest *sample(void)
{
    pf_header h;
    memset(&h, 0, sizeof h);
    snprintf(h.sensor, sizeof h.sensor, "s1");
    h.seq = 5;
    h.prev_seq = 4;
    memset(h.prev_hash, 0xab, sizeof h.prev_hash);
    memset(h.hash, 0xcd, sizeof h.hash);
    h.created_ns = 1700000000000000001LL;
    pf_manifest *m = pf_manifest_new(&h);
    pf_pcapinfo i;
    memset(&i, 0, sizeof i);
    snprintf(i.format, sizeof i.format, "pcap");
    snprintf(i.ts_resolution, sizeof i.ts_resolution, "ns");
    snprintf(i.link_type_name, sizeof i.link_type_name, "EN10MB");
    i.link_type = 1;
    i.snaplen = 262144;
    i.size = 4096;
    i.packets = 17;
    i.truncated_packets = 2;
    i.have_ts = true;
    i.first_ns = 1700000000000000000LL;
    i.last_ns = 1600000000000000000LL; /* out of order on purpose */
    i.min_ns = 1600000000000000000LL;
    i.max_ns = 1700000000000000000LL;
    memset(i.blake2b, 0x77, sizeof i.blake2b);
    pf_err e;
    pf_err_clear(&e);
    CHECK(pf_manifest_add(m, "a.pcap", &i, json_pack("{s:i}", "dropped_kernel", 3), &e) == 0);
    i.read_status = PF_READ_DAMAGED;
    snprintf(i.read_error, sizeof i.read_error, "truncated dump file");
    i.have_ts = false;
    CHECK(pf_manifest_add(m, "b.pcapng", &i, NULL, &e) == 0);
    m->capture = json_pack("{s:s, s:s}", "interface", "eth1", "filter", "not port 22");
    return m;
}

/* Parses text after substituting one substring, expecting a refusal. */
static void expect_refused(const char *text, const char *from, const char *to, const char *why)
{
    char buf[16384];
    const char *at = strstr(text, from);
    CHECK_MSG(at != NULL, "sample lacks '%s'", from);
    if (at == NULL)
        return;
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    pf_manifest *m = NULL;
    pf_err e;
    pf_err_clear(&e);
    CHECK_MSG(pf_manifest_parse((const uint8_t *)buf, strlen(buf), &m, &e) != 0, "accepted: %s",
              why);
    CHECK_MSG(e.status == PF_EREJECT, "%s: status %d (%s)", why, (int)e.status, e.msg);
    pf_manifest_free(m);
}

int main(void)
{
    pf_err e;
    char *text = NULL;
    size_t len = 0;
    pf_manifest *m = sample(), *p = NULL;
    pf_err_clear(&e);
    CHECK(pf_manifest_encode(m, &text, &len, &e) == 0);
    CHECK(pf_manifest_parse((const uint8_t *)text, len, &p, &e) == 0);
    CHECK(p != NULL && p->nfiles == 2 && p->seq == 5 && p->prev_seq == 4 &&
          strcmp(p->sensor, "s1") == 0 && memcmp(p->prev_hash, m->prev_hash, 32) == 0 &&
          memcmp(p->header_hash, m->header_hash, 32) == 0 && p->created_ns == m->created_ns);
    if (p != NULL && p->nfiles == 2) {
        const pf_pcapinfo *a = &p->files[0].info, *b = &p->files[1].info;
        CHECK(strcmp(p->files[0].name, "a.pcap") == 0 && a->size == 4096 && a->packets == 17 &&
              a->truncated_packets == 2 && a->have_ts && a->first_ns == 1700000000000000000LL &&
              a->min_ns == 1600000000000000000LL && a->link_type == 1 && a->snaplen == 262144 &&
              memcmp(a->blake2b, m->files[0].info.blake2b, 32) == 0 &&
              a->read_status == PF_READ_COMPLETE);
        CHECK(json_integer_value(json_object_get(p->files[0].capture_stats, "dropped_kernel")) ==
              3);
        CHECK(b->read_status == PF_READ_DAMAGED && !b->have_ts &&
              strcmp(b->read_error, "truncated dump file") == 0);
        CHECK(pf_manifest_find(p, "b.pcapng") == &p->files[1]);
        CHECK(pf_manifest_find(p, "c") == NULL);
        CHECK(pf_manifest_total_packets(p) == 34 && pf_manifest_total_bytes(p) == 8192);
        CHECK(strcmp(json_string_value(json_object_get(p->capture, "filter")), "not port 22") == 0);
    }
    /* the encoding is deterministic: re-encoding the parse gives the same
     * bytes, so the signature an analyst checks is over a stable text */
    char *again = NULL;
    size_t again_len = 0;
    CHECK(p != NULL && pf_manifest_encode(p, &again, &again_len, &e) == 0 && again_len == len &&
          memcmp(again, text, len) == 0);
    free(again);

    expect_refused(text, "\"type\": \"pcapferry-manifest\"", "\"type\": \"other\"", "type");
    expect_refused(text, "\"version\": 1", "\"version\": 2", "version");
    expect_refused(text, "\"seq\": 5", "\"seq\": -5", "negative seq");
    expect_refused(text, "\"seq\": 5", "\"seq\": \"5\"", "string seq");
    expect_refused(text, "\"name\": \"a.pcap\"", "\"name\": \"../a.pcap\"", "path in name");
    expect_refused(text, "\"name\": \"a.pcap\"", "\"name\": \".a\"", "dot name");
    expect_refused(text, "\"name\": \"a.pcap\"", "\"name\": \"manifest.json\"", "reserved");
    expect_refused(text, "\"name\": \"a.pcap\"", "\"name\": \"b.pcapng\"", "listed twice");
    expect_refused(text, "\"name\": \"a.pcap\"", "\"name\": \"a\\u0000b\"", "NUL in name");
    expect_refused(text, "\"read_status\": \"complete\"", "\"read_status\": \"fine\"", "status");
    expect_refused(text, "\"size\": 4096", "\"size\": 4096, \"size\": 1", "duplicate key");
    expect_refused(text, "\"blake2b_256\": \"77", "\"blake2b_256\": \"7", "short hash");
    expect_refused(text, "\"files\": [", "\"files\": {\"x\": [", "files not array");
    expect_refused(text, "\"sensor_key_id\"", "\"sensor_key\"", "missing key id");
    expect_refused(text, "{", "[", "not an object");

    /* header binding */
    pf_header h;
    memset(&h, 0, sizeof h);
    snprintf(h.sensor, sizeof h.sensor, "s1");
    h.seq = 5;
    h.prev_seq = 4;
    memset(h.prev_hash, 0xab, sizeof h.prev_hash);
    memset(h.hash, 0xcd, sizeof h.hash);
    pf_err_clear(&e);
    CHECK(p != NULL && pf_manifest_matches(p, &h, &e) == 0);
    h.hash[31] ^= 1;
    CHECK(p != NULL && pf_manifest_matches(p, &h, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "bound to another bundle header");
    h.hash[31] ^= 1;
    h.seq = 6;
    pf_err_clear(&e);
    CHECK(p != NULL && pf_manifest_matches(p, &h, &e) != 0);
    CHECK_ERR(e, PF_EREJECT, "describes another bundle");

    free(text);
    pf_manifest_free(m);
    pf_manifest_free(p);
    return check_summary("test_manifest");
}
