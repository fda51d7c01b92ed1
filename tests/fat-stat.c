/*
 * fat-stat: look paths up on a FAT filesystem with vmferry's reader
 * (src/guest/fat.c), so tests can hold it against what mtools wrote.
 *
 *   fat-stat IMAGE[@@OFFSET] PATH...
 *
 * IMAGE is opened read-only as a raw image; the filesystem starts at
 * byte OFFSET (default 0) and runs to the image's end.  One line per
 * PATH, with the path after a tab:
 *   file SIZE    a file of SIZE bytes
 *   dir          a directory
 *   absent       not there
 *   error: MSG   the volume could not be read
 * Exit 0 when every line was printed, 1 on bad usage or an unopenable
 * image.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/format.h"
#include "guest/guest.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fat-stat IMAGE[@@OFFSET] PATH...\n");
        return 1;
    }
    char *img = strdup(argv[1]);
    uint64_t off = 0;
    char *at = img ? strstr(img, "@@") : NULL;
    if (at) {
        *at = 0;
        off = strtoull(at + 2, NULL, 0);
    }
    struct blk_open_opts oo;
    memset(&oo, 0, sizeof(oo));
    oo.format = "raw";
    vf_error *err = NULL;
    struct blk *b = img ? blk_open(img, true, &oo, &err) : NULL;
    if (!b) {
        fprintf(stderr, "fat-stat: %s: %s\n", argv[1],
                err ? error_msg(err) : "out of memory");
        error_free(err);
        free(img);
        return 1;
    }
    if (off > b->size) {
        fprintf(stderr, "fat-stat: offset %" PRIu64 " beyond the image\n",
                off);
        blk_close(b);
        free(img);
        return 1;
    }
    struct gdev d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "%s", "/dev/sda");
    d.blk = b;
    d.base = off;
    d.size = b->size - off;
    d.disk = 0;
    for (int i = 2; i < argc; i++) {
        bool dir = false;
        uint64_t size = 0;
        int r = fat_stat(&d, argv[i], &dir, &size, &err);
        if (r < 0) {
            printf("error: %s\t%s\n", error_msg(err), argv[i]);
            error_free(err);
            err = NULL;
        } else if (r == 0) {
            printf("absent\t%s\n", argv[i]);
        } else if (dir) {
            printf("dir\t%s\n", argv[i]);
        } else {
            printf("file %" PRIu64 "\t%s\n", size, argv[i]);
        }
    }
    blk_close(b);
    free(img);
    return 0;
}
