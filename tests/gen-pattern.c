/*
 * gen-pattern: write a raw test image with a known, self-describing content.
 *
 *   gen-pattern [--seed N] [--zeros-as-holes|--zeros-written] [--map]
 *               SIZE OUT [SPEC]
 *
 * The image is SIZE bytes.  In data runs every 8-byte word holds its own
 * byte offset (little-endian uint64), so any misplaced byte is visible.
 * Between data runs are holes (never written: the file is ftruncate'd) and
 * runs of written zeros.  --zeros-as-holes leaves the zero runs unwritten
 * too (data and holes only); --zeros-written writes zeros over the holes
 * as well (a fully allocated file).
 *
 * Without SPEC the layout comes from a small PRNG seeded by --seed
 * (default 1): the same seed and size always give the same file.  Run
 * lengths vary from 512 bytes to a few percent of SIZE; runs start and end
 * on 512-byte, odd 4 KiB and 64 KiB boundaries, not only on clusters.
 *
 * SPEC lays out runs explicitly, from offset 0: a comma-separated list of
 * KIND LENGTH items, KIND one of d (data), z (written zeros), h (hole),
 * LENGTH in bytes with an optional k/m/g suffix (binary units), e.g.
 * "h1m,d4k,z512,d60k".  What the list does not cover stays a hole.
 *
 * --map prints the layout on stdout, one "data|zero|hole OFFSET LENGTH"
 * line per run (adjacent runs of one kind merged).
 *
 * Needs only libc.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum run_kind { RUN_DATA, RUN_ZERO, RUN_HOLE };

static const char *const kind_names[] = { "data", "zero", "hole" };

#define BUF_SIZE (1u << 20)

static unsigned char *gp_buf;     /* BUF_SIZE bytes */
static int gp_fd = -1;
static const char *gp_out;
static bool gp_zeros_as_holes, gp_zeros_written, gp_print_map;

/* The pending --map line, so adjacent runs of one kind print as one. */
static int map_kind = -1;
static uint64_t map_off, map_len;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: gen-pattern [--seed N] [--zeros-as-holes|--zeros-written]"
        " [--map] SIZE OUT [SPEC]\n"
        "  SPEC: comma-separated d|z|h LENGTH[k|m|g], e.g. h1m,d4k,z512\n");
}

static void fail(const char *what)
{
    fprintf(stderr, "gen-pattern: %s: %s: %s\n", gp_out ? gp_out : "",
            what, strerror(errno));
    exit(1);
}

/* splitmix64: tiny, good enough for layouts, identical everywhere. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t n)
{
    return n ? rng_next() % n : 0;
}

/* Parse "123", "4k", "1m", "2g" (binary units).  false on junk. */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *s == '-')
        return false;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: return false;
    }
    if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

static void map_flush(void)
{
    if (gp_print_map && map_kind >= 0 && map_len)
        printf("%s %" PRIu64 " %" PRIu64 "\n", kind_names[map_kind],
               map_off, map_len);
    map_kind = -1;
    map_len = 0;
}

static void map_add(enum run_kind k, uint64_t off, uint64_t len)
{
    if (!len)
        return;
    if ((int)k == map_kind && map_off + map_len == off) {
        map_len += len;
        return;
    }
    map_flush();
    map_kind = (int)k;
    map_off = off;
    map_len = len;
}

/* Fill buf with the pattern of [off, off+len): byte i of the file is byte
 * (i % 8) of the little-endian encoding of (i rounded down to 8). */
static void fill_pattern(unsigned char *buf, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; ) {
        uint64_t pos = off + i;
        uint64_t word = pos & ~(uint64_t)7;
        unsigned b = (unsigned)(pos & 7);
        buf[i++] = (unsigned char)(word >> (8 * b));
        /* whole words at a time once aligned */
        while (i + 8 <= len && ((off + i) & 7) == 0) {
            uint64_t w = off + i;
            for (unsigned j = 0; j < 8; j++)
                buf[i + j] = (unsigned char)(w >> (8 * j));
            i += 8;
        }
    }
}

static void write_all(const unsigned char *buf, size_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(gp_fd, buf, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("write");
        }
        if (n == 0) {
            errno = EIO;
            fail("write");
        }
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
}

/* Lay down one run, honouring --zeros-as-holes / --zeros-written. */
static void emit(enum run_kind k, uint64_t off, uint64_t len)
{
    if (k == RUN_ZERO && gp_zeros_as_holes)
        k = RUN_HOLE;
    if (k == RUN_HOLE && gp_zeros_written)
        k = RUN_ZERO;
    map_add(k, off, len);
    if (k == RUN_HOLE)
        return;
    if (k == RUN_ZERO)
        memset(gp_buf, 0, BUF_SIZE);
    while (len) {
        size_t n = len < BUF_SIZE ? (size_t)len : BUF_SIZE;
        if (k == RUN_DATA)
            fill_pattern(gp_buf, off, n);
        write_all(gp_buf, n, off);
        off += n;
        len -= n;
    }
}

/* A run length for the random layout: mostly small and odd-aligned, some
 * cluster-sized, a few large (scaled to the image). */
static uint64_t random_len(uint64_t size)
{
    uint64_t big = size / 32;
    if (big < 65536)
        big = 65536;
    switch (rng_below(8)) {
    case 0: case 1:                 /* 512 .. 7.5 KiB, sector granular */
        return 512 * (1 + rng_below(15));
    case 2: case 3:                 /* odd 4 KiB multiples, maybe +512 */
        return 4096 * (1 + 2 * rng_below(16)) + 512 * rng_below(2);
    case 4: case 5:                 /* 64 KiB clusters */
        return 65536 * (1 + rng_below(8));
    case 6:                         /* a cluster and a bit */
        return 65536 * (1 + rng_below(4)) + 4096 * (1 + rng_below(15));
    default:                        /* large */
        return 512 * (1 + rng_below(big / 512));
    }
}

static void layout_random(uint64_t size)
{
    uint64_t off = 0;
    /* Start with a hole, a data run or zeros depending on the seed. */
    while (off < size) {
        uint64_t r = rng_below(100);
        enum run_kind k = r < 45 ? RUN_DATA : r < 80 ? RUN_HOLE : RUN_ZERO;
        uint64_t len = random_len(size);
        if (len > size - off)
            len = size - off;
        emit(k, off, len);
        off += len;
    }
}

static void layout_spec(uint64_t size, const char *spec)
{
    char *copy = strdup(spec);
    if (!copy)
        fail("strdup");
    uint64_t off = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        enum run_kind k;
        switch (tok[0]) {
        case 'd': k = RUN_DATA; break;
        case 'z': k = RUN_ZERO; break;
        case 'h': k = RUN_HOLE; break;
        default:
            fprintf(stderr, "gen-pattern: bad SPEC item '%s'\n", tok);
            exit(2);
        }
        uint64_t len;
        if (!parse_size(tok + 1, &len)) {
            fprintf(stderr, "gen-pattern: bad length in SPEC item '%s'\n",
                    tok);
            exit(2);
        }
        if (off >= size)
            break;
        if (len > size - off)
            len = size - off;
        emit(k, off, len);
        off += len;
    }
    if (off < size)
        emit(RUN_HOLE, off, size - off);
    free(copy);
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, size;
    int i = 1;

    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "--zeros-as-holes")) {
            gp_zeros_as_holes = true;
        } else if (!strcmp(a, "--zeros-written")) {
            gp_zeros_written = true;
        } else if (!strcmp(a, "--map")) {
            gp_print_map = true;
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            if (!parse_size(argv[++i], &seed)) {
                fprintf(stderr, "gen-pattern: bad seed '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strncmp(a, "--seed=", 7)) {
            if (!parse_size(a + 7, &seed)) {
                fprintf(stderr, "gen-pattern: bad seed '%s'\n", a + 7);
                return 2;
            }
        } else if (!strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (gp_zeros_as_holes && gp_zeros_written) {
        fprintf(stderr, "gen-pattern: --zeros-as-holes and --zeros-written"
                " exclude each other\n");
        return 2;
    }
    if (argc - i < 2 || argc - i > 3) {
        usage(stderr);
        return 2;
    }
    if (!parse_size(argv[i], &size) || size > (UINT64_MAX >> 1)) {
        fprintf(stderr, "gen-pattern: bad size '%s'\n", argv[i]);
        return 2;
    }
    gp_out = argv[i + 1];
    const char *spec = argc - i == 3 ? argv[i + 2] : NULL;

    rng_state = seed;
    gp_buf = malloc(BUF_SIZE);
    if (!gp_buf)
        fail("malloc");
    gp_fd = open(gp_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (gp_fd < 0)
        fail("open");
    if (ftruncate(gp_fd, (off_t)size) < 0)
        fail("truncate");

    if (spec)
        layout_spec(size, spec);
    else
        layout_random(size);
    map_flush();

    if (close(gp_fd) < 0)
        fail("close");
    free(gp_buf);
    if (fflush(stdout) != 0)
        fail("stdout");
    return 0;
}
