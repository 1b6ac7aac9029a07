/*
 * pcapgen: deterministic synthetic capture generator for tests and benchmarks.
 *
 * The capture formats are written by hand instead of through libpcap so that
 * the output is byte-for-byte reproducible on every host: every multi-byte
 * field is stored with an explicit byte order and every random choice comes
 * from one seeded PRNG.  Same arguments, same bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NS_PER_SEC      1000000000u
#define NFLOWS          8
#define ETH_LEN         14
#define IP_LEN          20
#define TCP_LEN         20
#define UDP_LEN         8
#define MIN_FRAME       60
#define JUMBO_FRAME     9000
#define MSS_PAYLOAD     1448
#define MAX_FRAME       JUMBO_FRAME
#define REC_RESERVE     32 /* room in front of the frame for the largest record header */
#define IOBUF_SIZE      (4u << 20)
#define DEFAULT_SNAPLEN 262144u
#define DEFAULT_PACKETS 1000u
#define DEFAULT_START   1700000000u
#define DEFAULT_RATE    10000u

#define TH_FIN 0x01u
#define TH_SYN 0x02u
#define TH_PSH 0x08u
#define TH_ACK 0x10u

enum mix { MIX_REALISTIC, MIX_TLS, MIX_DNS, MIX_TINY };
enum kind { K_NONE, K_TLS, K_HTTP, K_DNS, K_ARP, K_TELNET };
enum dir { C2S = 0, S2C = 1 };
enum tcpopt { OPT_NONE, OPT_SYN, OPT_TS };

struct opts {
    uint64_t packets;
    uint64_t bytes;
    uint64_t seed;
    uint64_t start;
    uint64_t rate;
    uint64_t snaplen;
    int have_packets;
    int have_bytes;
    int nano;
    int big_endian;
    int pcapng;
    enum mix mix;
    const char *path;
};

struct rng {
    uint64_t s;
};

struct endpoint {
    uint8_t mac[6];
    uint32_t ip;
    uint32_t port;
    uint32_t seq; /* next sequence number this side sends */
    uint32_t ipid;
    uint32_t tsoff;
    uint32_t ttl;
};

struct flow {
    enum kind kind;
    int state;
    struct endpoint ep[2]; /* indexed by the direction in which that side sends */
    uint32_t remaining;
    uint32_t unacked;
    int pad_client;
    uint32_t dns_id;
    uint32_t dns_qtype;
    int dns_nx;
    size_t qname_len;
    uint8_t qname[64];
};

struct gen {
    const struct opts *o;
    struct rng rng;
    struct rng jitter; /* separate stream so --rate never changes packet contents */
    uint64_t now_ns;
    uint64_t written;
    FILE *fp;
    const char *name;
    size_t len;
    uint8_t *frame;
    struct flow flows[NFLOWS];
    uint8_t buf[REC_RESERVE + MAX_FRAME + 16];
};

/* splitmix64: tiny, fast, and good enough that the payloads do not compress. */
static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Multiply-shift instead of modulo: no bias worth caring about, no division. */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

static void be16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* File-format fields follow --big-endian; network headers are always big-endian. */
static void put16(const struct gen *g, uint8_t *p, uint32_t v)
{
    if (g->o->big_endian) {
        be16(p, v);
    } else {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
    }
}

static void put32(const struct gen *g, uint8_t *p, uint32_t v)
{
    if (g->o->big_endian) {
        be32(p, v);
    } else {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
    }
}

static void rng_fill(struct rng *r, uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint64_t v = rng_next(r);
        /* Explicit little-endian store keeps output identical across hosts. */
        for (unsigned i = 0; i < 8; i++)
            p[i] = (uint8_t)(v >> (8 * i));
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t v = rng_next(r);
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static uint32_t csum_fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffffu) + (sum >> 16);
    return (uint32_t)(~sum & 0xffffu);
}

static uint64_t pseudo_sum(uint32_t src, uint32_t dst, uint32_t proto, size_t l4len)
{
    return (uint64_t)(src >> 16) + (src & 0xffffu) + (dst >> 16) + (dst & 0xffffu) + proto + l4len;
}

static uint8_t *put_eth(uint8_t *p, const uint8_t *dst, const uint8_t *src, uint32_t type)
{
    memcpy(p, dst, 6);
    memcpy(p + 6, src, 6);
    be16(p + 12, type);
    return p + ETH_LEN;
}

static uint8_t *put_ipv4(uint8_t *p, struct endpoint *src, const struct endpoint *dst,
                         uint32_t proto, size_t l4len, int df)
{
    p[0] = 0x45;
    p[1] = 0;
    be16(p + 2, (uint32_t)(IP_LEN + l4len));
    be16(p + 4, src->ipid++);
    be16(p + 6, df ? 0x4000u : 0);
    p[8] = (uint8_t)src->ttl;
    p[9] = (uint8_t)proto;
    be16(p + 10, 0);
    be32(p + 12, src->ip);
    be32(p + 16, dst->ip);
    be16(p + 10, csum_fold(csum_add(0, p, IP_LEN)));
    return p + IP_LEN;
}

/*
 * Frames sent towards the client are padded to the Ethernet minimum as they
 * would be on the wire; the client's own frames are seen before the NIC pads
 * them, which is why captures show both 54-byte ACKs and 60-byte frames.
 */
static void finish_frame(struct gen *g, size_t len, int pad)
{
    if (pad && len < MIN_FRAME) {
        memset(g->frame + len, 0, MIN_FRAME - len);
        len = MIN_FRAME;
    }
    g->len = len;
}

static size_t tcpopt_len(enum tcpopt opt)
{
    switch (opt) {
    case OPT_SYN:
        return 20;
    case OPT_TS:
        return 12;
    case OPT_NONE:
        break;
    }
    return 0;
}

static uint8_t *tcp_payload(struct gen *g, enum tcpopt opt)
{
    return g->frame + ETH_LEN + IP_LEN + TCP_LEN + tcpopt_len(opt);
}

static uint8_t *udp_payload(struct gen *g)
{
    return g->frame + ETH_LEN + IP_LEN + UDP_LEN;
}

/* The payload must already be in place at tcp_payload(g, opt). */
static void tcp_emit(struct gen *g, struct flow *f, enum dir d, uint32_t flags, enum tcpopt opt,
                     size_t paylen)
{
    struct endpoint *src = &f->ep[d];
    struct endpoint *dst = &f->ep[!d];
    size_t optlen = tcpopt_len(opt);
    size_t l4len = TCP_LEN + optlen + paylen;
    uint32_t now_ms = (uint32_t)(g->now_ns / 1000000u);
    uint32_t tsval = now_ms + src->tsoff;
    uint32_t tsecr = (flags & TH_SYN) && !(flags & TH_ACK) ? 0 : now_ms + dst->tsoff - 1;
    uint8_t *t = put_eth(g->frame, dst->mac, src->mac, 0x0800);
    uint8_t *o;

    t = put_ipv4(t, src, dst, 6, l4len, 1);
    be16(t, src->port);
    be16(t + 2, dst->port);
    be32(t + 4, src->seq);
    /* Nothing is ever lost, so the peer's next sequence number is what we ack. */
    be32(t + 8, (flags & TH_ACK) ? dst->seq : 0);
    t[12] = (uint8_t)(((TCP_LEN + optlen) / 4) << 4);
    t[13] = (uint8_t)flags;
    if (flags & TH_SYN)
        be16(t + 14, d == C2S ? 64240u : 65160u);
    else
        be16(t + 14, d == C2S ? 502u : 501u);
    be16(t + 16, 0);
    be16(t + 18, 0);

    o = t + TCP_LEN;
    if (opt == OPT_SYN) {
        /* The order Linux uses: MSS, SACK permitted, timestamps, NOP, window scale. */
        static const uint8_t head[] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10};
        memcpy(o, head, sizeof head);
        be32(o + 8, tsval);
        be32(o + 12, tsecr);
        o[16] = 1;
        o[17] = 3;
        o[18] = 3;
        o[19] = 7;
    } else if (opt == OPT_TS) {
        o[0] = 1;
        o[1] = 1;
        o[2] = 8;
        o[3] = 10;
        be32(o + 4, tsval);
        be32(o + 8, tsecr);
    }

    src->seq += (uint32_t)paylen + ((flags & TH_SYN) ? 1u : 0u) + ((flags & TH_FIN) ? 1u : 0u);
    be16(t + 16, csum_fold(csum_add(pseudo_sum(src->ip, dst->ip, 6, l4len), t, l4len)));
    finish_frame(g, ETH_LEN + IP_LEN + l4len, d == S2C || f->pad_client);
}

/* The payload must already be in place at udp_payload(g). */
static void udp_emit(struct gen *g, struct flow *f, enum dir d, size_t paylen)
{
    struct endpoint *src = &f->ep[d];
    struct endpoint *dst = &f->ep[!d];
    size_t l4len = UDP_LEN + paylen;
    uint8_t *u = put_eth(g->frame, dst->mac, src->mac, 0x0800);
    uint32_t sum;

    u = put_ipv4(u, src, dst, 17, l4len, 0);
    be16(u, src->port);
    be16(u + 2, dst->port);
    be16(u + 4, (uint32_t)l4len);
    be16(u + 6, 0);
    sum = csum_fold(csum_add(pseudo_sum(src->ip, dst->ip, 17, l4len), u, l4len));
    /* A computed zero is sent as all ones: zero means "no checksum" in UDP. */
    be16(u + 6, sum ? sum : 0xffffu);
    finish_frame(g, ETH_LEN + IP_LEN + l4len, d == S2C || f->pad_client);
}

static void arp_emit(struct gen *g, struct flow *f, enum dir d)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t zero[6] = {0};
    const struct endpoint *src = &f->ep[d];
    const struct endpoint *dst = &f->ep[!d];
    int request = d == C2S;
    uint8_t *p = put_eth(g->frame, request ? bcast : dst->mac, src->mac, 0x0806);

    be16(p, 1);
    be16(p + 2, 0x0800);
    p[4] = 6;
    p[5] = 4;
    be16(p + 6, request ? 1u : 2u);
    memcpy(p + 8, src->mac, 6);
    be32(p + 14, src->ip);
    memcpy(p + 18, request ? zero : dst->mac, 6);
    be32(p + 24, dst->ip);
    finish_frame(g, ETH_LEN + 28, 1);
}

/* A TLS 1.2 application-data record: a real header so dissectors stay happy,
 * then random bytes standing in for ciphertext. */
static void fill_tls_record(struct gen *g, uint8_t *p, size_t n)
{
    p[0] = 0x17;
    p[1] = 3;
    p[2] = 3;
    be16(p + 3, (uint32_t)(n - 5));
    rng_fill(&g->rng, p + 5, n - 5);
}

static void fill_text(struct rng *r, uint8_t *p, size_t n)
{
    static const char *const words[] = {
        "packet", "capture", "ferry",   "bundle", "network", "frame",  "stream", "synthetic",
        "data",   "lorem",   "ipsum",   "dolor",  "sit",     "amet",   "tcp",    "udp",
        "sealed", "archive", "segment", "header", "payload", "window", "route",  "switch",
    };
    size_t pos = 0;
    unsigned col = 0;

    while (pos < n) {
        const char *w = words[rng_below(r, sizeof words / sizeof words[0])];
        size_t wl = strlen(w);

        if (wl > n - pos)
            wl = n - pos;
        memcpy(p + pos, w, wl);
        pos += wl;
        if (pos < n)
            p[pos++] = ++col % 12 == 0 ? '\n' : ' ';
    }
}

static size_t http_request(struct gen *g, uint8_t *p, size_t cap)
{
    static const char *const hosts[] = {"www.example.com", "intranet.corp.internal",
                                        "api.example.net", "static.example.org"};
    const char *host = hosts[rng_below(&g->rng, 4)];
    char path[64];
    int n;

    switch (rng_below(&g->rng, 4)) {
    case 0:
        n = snprintf(path, sizeof path, "/index.html");
        break;
    case 1:
        n = snprintf(path, sizeof path, "/api/v1/items/%u", rng_below(&g->rng, 100000));
        break;
    case 2:
        n = snprintf(path, sizeof path, "/static/app-%08x.js", rng_below(&g->rng, 0xffffffffu));
        break;
    default:
        n = snprintf(path, sizeof path, "/search?q=%u&page=%u", rng_below(&g->rng, 1000000),
                     1 + rng_below(&g->rng, 9));
        break;
    }
    if (n < 0)
        path[0] = '\0';
    n = snprintf((char *)p, cap,
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pcapgen/1.0\r\nAccept: */*\r\n"
                 "Connection: keep-alive\r\n\r\n",
                 path, host);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static size_t http_response(struct gen *g, uint8_t *p, size_t cap)
{
    int found = rng_below(&g->rng, 10) != 0;
    size_t body = found ? 64 + rng_below(&g->rng, 1000) : 48;
    int n = snprintf((char *)p, cap,
                     "HTTP/1.1 %s\r\nServer: pcapgen\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n",
                     found ? "200 OK" : "404 Not Found", body);

    if (n < 0 || (size_t)n + body > cap)
        return 0;
    fill_text(&g->rng, p + n, body);
    return (size_t)n + body;
}

static size_t dns_encode_name(struct rng *r, uint8_t *out)
{
    static const char *const bases[] = {
        "example.com", "example.org",     "example.net",         "corp.internal",
        "home.arpa",   "cdn.example.com", "updates.vendor.test", "mail.example.org",
    };
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    const char *base = bases[rng_below(r, sizeof bases / sizeof bases[0])];
    size_t pos = 0;

    if (rng_below(r, 2)) {
        uint32_t len = 3 + rng_below(r, 8);

        out[pos++] = (uint8_t)len;
        for (uint32_t i = 0; i < len; i++)
            out[pos++] = (uint8_t)alnum[rng_below(r, sizeof alnum - 1)];
    }
    while (*base) {
        size_t len = strcspn(base, ".");

        out[pos++] = (uint8_t)len;
        memcpy(out + pos, base, len);
        pos += len;
        base += len;
        if (*base == '.')
            base++;
    }
    out[pos++] = 0;
    return pos;
}

static size_t dns_message(struct gen *g, struct flow *f, uint8_t *p, int answer)
{
    uint32_t ancount = 0;
    size_t pos;

    if (answer && !f->dns_nx)
        ancount = 1 + rng_below(&g->rng, 3);
    be16(p, f->dns_id);
    be16(p + 2, !answer ? 0x0100u : f->dns_nx ? 0x8183u : 0x8180u);
    be16(p + 4, 1);
    be16(p + 6, ancount);
    be16(p + 8, 0);
    be16(p + 10, 0);
    memcpy(p + 12, f->qname, f->qname_len);
    pos = 12 + f->qname_len;
    be16(p + pos, f->dns_qtype);
    be16(p + pos + 2, 1);
    pos += 4;
    for (uint32_t i = 0; i < ancount; i++) {
        size_t rdlen = f->dns_qtype == 28 ? 16 : 4;

        be16(p + pos, 0xc00cu); /* compression pointer to the question name */
        be16(p + pos + 2, f->dns_qtype);
        be16(p + pos + 4, 1);
        be32(p + pos + 6, 30 + rng_below(&g->rng, 86400));
        be16(p + pos + 10, (uint32_t)rdlen);
        pos += 12;
        if (rdlen == 4) {
            be32(p + pos, 0xac100000u | rng_below(&g->rng, 0x100000u)); /* 172.16.0.0/12 */
        } else {
            p[pos] = 0xfd; /* fd00::/8 unique local */
            rng_fill(&g->rng, p + pos + 1, 15);
        }
        pos += rdlen;
    }
    return pos;
}

static void endpoint_init(struct gen *g, struct endpoint *e, uint32_t ip, uint32_t port,
                          uint32_t ttl)
{
    e->mac[0] = 0x02; /* locally administered, unicast */
    e->mac[1] = 0x00;
    be32(e->mac + 2, ip);
    e->ip = ip;
    e->port = port;
    e->seq = (uint32_t)rng_next(&g->rng);
    e->ipid = rng_below(&g->rng, 0x10000u);
    e->tsoff = (uint32_t)rng_next(&g->rng);
    e->ttl = ttl;
}

static enum kind pick_kind(struct gen *g)
{
    /*
     * Per-flow weights.  TLS flows are ~100 packets and DNS flows 2, so in
     * packet terms the realistic mix is ~90% TLS, a few % HTTP and DNS.
     */
    static const struct {
        enum kind kind;
        uint32_t weight[4];
    } table[] = {
        {K_TLS, {25, 1, 0, 0}}, {K_HTTP, {12, 0, 0, 0}},   {K_DNS, {50, 0, 1, 0}},
        {K_ARP, {5, 0, 0, 20}}, {K_TELNET, {3, 0, 0, 80}},
    };
    size_t n = sizeof table / sizeof table[0];
    uint32_t total = 0;
    uint32_t x;

    for (size_t i = 0; i < n; i++)
        total += table[i].weight[g->o->mix];
    x = rng_below(&g->rng, total);
    for (size_t i = 0; i < n; i++) {
        if (x < table[i].weight[g->o->mix])
            return table[i].kind;
        x -= table[i].weight[g->o->mix];
    }
    return K_DNS;
}

static void flow_start(struct gen *g, struct flow *f)
{
    struct rng *r = &g->rng;
    uint32_t cnet = 0x0a000000u | (1 + rng_below(r, 4)) << 16 | rng_below(r, 256) << 8;
    uint32_t cip = cnet | (2 + rng_below(r, 253));
    /* Linux's ephemeral range, minus 32768..33999: traceroute's UDP ports live there and
     * dissectors would flag DNS queries from them as probes. */
    uint32_t cport = 34000 + rng_below(r, 27000);
    uint32_t host = rng_below(r, 256) << 8 | (1 + rng_below(r, 254));
    uint32_t sttl = 50 + rng_below(r, 14);
    uint32_t sip;
    uint32_t sport;

    memset(f, 0, sizeof *f);
    f->kind = pick_kind(g);
    switch (f->kind) {
    case K_TLS:
        sip = 0xac100000u | rng_below(r, 16) << 16 | host; /* 172.16.0.0/12 */
        sport = 443;
        f->remaining = 8 + rng_below(r, 113);
        break;
    case K_HTTP:
        sip = 0xc0a80000u | host; /* 192.168.0.0/16 */
        sport = 80;
        f->remaining = 1 + rng_below(r, 3);
        break;
    case K_DNS:
        sip = 0x0a000035u + rng_below(r, 2); /* resolvers 10.0.0.53 and .54 */
        sport = 53;
        f->dns_id = rng_below(r, 0x10000u);
        f->dns_qtype = rng_below(r, 4) == 0 ? 28 : 1;
        f->dns_nx = rng_below(r, 20) == 0;
        f->qname_len = dns_encode_name(r, f->qname);
        break;
    case K_ARP:
        sip = cnet | 1; /* the client's gateway */
        sport = 0;
        f->pad_client = 1;
        break;
    case K_TELNET:
    case K_NONE:
    default:
        f->kind = K_TELNET;
        sip = 0x0a000000u | host;
        sport = 23;
        f->remaining = 3 + rng_below(r, 15);
        f->pad_client = 1;
        break;
    }
    endpoint_init(g, &f->ep[C2S], cip, cport, 64);
    endpoint_init(g, &f->ep[S2C], sip, sport, sttl);
}

static void step_tls(struct gen *g, struct flow *f)
{
    uint8_t *p = tcp_payload(g, OPT_TS);
    size_t n;

    switch (f->state++) {
    case 0:
        tcp_emit(g, f, C2S, TH_SYN, OPT_SYN, 0);
        break;
    case 1:
        tcp_emit(g, f, S2C, TH_SYN | TH_ACK, OPT_SYN, 0);
        break;
    case 2:
        tcp_emit(g, f, C2S, TH_ACK, OPT_NONE, 0);
        break;
    case 3:
        n = 80 + rng_below(&g->rng, 520);
        fill_tls_record(g, p, n);
        tcp_emit(g, f, C2S, TH_PSH | TH_ACK, OPT_TS, n);
        break;
    case 4:
        /* An occasional GRO-merged jumbo segment, as host captures really show. */
        if (rng_below(&g->rng, 200) == 0)
            n = JUMBO_FRAME - ETH_LEN - IP_LEN - TCP_LEN - tcpopt_len(OPT_TS);
        else
            n = MSS_PAYLOAD;
        fill_tls_record(g, p, n);
        f->remaining--;
        tcp_emit(g, f, S2C, f->remaining ? TH_ACK : TH_PSH | TH_ACK, OPT_TS, n);
        /* Delayed ACK: the client acknowledges every second segment. */
        if (++f->unacked < 2 && f->remaining)
            f->state = 4;
        break;
    case 5:
        tcp_emit(g, f, C2S, TH_ACK, OPT_NONE, 0);
        f->unacked = 0;
        if (f->remaining)
            f->state = 4;
        break;
    case 6:
        tcp_emit(g, f, S2C, TH_FIN | TH_ACK, OPT_NONE, 0);
        break;
    case 7:
        tcp_emit(g, f, C2S, TH_FIN | TH_ACK, OPT_NONE, 0);
        break;
    default:
        tcp_emit(g, f, S2C, TH_ACK, OPT_NONE, 0);
        f->kind = K_NONE;
        break;
    }
}

static void step_http(struct gen *g, struct flow *f)
{
    uint8_t *p = tcp_payload(g, OPT_TS);
    size_t cap = MSS_PAYLOAD;

    switch (f->state++) {
    case 0:
        tcp_emit(g, f, C2S, TH_SYN, OPT_SYN, 0);
        break;
    case 1:
        tcp_emit(g, f, S2C, TH_SYN | TH_ACK, OPT_SYN, 0);
        break;
    case 2:
        tcp_emit(g, f, C2S, TH_ACK, OPT_NONE, 0);
        break;
    case 3:
        tcp_emit(g, f, C2S, TH_PSH | TH_ACK, OPT_TS, http_request(g, p, cap));
        break;
    case 4:
        tcp_emit(g, f, S2C, TH_PSH | TH_ACK, OPT_TS, http_response(g, p, cap));
        break;
    case 5:
        tcp_emit(g, f, C2S, TH_ACK, OPT_NONE, 0);
        if (--f->remaining)
            f->state = 3;
        break;
    case 6:
        tcp_emit(g, f, C2S, TH_FIN | TH_ACK, OPT_NONE, 0);
        break;
    case 7:
        tcp_emit(g, f, S2C, TH_FIN | TH_ACK, OPT_NONE, 0);
        break;
    default:
        tcp_emit(g, f, C2S, TH_ACK, OPT_NONE, 0);
        f->kind = K_NONE;
        break;
    }
}

/* Keystroke traffic: every frame is a minimum-size 60-byte frame. */
static void step_telnet(struct gen *g, struct flow *f)
{
    static const char keys[] = "abcdefghijklmnopqrstuvwxyz0123456789 ";
    uint8_t *p = tcp_payload(g, OPT_NONE);
    size_t n;

    switch (f->state++) {
    case 0:
        tcp_emit(g, f, C2S, TH_SYN, OPT_NONE, 0);
        break;
    case 1:
        tcp_emit(g, f, S2C, TH_SYN | TH_ACK, OPT_NONE, 0);
        break;
    case 2:
        tcp_emit(g, f, C2S, TH_ACK, OPT_NONE, 0);
        break;
    case 3:
        n = 1 + rng_below(&g->rng, MIN_FRAME - ETH_LEN - IP_LEN - TCP_LEN);
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)keys[rng_below(&g->rng, sizeof keys - 1)];
        tcp_emit(g, f, C2S, TH_PSH | TH_ACK, OPT_NONE, n);
        break;
    case 4:
        tcp_emit(g, f, S2C, TH_ACK, OPT_NONE, 0);
        if (--f->remaining)
            f->state = 3;
        break;
    case 5:
        tcp_emit(g, f, C2S, TH_FIN | TH_ACK, OPT_NONE, 0);
        break;
    case 6:
        tcp_emit(g, f, S2C, TH_FIN | TH_ACK, OPT_NONE, 0);
        break;
    default:
        tcp_emit(g, f, C2S, TH_ACK, OPT_NONE, 0);
        f->kind = K_NONE;
        break;
    }
}

static void step_dns(struct gen *g, struct flow *f)
{
    int answer = f->state++ != 0;

    udp_emit(g, f, answer ? S2C : C2S, dns_message(g, f, udp_payload(g), answer));
    if (answer)
        f->kind = K_NONE;
}

static void step_arp(struct gen *g, struct flow *f)
{
    int reply = f->state++ != 0;

    arp_emit(g, f, reply ? S2C : C2S);
    if (reply)
        f->kind = K_NONE;
}

/* Interleave a handful of concurrent flows, as a real link would. */
static void next_frame(struct gen *g)
{
    struct flow *f = &g->flows[rng_below(&g->rng, NFLOWS)];

    if (f->kind == K_NONE)
        flow_start(g, f);
    switch (f->kind) {
    case K_TLS:
        step_tls(g, f);
        break;
    case K_HTTP:
        step_http(g, f);
        break;
    case K_DNS:
        step_dns(g, f);
        break;
    case K_ARP:
        step_arp(g, f);
        break;
    case K_TELNET:
    case K_NONE:
    default:
        step_telnet(g, f);
        break;
    }
}

static int out_write(struct gen *g, const void *p, size_t n)
{
    if (fwrite(p, 1, n, g->fp) != n)
        return -1;
    g->written += n;
    return 0;
}

static int write_file_header(struct gen *g)
{
    const struct opts *o = g->o;
    uint8_t h[64];

    memset(h, 0, sizeof h);
    if (!o->pcapng) {
        put32(g, h, o->nano ? 0xa1b23c4du : 0xa1b2c3d4u);
        put16(g, h + 4, 2);
        put16(g, h + 6, 4);
        put32(g, h + 16, (uint32_t)o->snaplen);
        put32(g, h + 20, 1);
        return out_write(g, h, 24);
    }

    /* Section Header Block, no options; section length unknown (-1). */
    put32(g, h, 0x0a0d0d0au);
    put32(g, h + 4, 28);
    put32(g, h + 8, 0x1a2b3c4du);
    put16(g, h + 12, 1);
    put16(g, h + 14, 0);
    put32(g, h + 16, 0xffffffffu);
    put32(g, h + 20, 0xffffffffu);
    put32(g, h + 24, 28);
    if (out_write(g, h, 28) != 0)
        return -1;

    /* Interface Description Block; microseconds are the default resolution. */
    memset(h, 0, sizeof h);
    uint32_t len = o->nano ? 32 : 20;
    put32(g, h, 1);
    put32(g, h + 4, len);
    put16(g, h + 8, 1);
    put32(g, h + 12, (uint32_t)o->snaplen);
    if (o->nano) {
        put16(g, h + 16, 9); /* if_tsresol */
        put16(g, h + 18, 1);
        h[20] = 9;
        /* h[21..23] padding, h[24..27] opt_endofopt */
    }
    put32(g, h + len - 4, len);
    return out_write(g, h, len);
}

static int write_record(struct gen *g)
{
    const struct opts *o = g->o;
    uint32_t len = (uint32_t)g->len;
    uint32_t caplen = len < o->snaplen ? len : (uint32_t)o->snaplen;
    uint64_t sec = g->now_ns / NS_PER_SEC;
    uint32_t frac = (uint32_t)(g->now_ns % NS_PER_SEC);
    uint8_t *hdr;

    if (!o->pcapng) {
        hdr = g->frame - 16;
        put32(g, hdr, (uint32_t)sec);
        put32(g, hdr + 4, o->nano ? frac : frac / 1000);
        put32(g, hdr + 8, caplen);
        put32(g, hdr + 12, len);
        return out_write(g, hdr, 16 + (size_t)caplen);
    }

    uint64_t units = o->nano ? g->now_ns : g->now_ns / 1000;
    uint32_t padded = (caplen + 3) & ~3u;
    uint32_t blen = 28 + padded + 4;

    hdr = g->frame - 28;
    put32(g, hdr, 6);
    put32(g, hdr + 4, blen);
    put32(g, hdr + 8, 0);
    put32(g, hdr + 12, (uint32_t)(units >> 32));
    put32(g, hdr + 16, (uint32_t)units);
    put32(g, hdr + 20, caplen);
    put32(g, hdr + 24, len);
    memset(g->frame + caplen, 0, padded - caplen);
    put32(g, g->frame + padded, blen);
    return out_write(g, hdr, blen);
}

static const char usage_text[] =
    "usage: pcapgen [options] OUTFILE\n"
    "Writes a deterministic synthetic Ethernet capture to OUTFILE ('-' = stdout).\n"
    "\n"
    "  --packets N      stop after N packets (default 1000 unless --bytes is given)\n"
    "  --bytes N        stop at the first packet boundary at or past N output bytes\n"
    "                   (N and --packets accept K, M, G suffixes, powers of 1024)\n"
    "  --seed S         PRNG seed (default 1)\n"
    "  --start SECS     first timestamp, Unix seconds (default 1700000000)\n"
    "  --rate PPS       packets per second (default 10000)\n"
    "  --snaplen N      capture length limit, 1..262144 (default 262144)\n"
    "  --nano           nanosecond timestamps\n"
    "  --big-endian     write a big-endian file\n"
    "  --pcapng         write pcapng instead of classic pcap\n"
    "  --mix MIX        realistic (default), tls, dns or tiny (all 60-byte frames)\n"
    "  -h, --help       show this help\n";

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "pcapgen: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
    fputs("usage: pcapgen [options] OUTFILE (pcapgen --help for the options)\n", stderr);
    return 2;
}

static int parse_u64(const char *s, int suffix, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    /* strtoull would happily accept "-1" and leading blanks. */
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    if (suffix && *end != '\0' && end[1] == '\0') {
        switch (*end) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            return -1;
        }
        end++;
    }
    if (*end != '\0' || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* Returns 0 to run, 1 after printing help, 2 on a usage error (already reported). */
static int parse_args(int argc, char **argv, struct opts *o)
{
    int only_operands = 0;

    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->start = DEFAULT_START;
    o->rate = DEFAULT_RATE;
    o->snaplen = DEFAULT_SNAPLEN;
    o->mix = MIX_REALISTIC;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *name;
        const char *val;
        const char *eq;
        size_t nlen;

        if (only_operands || arg[0] != '-' || arg[1] == '\0') {
            if (o->path)
                return usage_error("more than one OUTFILE", arg);
            o->path = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_operands = 1;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage_text, stdout);
            return 1;
        }
        if (arg[1] != '-')
            return usage_error("unknown option", arg);

        name = arg + 2;
        eq = strchr(name, '=');
        nlen = eq ? (size_t)(eq - name) : strlen(name);
        val = eq ? eq + 1 : NULL;

#define IS(opt) (nlen == sizeof(opt) - 1 && strncmp(name, opt, nlen) == 0)
        if (IS("nano") || IS("big-endian") || IS("pcapng")) {
            if (val)
                return usage_error("option takes no value", arg);
            if (IS("nano"))
                o->nano = 1;
            else if (IS("big-endian"))
                o->big_endian = 1;
            else
                o->pcapng = 1;
            continue;
        }
        if (!IS("packets") && !IS("bytes") && !IS("seed") && !IS("start") && !IS("rate") &&
            !IS("snaplen") && !IS("mix"))
            return usage_error("unknown option", arg);
        if (!val) {
            if (i + 1 >= argc)
                return usage_error("option needs a value", arg);
            val = argv[++i];
        }

        if (IS("mix")) {
            if (strcmp(val, "realistic") == 0)
                o->mix = MIX_REALISTIC;
            else if (strcmp(val, "tls") == 0)
                o->mix = MIX_TLS;
            else if (strcmp(val, "dns") == 0)
                o->mix = MIX_DNS;
            else if (strcmp(val, "tiny") == 0)
                o->mix = MIX_TINY;
            else
                return usage_error("unknown --mix", val);
            continue;
        }

        uint64_t v;
        if (parse_u64(val, IS("packets") || IS("bytes"), &v) != 0)
            return usage_error("bad number", val);
        if (IS("packets")) {
            o->packets = v;
            o->have_packets = 1;
        } else if (IS("bytes")) {
            o->bytes = v;
            o->have_bytes = 1;
        } else if (IS("seed")) {
            o->seed = v;
        } else if (IS("start")) {
            if (v > UINT32_MAX)
                return usage_error("--start must fit in 32 bits", val);
            o->start = v;
        } else if (IS("rate")) {
            if (v < 1 || v > NS_PER_SEC)
                return usage_error("--rate must be 1..1000000000", val);
            o->rate = v;
        } else {
            if (v < 1 || v > DEFAULT_SNAPLEN)
                return usage_error("--snaplen must be 1..262144", val);
            o->snaplen = v;
        }
#undef IS
    }

    if (!o->path)
        return usage_error("missing OUTFILE", NULL);
    if (!o->have_packets && !o->have_bytes) {
        o->packets = DEFAULT_PACKETS;
        o->have_packets = 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct gen *g = NULL;
    char *iobuf = NULL;
    FILE *fp = NULL;
    int to_stdout;
    int remove_on_error = 0;
    int rc = 1;
    int err = 0;
    uint64_t count = 0;
    uint64_t ideal;
    uint64_t period;
    uint64_t rem;
    uint64_t acc = 0;

    rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    rc = 1;
    to_stdout = strcmp(o.path, "-") == 0;

    g = calloc(1, sizeof *g);
    iobuf = malloc(IOBUF_SIZE);
    if (!g || !iobuf) {
        fputs("pcapgen: out of memory\n", stderr);
        goto out;
    }
    g->o = &o;
    g->rng.s = o.seed;
    g->jitter.s = o.seed ^ 0x6a09e667f3bcc909u;
    g->frame = g->buf + REC_RESERVE;
    g->name = to_stdout ? "<stdout>" : o.path;

    fp = to_stdout ? stdout : fopen(o.path, "wb");
    if (!fp) {
        err = errno;
        goto out;
    }
    g->fp = fp;
    /* Only a regular file we just created may be removed on failure; never a device. */
    if (!to_stdout) {
        struct stat st;

        remove_on_error = fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode);
    }
    /* A big buffer keeps the write syscalls few when building GiB corpora. */
    if (setvbuf(fp, iobuf, _IOFBF, IOBUF_SIZE) != 0) {
        err = errno;
        goto out;
    }
    if (write_file_header(g) != 0) {
        err = errno;
        goto out;
    }

    /*
     * Ideal timestamps advance by exactly 1/rate using an integer remainder
     * accumulator (no drift, no floating point).  Jitter stays below a
     * quarter period so timestamps never go backwards.
     */
    ideal = o.start * NS_PER_SEC;
    period = NS_PER_SEC / o.rate;
    rem = NS_PER_SEC % o.rate;
    for (;;) {
        if (o.have_packets && count >= o.packets)
            break;
        if (o.have_bytes && g->written >= o.bytes)
            break;
        g->now_ns = ideal;
        if (period >= 4)
            g->now_ns += rng_below(&g->jitter, (uint32_t)(period / 4));
        next_frame(g);
        if (write_record(g) != 0) {
            err = errno;
            goto out;
        }
        count++;
        ideal += period;
        acc += rem;
        if (acc >= o.rate) {
            acc -= o.rate;
            ideal++;
        }
    }
    if (fflush(fp) != 0) {
        err = errno;
        goto out;
    }
    rc = 0;

out:
    if (fp) {
        /* fclose can still report a failed write-back, so it decides success too. */
        if (fclose(fp) != 0 && rc == 0) {
            err = errno;
            rc = 1;
        }
    }
    if (rc != 0 && err != 0)
        fprintf(stderr, "pcapgen: %s: %s\n", g ? g->name : o.path, strerror(err));
    /* Never leave a truncated capture behind that a later step could mistake for a corpus. */
    if (rc != 0 && remove_on_error)
        remove(o.path);
    free(iobuf);
    free(g);
    return rc;
}
