/* The report document drawn as SVG and HTML. Everything is inline (style,
 * script, picture): the file must open from a USB stick on a workstation
 * with no network. Details live in each mark's <title>, so hovering works
 * even where scripts are disabled; the script only adds click-to-pin and
 * the "was it capturing at T?" look-up. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/text.h"
#include "import/report.h"

#define SVG_W      1200
#define LABEL_W    150
#define PLOT_W     (SVG_W - LABEL_W - 20)
#define AXIS_H     44
#define ROW_H      46
#define LEGEND_H   30
#define NS_PER_SEC ((int64_t)1000000000)

/* Colours: covered, drops, gap, silent, clock, held, rejected. */
#define C_COV   "#2e9d57"
#define C_DROP  "#f08c00"
#define C_GAP   "#d62828"
#define C_SIL   "#b8c4ce"
#define C_CLOCK "#1c5fd4"
#define C_HELD  "#8e44ad"
#define C_REJ   "#6b0f0f"

struct draw {
    FILE *f;
    int64_t from, to;
    json_t *doc;
    bool files;
};

static void esc(FILE *f, const char *s)
{
    for (; s != NULL && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            /* control characters would make the XML invalid */
            fputc((unsigned char)*s < 0x20 && *s != '\n' ? '?' : *s, f);
        }
    }
}

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t num(json_t *o, const char *k, bool *have)
{
    json_t *v = json_object_get(o, k);
    bool h = json_is_integer(v);
    if (have != NULL)
        *have = h;
    return h ? (int64_t)json_integer_value(v) : 0;
}

static double xof(const struct draw *d, int64_t t)
{
    if (t < d->from)
        t = d->from;
    if (t > d->to)
        t = d->to;
    return LABEL_W + (double)(t - d->from) * PLOT_W / (double)(d->to - d->from);
}

/* "22:14:05" style times for titles; the date when it is not the range's
 * first day. */
static void hhmmss(char *out, size_t cap, int64_t ns)
{
    char iso[PF_ISOTIME_BYTES];
    pf_isotime_ns(iso, sizeof iso, ns);
    /* YYYY-mm-ddTHH:MM:SS.nnn */
    snprintf(out, cap, "%.10s %.12sZ", iso, iso + 11);
}

static int row_of(json_t *doc, const char *sensor)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "sensors"), i, s)
    {
        const char *n = str(s, "sensor");
        if (n != NULL && sensor != NULL && strcmp(n, sensor) == 0)
            return (int)i;
    }
    return -1;
}

static double row_y(int row)
{
    return AXIS_H + (double)row * ROW_H;
}

/* One mark: a rect with the data the look-up script and the tests read
 * (sensor, kind, start/end in seconds) and a title with the details. */
static void mark(struct draw *d, const char *kind, const char *sensor, int64_t a, int64_t b,
                 double y, double h, const char *fill, double opacity, double minw,
                 const char *title)
{
    double x0 = xof(d, a), x1 = xof(d, b);
    if (x1 - x0 < minw) {
        double mid = (x0 + x1) / 2;
        x0 = mid - minw / 2;
        x1 = mid + minw / 2;
    }
    fprintf(d->f, "<rect class=\"m %s\" data-s=\"", kind);
    esc(d->f, sensor);
    fprintf(d->f,
            "\" data-a=\"%.3f\" data-b=\"%.3f\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
            "height=\"%.1f\" fill=\"%s\"",
            (double)a / 1e9, (double)b / 1e9, x0, y, x1 - x0, h, fill);
    if (opacity < 1)
        fprintf(d->f, " fill-opacity=\"%.2f\"", opacity);
    /* neighbouring windows stay apart where there is room to show it */
    if (d->files && strcmp(kind, "cov") == 0 && x1 - x0 > 6)
        fputs(" stroke=\"#fff\" stroke-width=\"0.8\"", d->f);
    fputs("><title>", d->f);
    esc(d->f, title);
    fputs("</title></rect>\n", d->f);
}

static void axis(struct draw *d, int rows)
{
    static const int64_t steps[] = {1,     2,     5,      10,     15,      30,      60,      120,
                                    300,   600,   900,    1800,   3600,    7200,    10800,   21600,
                                    43200, 86400, 172800, 604800, 2592000, 7776000, 31536000};
    int64_t span = d->to - d->from, step = steps[0] * NS_PER_SEC;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        step = steps[i] * NS_PER_SEC;
        if (span / step <= 8)
            break;
    }
    double bottom = row_y(rows);
    fprintf(d->f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%.0f\" fill=\"#fafafa\" "
            "stroke=\"#999\" id=\"plot\"/>\n",
            LABEL_W, AXIS_H, PLOT_W, bottom - AXIS_H);
    int64_t first = (d->from / step) * step;
    if (first < d->from)
        first += step;
    for (int64_t t = first; t <= d->to; t += step) {
        double x = xof(d, t);
        char iso[PF_ISOTIME_BYTES];
        pf_isotime_ns(iso, sizeof iso, t);
        /* seconds matter below a minute, the date above a day */
        const char *label = iso + 11;
        int len = step < 60 * NS_PER_SEC ? 8 : 5;
        if (step >= 86400 * NS_PER_SEC) {
            label = iso;
            len = 10;
        }
        fprintf(d->f,
                "<line x1=\"%.2f\" x2=\"%.2f\" y1=\"%d\" y2=\"%.0f\" stroke=\"#ddd\"/>"
                "<text x=\"%.2f\" y=\"%d\" font-size=\"11\" text-anchor=\"%s\">%.*s</text>\n",
                x, x, AXIS_H, bottom, x, AXIS_H - 6, x + 4.0 * len > SVG_W ? "end" : "middle", len,
                label);
    }
    char a[PF_ISOTIME_BYTES], b[PF_ISOTIME_BYTES];
    pf_isotime_ns(a, sizeof a, d->from);
    pf_isotime_ns(b, sizeof b, d->to);
    fprintf(d->f,
            "<text x=\"%d\" y=\"14\" font-size=\"12\" font-weight=\"bold\">%.19sZ to %.19sZ "
            "(UTC)</text>\n",
            LABEL_W, a, b);
}

static void legend(struct draw *d, int rows)
{
    static const struct {
        const char *fill, *label;
    } items[] = {{C_COV, "captured"},        {C_SIL, "up, no packets"},  {C_DROP, "drops"},
                 {C_GAP, "missing bundles"}, {C_CLOCK, "clock trouble"}, {C_HELD, "held"},
                 {C_REJ, "rejected"}};
    double y = row_y(rows) + 12;
    int x = LABEL_W;
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        fprintf(d->f,
                "<rect x=\"%d\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%.0f\" font-size=\"11\">%s</text>\n",
                x, y, items[i].fill, x + 16, y + 10, items[i].label);
        x += 22 + (int)strlen(items[i].label) * 7;
    }
}

static void draw_windows(struct draw *d)
{
    size_t i;
    json_t *w;
    char title[2048], a[48], b[48];
    json_array_foreach(json_object_get(d->doc, "windows"), i, w)
    {
        const char *sensor = str(w, "sensor");
        int row = row_of(d->doc, sensor);
        bool have;
        int64_t s = num(w, "start_ns", &have), e = num(w, "end_ns", NULL);
        if (row < 0 || !have)
            continue;
        hhmmss(a, sizeof a, s);
        hhmmss(b, sizeof b, e);
        bool hk, hi;
        int64_t dk = num(w, "drops_kernel", &hk), di = num(w, "drops_interface", &hi);
        char drops[96] =
            "drops: not recorded (read from files, or not captured by pcapferry capture)";
        if (hk || hi)
            snprintf(drops, sizeof drops, "drops: %" PRId64 " kernel, %" PRId64 " interface", dk,
                     di);
        const char *deliv = str(w, "delivered");
        snprintf(title, sizeof title,
                 "%s seq %" PRId64 " file %s\n%s to %s\n%" PRId64 " packets; %s\n"
                 "bundle hash %s\nfile blake2b-256 %s\n%s%s%s",
                 sensor, num(w, "seq", NULL), str(w, "file") ? str(w, "file") : "?", a, b,
                 num(w, "packets", NULL), drops,
                 str(w, "bundle_hash") ? str(w, "bundle_hash") : "?",
                 str(w, "blake2b_256") ? str(w, "blake2b_256") : "?",
                 deliv ? "delivered: " : "state: ", deliv ? deliv : str(w, "state"),
                 json_is_true(json_object_get(w, "converted")) ? " (converted from pcapng)" : "");
        mark(d, "cov", sensor, s, e, row_y(row) + 8, 20, C_COV, 1, 1.5, title);
    }
}

static void draw_buckets(struct draw *d)
{
    size_t i;
    json_t *k;
    char title[512], a[48];
    json_array_foreach(json_object_get(d->doc, "buckets"), i, k)
    {
        const char *sensor = str(k, "sensor");
        int row = row_of(d->doc, sensor);
        if (row < 0)
            continue;
        int64_t s = num(k, "first_packet_ns", NULL), e = num(k, "last_packet_ns", NULL);
        int64_t cov = num(k, "covered_ns", NULL);
        double frac = e > s ? (double)cov / (double)(e - s) : 1;
        if (frac > 1)
            frac = 1;
        hhmmss(a, sizeof a, num(k, "start_ns", NULL));
        snprintf(title, sizeof title,
                 "%s from %s (+%" PRId64 " s)\n%" PRId64 " bundles (seq %" PRId64 "-%" PRId64
                 "), %" PRId64 " files, %" PRId64 " packets, %" PRId64 " drops, %.0f%% covered",
                 sensor, a, num(d->doc, "bucket_ns", NULL) / NS_PER_SEC, num(k, "bundles", NULL),
                 num(k, "first_seq", NULL), num(k, "last_seq", NULL), num(k, "files", NULL),
                 num(k, "packets", NULL), num(k, "drops", NULL), frac * 100);
        mark(d, "cov", sensor, s, e, row_y(row) + 8, 20, C_COV, 0.35 + 0.65 * frac, 1.5, title);
    }
}

static void draw_list(struct draw *d, const char *list, const char *kind)
{
    size_t i;
    json_t *o;
    char title[2048], a[48], b[48];
    json_array_foreach(json_object_get(d->doc, list), i, o)
    {
        const char *sensor = str(o, "sensor");
        int row = row_of(d->doc, sensor);
        if (row < 0)
            continue;
        double y = row_y(row);
        bool ha, hb;
        int64_t s = num(o, "start_ns", &ha), e = num(o, "end_ns", &hb);
        if (strcmp(kind, "drop") == 0) {
            hhmmss(a, sizeof a, s);
            hhmmss(b, sizeof b, e);
            bool have_seq;
            int64_t seq = num(o, "seq", &have_seq);
            if (have_seq)
                snprintf(title, sizeof title,
                         "%s seq %" PRId64 " file %s\ndrops %s to %s: %" PRId64
                         " by the kernel, %" PRId64 " by the interface",
                         sensor, seq, str(o, "file"), a, b, num(o, "kernel", NULL),
                         num(o, "interface", NULL));
            else
                snprintf(title, sizeof title, "%s\ndrops %s to %s: %" PRId64 " in all", sensor, a,
                         b, num(o, "total", NULL));
            mark(d, "drop", sensor, s, e, y + 30, 9, C_DROP, 1, 3, title);
        } else if (strcmp(kind, "silent") == 0) {
            hhmmss(a, sizeof a, s);
            hhmmss(b, sizeof b, e);
            snprintf(title, sizeof title,
                     "%s seq %" PRId64 " file %s\nsensor up, no packets: %s to %s", sensor,
                     num(o, "seq", NULL), str(o, "file"), a, b);
            mark(d, "silent", sensor, s, e, y + 8, 20, C_SIL, 1, 1, title);
        } else if (strcmp(kind, "gap") == 0) {
            char ra[48] = "?", rb[48] = "?", extra[512] = "";
            if (ha)
                hhmmss(ra, sizeof ra, s);
            if (hb)
                hhmmss(rb, sizeof rb, e);
            json_t *rej = json_object_get(o, "rejected_seqs"),
                   *del = json_object_get(o, "deleted_on_sensor");
            size_t used = 0;
            if (json_array_size(rej) > 0)
                used +=
                    (size_t)snprintf(extra + used, sizeof extra - used,
                                     "\n%zu of them rejected (see Rejected)", json_array_size(rej));
            if (json_array_size(del) > 0 && used < sizeof extra)
                snprintf(extra + used, sizeof extra - used,
                         "\n%zu deleted on the sensor for space (outbox full)",
                         json_array_size(del));
            snprintf(title, sizeof title,
                     "%s: %" PRId64 " bundle(s) missing, seq %" PRId64 "-%" PRId64
                     "\nthey must cover %s to %s%s",
                     sensor, num(o, "count", NULL), num(o, "first_missing", NULL),
                     num(o, "last_missing", NULL), ha ? ra : "(before the first bundle)",
                     hb ? rb : "?", extra);
            /* no earlier bundle: a short bar ending where the next begins */
            if (!ha)
                s = hb ? e : d->from;
            if (!hb)
                e = s;
            mark(d, "gap", sensor, s, e, y + 2, ROW_H - 6, C_GAP, 0.55, 4, title);
        } else if (strcmp(kind, "clock") == 0) {
            int64_t at = num(o, "at_ns", NULL);
            bool hj, ho;
            int64_t jump = num(o, "jump_ns", &hj), off = num(o, "wall_minus_monotonic_ns", &ho);
            hhmmss(a, sizeof a, at);
            snprintf(title, sizeof title,
                     "%s seq %" PRId64 " file %s\nclock at %s: jump %.3f s, rotated by %s, "
                     "wall minus monotonic %.3f s",
                     sensor, num(o, "seq", NULL), str(o, "file"), a, hj ? (double)jump / 1e9 : 0.0,
                     str(o, "rotated_by") ? str(o, "rotated_by") : "?",
                     ho ? (double)off / 1e9 : 0.0);
            mark(d, "clock", sensor, at, at, y + 2, ROW_H - 6, C_CLOCK, 1, 2, title);
        } else if (strcmp(kind, "held") == 0) {
            if (!ha)
                continue;
            snprintf(title, sizeof title, "%s seq %" PRId64 " file %s HELD\n%s\nheld as %s", sensor,
                     num(o, "seq", NULL), str(o, "file"), str(o, "reason"), str(o, "held_as"));
            mark(d, "held", sensor, s, e, y + 2, 6, C_HELD, 1, 4, title);
        } else if (strcmp(kind, "rej") == 0) {
            bool ht;
            int64_t t = num(o, "claimed_start_ns", &ht);
            if (!ht)
                continue;
            snprintf(title, sizeof title,
                     "%s seq %" PRId64 " REJECTED\n%s\nquarantined as %s\n"
                     "(time from the bundle's name: a claim, not verified)",
                     sensor, num(o, "seq", NULL), str(o, "reason"),
                     str(o, "quarantined_as") ? str(o, "quarantined_as") : "?");
            mark(d, "rej", sensor, t, t, y + 2, ROW_H - 6, C_REJ, 1, 4, title);
        }
    }
}

static void svg_body(struct draw *d)
{
    json_t *sensors = json_object_get(d->doc, "sensors");
    int rows = (int)json_array_size(sensors);
    int h = (int)row_y(rows > 0 ? rows : 1) + LEGEND_H + 10;
    fprintf(d->f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
            "data-from=\"%.3f\" data-to=\"%.3f\" data-plot-x=\"%d\" data-plot-w=\"%d\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
            SVG_W, h, SVG_W, h, (double)d->from / 1e9, (double)d->to / 1e9, LABEL_W, PLOT_W);
    axis(d, rows > 0 ? rows : 1);
    size_t i;
    json_t *s;
    json_array_foreach(sensors, i, s)
    {
        double y = row_y((int)i);
        fputs("<g class=\"row\" data-s=\"", d->f);
        esc(d->f, str(s, "sensor"));
        fprintf(d->f, "\"><text x=\"6\" y=\"%.0f\" font-size=\"13\" font-weight=\"bold\">", y + 22);
        esc(d->f, str(s, "sensor"));
        fprintf(d->f,
                "</text><text x=\"6\" y=\"%.0f\" font-size=\"10\" fill=\"#555\">%" PRId64
                " missing, %" PRId64 " drops</text>"
                "<line x1=\"%d\" x2=\"%d\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#eee\"/></g>\n",
                y + 36, num(s, "missing", NULL), num(s, "drops", NULL), LABEL_W, LABEL_W + PLOT_W,
                y + ROW_H, y + ROW_H);
    }
    if (rows == 0)
        fprintf(d->f, "<text x=\"%d\" y=\"%d\" font-size=\"13\">no bundles imported</text>\n",
                LABEL_W + 10, AXIS_H + 26);
    if (d->files)
        draw_windows(d);
    else
        draw_buckets(d);
    draw_list(d, "silent", "silent");
    draw_list(d, "drops", "drop");
    draw_list(d, "gaps", "gap");
    draw_list(d, "clock", "clock");
    draw_list(d, "held", "held");
    draw_list(d, "rejected", "rej");
    legend(d, rows > 0 ? rows : 1);
    fputs("</svg>\n", d->f);
}

static int finish(FILE *f, char **out, pf_err *e)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(*out);
        *out = NULL;
        return pf_err_set(e, PF_EENV, "out of memory while rendering the report");
    }
    return 0;
}

static FILE *start(struct draw *d, const json_t *doc, char **out, size_t *len, pf_err *e)
{
    *out = NULL;
    *len = 0;
    memset(d, 0, sizeof *d);
    d->doc = (json_t *)doc;
    d->from = num(d->doc, "from_ns", NULL);
    d->to = num(d->doc, "to_ns", NULL);
    if (d->to <= d->from)
        d->to = d->from + 1;
    const char *mode = str(d->doc, "mode");
    d->files = mode != NULL && strcmp(mode, "files") == 0;
    d->f = open_memstream(out, len);
    if (d->f == NULL)
        pf_err_set(e, PF_EENV, "out of memory");
    return d->f;
}

int pf_report_svg(const json_t *doc, char **out, size_t *len, pf_err *e)
{
    struct draw d;
    if (start(&d, doc, out, len, e) == NULL)
        return -1;
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", d.f);
    svg_body(&d);
    return finish(d.f, out, e);
}

/* ------------------------------------------------------------- HTML */

static const char style[] =
    "body{font-family:sans-serif;margin:16px;color:#222}"
    "h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 6px}"
    ".meta{color:#555;font-size:13px}"
    "table{border-collapse:collapse;font-size:12px}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}td.n{text-align:right}"
    "#detail,#answer{white-space:pre-wrap;font-family:monospace;font-size:12px;"
    "background:#f6f6f6;border:1px solid #ddd;padding:6px;min-height:1em}"
    ".m{cursor:pointer}.m:hover{stroke:#000;stroke-width:1}"
    ".none{color:#777}#answer:empty{display:none}";

/* Click pins a mark's details; the look-up lists, per sensor, the marks
 * that contain a time. Times in data-a/data-b are Unix seconds. */
static const char script[] =
    "(function(){\n"
    "var det=document.getElementById('detail');\n"
    "document.querySelectorAll('#timeline .m').forEach(function(r){\n"
    " r.addEventListener('click',function(){det.textContent=r.querySelector('title')"
    ".textContent;});});\n"
    "function lookup(){\n"
    " var v=document.getElementById('at').value.trim();if(!v)return;\n"
    " if(!/[zZ]$|[+-]\\d\\d:?\\d\\d$/.test(v))v=v.replace(' ','T')+'Z';\n"
    " var t=Date.parse(v)/1000,out=[];\n"
    " if(isNaN(t)){document.getElementById('answer').textContent='cannot read that time';"
    "return;}\n"
    " document.querySelectorAll('#timeline g.row').forEach(function(g){\n"
    "  var s=g.getAttribute('data-s'),hits=[];\n"
    "  document.querySelectorAll('#timeline .m').forEach(function(r){\n"
    "   if(r.getAttribute('data-s')!==s)return;\n"
    "   var a=+r.getAttribute('data-a'),b=+r.getAttribute('data-b');\n"
    "   if(t>=a-0.0005&&t<=b+0.0005)hits.push(r.querySelector('title').textContent);});\n"
    "  out.push('== '+s+': '+(hits.length?'':'no capture covers this time')+'\\n'+"
    "hits.join('\\n--\\n'));});\n"
    " document.getElementById('answer').textContent=out.join('\\n\\n');}\n"
    "document.getElementById('go').addEventListener('click',lookup);\n"
    "document.getElementById('at').addEventListener('keydown',function(ev){"
    "if(ev.key==='Enter')lookup();});\n"
    "})();\n";

static void td_text(FILE *f, const char *s)
{
    fputs("<td>", f);
    esc(f, s != NULL ? s : "");
    fputs("</td>", f);
}

static void td_num(FILE *f, json_t *o, const char *k)
{
    bool have;
    int64_t v = num(o, k, &have);
    if (have)
        fprintf(f, "<td class=\"n\">%" PRId64 "</td>", v);
    else
        fputs("<td class=\"n\">-</td>", f);
}

static void td_time(FILE *f, json_t *o, const char *k)
{
    const char *s = str(o, k);
    char t[48] = "-";
    if (s != NULL)
        snprintf(t, sizeof t, "%.10s %.12sZ", s, s + 11);
    td_text(f, t);
}

/* A table of one list: header, then each object's fields in order. */
static void table(FILE *f, json_t *doc, const char *list, const char *title, const char *empty,
                  const char *const *cols, const char *const *heads, size_t ncols)
{
    json_t *a = json_object_get(doc, list);
    fprintf(f, "<h2 id=\"t-%s\">%s (%zu)</h2>\n", list, title, json_array_size(a));
    if (json_array_size(a) == 0) {
        fprintf(f, "<p class=\"none\">%s</p>\n", empty);
        return;
    }
    fprintf(f, "<table id=\"tab-%s\"><tr>", list);
    for (size_t c = 0; c < ncols; c++)
        fprintf(f, "<th>%s</th>", heads[c]);
    fputs("</tr>\n", f);
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o)
    {
        if (i >= 1000) {
            fprintf(f, "<tr><td colspan=\"%zu\">... %zu more in --json</td></tr>\n", ncols,
                    json_array_size(a) - i);
            break;
        }
        fputs("<tr>", f);
        for (size_t c = 0; c < ncols; c++) {
            json_t *v = json_object_get(o, cols[c]);
            size_t kl = strlen(cols[c]);
            if (json_is_string(v) && kl > 0 &&
                (strcmp(cols[c], "start") == 0 || strcmp(cols[c], "end") == 0 ||
                 strcmp(cols[c], "at") == 0 || strcmp(cols[c], "claimed_start") == 0 ||
                 strcmp(cols[c], "rejected_at") == 0 || strcmp(cols[c], "first_packet") == 0 ||
                 strcmp(cols[c], "last_packet") == 0))
                td_time(f, o, cols[c]);
            else if (json_is_string(v))
                td_text(f, json_string_value(v));
            else if (json_is_integer(v))
                td_num(f, o, cols[c]);
            else if (json_is_boolean(v))
                td_text(f, json_is_true(v) ? "yes" : "no");
            else if (json_is_array(v)) {
                char buf[256] = "";
                size_t used = 0, j;
                json_t *x;
                json_array_foreach(v, j, x)
                {
                    if (used + 24 >= sizeof buf)
                        break;
                    if (json_is_integer(x))
                        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%" PRId64,
                                                 used ? ", " : "", (int64_t)json_integer_value(x));
                    else if (json_is_object(x))
                        used += (size_t)snprintf(buf + used, sizeof buf - used, "%sseq %" PRId64,
                                                 used ? ", " : "", num(x, "seq", NULL));
                }
                td_text(f, buf);
            } else
                td_text(f, "-");
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

#define TABLE(f, doc, list, title, empty, ...)                                                     \
    do {                                                                                           \
        static const char *const cols_[] = {__VA_ARGS__};                                          \
        table(f, doc, list, title, empty, cols_, heads_, sizeof cols_ / sizeof cols_[0]);          \
    } while (0)

int pf_report_html(const json_t *doc, char **out, size_t *len, pf_err *e)
{
    struct draw d;
    FILE *f = start(&d, doc, out, len, e);
    if (f == NULL)
        return -1;
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>pcapferry coverage report</title><style>%s</style></head><body>\n",
            style);
    fputs("<h1>pcapferry coverage report</h1>\n<p class=\"meta\">state ", f);
    esc(f, str(d.doc, "state"));
    fprintf(f, ", generated %s; from %s to %s (UTC). ", str(d.doc, "generated"), str(d.doc, "from"),
            str(d.doc, "to"));
    if (d.files)
        fprintf(f, "Drawn file by file from the signed manifests (%" PRId64 " bundles).",
                num(d.doc, "bundles_in_range", NULL));
    else
        fprintf(f,
                "%" PRId64 " bundles in range: aggregated per %" PRId64
                " s; silent periods and clock trouble are only drawn file by file: "
                "narrow the range with --from/--to to see them.",
                num(d.doc, "bundles_in_range", NULL), num(d.doc, "bucket_ns", NULL) / NS_PER_SEC);
    fputs(" Hover or click a mark for details.</p>\n"
          "<p><label>Was it capturing at (UTC) <input id=\"at\" size=\"26\" "
          "placeholder=\"2023-11-14 22:14:05\"></label> <button id=\"go\">look up</button></p>\n"
          "<div id=\"answer\"></div>\n<div id=\"tl\">\n",
          f);
    svg_body(&d);
    fputs("</div>\n<div id=\"detail\">Click a mark on the time line to pin its details "
          "here.</div>\n",
          f);
    {
        static const char *const heads_[] = {"sensor",    "bundles", "seq from",     "seq to",
                                             "files",     "packets", "drops",        "missing",
                                             "rejected",  "held",    "first packet", "last packet",
                                             "interface", "filter"};
        TABLE(f, d.doc, "sensors", "Sensors", "No bundles imported yet.", "sensor", "bundles",
              "first_seq", "last_seq", "files", "packets", "drops", "missing", "rejected", "held",
              "first_packet", "last_packet", "interface", "filter");
    }
    {
        static const char *const heads_[] = {
            "sensor",     "missing seq",     "to seq", "count",         "after seq",
            "before seq", "must cover from", "to",     "rejected seqs", "deleted on sensor"};
        TABLE(f, d.doc, "gaps", "Gaps: missing bundles", "No missing sequence numbers in range.",
              "sensor", "first_missing", "last_missing", "count", "after_seq", "before_seq",
              "start", "end", "rejected_seqs", "deleted_on_sensor");
    }
    {
        static const char *const heads_[] = {"sensor", "seq",    "file",      "from",
                                             "to",     "kernel", "interface", "total"};
        TABLE(f, d.doc, "drops", "Drops", "No drops recorded in range.", "sensor", "seq", "file",
              "start", "end", "kernel", "interface", "total");
    }
    {
        static const char *const heads_[] = {
            "sensor",      "seq",           "reason", "equivocation", "claimed start (name)",
            "rejected at", "quarantined as"};
        TABLE(f, d.doc, "rejected", "Rejected (quarantined) bundles", "Nothing rejected.", "sensor",
              "seq", "reason", "equivocation", "claimed_start", "rejected_at", "quarantined_as");
    }
    {
        static const char *const heads_[] = {"sensor", "seq",  "n",  "file",
                                             "reason", "from", "to", "held as"};
        TABLE(f, d.doc, "held", "Held files", "Nothing held.", "sensor", "seq", "n", "file",
              "reason", "start", "end", "held_as");
    }
    {
        static const char *const heads_[] = {
            "sensor", "seq", "file", "at", "jump (ns)", "wall - monotonic (ns)", "rotated by"};
        TABLE(f, d.doc, "clock", "Clock trouble",
              d.files ? "No clock jumps recorded in range." : "Not drawn when aggregated.",
              "sensor", "seq", "file", "at", "jump_ns", "wall_minus_monotonic_ns", "rotated_by");
    }
    {
        static const char *const heads_[] = {"sensor", "seq", "file", "from", "to"};
        TABLE(f, d.doc, "silent", "Silent periods (sensor up, no packets)",
              d.files ? "None in range." : "Not drawn when aggregated.", "sensor", "seq", "file",
              "start", "end");
    }
    fprintf(f,
            "<p class=\"meta\">pcapferry report, format version %d. The same data: "
            "<code>pcapferry report --json</code> (docs/REPORT.md).</p>\n<script>%s</script>\n"
            "</body></html>\n",
            PF_REPORT_VERSION, script);
    return finish(f, out, e);
}
