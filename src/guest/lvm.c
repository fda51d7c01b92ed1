/*
 * lvm.c: LVM2 physical volumes, their text metadata, and logical volumes
 * with linear and striped segments readable as block devices.
 *
 * On-disk format (LVM2's lib/format_text/layout.h and
 * doc/lvm2-raid.txt-era docs, as also described by libyal's libvslvm
 * documentation): a label "LABELONE" in one of the first four sectors,
 * type "LVM2 001", the PV header at the label's offset_xl (32-char PV
 * uuid, device size, data area list, metadata area list, each ended by a
 * zero pair); the metadata area begins with a 512-byte mda_header (magic
 * " LVM2 x[5A%r0N*>", version 1, start, size, raw_locn list) and holds the
 * newest metadata text at raw_locn.offset, circular (wrapping to just
 * after the header).  Text: nested "name { key = value ... }" sections,
 * values are numbers, "strings" or [ lists ].  Thin, RAID, mirror and
 * cache segments are refused (the LV is reported, not readable).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "guest/ondisk.h"

#define MDA_MAGIC " LVM2 x[5A%r0N*>"
#define MDA_HEADER_SIZE 512
/* LVM's default metadata area is 1 MiB and its text far smaller; lvm2
 * itself refuses metadata above its area size.  16 MiB is generous. */
#define LVM_TEXT_MAX (16u << 20)
/* Parser limits: nesting in real metadata is 5 deep; node counts for a
 * VG with a thousand LVs stay under 100k. */
#define LVM_MAX_DEPTH 16
#define LVM_MAX_NODES 200000
/* Segments per LV and stripes per segment (lvm2 caps stripes at 128). */
#define LVM_MAX_SEGS 10000
#define LVM_MAX_STRIPES 128
#define LVM_MAX_PVS 256

/* ---- a small tree for the text metadata ---- */

enum lnode_kind { LN_SECTION, LN_NUMBER, LN_STRING, LN_LIST };

struct lnode {
    enum lnode_kind kind;
    char *name;
    char *str;
    int64_t num;
    struct lnode *child, *next;     /* section members / list items */
};

struct lparse {
    const char *p, *end;
    size_t nodes;
    char err[160];
};

static void lnode_free(struct lnode *n)
{
    while (n) {
        struct lnode *nx = n->next;
        lnode_free(n->child);
        free(n->name);
        free(n->str);
        free(n);
        n = nx;
    }
}

static void skip_ws(struct lparse *ps)
{
    while (ps->p < ps->end) {
        if (isspace((unsigned char)*ps->p)) {
            ps->p++;
        } else if (*ps->p == '#') {
            while (ps->p < ps->end && *ps->p != '\n')
                ps->p++;
        } else {
            break;
        }
    }
}

static struct lnode *lnode_new(struct lparse *ps, enum lnode_kind k)
{
    if (++ps->nodes > LVM_MAX_NODES) {
        snprintf(ps->err, sizeof(ps->err), "LVM metadata has more than %d "
                 "values", LVM_MAX_NODES);
        return NULL;
    }
    struct lnode *n = calloc(1, sizeof(*n));
    if (n)
        n->kind = k;
    else
        snprintf(ps->err, sizeof(ps->err), "out of memory");
    return n;
}

static char *parse_ident(struct lparse *ps)
{
    const char *s = ps->p;
    while (ps->p < ps->end && (isalnum((unsigned char)*ps->p) ||
                               strchr("_.+-", *ps->p)))
        ps->p++;
    if (ps->p == s || ps->p - s > 256)
        return NULL;
    return strndup(s, (size_t)(ps->p - s));
}

static struct lnode *parse_value(struct lparse *ps, int depth)
{
    skip_ws(ps);
    if (ps->p >= ps->end) {
        snprintf(ps->err, sizeof(ps->err), "LVM metadata ends inside a value");
        return NULL;
    }
    if (*ps->p == '"') {
        const char *s = ++ps->p;
        while (ps->p < ps->end && *ps->p != '"') {
            if (*ps->p == '\\' && ps->p + 1 < ps->end)
                ps->p++;
            ps->p++;
        }
        if (ps->p >= ps->end) {
            snprintf(ps->err, sizeof(ps->err), "LVM metadata string not ended");
            return NULL;
        }
        struct lnode *n = lnode_new(ps, LN_STRING);
        if (!n)
            return NULL;
        n->str = strndup(s, (size_t)(ps->p - s));
        ps->p++;
        return n;
    }
    if (*ps->p == '[') {
        if (depth >= LVM_MAX_DEPTH) {
            snprintf(ps->err, sizeof(ps->err), "LVM metadata nested too deep");
            return NULL;
        }
        ps->p++;
        struct lnode *n = lnode_new(ps, LN_LIST), **tail;
        if (!n)
            return NULL;
        tail = &n->child;
        for (;;) {
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
                return n;
            }
            struct lnode *it = parse_value(ps, depth + 1);
            if (!it) {
                lnode_free(n);
                return NULL;
            }
            *tail = it;
            tail = &it->next;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',')
                ps->p++;
        }
    }
    if (*ps->p == '-' || isdigit((unsigned char)*ps->p)) {
        char *e;
        struct lnode *n = lnode_new(ps, LN_NUMBER);
        if (!n)
            return NULL;
        char buf[32];
        size_t l = (size_t)(ps->end - ps->p) < 31 ? (size_t)(ps->end - ps->p) : 31;
        memcpy(buf, ps->p, l);
        buf[l] = 0;
        n->num = strtoll(buf, &e, 10);
        ps->p += e - buf;
        /* floats exist in some fields (e.g. "1.5"): skip the fraction */
        while (ps->p < ps->end && (*ps->p == '.' || isdigit((unsigned char)*ps->p)))
            ps->p++;
        return n;
    }
    snprintf(ps->err, sizeof(ps->err), "LVM metadata: unexpected '%c'",
             isprint((unsigned char)*ps->p) ? *ps->p : '?');
    return NULL;
}

/* Members of a section until '}' (or end of text at depth 0). */
static struct lnode *parse_members(struct lparse *ps, int depth)
{
    struct lnode *head = NULL, **tail = &head;
    if (depth > LVM_MAX_DEPTH) {
        snprintf(ps->err, sizeof(ps->err), "LVM metadata nested too deep");
        return NULL;
    }
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p == 0) {
            if (depth == 0)
                return head ? head : lnode_new(ps, LN_SECTION);
            snprintf(ps->err, sizeof(ps->err), "LVM metadata section not closed");
            goto fail;
        }
        if (*ps->p == '}') {
            if (depth == 0) {
                snprintf(ps->err, sizeof(ps->err), "LVM metadata: stray '}'");
                goto fail;
            }
            ps->p++;
            return head ? head : lnode_new(ps, LN_SECTION);
        }
        char *name = parse_ident(ps);
        if (!name) {
            snprintf(ps->err, sizeof(ps->err), "LVM metadata: name expected");
            goto fail;
        }
        skip_ws(ps);
        struct lnode *n = NULL;
        if (ps->p < ps->end && *ps->p == '{') {
            ps->p++;
            n = lnode_new(ps, LN_SECTION);
            if (n) {
                n->child = parse_members(ps, depth + 1);
                if (!n->child) {
                    free(n);
                    n = NULL;
                }
            }
        } else if (ps->p < ps->end && *ps->p == '=') {
            ps->p++;
            n = parse_value(ps, depth);
        } else {
            snprintf(ps->err, sizeof(ps->err), "LVM metadata: '=' or '{' "
                     "expected after %s", name);
        }
        if (!n) {
            free(name);
            goto fail;
        }
        n->name = name;
        *tail = n;
        tail = &n->next;
    }
fail:
    lnode_free(head);
    return NULL;
}

static struct lnode *lget(struct lnode *sec, const char *name)
{
    for (struct lnode *n = sec ? sec->child : NULL; n; n = n->next)
        if (n->name && !strcmp(n->name, name))
            return n;
    return NULL;
}

static const char *lstr(struct lnode *sec, const char *name)
{
    struct lnode *n = lget(sec, name);
    return n && n->kind == LN_STRING ? n->str : NULL;
}

static bool lnum(struct lnode *sec, const char *name, int64_t *v)
{
    struct lnode *n = lget(sec, name);
    if (!n || n->kind != LN_NUMBER || n->num < 0)
        return false;
    *v = n->num;
    return true;
}

/* ---- LV maps ---- */

struct lv_stripe {
    struct gdev *pv;
    uint64_t pv_off;           /* byte offset of the stripe's first PE */
};

struct lv_seg {
    uint64_t start, len;       /* bytes in the LV */
    uint64_t stripe_size;      /* bytes, striped with n > 1 */
    uint32_t n;
    struct lv_stripe *st;
};

struct lv_map {
    struct lv_seg *segs;
    size_t nsegs;
};

void lv_map_free(struct lv_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nsegs; i++)
        free(m->segs[i].st);
    free(m->segs);
    free(m);
}

/* Map [off, off+len) of the LV onto its PVs, one physically contiguous
 * piece at a time: a read (wbuf NULL) or a write. */
static int lv_map_io(struct lv_map *m, uint8_t *rbuf, const uint8_t *wbuf,
                     uint64_t off, size_t len, vf_error **errp)
{
    while (len) {
        struct lv_seg *s = NULL;
        for (size_t i = 0; i < m->nsegs; i++)
            if (off >= m->segs[i].start && off - m->segs[i].start < m->segs[i].len)
                s = &m->segs[i];
        if (!s) {     /* a hole in the LV's extent list reads as zeros */
            if (wbuf) {
                error_setg(errp, "LV offset 0x%llx is not mapped to a PV: "
                           "cannot write there", (unsigned long long)off);
                return -1;
            }
            memset(rbuf, 0, len);
            return 0;
        }
        uint64_t in = off - s->start, chunk = s->len - in;
        uint64_t pvoff;
        struct gdev *pv;
        if (s->n == 1) {
            pv = s->st[0].pv;
            pvoff = s->st[0].pv_off + in;
        } else {
            uint64_t ck = in / s->stripe_size, within = in % s->stripe_size;
            pv = s->st[ck % s->n].pv;
            pvoff = s->st[ck % s->n].pv_off + (ck / s->n) * s->stripe_size +
                    within;
            if (chunk > s->stripe_size - within)
                chunk = s->stripe_size - within;
        }
        if (chunk > len)
            chunk = len;
        int r = wbuf ? gdev_pwrite(pv, wbuf, pvoff, (size_t)chunk, errp)
                     : gdev_pread(pv, rbuf, pvoff, (size_t)chunk, errp);
        if (r < 0)
            return -1;
        if (wbuf)
            wbuf += chunk;
        else
            rbuf += chunk;
        off += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

int lv_map_read(struct lv_map *m, void *buf, uint64_t off, size_t len,
                vf_error **errp)
{
    return lv_map_io(m, buf, NULL, off, len, errp);
}

int lv_map_write(struct lv_map *m, const void *buf, uint64_t off,
                 size_t len, vf_error **errp)
{
    return lv_map_io(m, NULL, buf, off, len, errp);
}

/* ---- PV label and metadata area ---- */

struct pvinfo {
    struct gdev *dev;
    char uuid[40];             /* 32 chars, no dashes */
    uint64_t mda_off, mda_size;
};

static void undash(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (; *in && o + 1 < len; in++)
        if (*in != '-')
            out[o++] = *in;
    out[o] = 0;
}

static bool pv_label(struct gdev *d, struct pvinfo *pv)
{
    uint8_t s[2048];
    vf_error *err = NULL;
    if (d->size < 8192 || gdev_pread(d, s, 0, sizeof(s), &err) < 0) {
        error_free(err);
        return false;
    }
    for (int k = 0; k < 4; k++) {
        const uint8_t *l = s + 512 * k;
        if (memcmp(l, "LABELONE", 8) || memcmp(l + 24, "LVM2 001", 8))
            continue;
        uint32_t ph = gle32(l + 20);
        if (ph < 32 || ph > 512 - 32 - 8)
            return false;
        const uint8_t *h = l + ph;
        memcpy(pv->uuid, h, 32);
        pv->uuid[32] = 0;
        /* disk areas: data list then metadata list, each 16-byte pairs
         * ended by a zero pair, inside this sector */
        const uint8_t *a = h + 40, *end = l + 512;
        int list = 0;
        while (a + 16 <= end && list < 2) {
            uint64_t off = gle64(a), size = gle64(a + 8);
            a += 16;
            if (!off && !size) {
                list++;
                continue;
            }
            if (list == 1 && !pv->mda_off) {
                pv->mda_off = off;
                pv->mda_size = size;
            }
        }
        pv->dev = d;
        return true;
    }
    return false;
}

/* The newest metadata text of pv (malloc'd, NUL-terminated). */
static char *pv_metadata(struct pvinfo *pv, size_t *len, vf_error **errp)
{
    uint8_t h[MDA_HEADER_SIZE];
    struct gdev *d = pv->dev;
    if (!pv->mda_off || pv->mda_size <= MDA_HEADER_SIZE ||
        pv->mda_off > d->size || pv->mda_size > d->size - pv->mda_off) {
        error_setg(errp, "%s: LVM metadata area (0x%" PRIx64 ", %" PRIu64
                   " bytes) invalid", d->name, pv->mda_off, pv->mda_size);
        return NULL;
    }
    if (gdev_pread(d, h, pv->mda_off, sizeof(h), errp) < 0)
        return NULL;
    if (memcmp(h + 4, MDA_MAGIC, 16)) {
        error_setg(errp, "%s: LVM metadata area magic missing", d->name);
        return NULL;
    }
    uint64_t off = gle64(h + 40), size = gle64(h + 48);
    if (size == 0) {
        error_setg(errp, "%s: LVM metadata area holds no metadata", d->name);
        return NULL;
    }
    if (size > LVM_TEXT_MAX) {
        error_setg(errp, "%s: LVM metadata text size %" PRIu64 " too large "
                   "(limit %u)", d->name, size, LVM_TEXT_MAX);
        return NULL;
    }
    uint64_t area = pv->mda_size;
    if (off < MDA_HEADER_SIZE || off >= area || size > area - MDA_HEADER_SIZE) {
        error_setg(errp, "%s: LVM metadata text at 0x%" PRIx64 " (%" PRIu64
                   " bytes) outside its area", d->name, off, size);
        return NULL;
    }
    char *t = malloc((size_t)size + 1);
    if (!t) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    uint64_t first = size <= area - off ? size : area - off;
    if (gdev_pread(d, t, pv->mda_off + off, (size_t)first, errp) < 0 ||
        (first < size &&
         gdev_pread(d, t + first, pv->mda_off + MDA_HEADER_SIZE,
                    (size_t)(size - first), errp) < 0)) {
        free(t);
        return NULL;
    }
    t[size] = 0;
    *len = strnlen(t, (size_t)size);
    return t;
}

int lvm_parse_text(const char *text, size_t len, struct json_object **out,
                   vf_error **errp)
{
    struct lparse ps = { .p = text, .end = text + len };
    struct lnode *root = parse_members(&ps, 0);
    if (!root) {
        error_setg(errp, "%s", ps.err[0] ? ps.err : "LVM metadata empty");
        return -1;
    }
    if (out) {
        *out = json_object_new_object();
        jset_int(*out, "nodes", (int64_t)ps.nodes);
    }
    lnode_free(root);
    return 0;
}

/* Build the JSON and the LV gdevs of one VG section. */
static void vg_build(struct inspect *in, struct lnode *vg,
                     struct pvinfo *pvs, size_t npv, struct json_object *arr)
{
    struct json_object *vj = json_object_new_object();
    jset_str(vj, "vg", vg->name);
    jset_str(vj, "uuid", lstr(vg, "id"));
    int64_t es = 0;
    if (!lnum(vg, "extent_size", &es) || es <= 0 || es > (1 << 30)) {
        inspect_warn(in, "LVM VG %s: extent_size invalid", vg->name);
        jset_str(vj, "error", "extent_size invalid");
        json_object_array_add(arr, vj);
        return;
    }
    uint64_t ext = (uint64_t)es * 512;
    jset_int(vj, "extent-size", (int64_t)ext);
    struct {
        const char *name;
        struct gdev *dev;
        uint64_t pe_start, pe_count;
    } map[LVM_MAX_PVS];
    size_t nmap = 0;
    struct json_object *pj = json_object_new_array();
    struct lnode *pvsec = lget(vg, "physical_volumes");
    for (struct lnode *p = pvsec ? pvsec->child : NULL; p && nmap < LVM_MAX_PVS;
         p = p->next) {
        if (p->kind != LN_SECTION)
            continue;
        char u[48];
        undash(lstr(p, "id") ? lstr(p, "id") : "", u, sizeof(u));
        int64_t ps = 0, pc = 0;
        lnum(p, "pe_start", &ps);
        lnum(p, "pe_count", &pc);
        map[nmap].name = p->name;
        map[nmap].dev = NULL;
        map[nmap].pe_start = (uint64_t)ps * 512;
        map[nmap].pe_count = (uint64_t)pc;
        for (size_t i = 0; i < npv; i++)
            if (!strcmp(pvs[i].uuid, u))
                map[nmap].dev = pvs[i].dev;
        struct json_object *o = json_object_new_object();
        jset_str(o, "name", p->name);
        jset_str(o, "uuid", lstr(p, "id"));
        jset_str(o, "device", map[nmap].dev ? map[nmap].dev->name : NULL);
        jset_int(o, "pe-start", (int64_t)map[nmap].pe_start);
        jset_int(o, "pe-count", pc);
        json_object_array_add(pj, o);
        nmap++;
    }
    json_object_object_add(vj, "pvs", pj);
    struct json_object *lj = json_object_new_array();
    struct lnode *lvsec = lget(vg, "logical_volumes");
    for (struct lnode *lv = lvsec ? lvsec->child : NULL; lv; lv = lv->next) {
        if (lv->kind != LN_SECTION)
            continue;
        struct json_object *o = json_object_new_object();
        char dname[GDEV_NAME_MAX];
        snprintf(dname, sizeof(dname), "/dev/%s/%s", vg->name, lv->name);
        jset_str(o, "name", lv->name);
        jset_str(o, "device", dname);
        jset_str(o, "uuid", lstr(lv, "id"));
        struct json_object *sj = json_object_new_array();
        json_object_object_add(o, "segments", sj);
        json_object_array_add(lj, o);
        struct lv_map *m = calloc(1, sizeof(*m));
        const char *bad = NULL;
        char why[160] = "";
        uint64_t total = 0;
        size_t nseg = 0;
        for (struct lnode *s = lv->child; s; s = s->next)
            if (s->kind == LN_SECTION && !strncmp(s->name, "segment", 7))
                nseg++;
        if (nseg > LVM_MAX_SEGS)
            bad = "too many segments";
        if (m && !bad)
            m->segs = calloc(nseg ? nseg : 1, sizeof(*m->segs));
        if (!m || (!bad && !m->segs))
            bad = "out of memory";
        for (struct lnode *s = lv->child; s && !bad; s = s->next) {
            if (s->kind != LN_SECTION || strncmp(s->name, "segment", 7))
                continue;
            const char *type = lstr(s, "type");
            int64_t se = 0, ec = 0, sc = 1, ss = 0;
            lnum(s, "start_extent", &se);
            lnum(s, "extent_count", &ec);
            lnum(s, "stripe_count", &sc);
            lnum(s, "stripe_size", &ss);
            struct json_object *sg = json_object_new_object();
            jset_str(sg, "type", type);
            jset_int(sg, "start-extent", se);
            jset_int(sg, "extent-count", ec);
            json_object_array_add(sj, sg);
            if (!type || strcmp(type, "striped")) {
                snprintf(why, sizeof(why), "segment type %s not supported",
                         type ? type : "(none)");
                bad = why;
                break;
            }
            jset_int(sg, "stripes", sc);
            if (sc > 1)
                jset_int(sg, "stripe-size", ss * 512);
            struct lnode *st = lget(s, "stripes");
            if (sc < 1 || sc > LVM_MAX_STRIPES || !st || st->kind != LN_LIST ||
                ec <= 0 || (uint64_t)ec > UINT64_MAX / ext / 2 ||
                (sc > 1 && (ss <= 0 || ss > (1 << 22))) || ec % sc) {
                bad = "segment geometry invalid";
                break;
            }
            struct lv_seg *g = &m->segs[m->nsegs];
            g->start = (uint64_t)se * ext;
            g->len = (uint64_t)ec * ext;
            g->n = (uint32_t)sc;
            g->stripe_size = (uint64_t)ss * 512;
            g->st = calloc((size_t)sc, sizeof(*g->st));
            if (!g->st) {
                bad = "out of memory";
                break;
            }
            m->nsegs++;
            struct lnode *it = st->child;
            uint64_t per = (uint64_t)ec / (uint64_t)sc;   /* extents per stripe */
            for (int64_t k = 0; k < sc && !bad; k++) {
                if (!it || it->kind != LN_STRING || !it->next ||
                    it->next->kind != LN_NUMBER || it->next->num < 0) {
                    bad = "stripe list invalid";
                    break;
                }
                const char *pvn = it->str;
                uint64_t pe = (uint64_t)it->next->num;
                it = it->next->next;
                size_t pi;
                for (pi = 0; pi < nmap; pi++)
                    if (!strcmp(map[pi].name, pvn))
                        break;
                if (pi == nmap || !map[pi].dev) {
                    snprintf(why, sizeof(why), "PV %s missing", pvn);
                    bad = why;
                    break;
                }
                if (pe > map[pi].pe_count || per > map[pi].pe_count - pe) {
                    snprintf(why, sizeof(why), "segment beyond the PV %s "
                             "(extents %" PRIu64 "+%" PRIu64 " of %" PRIu64 ")",
                             pvn, pe, per, map[pi].pe_count);
                    bad = why;
                    break;
                }
                uint64_t po = map[pi].pe_start + pe * ext;
                if (po < map[pi].pe_start || po > map[pi].dev->size ||
                    per * ext > map[pi].dev->size - po) {
                    snprintf(why, sizeof(why), "segment beyond the end of %s",
                             map[pi].dev->name);
                    bad = why;
                    break;
                }
                g->st[k].pv = map[pi].dev;
                g->st[k].pv_off = po;
            }
            if (g->start + g->len > total)
                total = g->start + g->len;
        }
        jset_int(o, "size", (int64_t)total);
        if (bad) {
            jset_bool(o, "readable", false);
            jset_str(o, "error", bad);
            inspect_warn(in, "LVM LV %s: %s", dname, bad);
            lv_map_free(m);
            continue;
        }
        jset_bool(o, "readable", true);
        struct gdev *d = calloc(1, sizeof(*d));
        if (!d) {
            lv_map_free(m);
            continue;
        }
        snprintf(d->name, sizeof(d->name), "%s", dname);
        d->size = total;
        d->lv = m;
        d->disk = -1;
        char vu[48], lu[48];
        undash(lstr(vg, "id") ? lstr(vg, "id") : "", vu, sizeof(vu));
        undash(lstr(lv, "id") ? lstr(lv, "id") : "", lu, sizeof(lu));
        if (snprintf(d->dmuuid, sizeof(d->dmuuid), "LVM-%s%s", vu, lu) >=
            (int)sizeof(d->dmuuid))
            d->dmuuid[0] = 0;
        inspect_add_dev(in, d);
    }
    json_object_object_add(vj, "lvs", lj);
    json_object_array_add(arr, vj);
}

struct json_object *lvm_scan(struct inspect *in)
{
    struct json_object *arr = json_object_new_array();
    struct pvinfo pvs[LVM_MAX_PVS];
    size_t npv = 0;
    size_t ndev = in->ndevs;
    for (size_t i = 0; i < ndev && npv < LVM_MAX_PVS; i++) {
        struct gdev *d = in->devs[i];
        if (strcmp(d->fstype, "LVM2_member"))
            continue;
        memset(&pvs[npv], 0, sizeof(pvs[npv]));
        if (pv_label(d, &pvs[npv]))
            npv++;
    }
    /* Each VG once: the metadata of the first PV that has it. */
    char *seen[LVM_MAX_PVS];
    size_t nseen = 0;
    for (size_t i = 0; i < npv; i++) {
        vf_error *err = NULL;
        size_t len = 0;
        char *text = pv_metadata(&pvs[i], &len, &err);
        if (!text) {
            inspect_warn(in, "%s", error_msg(err));
            error_free(err);
            continue;
        }
        struct lparse ps = { .p = text, .end = text + len };
        struct lnode *root = parse_members(&ps, 0);
        if (!root) {
            inspect_warn(in, "%s: %s", pvs[i].dev->name, ps.err);
            free(text);
            continue;
        }
        for (struct lnode *vg = root; vg; vg = vg->next) {
            if (vg->kind != LN_SECTION || !vg->name)
                continue;
            bool dup = false;
            for (size_t k = 0; k < nseen; k++)
                if (!strcmp(seen[k], vg->name))
                    dup = true;
            if (dup || nseen >= LVM_MAX_PVS)
                continue;
            seen[nseen++] = strdup(vg->name);
            if (!seen[nseen - 1])
                nseen--;
            vg_build(in, vg, pvs, npv, arr);
        }
        lnode_free(root);
        free(text);
    }
    for (size_t k = 0; k < nseen; k++)
        free(seen[k]);
    return arr;
}
