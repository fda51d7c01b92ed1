/*
 * fuzz-cpio: libFuzzer target for the initramfs scanner: concatenated
 * cpio newc archives, uncompressed or gzip / xz / lzma / zstd / lz4 /
 * bzip2 compressed.  Input: an initramfs image.  Scanned twice: as
 * inspect does, and with a visitor that captures every entry's data (as
 * prepare --add-drivers does), checking each capture is whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/error.h"
#include "guest/guest.h"
#include "guest/initramfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_src {
    const uint8_t *p;
    size_t len, pos;
};

static long fz_read(void *opaque, void *buf, size_t len, vf_error **errp)
{
    struct fz_src *s = opaque;
    size_t n = s->len - s->pos < len ? s->len - s->pos : len;
    memcpy(buf, s->p + s->pos, n);
    s->pos += n;
    return (long)n;
}

struct fz_vis {
    size_t asked;
    uint64_t bytes;
};

static size_t fz_entry(void *opaque, int seg, const char *name, uint32_t mode,
                       uint32_t size)
{
    struct fz_vis *v = opaque;
    /* a bounded capture, like the real visitor's */
    v->asked = size < 65536 ? size : 65536;
    return v->asked;
}

static void fz_data(void *opaque, const char *name, const uint8_t *d,
                    size_t len)
{
    struct fz_vis *v = opaque;
    if (len != v->asked)
        abort();   /* a capture handed over short */
    for (size_t i = 0; i < len; i++)
        v->bytes += d[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_object *o = json_object_new_object();
    vf_error *err = NULL;
    if (initramfs_scan_buf(data, size, o, &err) < 0)
        error_free(err);
    json_object_put(o);
    err = NULL;
    struct fz_src s = { data, size, 0 };
    struct fz_vis fv = { 0 };
    struct initrd_visitor vis = { fz_entry, fz_data, &fv };
    struct initrd_result r;
    memset(&r, 0, sizeof(r));
    r.visit = &vis;
    if (initrd_scan(fz_read, &s, &r, &err) < 0)
        error_free(err);
    return 0;
}
