/*
 * cpio-write.c: an uncompressed cpio "newc" archive in memory, the kind
 * the kernel unpacks into its rootfs (Documentation/driver-api/
 * early-userspace/buffer-format.rst): per entry a 110-byte header of
 * "070701" and 13 fields of 8 upper-case hex digits (ino, mode, uid,
 * gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
 * namesize including its NUL, check = 0), the name NUL-terminated and
 * padded with NULs so that header + name is a multiple of 4, then the
 * data padded to 4; "TRAILER!!!" ends the archive.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prepare/initrd-build.h"

#define CPIO_HDR 110
/* The kernel's unpacker takes names up to PATH_MAX. */
#define CPIO_NAME_MAX 4095
#define CPIOW_DEFAULT_MAX (1u << 30)

static int cpiow_reserve(struct cpiow *w, size_t more, vf_error **errp)
{
    size_t max = w->max ? w->max : CPIOW_DEFAULT_MAX;
    if (more > max || w->len > max - more) {
        error_setg(errp, "the cpio archive would exceed %zu bytes", max);
        return -1;
    }
    if (w->len + more <= w->cap)
        return 0;
    size_t nc = w->cap ? w->cap : 4096;
    while (nc < w->len + more)
        nc = nc > max / 2 ? max : nc * 2;
    uint8_t *nb = realloc(w->buf, nc);
    if (!nb) {
        error_setg(errp, "out of memory for a %zu-byte cpio archive", nc);
        return -1;
    }
    w->buf = nb;
    w->cap = nc;
    return 0;
}

static void put_hex8(uint8_t *p, uint32_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)hex[v & 15];
        v >>= 4;
    }
}

static size_t pad4(size_t v)
{
    return (4 - (v & 3)) & 3;
}

static int cpiow_put(struct cpiow *w, const char *name, uint32_t ino,
                     uint32_t mode, uint32_t nlink, const void *data,
                     size_t len, vf_error **errp)
{
    size_t nl = strlen(name) + 1;
    if (nl - 1 == 0 || nl - 1 > CPIO_NAME_MAX) {
        error_setg(errp, "cpio name '%.64s' empty or longer than %d bytes",
                   name, CPIO_NAME_MAX);
        return -1;
    }
    if (len > UINT32_MAX) {
        error_setg(errp, "%s: %zu bytes do not fit a cpio newc entry", name,
                   len);
        return -1;
    }
    size_t npad = pad4(CPIO_HDR + nl), dpad = pad4(len);
    size_t total = CPIO_HDR + nl + npad;
    if (len > SIZE_MAX - total - dpad) {
        error_setg(errp, "%s: entry too large", name);
        return -1;
    }
    total += len + dpad;
    if (cpiow_reserve(w, total, errp) < 0)
        return -1;
    uint8_t *p = w->buf + w->len;
    memcpy(p, "070701", 6);
    const uint32_t f[13] = {
        ino, mode, 0, 0, nlink, w->mtime, (uint32_t)len,
        0, 0, 0, 0, (uint32_t)nl, 0,
    };
    for (int i = 0; i < 13; i++)
        put_hex8(p + 6 + 8 * i, f[i]);
    p += CPIO_HDR;
    memcpy(p, name, nl);
    p += nl;
    memset(p, 0, npad);
    p += npad;
    if (len)
        memcpy(p, data, len);
    p += len;
    memset(p, 0, dpad);
    w->len += total;
    return 0;
}

int cpiow_add(struct cpiow *w, const char *name, uint32_t mode,
              const void *data, size_t len, vf_error **errp)
{
    if (w->finished) {
        error_setg(errp, "cpio archive already finished");
        return -1;
    }
    if (name[0] == '/' || !strcmp(name, "TRAILER!!!")) {
        error_setg(errp, "cpio name '%.64s' not allowed", name);
        return -1;
    }
    uint32_t type = mode & 0170000;
    if (type != 0040000 && type != 0100000 && type != 0120000) {
        error_setg(errp, "%s: cpio mode 0%o is not a file, directory or "
                   "symlink", name, mode);
        return -1;
    }
    if (type == 0040000 && len) {
        error_setg(errp, "%s: a directory has no data", name);
        return -1;
    }
    if (w->ino == 0)
        w->ino = 1;
    if (cpiow_put(w, name, w->ino, mode, type == 0040000 ? 2 : 1, data, len,
                  errp) < 0)
        return -1;
    w->ino++;
    return 0;
}

int cpiow_finish(struct cpiow *w, vf_error **errp)
{
    if (w->finished)
        return 0;
    /* as GNU cpio writes it: all zero but nlink and namesize */
    uint32_t mtime = w->mtime;
    w->mtime = 0;
    int r = cpiow_put(w, "TRAILER!!!", 0, 0, 1, NULL, 0, errp);
    w->mtime = mtime;
    if (r < 0)
        return -1;
    w->finished = 1;
    return 0;
}

void cpiow_free(struct cpiow *w)
{
    if (!w)
        return;
    free(w->buf);
    memset(w, 0, sizeof(*w));
}
