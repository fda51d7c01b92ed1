/*
 * tar-mk: write test archives with vmferry's tar header code, for GNU tar
 * to read back (tests/t-tar.sh).
 *
 *   tar-mk ustar OUT        three members: a short name, a 150-byte name
 *                           (pax path), an empty file
 *   tar-mk sparse OUT N     one oldgnu sparse member "disk.raw" of
 *                           20 GiB + 512 with N 4 KiB runs of data, run i
 *                           at i * 300 MiB holding the byte 'a' + i % 26
 *   tar-mk big OUT          one member "big.vmdk" of 9 GiB (a pax size
 *                           record), its data a hole in OUT
 *   tar-mk sized OUT        headers filled into reserved space
 *                           (tar_member_header_sized): "small.vmdk" (10
 *                           bytes) in 3 blocks, a 150-byte name in one
 *                           block more than it needs, "exact.ovf" in
 *                           just its block; and the refusals
 *   tar-mk parse FILE       list FILE's members with tar_parse:
 *                           "TYPE SIZE NAME" per line
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets/tar.h"

static FILE *out;

static void die(const char *m, vf_error *e)
{
    fprintf(stderr, "tar-mk: %s: %s\n", m, e ? error_msg(e) : "failed");
    exit(1);
}

static void put(const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, out) != n)
        die("write", NULL);
}

static void zeros(size_t n)
{
    static const unsigned char z[TAR_BLOCK * 2];
    while (n) {
        size_t k = n < sizeof(z) ? n : sizeof(z);
        put(z, k);
        n -= k;
    }
}

static void member(const char *name, const char *data)
{
    vf_error *e = NULL;
    uint8_t *h;
    size_t hl, n = strlen(data);
    if (tar_member_header(name, n, 0644, 1700000000, &h, &hl, &e) < 0)
        die(name, e);
    put(h, hl);
    put(data, n);
    zeros(tar_padding(n));
    free(h);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    if (!strcmp(argv[1], "parse")) {
        FILE *f = fopen(argv[2], "rb");
        if (!f)
            die(argv[2], NULL);
        static uint8_t buf[256 * 1024];
        size_t len = fread(buf, 1, sizeof(buf), f);
        size_t pos = 0;
        for (;;) {
            struct tar_entry te;
            size_t need;
            vf_error *e = NULL;
            int64_t r = tar_parse(buf + pos, len - pos, &te, &need, &e);
            if (r < 0)
                die("parse", e);
            if (r == 0)
                break;
            printf("%c %llu %s\n", te.type, (unsigned long long)te.size,
                   te.name);
            pos += (size_t)r + te.size + tar_padding(te.size);
            if (pos > len)
                die("member past the buffer", NULL);
        }
        fclose(f);
        return 0;
    }
    out = fopen(argv[2], "wb");
    if (!out)
        die(argv[2], NULL);
    if (!strcmp(argv[1], "ustar")) {
        char longname[151];
        memset(longname, 'n', 150);
        longname[150] = 0;
        memcpy(longname + 40, "/dir/", 5);
        member("hello.ovf", "<hello/>\n");
        member(longname, "long name content\n");
        member("empty", "");
    } else if (!strcmp(argv[1], "sparse") && argc == 4) {
        size_t n = (size_t)atoi(argv[3]);
        struct tar_sparse *map = calloc(n ? n : 1, sizeof(*map));
        for (size_t i = 0; i < n; i++) {
            map[i].off = (uint64_t)i * (300 << 20);
            map[i].len = 4096;
        }
        uint64_t real = (20ULL << 30) + 512;
        vf_error *e = NULL;
        uint8_t *h;
        size_t hl;
        if (tar_oldgnu_sparse_header("disk.raw", real, map, n, 0644,
                                     1700000000, &h, &hl, &e) < 0)
            die("sparse", e);
        put(h, hl);
        char blk[4096];
        for (size_t i = 0; i < n; i++) {
            memset(blk, 'a' + (int)(i % 26), sizeof(blk));
            put(blk, sizeof(blk));
        }
        free(h);
        free(map);
    } else if (!strcmp(argv[1], "sized")) {
        char longname[151];
        memset(longname, 'm', 150);
        longname[150] = 0;
        struct { const char *name, *data; size_t len; } m[] = {
            { "small.vmdk", "0123456789", 3 * TAR_BLOCK },
            { longname, "long\n", 4 * TAR_BLOCK },
            { "exact.ovf", "<x/>\n", TAR_BLOCK },
        };
        for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
            vf_error *e = NULL;
            uint8_t *h;
            size_t n = strlen(m[i].data);
            if (tar_member_header_sized(m[i].name, n, 0644, 1700000000,
                                        m[i].len, &h, &e) < 0)
                die(m[i].name, e);
            put(h, m[i].len);
            put(m[i].data, n);
            zeros(tar_padding(n));
            free(h);
        }
        /* refused: shorter than needed; one block more than a plain
         * ustar header; not a block multiple */
        uint8_t *h = NULL;
        if (tar_member_header_sized("big.vmdk", 9ULL << 30, 0644, 0,
                                    TAR_BLOCK, &h, NULL) == 0 ||
            tar_member_header_sized("a.vmdk", 1, 0644, 0, 2 * TAR_BLOCK,
                                    &h, NULL) == 0 ||
            tar_member_header_sized("a.vmdk", 1, 0644, 0, 1000, &h,
                                    NULL) == 0)
            die("a bad header length was accepted", NULL);
    } else if (!strcmp(argv[1], "big")) {
        vf_error *e = NULL;
        uint8_t *h;
        size_t hl;
        uint64_t sz = 9ULL << 30;
        if (tar_member_header("big.vmdk", sz, 0644, 1700000000, &h, &hl,
                              &e) < 0)
            die("big", e);
        put(h, hl);
        free(h);
        if (fseeko(out, (off_t)sz, SEEK_CUR) != 0)
            die("seek", NULL);
    } else {
        return 2;
    }
    zeros(TAR_EOF_LEN);
    if (fclose(out) != 0)
        die("close", NULL);
    return 0;
}
