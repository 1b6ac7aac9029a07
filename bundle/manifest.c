#include "bundle/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"

pf_manifest *pf_manifest_new(const pf_header *h)
{
    pf_manifest *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    if (h != NULL) {
        snprintf(m->sensor, sizeof m->sensor, "%s", h->sensor);
        memcpy(m->signer_id, h->signer_id, sizeof m->signer_id);
        memcpy(m->recipient_id, h->recipient_id, sizeof m->recipient_id);
        m->seq = h->seq;
        m->prev_seq = h->prev_seq;
        memcpy(m->prev_hash, h->prev_hash, sizeof m->prev_hash);
        memcpy(m->header_hash, h->hash, sizeof m->header_hash);
        m->created_ns = h->created_ns;
    }
    return m;
}

int pf_manifest_add(pf_manifest *m, const char *name, const pf_pcapinfo *info,
                    json_t *capture_stats, pf_err *e)
{
    if (m->nfiles >= PF_MANIFEST_MAX_FILES) {
        json_decref(capture_stats);
        return pf_err_set(e, PF_EUSAGE, "too many files for one bundle (at most %d)",
                          PF_MANIFEST_MAX_FILES);
    }
    if (m->nfiles == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        pf_manifest_file *grown = realloc(m->files, cap * sizeof *grown);
        if (grown == NULL) {
            json_decref(capture_stats);
            return pf_err_set(e, PF_EENV, "out of memory");
        }
        m->files = grown;
        m->cap = cap;
    }
    pf_manifest_file *f = &m->files[m->nfiles++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->info = *info;
    f->capture_stats = capture_stats;
    return 0;
}

const pf_manifest_file *pf_manifest_find(const pf_manifest *m, const char *name)
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (strcmp(m->files[i].name, name) == 0)
            return &m->files[i];
    return NULL;
}

void pf_manifest_free(pf_manifest *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfiles; i++)
        json_decref(m->files[i].capture_stats);
    json_decref(m->capture);
    free(m->files);
    free(m);
}

uint64_t pf_manifest_total_packets(const pf_manifest *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < m->nfiles; i++)
        n += m->files[i].info.packets;
    return n;
}

uint64_t pf_manifest_total_bytes(const pf_manifest *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < m->nfiles; i++)
        n += m->files[i].info.size;
    return n;
}

static json_t *jhex(const uint8_t *b, size_t n)
{
    char hex[2 * 64 + 1];
    pf_hex(hex, b, n);
    return json_string(hex);
}

static json_t *jtime(bool have, int64_t ns)
{
    char iso[PF_ISOTIME_BYTES];
    if (!have)
        return json_null();
    pf_isotime_ns(iso, sizeof iso, ns);
    return json_string(iso);
}

static json_t *jint(bool have, int64_t v)
{
    return have ? json_integer((json_int_t)v) : json_null();
}

static json_t *encode_file(const pf_manifest_file *f)
{
    const pf_pcapinfo *i = &f->info;
    char version[16];
    snprintf(version, sizeof version, "%d.%d", i->version_major, i->version_minor);
    bool readable = i->read_status != PF_READ_UNREADABLE;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(f->name));
    json_object_set_new(o, "size", json_integer((json_int_t)i->size));
    json_object_set_new(o, "blake2b_256", jhex(i->blake2b, sizeof i->blake2b));
    json_object_set_new(o, "format", json_string(i->format));
    json_object_set_new(o, "byte_order", json_string(i->big_endian ? "big" : "little"));
    json_object_set_new(o, "version", readable ? json_string(version) : json_null());
    json_object_set_new(o, "ts_resolution", json_string(i->ts_resolution));
    json_object_set_new(o, "link_type", jint(readable, i->link_type));
    json_object_set_new(o, "link_type_name", json_string(i->link_type_name));
    json_object_set_new(o, "snaplen", jint(readable, i->snaplen));
    json_object_set_new(o, "packets", json_integer((json_int_t)i->packets));
    json_object_set_new(o, "truncated_packets", json_integer((json_int_t)i->truncated_packets));
    json_object_set_new(o, "first_ts", jtime(i->have_ts, i->first_ns));
    json_object_set_new(o, "last_ts", jtime(i->have_ts, i->last_ns));
    json_object_set_new(o, "first_ts_ns", jint(i->have_ts, i->first_ns));
    json_object_set_new(o, "last_ts_ns", jint(i->have_ts, i->last_ns));
    json_object_set_new(o, "min_ts_ns", jint(i->have_ts, i->min_ns));
    json_object_set_new(o, "max_ts_ns", jint(i->have_ts, i->max_ns));
    json_object_set_new(o, "read_status", json_string(pf_read_status_name(i->read_status)));
    json_object_set_new(o, "read_error",
                        i->read_error[0] ? json_string(i->read_error) : json_null());
    if (f->capture_stats != NULL)
        json_object_set(o, "capture_stats", f->capture_stats);
    return o;
}

int pf_manifest_encode(const pf_manifest *m, char **out, size_t *len, pf_err *e)
{
    uint8_t zero[PF_HASH_BYTES] = {0};
    char iso[PF_ISOTIME_BYTES];
    json_t *root = json_object(), *files = json_array();
    int rc = -1;

    *out = NULL;
    if (root == NULL || files == NULL) {
        json_decref(files);
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    pf_isotime_ns(iso, sizeof iso, m->created_ns);
    json_object_set_new(root, "type", json_string("pcapferry-manifest"));
    json_object_set_new(root, "version", json_integer(PF_MANIFEST_VERSION));
    json_object_set_new(root, "sensor", json_string(m->sensor));
    json_object_set_new(root, "sensor_key_id", jhex(m->signer_id, PF_KEYID_BYTES));
    json_object_set_new(root, "recipient_key_id", jhex(m->recipient_id, PF_KEYID_BYTES));
    json_object_set_new(root, "seq", json_integer((json_int_t)m->seq));
    json_object_set_new(root, "prev_seq", json_integer((json_int_t)m->prev_seq));
    json_object_set_new(root, "prev_hash",
                        memcmp(m->prev_hash, zero, sizeof zero) == 0
                            ? json_null()
                            : jhex(m->prev_hash, PF_HASH_BYTES));
    json_object_set_new(root, "header_blake2b_256", jhex(m->header_hash, PF_HASH_BYTES));
    json_object_set_new(root, "created", json_string(iso));
    json_object_set_new(root, "created_ns", json_integer((json_int_t)m->created_ns));
    json_object_set(root, "capture", m->capture != NULL ? m->capture : json_null());
    for (size_t i = 0; i < m->nfiles; i++)
        json_array_append_new(files, encode_file(&m->files[i]));
    json_object_set_new(root, "files", files);
    json_t *totals = json_object();
    json_object_set_new(totals, "files", json_integer((json_int_t)m->nfiles));
    json_object_set_new(totals, "bytes", json_integer((json_int_t)pf_manifest_total_bytes(m)));
    json_object_set_new(totals, "packets", json_integer((json_int_t)pf_manifest_total_packets(m)));
    json_object_set_new(root, "totals", totals);
    *out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (*out == NULL) {
        pf_err_set(e, PF_EENV, "manifest encoding failed");
        goto out;
    }
    *len = strlen(*out);
    if (*len > PF_MANIFEST_MAX_BYTES) {
        free(*out);
        *out = NULL;
        pf_err_set(e, PF_EUSAGE, "manifest too large (%zu bytes)", *len);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Strict field readers: the manifest is signed, but a signed mistake must
 * still not crash or mislead the reader. */
static int get_u64(json_t *o, const char *k, uint64_t *out, pf_err *e)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return pf_err_set(e, PF_EREJECT, "manifest: '%s' missing or not a non-negative integer", k);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_opt_i64(json_t *o, const char *k, bool *have, int64_t *out, pf_err *e)
{
    json_t *v = json_object_get(o, k);
    *have = false;
    if (json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return pf_err_set(e, PF_EREJECT, "manifest: '%s' is not an integer or null", k);
    *have = true;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int get_str(json_t *o, const char *k, char *out, size_t cap, bool nullable, pf_err *e)
{
    json_t *v = json_object_get(o, k);
    if (nullable && json_is_null(v)) {
        out[0] = '\0';
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v))
        return pf_err_set(e, PF_EREJECT, "manifest: '%s' missing, not a string, or too long", k);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_hex(json_t *o, const char *k, uint8_t *out, size_t n, bool nullable, pf_err *e)
{
    char hex[2 * 64 + 1];
    if (get_str(o, k, hex, sizeof hex, nullable, e) != 0)
        return -1;
    if (nullable && hex[0] == '\0') {
        memset(out, 0, n);
        return 0;
    }
    if (!pf_unhex(out, n, hex))
        return pf_err_set(e, PF_EREJECT, "manifest: '%s' is not %zu bytes of hex", k, n);
    return 0;
}

static int parse_file(json_t *o, pf_manifest *m, pf_err *e)
{
    pf_pcapinfo info;
    char name[PF_ENTRY_NAME_MAX + 1], status[16], order[8];
    bool have_first = false, have_last = false, have_min = false, have_max = false, have = false;
    int64_t lt = 0, snap = 0;

    memset(&info, 0, sizeof info);
    if (!json_is_object(o))
        return pf_err_set(e, PF_EREJECT, "manifest: a files[] entry is not an object");
    if (get_str(o, "name", name, sizeof name, false, e) != 0)
        return -1;
    if (!pf_entry_name_valid(name) || pf_entry_name_reserved(name))
        return pf_err_set(e, PF_EREJECT, "manifest: invalid file name '%s'", name);
    if (pf_manifest_find(m, name) != NULL)
        return pf_err_set(e, PF_EREJECT, "manifest: file '%s' listed twice", name);
    if (get_u64(o, "size", &info.size, e) ||
        get_hex(o, "blake2b_256", info.blake2b, 32, false, e) ||
        get_str(o, "format", info.format, sizeof info.format, false, e) ||
        get_str(o, "byte_order", order, sizeof order, false, e) ||
        get_str(o, "ts_resolution", info.ts_resolution, sizeof info.ts_resolution, false, e) ||
        get_str(o, "link_type_name", info.link_type_name, sizeof info.link_type_name, false, e) ||
        get_u64(o, "packets", &info.packets, e) ||
        get_u64(o, "truncated_packets", &info.truncated_packets, e) ||
        get_opt_i64(o, "first_ts_ns", &have_first, &info.first_ns, e) ||
        get_opt_i64(o, "last_ts_ns", &have_last, &info.last_ns, e) ||
        get_opt_i64(o, "min_ts_ns", &have_min, &info.min_ns, e) ||
        get_opt_i64(o, "max_ts_ns", &have_max, &info.max_ns, e) ||
        get_opt_i64(o, "link_type", &have, &lt, e) || get_opt_i64(o, "snaplen", &have, &snap, e) ||
        get_str(o, "read_status", status, sizeof status, false, e) ||
        get_str(o, "read_error", info.read_error, sizeof info.read_error, true, e))
        return -1;
    info.have_ts = have_first && have_last && have_min && have_max;
    info.big_endian = strcmp(order, "big") == 0;
    info.link_type = (int)lt;
    info.snaplen = (uint32_t)snap;
    if (strcmp(status, "complete") == 0)
        info.read_status = PF_READ_COMPLETE;
    else if (strcmp(status, "damaged") == 0)
        info.read_status = PF_READ_DAMAGED;
    else if (strcmp(status, "unreadable") == 0)
        info.read_status = PF_READ_UNREADABLE;
    else
        return pf_err_set(e, PF_EREJECT, "manifest: unknown read_status '%s'", status);
    json_t *stats = json_object_get(o, "capture_stats");
    if (stats != NULL && !json_is_object(stats))
        return pf_err_set(e, PF_EREJECT, "manifest: capture_stats is not an object");
    return pf_manifest_add(m, name, &info, stats != NULL ? json_incref(stats) : NULL, e);
}

int pf_manifest_parse(const uint8_t *text, size_t len, pf_manifest **out, pf_err *e)
{
    json_error_t jerr;
    json_t *root = NULL;
    pf_manifest *m = NULL;
    char type[32];
    uint64_t version = 0, created = 0;
    int rc = -1;

    *out = NULL;
    if (len > PF_MANIFEST_MAX_BYTES) {
        pf_err_set(e, PF_EREJECT, "manifest too large");
        goto out;
    }
    root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        pf_err_set(e, PF_EREJECT, "manifest is not valid JSON: %s (line %d)",
                   root == NULL ? jerr.text : "not an object", jerr.line);
        goto out;
    }
    m = pf_manifest_new(NULL);
    if (m == NULL) {
        pf_err_set(e, PF_EENV, "out of memory");
        goto out;
    }
    if (get_str(root, "type", type, sizeof type, false, e) || get_u64(root, "version", &version, e))
        goto out;
    if (strcmp(type, "pcapferry-manifest") != 0 || version != PF_MANIFEST_VERSION) {
        pf_err_set(e, PF_EREJECT, "manifest: unsupported type or version");
        goto out;
    }
    if (get_str(root, "sensor", m->sensor, sizeof m->sensor, false, e) ||
        get_hex(root, "sensor_key_id", m->signer_id, PF_KEYID_BYTES, false, e) ||
        get_hex(root, "recipient_key_id", m->recipient_id, PF_KEYID_BYTES, false, e) ||
        get_u64(root, "seq", &m->seq, e) || get_u64(root, "prev_seq", &m->prev_seq, e) ||
        get_hex(root, "prev_hash", m->prev_hash, PF_HASH_BYTES, true, e) ||
        get_hex(root, "header_blake2b_256", m->header_hash, PF_HASH_BYTES, false, e) ||
        get_u64(root, "created_ns", &created, e))
        goto out;
    m->created_ns = (int64_t)created;
    json_t *capture = json_object_get(root, "capture");
    if (capture != NULL && !json_is_null(capture)) {
        if (!json_is_object(capture)) {
            pf_err_set(e, PF_EREJECT, "manifest: 'capture' is not an object");
            goto out;
        }
        m->capture = json_incref(capture);
    }
    json_t *files = json_object_get(root, "files");
    if (!json_is_array(files)) {
        pf_err_set(e, PF_EREJECT, "manifest: 'files' missing or not an array");
        goto out;
    }
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        if (parse_file(f, m, e) != 0)
            goto out;
    }
    *out = m;
    m = NULL;
    rc = 0;
out:
    pf_manifest_free(m);
    json_decref(root);
    return rc;
}

int pf_manifest_matches(const pf_manifest *m, const pf_header *h, pf_err *e)
{
    if (strcmp(m->sensor, h->sensor) != 0 ||
        memcmp(m->signer_id, h->signer_id, PF_KEYID_BYTES) != 0 ||
        memcmp(m->recipient_id, h->recipient_id, PF_KEYID_BYTES) != 0 || m->seq != h->seq ||
        m->prev_seq != h->prev_seq || memcmp(m->prev_hash, h->prev_hash, PF_HASH_BYTES) != 0)
        return pf_err_set(e, PF_EREJECT,
                          "manifest describes another bundle (sensor, keys or sequence differ)");
    if (memcmp(m->header_hash, h->hash, PF_HASH_BYTES) != 0)
        return pf_err_set(e, PF_EREJECT, "manifest is bound to another bundle header");
    return 0;
}
