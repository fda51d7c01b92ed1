/*
 * fsimage-write.c: write an ISO 9660 or FAT image of host files through
 * targets/fsimage.h, so that tests can hand the writers names and sizes
 * config drives never have and check them with other tools.
 *
 *   fsimage-write iso|vfat LABEL OUT PATH HOSTFILE [PATH HOSTFILE]...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "targets/fsimage.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    struct fsimg_file files[FSIMG_MAX_FILES];
    char *bufs[FSIMG_MAX_FILES] = { 0 };
    size_t n = 0;
    if (argc < 4 || (strcmp(argv[1], "iso") && strcmp(argv[1], "vfat")) ||
        (argc - 4) % 2 || (argc - 4) / 2 > FSIMG_MAX_FILES) {
        fprintf(stderr, "usage: fsimage-write iso|vfat LABEL OUT "
                        "PATH HOSTFILE [PATH HOSTFILE]...\n");
        return 2;
    }
    for (int i = 4; i < argc; i += 2, n++) {
        bufs[n] = slurp(argv[i + 1], &files[n].len);
        if (!bufs[n]) {
            fprintf(stderr, "fsimage-write: cannot read %s\n", argv[i + 1]);
            return 1;
        }
        files[n].path = argv[i];
        files[n].data = bufs[n];
    }
    vf_error *err = NULL;
    struct io *io = io_file_create(argv[3], &err);
    int r = -1;
    if (io)
        r = !strcmp(argv[1], "iso")
                ? iso9660_write(io, argv[2], files, n, &err)
                : vfat_write(io, argv[2], files, n, &err);
    io_close(io);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    if (r < 0) {
        fprintf(stderr, "fsimage-write: %s\n", error_msg(err));
        error_free(err);
        return 1;
    }
    return 0;
}
