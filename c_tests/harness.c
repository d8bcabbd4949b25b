/*
 * C-side checks of cortex_q4, through the C ABI only (cortex_q4.h + libc).
 *
 * build.rs compiles this file into libcq4_c_harness.a; the Rust integration
 * tests link it and call the four cq4_harness_* functions below. Each returns
 * the number of failed checks (0 = all good) and prints one line to stderr
 * per failure, so a C consumer's view of the format (byte layout, statuses,
 * "a refused call writes nothing") is checked by a real C compiler.
 */
#include "cortex_q4.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cq4_harness_golden(const char *path, int *cases_run);
int cq4_harness_layout(void);
int cq4_harness_bad_input(void);
int cq4_harness_status(void);
int cq4_harness_options(void);
int cq4_harness_matmul(void);
int cq4_harness_q4_0(void);
int cq4_harness_encoders(void);
int cq4_harness_hessian(void);

/* Elements of canary placed after every output the library may write. */
#define CANARY_N 16
#define TOKEN_MAX 64
#define PTRDIFF_MAX_Z ((size_t)PTRDIFF_MAX)

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */
/* ---------------------------------------------------------------------- */

/* Running out of memory is not a library failure; stop loudly. */
static void *xrealloc(void *p, size_t bytes)
{
    p = realloc(p, bytes ? bytes : 1);
    if (!p) {
        fputs("cq4 harness: out of memory\n", stderr);
        abort();
    }
    return p;
}

/* Element i of a buffer of es-byte elements (1, 2 or 4), as bits. memcpy
 * keeps float bit patterns (NaN payloads, -0.0) away from FP registers. */
static uint32_t load(const void *p, size_t es, size_t i)
{
    const unsigned char *q = (const unsigned char *)p + i * es;
    uint8_t b;
    uint16_t h;
    uint32_t w;
    switch (es) {
    case 1: memcpy(&b, q, 1); return b;
    case 2: memcpy(&h, q, 2); return h;
    default: memcpy(&w, q, 4); return w;
    }
}

static void store(void *p, size_t es, size_t i, uint32_t v)
{
    unsigned char *q = (unsigned char *)p + i * es;
    uint8_t b = (uint8_t)v;
    uint16_t h = (uint16_t)v;
    switch (es) {
    case 1: memcpy(q, &b, 1); break;
    case 2: memcpy(q, &h, 2); break;
    default: memcpy(q, &v, 4); break;
    }
}

/* Canary: 0xA5 bytes, and patterns no correct result lands on by chance
 * for the 16-bit and f32 buffers. */
static uint32_t canary_value(size_t es)
{
    return es == 1 ? 0xA5u : es == 2 ? 0xBEEFu : 0xDEADBEEFu;
}

static void canary_fill(void *buf, size_t es, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        store(buf, es, i, canary_value(es));
}

static int canary_intact(const void *buf, size_t es, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (load(buf, es, i) != canary_value(es))
            return 0;
    return 1;
}

/* Parses exactly `digits` lowercase hex digits (the golden format). */
static int parse_hex(const char *tok, size_t digits, uint32_t *out)
{
    uint32_t v = 0;
    size_t i;
    if (strlen(tok) != digits)
        return 0;
    for (i = 0; i < digits; i++) {
        char c = tok[i];
        if (c >= '0' && c <= '9')
            v = v << 4 | (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v << 4 | (uint32_t)(c - 'a' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* NaN test for f32 (es 4) and bf16 (es 2) bit patterns. */
static int is_nan(uint32_t bits, size_t es)
{
    if (es == 4)
        return (bits & 0x7FFFFFFFu) > 0x7F800000u;
    if (es == 2)
        return (bits & 0x7FFFu) > 0x7F80u;
    return 0;
}

static int check_status(const char *ctx, cq4_status got, cq4_status want)
{
    if (got == want)
        return 0;
    fprintf(stderr, "%s: status %d (%s), want %d (%s)\n", ctx, (int)got,
            cq4_status_message((int)got), (int)want, cq4_status_message((int)want));
    return 1;
}

/* Compares n elements bit for bit; with nan_eq two NaNs (any payload) of
 * the element's float type count as equal. One line per differing buffer. */
static int check_equal(const char *ctx, const char *what, const void *got,
                       const void *want, size_t es, size_t n, int nan_eq)
{
    size_t i, bad = 0, first = 0;
    for (i = 0; i < n; i++) {
        uint32_t g = load(got, es, i), w = load(want, es, i);
        if (g == w || (nan_eq && is_nan(g, es) && is_nan(w, es)))
            continue;
        if (bad++ == 0)
            first = i;
    }
    if (!bad)
        return 0;
    fprintf(stderr, "%s: %s: %zu of %zu elements differ, first [%zu] = %0*lx, want %0*lx\n",
            ctx, what, bad, n, first, (int)(2 * es), (unsigned long)load(got, es, first),
            (int)(2 * es), (unsigned long)load(want, es, first));
    return 1;
}

/* ---------------------------------------------------------------------- */
/* The six pack/unpack functions behind one signature                     */
/* ---------------------------------------------------------------------- */

/* Every pack/unpack takes three buffers (pack: src, packed, scales;
 * unpack: packed, scales, dst) with their lengths, so one table drives the
 * golden and bad-input checks for all six. */
typedef cq4_status (*api_call)(void *const b[3], const size_t n[3], size_t rows,
                               size_t cols, size_t g);

static cq4_status call_pack_f32(void *const b[3], const size_t n[3], size_t r, size_t c, size_t g)
{ return cq4_pack_f32(b[0], n[0], r, c, g, b[1], n[1], b[2], n[2]); }
static cq4_status call_pack_f16(void *const b[3], const size_t n[3], size_t r, size_t c, size_t g)
{ return cq4_pack_f16(b[0], n[0], r, c, g, b[1], n[1], b[2], n[2]); }
static cq4_status call_pack_bf16(void *const b[3], const size_t n[3], size_t r, size_t c, size_t g)
{ return cq4_pack_bf16(b[0], n[0], r, c, g, b[1], n[1], b[2], n[2]); }
static cq4_status call_unpack_f32(void *const b[3], const size_t n[3], size_t r, size_t c, size_t g)
{ return cq4_unpack_f32(b[0], n[0], b[1], n[1], r, c, g, b[2], n[2]); }
static cq4_status call_unpack_f16(void *const b[3], const size_t n[3], size_t r, size_t c, size_t g)
{ return cq4_unpack_f16(b[0], n[0], b[1], n[1], r, c, g, b[2], n[2]); }
static cq4_status call_unpack_bf16(void *const b[3], const size_t n[3], size_t r, size_t c, size_t g)
{ return cq4_unpack_bf16(b[0], n[0], b[1], n[1], r, c, g, b[2], n[2]); }

/* Which layout length a buffer must hold. */
enum { LEN_ELEMENTS, LEN_PACKED, LEN_SCALES };

struct api_fn {
    const char *name;
    api_call call;
    const char *slot[3];
    size_t es[3];     /* element size of each buffer */
    int is_out[3];
    int len_kind[3];
};

#define PACK_SLOTS(src_es) {"src", "packed", "scales"}, {src_es, 1, sizeof(float)}, \
    {0, 1, 1}, {LEN_ELEMENTS, LEN_PACKED, LEN_SCALES}
#define UNPACK_SLOTS(dst_es) {"packed", "scales", "dst"}, {1, sizeof(float), dst_es}, \
    {0, 0, 1}, {LEN_PACKED, LEN_SCALES, LEN_ELEMENTS}

enum { PACK_F32, PACK_F16, PACK_BF16, UNPACK_F32, UNPACK_F16, UNPACK_BF16, N_API };

static const struct api_fn API[N_API] = {
    {"cq4_pack_f32", call_pack_f32, PACK_SLOTS(sizeof(float))},
    {"cq4_pack_f16", call_pack_f16, PACK_SLOTS(sizeof(uint16_t))},
    {"cq4_pack_bf16", call_pack_bf16, PACK_SLOTS(sizeof(uint16_t))},
    {"cq4_unpack_f32", call_unpack_f32, UNPACK_SLOTS(sizeof(float))},
    {"cq4_unpack_f16", call_unpack_f16, UNPACK_SLOTS(sizeof(uint16_t))},
    {"cq4_unpack_bf16", call_unpack_bf16, UNPACK_SLOTS(sizeof(uint16_t))},
};

static size_t layout_len(const cq4_layout *l, int kind)
{
    return kind == LEN_ELEMENTS ? l->elements : kind == LEN_PACKED ? l->packed_len : l->scales_len;
}

/* ---------------------------------------------------------------------- */
/* The layout, computed independently of the library                      */
/* ---------------------------------------------------------------------- */

static size_t ceil_div(size_t a, size_t b) { return a / b + (a % b != 0); }

static int mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

static cq4_status model_layout(size_t rows, size_t cols, size_t g, cq4_layout *m)
{
    memset(m, 0, sizeof *m);
    if (g == 0 || g > CQ4_MAX_GROUP_SIZE)
        return CQ4_ERR_BAD_GROUP_SIZE;
    m->rows = rows;
    m->cols = cols;
    m->group_size = g;
    m->groups_per_row = ceil_div(cols, g);
    m->bytes_per_group = ceil_div(g, 2);
    if (!mul_ok(m->groups_per_row, m->bytes_per_group, &m->packed_row_bytes) ||
        !mul_ok(rows, cols, &m->elements) ||
        !mul_ok(rows, m->packed_row_bytes, &m->packed_len) ||
        !mul_ok(rows, m->groups_per_row, &m->scales_len))
        return CQ4_ERR_SIZE_OVERFLOW;
    /* Byte counts must fit ptrdiff_t (pointer differences over the buffer). */
    if (m->elements > PTRDIFF_MAX_Z / sizeof(float) ||
        m->scales_len > PTRDIFF_MAX_Z / sizeof(float) || m->packed_len > PTRDIFF_MAX_Z)
        return CQ4_ERR_SIZE_OVERFLOW;
    return CQ4_OK;
}

#define LAYOUT_FIELDS(X) X(rows) X(cols) X(group_size) X(groups_per_row) \
    X(bytes_per_group) X(packed_row_bytes) X(elements) X(packed_len) X(scales_len)

static int check_layout_fields(const char *ctx, const cq4_layout *got, const cq4_layout *want)
{
    int failures = 0;
#define X(f) if (got->f != want->f) { \
        fprintf(stderr, "%s: " #f " = %zu, want %zu\n", ctx, got->f, want->f); failures++; }
    LAYOUT_FIELDS(X)
#undef X
    return failures;
}

/* ---------------------------------------------------------------------- */
/* 1. Golden vectors                                                      */
/* ---------------------------------------------------------------------- */

/* Section keywords double as indices into golden_case.sec. */
enum { SEC_INPUT, SEC_PACKED, SEC_SCALES, SEC_UNPACKED, N_SEC, KW_END = N_SEC, KW_PACK, KW_UNPACK };
static const char *const KEYWORDS[] = {"input", "packed", "scales", "unpacked", "end", "pack", "unpack"};
static const size_t SEC_ES[N_SEC] = {4, 1, 4, 4};

struct vec {
    unsigned char *data; /* never NULL, so even empty buffers are valid pointers */
    size_t len, cap, es;
};

static void vec_push(struct vec *v, uint32_t value)
{
    if (v->len == v->cap) {
        if (v->cap > SIZE_MAX / 2 / v->es) {
            fputs("cq4 harness: golden section too large\n", stderr);
            abort();
        }
        v->cap *= 2;
        v->data = xrealloc(v->data, v->cap * v->es);
    }
    store(v->data, v->es, v->len++, value);
}

struct golden_case {
    int is_pack;
    char name[TOKEN_MAX];
    size_t rows, cols, g;
    struct vec sec[N_SEC];
};

static int keyword(const char *tok)
{
    int i;
    for (i = 0; i < (int)(sizeof KEYWORDS / sizeof KEYWORDS[0]); i++)
        if (!strcmp(tok, KEYWORDS[i]))
            return i;
    return -1;
}

/* Next whitespace-separated token, skipping '#' comments to end of line:
 * 1 = token, 0 = end of file, -1 = token too long. Token by token because
 * a line can hold many thousands of values. */
static int next_token(FILE *f, char tok[TOKEN_MAX])
{
    size_t len = 0;
    int ch;
    for (;;) {
        do
            ch = getc(f);
        while (ch != EOF && isspace(ch));
        if (ch != '#')
            break;
        do
            ch = getc(f);
        while (ch != EOF && ch != '\n');
    }
    if (ch == EOF)
        return 0;
    for (; ch != EOF && !isspace(ch); ch = getc(f)) {
        if (len + 1 == TOKEN_MAX) {
            tok[len] = '\0';
            return -1;
        }
        tok[len++] = (char)ch;
    }
    tok[len] = '\0';
    return 1;
}

static int parse_size(const char *tok, size_t *out)
{
    unsigned long long v;
    char *end;
    if (!isdigit((unsigned char)tok[0]))
        return 0;
    errno = 0;
    v = strtoull(tok, &end, 10);
    if (*end || errno == ERANGE || v > SIZE_MAX)
        return 0;
    *out = (size_t)v;
    return 1;
}

static int malformed(const char *path, const char *why, const char *tok)
{
    fprintf(stderr, "golden %s: malformed: %s (at \"%s\")\n", path, why, tok);
    return -1;
}

/* Reads the rest of a case after its pack/unpack keyword: the header, then
 * the sections in their fixed order, then "end". 0, or -1 when malformed. */
static int read_case(FILE *f, const char *path, struct golden_case *c)
{
    char tok[TOKEN_MAX] = "";
    size_t *dims[3] = {&c->rows, &c->cols, &c->g};
    size_t elements;
    int i, r, sec = -1, next = c->is_pack ? SEC_INPUT : SEC_PACKED;
    uint32_t v;

    if ((r = next_token(f, c->name)) != 1)
        return malformed(path, r ? "case name too long" : "missing case name", c->name);
    for (i = 0; i < 3; i++)
        if (next_token(f, tok) != 1 || !parse_size(tok, dims[i]))
            return malformed(path, "expected ROWS COLS GROUP_SIZE", tok);
    for (i = 0; i < N_SEC; i++)
        c->sec[i].len = 0;
    for (;;) {
        int kw;
        if ((r = next_token(f, tok)) != 1)
            return malformed(path, r ? "token too long" : "case not ended", c->name);
        kw = keyword(tok);
        if (kw == KW_END && next == N_SEC)
            break;
        if (kw == next) {
            sec = next++;
            continue;
        }
        if (kw >= 0 || sec < 0)
            return malformed(path, "unexpected keyword or missing section", tok);
        if (!parse_hex(tok, 2 * SEC_ES[sec], &v))
            return malformed(path, "bad hex value", tok);
        vec_push(&c->sec[sec], v);
    }
    if (!mul_ok(c->rows, c->cols, &elements) || c->sec[SEC_UNPACKED].len != elements ||
        (c->is_pack && c->sec[SEC_INPUT].len != elements))
        return malformed(path, "input/unpacked count is not ROWS*COLS", c->name);
    return 0;
}

/* Calls fn with the inputs already in b[] and fresh outputs of exactly n[i]
 * elements followed by CANARY_N canaries; counts a failure for each output
 * written past its length. The caller frees the outputs. */
static cq4_status call_guarded(const struct api_fn *fn, void *b[3], const size_t n[3],
                               const struct golden_case *c, const char *ctx, int *failures)
{
    cq4_status st;
    int i;
    for (i = 0; i < 3; i++) {
        if (!fn->is_out[i])
            continue;
        b[i] = xrealloc(NULL, (n[i] + CANARY_N) * fn->es[i]);
        canary_fill(b[i], fn->es[i], n[i] + CANARY_N);
    }
    st = fn->call(b, n, c->rows, c->cols, c->g);
    for (i = 0; i < 3; i++) {
        if (fn->is_out[i] &&
            !canary_intact((unsigned char *)b[i] + n[i] * fn->es[i], fn->es[i], CANARY_N)) {
            fprintf(stderr, "%s: wrote past the end of %s\n", ctx, fn->slot[i]);
            ++*failures;
        }
    }
    return st;
}

static int golden_pack(const struct golden_case *c, int api, const void *src)
{
    const struct api_fn *fn = &API[api];
    void *b[3] = {(void *)src, NULL, NULL};
    const size_t n[3] = {c->sec[SEC_INPUT].len, c->sec[SEC_PACKED].len, c->sec[SEC_SCALES].len};
    char ctx[160];
    int failures = 0;

    snprintf(ctx, sizeof ctx, "golden %s: %s", c->name, fn->name);
    if (check_status(ctx, call_guarded(fn, b, n, c, ctx, &failures), CQ4_OK)) {
        failures++;
    } else {
        failures += check_equal(ctx, "packed", b[1], c->sec[SEC_PACKED].data, 1, n[1], 0);
        /* Scales bitwise: -0.0 vs 0.0 and NaN payloads are part of the format. */
        failures += check_equal(ctx, "scales", b[2], c->sec[SEC_SCALES].data, 4, n[2], 0);
    }
    free(b[1]);
    free(b[2]);
    return failures;
}

static int golden_unpack(const struct golden_case *c, int api, const void *want)
{
    const struct api_fn *fn = &API[api];
    void *b[3] = {c->sec[SEC_PACKED].data, c->sec[SEC_SCALES].data, NULL};
    const size_t n[3] = {c->sec[SEC_PACKED].len, c->sec[SEC_SCALES].len, c->sec[SEC_UNPACKED].len};
    char ctx[160];
    int failures = 0;

    snprintf(ctx, sizeof ctx, "golden %s: %s", c->name, fn->name);
    if (check_status(ctx, call_guarded(fn, b, n, c, ctx, &failures), CQ4_OK))
        failures++;
    else
        failures += check_equal(ctx, "dst", b[2], want, fn->es[2], n[2], 1);
    free(b[2]);
    return failures;
}

/* f32 -> IEEE binary16 bits when the value is exactly representable
 * (normal, subnormal, +-0, +-Inf); 0 otherwise and for NaN. */
static int f32_to_f16_exact(uint32_t x, uint16_t *out)
{
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exp = (x >> 23) & 0xFFu, man = x & 0x7FFFFFu, sig, shift;
    int e = (int)exp - 127;

    if (exp == 0xFF) {
        *out = (uint16_t)(sign | 0x7C00u);
        return man == 0;
    }
    if ((x & 0x7FFFFFFFu) == 0) {
        *out = sign;
        return 1;
    }
    if (exp == 0 || e > 15 || e < -24) /* f32 subnormals are far below f16's range */
        return 0;
    if (e >= -14) {
        *out = (uint16_t)(sign | (uint32_t)(e + 15) << 10 | man >> 13);
        return (man & 0x1FFFu) == 0;
    }
    /* f16 subnormal: value = m * 2^-24 with m = significand >> (-e - 1). */
    sig = man | 0x800000u;
    shift = (uint32_t)(-e - 1);
    *out = (uint16_t)(sign | sig >> shift);
    return (sig & ((1u << shift) - 1)) == 0;
}

/* The case's input as f16 (to_f16) or bf16 bits; 0 when some value is NaN
 * or not exactly representable, so the narrow pack must equal the f32 one. */
static int narrow_exact(const struct vec *in, uint16_t *out, int to_f16)
{
    size_t i;
    for (i = 0; i < in->len; i++) {
        uint32_t x = load(in->data, 4, i);
        if (is_nan(x, 4))
            return 0;
        if (to_f16 ? !f32_to_f16_exact(x, &out[i]) : (x & 0xFFFFu) != 0)
            return 0;
        if (!to_f16)
            out[i] = (uint16_t)(x >> 16);
    }
    return 1;
}

/* f32 -> bf16 round to nearest even; NaN maps to a NaN (payload free). */
static uint16_t bf16_rne(uint32_t x)
{
    if (is_nan(x, 4))
        return 0x7FC0u;
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

static int golden_layout(const struct golden_case *c)
{
    cq4_layout l;
    char ctx[160];
    int failures = 0;

    snprintf(ctx, sizeof ctx, "golden %s: cq4_layout_get", c->name);
    if (check_status(ctx, cq4_layout_get(c->rows, c->cols, c->g, &l), CQ4_OK))
        return 1;
    if (l.packed_len != c->sec[SEC_PACKED].len) {
        fprintf(stderr, "%s: packed_len %zu, file has %zu\n", ctx, l.packed_len, c->sec[SEC_PACKED].len);
        failures++;
    }
    if (l.scales_len != c->sec[SEC_SCALES].len) {
        fprintf(stderr, "%s: scales_len %zu, file has %zu\n", ctx, l.scales_len, c->sec[SEC_SCALES].len);
        failures++;
    }
    return failures;
}

static int golden_check(const struct golden_case *c)
{
    const struct vec *unpacked = &c->sec[SEC_UNPACKED];
    uint16_t *narrow = xrealloc(NULL, (unpacked->len + 1) * sizeof *narrow);
    int failures = 0;
    size_t i;

    if (c->is_pack) {
        failures += golden_layout(c);
        failures += golden_pack(c, PACK_F32, c->sec[SEC_INPUT].data);
        if (narrow_exact(&c->sec[SEC_INPUT], narrow, 1))
            failures += golden_pack(c, PACK_F16, narrow);
        if (narrow_exact(&c->sec[SEC_INPUT], narrow, 0))
            failures += golden_pack(c, PACK_BF16, narrow);
    }
    failures += golden_unpack(c, UNPACK_F32, unpacked->data);
    for (i = 0; i < unpacked->len; i++)
        narrow[i] = bf16_rne(load(unpacked->data, 4, i));
    failures += golden_unpack(c, UNPACK_BF16, narrow);
    free(narrow);
    return failures;
}

int cq4_harness_golden(const char *path, int *cases_run)
{
    struct golden_case c;
    char tok[TOKEN_MAX] = "";
    int failures = 0, cases = 0, r, i;
    FILE *f;

    if (cases_run)
        *cases_run = 0;
    if (!path || !(f = fopen(path, "r"))) {
        fprintf(stderr, "golden %s: cannot open\n", path ? path : "(null)");
        return -1;
    }
    memset(&c, 0, sizeof c);
    for (i = 0; i < N_SEC; i++) {
        c.sec[i].es = SEC_ES[i];
        c.sec[i].cap = 64;
        c.sec[i].data = xrealloc(NULL, c.sec[i].cap * c.sec[i].es);
    }
    while ((r = next_token(f, tok)) != 0) {
        int kw = keyword(tok);
        if (r < 0) {
            r = malformed(path, "token too long", tok);
            break;
        }
        if (kw != KW_PACK && kw != KW_UNPACK) {
            r = malformed(path, "expected pack or unpack", tok);
            break;
        }
        c.is_pack = kw == KW_PACK;
        if ((r = read_case(f, path, &c)) != 0)
            break;
        failures += golden_check(&c);
        cases++;
    }
    if (ferror(f)) {
        fprintf(stderr, "golden %s: read error\n", path);
        r = -1;
    }
    fclose(f);
    for (i = 0; i < N_SEC; i++)
        free(c.sec[i].data);
    if (cases_run)
        *cases_run = cases;
    return r == -1 ? -1 : failures;
}

/* ---------------------------------------------------------------------- */
/* 2. Layout                                                              */
/* ---------------------------------------------------------------------- */

#define CEIL_DIV(a, b) ((a) / (b) + ((a) % (b) != 0))
#define PD4 (PTRDIFF_MAX_Z / sizeof(float)) /* most f32 elements a buffer may hold */

static const struct layout_case {
    size_t rows, cols, g;
    cq4_status want;
    size_t packed_len, scales_len; /* hand-computed, for CQ4_OK */
} LAYOUT_CASES[] = {
    {1, 4, 4, CQ4_OK, 2, 1},
    {2, 6, 3, CQ4_OK, 8, 4},
    {3, 5, 4, CQ4_OK, 12, 6},
    {7, 1, 128, CQ4_OK, 448, 7},              /* g > cols: one padded group */
    {0, 10, 4, CQ4_OK, 0, 0},
    {10, 0, 4, CQ4_OK, 0, 0},                 /* no groups, no bytes */
    {4096, 4096, 32, CQ4_OK, 8388608, 524288},
    {3, 7, 1, CQ4_OK, 21, 21},
    {2, 3, CQ4_MAX_GROUP_SIZE, CQ4_OK, CQ4_MAX_GROUP_SIZE, 2},
    /* Largest f32 matrix whose byte count fits ptrdiff_t. */
    {1, PD4, CQ4_MAX_GROUP_SIZE, CQ4_OK,
     CEIL_DIV(PD4, CQ4_MAX_GROUP_SIZE) * (CQ4_MAX_GROUP_SIZE / 2), CEIL_DIV(PD4, CQ4_MAX_GROUP_SIZE)},
    {2, 3, CQ4_MAX_GROUP_SIZE + 1, CQ4_ERR_BAD_GROUP_SIZE, 0, 0},
    {2, 3, 0, CQ4_ERR_BAD_GROUP_SIZE, 0, 0},
    {0, 0, 0, CQ4_ERR_BAD_GROUP_SIZE, 0, 0},
    {SIZE_MAX / 2 + 1, 2, 4, CQ4_ERR_SIZE_OVERFLOW, 0, 0},     /* rows*cols wraps */
    {SIZE_MAX, SIZE_MAX, 1, CQ4_ERR_SIZE_OVERFLOW, 0, 0},
    {1, SIZE_MAX, 1, CQ4_ERR_SIZE_OVERFLOW, 0, 0},
    {PD4 + 1, 1, 1, CQ4_ERR_SIZE_OVERFLOW, 0, 0},              /* fits size_t, *4 > PTRDIFF_MAX */
    {1, PD4 + 1, CQ4_MAX_GROUP_SIZE, CQ4_ERR_SIZE_OVERFLOW, 0, 0}, /* only elements too big */
    /* Only packed_len > PTRDIFF_MAX: one padded half-MiB group per row. */
    {PTRDIFF_MAX_Z / (CQ4_MAX_GROUP_SIZE / 2) + 1, 1, CQ4_MAX_GROUP_SIZE, CQ4_ERR_SIZE_OVERFLOW, 0, 0},
};

int cq4_harness_layout(void)
{
    int failures = 0;
    size_t i;
    cq4_layout untouched, got[2], model;
    char ctx[160];

    memset(&untouched, 0xA5, sizeof untouched);
    for (i = 0; i < sizeof LAYOUT_CASES / sizeof LAYOUT_CASES[0]; i++) {
        const struct layout_case *t = &LAYOUT_CASES[i];
        cq4_status st, model_st = model_layout(t->rows, t->cols, t->g, &model);
        snprintf(ctx, sizeof ctx, "layout (%zu, %zu, %zu)", t->rows, t->cols, t->g);
        memcpy(&got[0], &untouched, sizeof untouched);
        st = cq4_layout_get(t->rows, t->cols, t->g, &got[0]);
        failures += check_status(ctx, st, t->want);
        if (model_st != t->want) {
            fprintf(stderr, "%s: harness model disagrees with its table\n", ctx);
            failures++;
        }
        if (t->want != CQ4_OK) {
            if (st != CQ4_OK && memcmp(&got[0], &untouched, sizeof untouched)) {
                fprintf(stderr, "%s: refused call wrote *out\n", ctx);
                failures++;
            }
            continue;
        }
        if (st == CQ4_OK && model_st == CQ4_OK)
            failures += check_layout_fields(ctx, &got[0], &model);
        if (model.packed_len != t->packed_len || model.scales_len != t->scales_len) {
            fprintf(stderr, "%s: harness model disagrees with hand-computed lengths\n", ctx);
            failures++;
        }
    }

    failures += check_status("layout NULL out", cq4_layout_get(2, 6, 3, NULL), CQ4_ERR_NULL_POINTER);
    /* The conversion of a misaligned address is what a buggy caller does. */
    memset(got, 0xA5, sizeof got);
    failures += check_status("layout misaligned out",
                             cq4_layout_get(2, 6, 3, (cq4_layout *)((char *)got + 1)),
                             CQ4_ERR_MISALIGNED_POINTER);
    if (!canary_intact(got, 1, sizeof got)) {
        fprintf(stderr, "layout misaligned out: refused call wrote memory\n");
        failures++;
    }
    return failures;
}

/* ---------------------------------------------------------------------- */
/* 3. Bad input                                                           */
/* ---------------------------------------------------------------------- */

/* Each of the three buffers of a call lives in its own arena, big enough
 * for the small shape plus canaries and for another buffer moved into it. */
#define ARENA_BYTES 512
#define BAD_ROWS 2
#define BAD_COLS 10
#define BAD_G 4

struct call_args {
    void *b[3];
    size_t n[3];
    size_t rows, cols, g;
};

/* Inputs get valid finite data (0x3C bytes), outputs the canary. */
static void arenas_reset(const struct api_fn *fn, unsigned char *const arena[3])
{
    int i;
    for (i = 0; i < 3; i++) {
        if (fn->is_out[i])
            canary_fill(arena[i], fn->es[i], ARENA_BYTES / fn->es[i]);
        else
            memset(arena[i], 0x3C, ARENA_BYTES);
    }
}

/* One call that must return `want`; a refused call must leave every arena,
 * inputs included, byte-identical. */
static int expect(const struct api_fn *fn, const struct call_args *a, unsigned char *const arena[3],
                  unsigned char *const snap[3], const char *what, cq4_status want)
{
    char ctx[160];
    cq4_status st;
    int i, failures;

    snprintf(ctx, sizeof ctx, "bad_input %s: %s", fn->name, what);
    arenas_reset(fn, arena);
    for (i = 0; i < 3; i++)
        memcpy(snap[i], arena[i], ARENA_BYTES);
    st = fn->call(a->b, a->n, a->rows, a->cols, a->g);
    failures = check_status(ctx, st, want);
    for (i = 0; st != CQ4_OK && i < 3; i++) {
        if (memcmp(arena[i], snap[i], ARENA_BYTES)) {
            fprintf(stderr, "%s: refused call wrote into the %s arena\n", ctx, fn->slot[i]);
            failures++;
        }
    }
    return failures;
}

/* A valid call with every buffer CANARY_N elements longer than needed
 * writes all of each output's layout prefix and nothing after it. */
static int valid_long_call(const struct api_fn *fn, const struct call_args *base,
                           unsigned char *const arena[3], unsigned char *const snap[3])
{
    struct call_args a = *base;
    char ctx[160];
    int i, failures;
    size_t j;

    snprintf(ctx, sizeof ctx, "bad_input %s: valid call, long buffers", fn->name);
    for (i = 0; i < 3; i++)
        a.n[i] += CANARY_N;
    failures = expect(fn, &a, arena, snap, "valid call, long buffers", CQ4_OK);
    for (i = 0; i < 3; i++) {
        size_t used = base->n[i] * fn->es[i];
        if (!fn->is_out[i]) {
            if (memcmp(arena[i], snap[i], ARENA_BYTES)) {
                fprintf(stderr, "%s: wrote into input %s\n", ctx, fn->slot[i]);
                failures++;
            }
            continue;
        }
        if (memcmp(arena[i] + used, snap[i] + used, ARENA_BYTES - used)) {
            fprintf(stderr, "%s: wrote past the layout's end of %s\n", ctx, fn->slot[i]);
            failures++;
        }
        for (j = 0; j < base->n[i]; j++) {
            if (canary_intact(arena[i] + j * fn->es[i], fn->es[i], 1)) {
                fprintf(stderr, "%s: %s[%zu] not written\n", ctx, fn->slot[i], j);
                failures++;
                break;
            }
        }
    }
    return failures;
}

static int bad_input_one(const struct api_fn *fn, unsigned char *const arena[3],
                         unsigned char *const snap[3])
{
    struct call_args base, a;
    cq4_layout l;
    char what[96];
    int failures = 0, i, o, x;

    model_layout(BAD_ROWS, BAD_COLS, BAD_G, &l);
    for (i = 0; i < 3; i++) {
        base.b[i] = arena[i];
        base.n[i] = layout_len(&l, fn->len_kind[i]);
    }
    base.rows = BAD_ROWS;
    base.cols = BAD_COLS;
    base.g = BAD_G;

    for (i = 0; i < 3; i++) {
        a = base;
        a.b[i] = NULL;
        snprintf(what, sizeof what, "%s NULL", fn->slot[i]);
        failures += expect(fn, &a, arena, snap, what, CQ4_ERR_NULL_POINTER);
        /* NULL is refused even where nothing would be read or written. */
        a.rows = 0;
        a.n[0] = a.n[1] = a.n[2] = 0;
        snprintf(what, sizeof what, "%s NULL, empty layout", fn->slot[i]);
        failures += expect(fn, &a, arena, snap, what, CQ4_ERR_NULL_POINTER);
        if (fn->es[i] > 1) {
            a = base;
            a.b[i] = arena[i] + 1;
            snprintf(what, sizeof what, "%s misaligned", fn->slot[i]);
            failures += expect(fn, &a, arena, snap, what, CQ4_ERR_MISALIGNED_POINTER);
        }
        a = base;
        a.n[i]--;
        snprintf(what, sizeof what, "%s one element short", fn->slot[i]);
        failures += expect(fn, &a, arena, snap, what,
                           fn->is_out[i] ? CQ4_ERR_OUTPUT_TOO_SMALL : CQ4_ERR_INPUT_TOO_SHORT);
    }

    a = base;
    a.g = 0;
    failures += expect(fn, &a, arena, snap, "group_size 0", CQ4_ERR_BAD_GROUP_SIZE);
    a.g = CQ4_MAX_GROUP_SIZE + 1;
    failures += expect(fn, &a, arena, snap, "group_size MAX+1", CQ4_ERR_BAD_GROUP_SIZE);
    a = base;
    a.rows = SIZE_MAX;
    a.cols = 3;
    failures += expect(fn, &a, arena, snap, "rows*cols overflows", CQ4_ERR_SIZE_OVERFLOW);

    /* Each output against every other buffer: same start, overlapping by 4
     * bytes from either side (4 keeps every pointer aligned), and adjacent,
     * which must be accepted. */
    for (o = 0; o < 3; o++) {
        for (x = 0; fn->is_out[o] && x < 3; x++) {
            size_t bytes_o = base.n[o] * fn->es[o], bytes_x = base.n[x] * fn->es[x];
            if (x == o)
                continue;
            a = base;
            a.b[o] = arena[x];
            snprintf(what, sizeof what, "%s at the start of %s", fn->slot[o], fn->slot[x]);
            failures += expect(fn, &a, arena, snap, what, CQ4_ERR_OVERLAPPING_BUFFERS);
            a.b[o] = arena[x] + bytes_x - 4;
            snprintf(what, sizeof what, "%s starts in the last 4 bytes of %s", fn->slot[o], fn->slot[x]);
            failures += expect(fn, &a, arena, snap, what, CQ4_ERR_OVERLAPPING_BUFFERS);
            a.b[o] = arena[x];
            a.b[x] = arena[x] + bytes_o - 4;
            snprintf(what, sizeof what, "%s starts in the last 4 bytes of %s", fn->slot[x], fn->slot[o]);
            failures += expect(fn, &a, arena, snap, what, CQ4_ERR_OVERLAPPING_BUFFERS);
            a = base;
            a.b[o] = arena[x] + bytes_x;
            snprintf(what, sizeof what, "%s right after %s", fn->slot[o], fn->slot[x]);
            failures += expect(fn, &a, arena, snap, what, CQ4_OK);
        }
    }

    return failures + valid_long_call(fn, &base, arena, snap);
}

int cq4_harness_bad_input(void)
{
    unsigned char *mem = xrealloc(NULL, 6 * ARENA_BYTES); /* malloc: aligned for float */
    unsigned char *arena[3], *snap[3];
    int failures = 0, i;

    for (i = 0; i < 3; i++) {
        arena[i] = mem + i * ARENA_BYTES;
        snap[i] = mem + (3 + i) * ARENA_BYTES;
    }
    for (i = 0; i < N_API; i++)
        failures += bad_input_one(&API[i], arena, snap);
    free(mem);
    return failures;
}

/* ---------------------------------------------------------------------- */
/* 4. Status messages and versions                                        */
/* ---------------------------------------------------------------------- */

/* The highest status code the header declares. */
#define LAST_STATUS CQ4_ERR_BAD_HESSIAN

int cq4_harness_status(void)
{
    static const int unknown_codes[] = {-1, 1000, LAST_STATUS + 1, INT_MIN, INT_MAX};
    const char *known[LAST_STATUS + 1];
    const char *unknown = cq4_status_message(-1);
    const int ok = CQ4_OK;
    char version[64];
    size_t vlen;
    int failures = 0, s, j;

    for (s = CQ4_OK; s <= LAST_STATUS; s++) {
        known[s] = cq4_status_message(s);
        if (!known[s] || !known[s][0]) {
            fprintf(stderr, "status %d: NULL or empty message\n", s);
            failures++;
            continue;
        }
        for (j = 0; j < s; j++) {
            if (known[j] && !strcmp(known[j], known[s])) {
                fprintf(stderr, "status %d: same message as %d: \"%s\"\n", s, j, known[s]);
                failures++;
            }
        }
    }

    if (!unknown || !unknown[0]) {
        fprintf(stderr, "status -1: NULL or empty unknown message\n");
        return failures + 1;
    }
    for (j = 0; j < (int)(sizeof unknown_codes / sizeof unknown_codes[0]); j++) {
        const char *m = cq4_status_message(unknown_codes[j]);
        if (!m || strcmp(m, unknown)) {
            fprintf(stderr, "status %d: message differs from that of -1\n", unknown_codes[j]);
            failures++;
        }
    }
    for (s = CQ4_OK; s <= LAST_STATUS; s++) {
        if (known[s] && !strcmp(known[s], unknown)) {
            fprintf(stderr, "status %d: message equals the unknown one: \"%s\"\n", s, unknown);
            failures++;
        }
    }

    if (ok != 0) {
        fprintf(stderr, "CQ4_OK is %d, want 0\n", ok);
        failures++;
    }
    if (!cq4_version() || strcmp(cq4_version(), CQ4_VERSION_STRING)) {
        fprintf(stderr, "cq4_version() is \"%s\", header says \"%s\"\n",
                cq4_version() ? cq4_version() : "(null)", CQ4_VERSION_STRING);
        failures++;
    }
    /* The string starts with MAJOR.MINOR.PATCH (then the end or a semver suffix). */
    vlen = (size_t)snprintf(version, sizeof version, "%d.%d.%d", CQ4_VERSION_MAJOR,
                            CQ4_VERSION_MINOR, CQ4_VERSION_PATCH);
    if (strncmp(CQ4_VERSION_STRING, version, vlen) ||
        !strchr("-+", CQ4_VERSION_STRING[vlen]) /* also matches the terminating NUL */) {
        fprintf(stderr, "CQ4_VERSION_STRING \"%s\" does not match the macros %s\n",
                CQ4_VERSION_STRING, version);
        failures++;
    }
    if (cq4_abi_version() != (uint32_t)CQ4_ABI_VERSION) {
        fprintf(stderr, "cq4_abi_version() is %lu, header says %lu\n",
                (unsigned long)cq4_abi_version(), (unsigned long)CQ4_ABI_VERSION);
        failures++;
    }
    return failures;
}

/* ---------------------------------------------------------------------- */
/* 5. Options: kernels and thread counts                                  */
/* ---------------------------------------------------------------------- */

/* Every kernel this CPU runs, at several thread counts, gives the bytes of
 * the default call; kernels it lacks and malformed options are refused
 * without a write. */
int cq4_harness_options(void)
{
    /* A ragged last group (1000 = 31 * 32 + 8) takes every kernel's tail path. */
    enum { ROWS = 64, COLS = 1000, G = 32, GPR = (COLS + G - 1) / G, RB = GPR * G / 2 };
    static float src[ROWS * COLS], scales[ROWS * GPR], want_scales[ROWS * GPR];
    static uint8_t packed[ROWS * RB], want_packed[ROWS * RB];
    static float dst[ROWS * COLS];
    static const uint32_t threads[] = {0, 1, 2, 5};
    cq4_options opt = cq4_options_default();
    int failures = 0;
    uint32_t k;
    size_t i, t;

    for (i = 0; i < ROWS * COLS; i++)
        src[i] = (float)((long)(i * 7919 % 2001) - 1000) / 64.0f;
    failures += check_status("options: default pack",
                             cq4_pack_f32(src, ROWS * COLS, ROWS, COLS, G, want_packed,
                                          sizeof want_packed, want_scales, ROWS * GPR),
                             CQ4_OK);
    if (opt.struct_size != sizeof opt || opt.kernel != CQ4_KERNEL_AUTO || opt.threads != 1) {
        fprintf(stderr, "options: unexpected defaults\n");
        failures++;
    }
    if (!cq4_kernel_supported(cq4_kernel_auto()) || cq4_kernel_auto() == CQ4_KERNEL_AUTO) {
        fprintf(stderr, "options: cq4_kernel_auto() names no runnable kernel\n");
        failures++;
    }
    for (k = CQ4_KERNEL_AUTO; k <= CQ4_KERNEL_NEON_I8MM + 1; k++) {
        for (t = 0; t < sizeof threads / sizeof threads[0]; t++) {
            char ctx[96];
            cq4_status want = k > CQ4_KERNEL_NEON_I8MM ? CQ4_ERR_BAD_OPTIONS
                              : cq4_kernel_supported(k) ? CQ4_OK
                                                        : CQ4_ERR_UNSUPPORTED_KERNEL;
            opt.kernel = k;
            opt.threads = threads[t];
            snprintf(ctx, sizeof ctx, "options: kernel %s, %u threads",
                     cq4_kernel_name(k), (unsigned)threads[t]);
            canary_fill(packed, 1, sizeof packed);
            canary_fill(scales, sizeof(float), ROWS * GPR);
            failures += check_status(ctx,
                                     cq4_pack_f32_ex(src, ROWS * COLS, ROWS, COLS, G, packed,
                                                     sizeof packed, scales, ROWS * GPR, &opt),
                                     want);
            if (want != CQ4_OK) {
                if (!canary_intact(packed, 1, sizeof packed) ||
                    !canary_intact(scales, sizeof(float), ROWS * GPR)) {
                    fprintf(stderr, "%s: wrote on error\n", ctx);
                    failures++;
                }
                continue;
            }
            failures += check_equal(ctx, "packed", packed, want_packed, 1, sizeof packed, 0);
            failures += check_equal(ctx, "scales", scales, want_scales, sizeof(float), ROWS * GPR, 0);
            failures += check_status(ctx,
                                     cq4_unpack_f32_ex(packed, sizeof packed, scales, ROWS * GPR,
                                                       ROWS, COLS, G, dst, ROWS * COLS, &opt),
                                     CQ4_OK);
            for (i = 0; i < ROWS * COLS; i++) {
                size_t r = i / COLS, c = i % COLS, byte = r * RB + c / 2;
                int u = c % 2 ? packed[byte] >> 4 : packed[byte] & 15;
                if (dst[i] != (float)(u - 8) * scales[r * GPR + c / G]) {
                    fprintf(stderr, "%s: unpack differs at %zu\n", ctx, i);
                    failures++;
                    break;
                }
            }
        }
    }
    if (strcmp(cq4_kernel_name(CQ4_KERNEL_NEON_I8MM + 1), "unknown") != 0) {
        fprintf(stderr, "options: unknown kernel id has a name\n");
        failures++;
    }
    opt = cq4_options_default();
    opt.struct_size = 4;
    canary_fill(packed, 1, sizeof packed);
    failures += check_status("options: struct_size 4",
                             cq4_pack_f32_ex(src, ROWS * COLS, ROWS, COLS, G, packed,
                                             sizeof packed, scales, ROWS * GPR, &opt),
                             CQ4_ERR_BAD_OPTIONS);
    failures += check_status("options: NULL options are the defaults",
                             cq4_pack_f16_ex((const uint16_t *)(const void *)want_packed, 8, 1, 8,
                                             8, packed, 4, scales, 1, NULL),
                             CQ4_OK);
    return failures;
}

/* ---------------------------------------------------------------------- */
/* 6. Fused products                                                      */
/* ---------------------------------------------------------------------- */

/* Products against a double-precision sum over weights decoded in C, row
 * ranges written from separate calls into one strided output, and the
 * bad-input statuses of the product functions. */
int cq4_harness_matmul(void)
{
    enum { ROWS = 5, COLS = 100, G = 32, GPR = (COLS + G - 1) / G, RB = GPR * G / 2, BATCH = 3 };
    static float w[ROWS * COLS], scales[ROWS * GPR], x[BATCH * COLS];
    static float y[BATCH * ROWS], parts[BATCH * ROWS], canary[BATCH * ROWS];
    static uint8_t packed[ROWS * RB];
    cq4_matrix m = {packed, sizeof packed, scales, ROWS * GPR, ROWS, COLS, G};
    int failures = 0;
    size_t b, r, c, i;
    uint32_t p;

    for (i = 0; i < ROWS * COLS; i++)
        w[i] = (float)((long)(i * 37 % 101) - 50) / 25.0f;
    for (i = 0; i < BATCH * COLS; i++)
        x[i] = (float)((long)(i * 53 % 89) - 44) / 22.0f;
    failures += check_status("matmul: pack", cq4_pack_f32(w, ROWS * COLS, ROWS, COLS, G, packed,
                                                          sizeof packed, scales, ROWS * GPR),
                             CQ4_OK);
    for (p = CQ4_PRECISION_EXACT; p <= CQ4_PRECISION_INT8; p++) {
        failures += check_status("matmul", cq4_matmul_f32(&m, x, BATCH * COLS, BATCH, p, y,
                                                          BATCH * ROWS, NULL),
                                 CQ4_OK);
        for (b = 0; b < BATCH; b++) {
            for (r = 0; r < ROWS; r++) {
                double sum = 0, mag = 0, slack = 0, xmax = 0;
                for (c = 0; c < COLS; c++) {
                    size_t byte = r * RB + (c / G) * (G / 2) + (c % G) / 2;
                    int u = c % 2 ? packed[byte] >> 4 : packed[byte] & 15;
                    float wc = (float)(u - 8) * scales[r * GPR + c / G];
                    double t = (double)x[b * COLS + c] * wc;
                    sum += t;
                    mag += t < 0 ? -t : t;
                    xmax = xmax > fabs(x[b * COLS + c]) ? xmax : fabs(x[b * COLS + c]);
                    slack += fabs(wc);
                }
                /* The header's bounds, with the largest x group scale. */
                double bound = (4 * sqrt((double)COLS) + 4) * mag / 16777216.0;
                if (p == CQ4_PRECISION_INT8)
                    bound += slack * xmax / 127.0 / 2.0 + bound;
                if (fabs(y[b * ROWS + r] - sum) > bound) {
                    fprintf(stderr, "matmul precision %u: y[%zu][%zu] = %g, want %g (bound %g)\n",
                            (unsigned)p, b, r, (double)y[b * ROWS + r], sum, bound);
                    failures++;
                }
            }
        }
        /* Two row ranges from separate calls, as two engine threads would. */
        for (i = 0; i < BATCH * ROWS; i++)
            parts[i] = -1.0f;
        failures += check_status("matmul rows [0,2)",
                                 cq4_matmul_rows_f32(&m, x, BATCH * COLS, BATCH, p, 0, 2, parts,
                                                     BATCH * ROWS, ROWS, NULL),
                                 CQ4_OK);
        failures += check_status("matmul rows [2,5)",
                                 cq4_matmul_rows_f32(&m, x, BATCH * COLS, BATCH, p, 2, ROWS, parts + 2,
                                                     BATCH * ROWS - 2, ROWS, NULL),
                                 CQ4_OK);
        failures += check_equal("matmul rows", "y", parts, y, sizeof(float), BATCH * ROWS, 0);
    }

    /* Bad input: each refused with its status, nothing written. */
    {
        cq4_matrix bad = m;
        cq4_options opt = cq4_options_default();
        struct {
            const char *what;
            cq4_status got, want;
        } cases[14];
        size_t n = 0;
        for (i = 0; i < BATCH * ROWS; i++)
            canary[i] = y[i] = 12345.0f;
#define CASE(w_, call_, want_) cases[n].what = w_, cases[n].got = call_, cases[n++].want = want_
        CASE("NULL w", cq4_matmul_f32(NULL, x, BATCH * COLS, BATCH, 0, y, BATCH * ROWS, NULL),
             CQ4_ERR_NULL_POINTER);
        CASE("NULL x", cq4_matmul_f32(&m, NULL, BATCH * COLS, BATCH, 0, y, BATCH * ROWS, NULL),
             CQ4_ERR_NULL_POINTER);
        CASE("precision 2", cq4_matmul_f32(&m, x, BATCH * COLS, BATCH, 2, y, BATCH * ROWS, NULL),
             CQ4_ERR_BAD_PRECISION);
        CASE("short x", cq4_matmul_f32(&m, x, BATCH * COLS - 1, BATCH, 0, y, BATCH * ROWS, NULL),
             CQ4_ERR_INPUT_TOO_SHORT);
        CASE("short y", cq4_matmul_f32(&m, x, BATCH * COLS, BATCH, 0, y, BATCH * ROWS - 1, NULL),
             CQ4_ERR_OUTPUT_TOO_SMALL);
        CASE("range past rows", cq4_matmul_rows_f32(&m, x, BATCH * COLS, BATCH, 0, 3, ROWS + 1, y,
                                                    BATCH * ROWS, ROWS, NULL),
             CQ4_ERR_BAD_ROW_RANGE);
        CASE("stride too small", cq4_matmul_rows_f32(&m, x, BATCH * COLS, BATCH, 0, 0, ROWS, y,
                                                     BATCH * ROWS, ROWS - 1, NULL),
             CQ4_ERR_BAD_STRIDE);
        CASE("y over x", cq4_matmul_f32(&m, x, BATCH * COLS, 1, 0, x + 1, ROWS, NULL),
             CQ4_ERR_OVERLAPPING_BUFFERS);
        bad.group_size = 0;
        CASE("g = 0", cq4_matmul_f32(&bad, x, BATCH * COLS, BATCH, 0, y, BATCH * ROWS, NULL),
             CQ4_ERR_BAD_GROUP_SIZE);
        opt.kernel = 77;
        CASE("bad options", cq4_matmul_f32(&m, x, BATCH * COLS, BATCH, 0, y, BATCH * ROWS, &opt),
             CQ4_ERR_BAD_OPTIONS);
        /* Overlap comes before a short input. */
        CASE("y over a short x", cq4_matmul_f32(&m, x, COLS - 1, 1, 0, x + 1, ROWS, NULL),
             CQ4_ERR_OVERLAPPING_BUFFERS);
        /* Sizes of x and y whose byte counts pass PTRDIFF_MAX. */
        CASE("batch 2^56", cq4_matmul_f32(&m, x, BATCH * COLS, (size_t)1 << 56, 0, y, BATCH * ROWS,
                                          NULL),
             CQ4_ERR_SIZE_OVERFLOW);
        CASE("y_stride 2^62", cq4_matmul_rows_f32(&m, x, BATCH * COLS, 2, 0, 0, ROWS, y, BATCH * ROWS,
                                                  (size_t)1 << 62, NULL),
             CQ4_ERR_SIZE_OVERFLOW);
        /* The matrix descriptor is an input too. */
        bad = m;
        CASE("y over *w", cq4_matmul_f32(&bad, x, BATCH * COLS, 1, 0, (float *)&bad + 2, ROWS, NULL),
             CQ4_ERR_OVERLAPPING_BUFFERS);
        if (memcmp(&bad, &m, sizeof m)) {
            fputs("matmul: y over *w: the descriptor was written\n", stderr);
            failures++;
        }
#undef CASE
        for (i = 0; i < n; i++) {
            char ctx[64];
            snprintf(ctx, sizeof ctx, "matmul: %s", cases[i].what);
            failures += check_status(ctx, cases[i].got, cases[i].want);
        }
        failures += check_equal("matmul: refused calls", "y", y, canary, sizeof(float), BATCH * ROWS, 0);
    }

    /* y in the unread tail of x: allowed, and the same product. */
    {
        static float xy[COLS + 1];
        memcpy(xy, x, sizeof(float) * COLS);
        failures += check_status("matmul: y in x's tail",
                                 cq4_matmul_rows_f32(&m, xy, COLS + 1, 1, 0, 0, 1, xy + COLS, 1, 1, NULL),
                                 CQ4_OK);
        failures += check_status("matmul: y alone", cq4_matmul_rows_f32(&m, x, COLS, 1, 0, 0, 1, y, 1, 1, NULL),
                                 CQ4_OK);
        failures += check_equal("matmul: y in x's tail", "y", xy + COLS, y, sizeof(float), 1, 0);
    }
    return failures;
}

/* ---------------------------------------------------------------------- */
/* Products on the prepared form                                          */
/* ---------------------------------------------------------------------- */

/* The int8 product as the header defines it, written out here: per group
 * scale max|x| / 127 and q = round(x / scale) (half away from zero), then
 * per output one fmaf chain over the groups of dot * clamp(ws * xs). */
static float prepared_int8_model(const uint8_t *packed, const float *scales, const float *x,
                                 size_t r, size_t cols, size_t g)
{
    size_t gpr = (cols + g - 1) / g, rb = gpr * ((g + 1) / 2), k, c;
    float acc = 0.0f;
    for (k = 0; k < gpr; k++) {
        size_t end = (k + 1) * g < cols ? (k + 1) * g : cols;
        float max = 0.0f, xs, s;
        long dot = 0;
        for (c = k * g; c < end; c++)
            max = fabsf(x[c]) > max ? fabsf(x[c]) : max;
        xs = max / 127.0f;
        for (c = k * g; c < end; c++) {
            size_t i = c - k * g, byte = r * rb + k * ((g + 1) / 2) + i / 2;
            int u = i % 2 ? packed[byte] >> 4 : packed[byte] & 15;
            long q = xs > 0.0f ? (long)roundf(x[c] / xs) : 0;
            dot += (u - 8) * q;
        }
        s = scales[r * gpr + k] * xs;
        s = s > FLT_MAX ? FLT_MAX : s < -FLT_MAX ? -FLT_MAX : s;
        acc = fmaf((float)dot, s, acc);
    }
    return acc;
}

/* The exact product as the header defines it: leaves of the largest power
 * of two at most sqrt(cols) columns, an fmaf chain in each, their sums
 * added in order. */
static float prepared_exact_model(const uint8_t *packed, const float *scales, const float *x,
                                  size_t r, size_t cols, size_t g)
{
    size_t gpr = (cols + g - 1) / g, rb = gpr * ((g + 1) / 2), leaf = 1, start, c;
    float total = 0.0f;
    while ((leaf * 2) * (leaf * 2) <= cols)
        leaf *= 2;
    for (start = 0; start < cols; start += leaf) {
        float acc = 0.0f;
        for (c = start; c < start + leaf && c < cols; c++) {
            size_t i = c % g, byte = r * rb + (c / g) * ((g + 1) / 2) + i / 2;
            int u = i % 2 ? packed[byte] >> 4 : packed[byte] & 15;
            acc = fmaf((float)(u - 8) * scales[r * gpr + c / g], x[c], acc);
        }
        total += acc;
    }
    return total;
}

/* Prepares a matrix of ragged panels and groups, checks both precisions
 * bit for bit against the models above, row ranges and half-precision
 * activations against the whole call, and the bad-input statuses. */
int cq4_harness_prepared(void)
{
    enum { ROWS = 37, COLS = 100, G = 24, GPR = (COLS + G - 1) / G, RB = GPR * G / 2, BATCH = 3 };
    static float w[ROWS * COLS], scales[ROWS * GPR], x[BATCH * COLS];
    static float y[BATCH * ROWS], parts[BATCH * ROWS], canary[BATCH * ROWS];
    static uint16_t x16[BATCH * COLS];
    static uint8_t packed[ROWS * RB];
    cq4_matrix m = {packed, sizeof packed, scales, ROWS * GPR, ROWS, COLS, G};
    size_t size = 0, b, r, i;
    uint8_t *prep;
    int failures = 0;
    uint32_t p;

    for (i = 0; i < ROWS * COLS; i++)
        w[i] = (float)((long)(i * 37 % 101) - 50) / 25.0f;
    /* Multiples of 1/8 below 8: exact in binary16. */
    for (i = 0; i < BATCH * COLS; i++) {
        uint32_t bits;
        x[i] = (float)((long)(i * 53 % 89) - 44) / 8.0f;
        memcpy(&bits, &x[i], sizeof bits);
        if (!f32_to_f16_exact(bits, &x16[i]))
            return 1;
    }
    failures += check_status("prepared: pack", cq4_pack_f32(w, ROWS * COLS, ROWS, COLS, G, packed,
                                                            sizeof packed, scales, ROWS * GPR),
                             CQ4_OK);
    failures += check_status("prepared: size", cq4_prepared_size(ROWS, COLS, G, &size), CQ4_OK);
    /* 3 panels of 16 rows, 5 groups of 24 padded to 3 steps of 64 bytes and
     * 64 bytes of scales, and the 64-byte header. */
    if (size != 64 + 3 * GPR * (3 * 64 + 64)) {
        fprintf(stderr, "prepared: size %zu\n", size);
        return failures + 1;
    }
    prep = malloc(size + 1);
    if (!prep)
        return failures + 1;
    prep[size] = 0xA5;
    failures += check_status("prepared: short output", cq4_prepare(&m, prep, size - 1, NULL),
                             CQ4_ERR_OUTPUT_TOO_SMALL);
    failures += check_status("prepared: prepare", cq4_prepare(&m, prep, size + 1, NULL), CQ4_OK);
    if (prep[size] != 0xA5) {
        fputs("prepared: wrote past its size\n", stderr);
        failures++;
    }
    for (p = CQ4_PRECISION_EXACT; p <= CQ4_PRECISION_INT8; p++) {
        failures += check_status("prepared: matmul",
                                 cq4_prepared_matmul_f32(prep, size, x, BATCH * COLS, BATCH, p, y,
                                                         BATCH * ROWS, NULL),
                                 CQ4_OK);
        for (b = 0; b < BATCH; b++) {
            for (r = 0; r < ROWS; r++) {
                float want = p == CQ4_PRECISION_INT8
                                 ? prepared_int8_model(packed, scales, x + b * COLS, r, COLS, G)
                                 : prepared_exact_model(packed, scales, x + b * COLS, r, COLS, G);
                if (memcmp(&want, &y[b * ROWS + r], sizeof want) != 0) {
                    fprintf(stderr, "prepared precision %u: y[%zu][%zu] = %a, want %a\n",
                            (unsigned)p, b, r, (double)y[b * ROWS + r], (double)want);
                    failures++;
                }
            }
        }
        /* Two row ranges, the cut inside a panel, from separate calls. */
        for (i = 0; i < BATCH * ROWS; i++)
            parts[i] = -1.0f;
        failures += check_status("prepared rows [0,21)",
                                 cq4_prepared_matmul_rows_f32(prep, size, x, BATCH * COLS, BATCH, p, 0,
                                                              21, parts, BATCH * ROWS, ROWS, NULL),
                                 CQ4_OK);
        failures += check_status("prepared rows [21,37) f16",
                                 cq4_prepared_matmul_rows_f16(prep, size, x16, BATCH * COLS, BATCH,
                                                              p, 21, ROWS, parts + 21,
                                                              BATCH * ROWS - 21, ROWS, NULL),
                                 CQ4_OK);
        failures += check_equal("prepared rows", "y", parts, y, sizeof(float), BATCH * ROWS, 0);
    }

    /* Activations quantized once, shared by two row ranges. */
    {
        size_t asize = 0, other_size = 0;
        uint8_t *acts, *other;
        failures += check_status("prepared: activations size",
                                 cq4_activations_size(BATCH, COLS, G, &asize), CQ4_OK);
        /* Per row 5 groups of 24 values (whole steps of 8), then a scale
         * and a correction per group and row. */
        if (asize != 64 + BATCH * GPR * 24 + 8 * BATCH * GPR) {
            fprintf(stderr, "prepared: activations size %zu\n", asize);
            free(prep);
            return failures + 1;
        }
        failures += check_status("prepared: other activations size",
                                 cq4_activations_size(BATCH, COLS, 16, &other_size), CQ4_OK);
        acts = malloc(asize);
        other = malloc(other_size);
        if (!acts || !other) {
            free(acts);
            free(other);
            free(prep);
            return failures + 1;
        }
        failures += check_status("prepared: quantize",
                                 cq4_quantize_activations_f32(x, BATCH * COLS, BATCH, COLS, G, acts,
                                                              asize, NULL),
                                 CQ4_OK);
        failures += check_status("prepared: quantize with g 16",
                                 cq4_quantize_activations_f16(x16, BATCH * COLS, BATCH, COLS, 16,
                                                              other, other_size, NULL),
                                 CQ4_OK);
        failures += check_status("prepared: int8 whole",
                                 cq4_prepared_matmul_f32(prep, size, x, BATCH * COLS, BATCH,
                                                         CQ4_PRECISION_INT8, y, BATCH * ROWS, NULL),
                                 CQ4_OK);
        for (i = 0; i < BATCH * ROWS; i++)
            parts[i] = -1.0f;
        failures += check_status("prepared: quantized rows [0,21)",
                                 cq4_prepared_matmul_rows_int8(prep, size, acts, asize, 0, 21, parts,
                                                               BATCH * ROWS, ROWS, NULL),
                                 CQ4_OK);
        failures += check_status("prepared: quantized rows [21,37)",
                                 cq4_prepared_matmul_rows_int8(prep, size, acts, asize, 21, ROWS,
                                                               parts + 21, BATCH * ROWS - 21, ROWS,
                                                               NULL),
                                 CQ4_OK);
        failures += check_equal("prepared: quantized once", "y", parts, y, sizeof(float),
                                BATCH * ROWS, 0);
        memcpy(canary, parts, sizeof canary);
        failures += check_status("prepared: activations of g 16",
                                 cq4_prepared_matmul_rows_int8(prep, size, other, other_size, 0,
                                                               ROWS, parts, BATCH * ROWS, ROWS,
                                                               NULL),
                                 CQ4_ERR_BAD_ACTIVATIONS);
        failures += check_status("prepared: short activations",
                                 cq4_prepared_matmul_rows_int8(prep, size, acts, asize - 1, 0, ROWS,
                                                               parts, BATCH * ROWS, ROWS, NULL),
                                 CQ4_ERR_INPUT_TOO_SHORT);
        failures += check_status("prepared: matrix as activations",
                                 cq4_prepared_matmul_rows_int8(prep, size, prep, size, 0, ROWS,
                                                               parts, BATCH * ROWS, ROWS, NULL),
                                 CQ4_ERR_BAD_ACTIVATIONS);
        failures += check_status("prepared: activations as matrix",
                                 cq4_prepared_matmul_rows_int8(acts, asize, acts, asize, 0, ROWS,
                                                               parts, BATCH * ROWS, ROWS, NULL),
                                 CQ4_ERR_BAD_PREPARED);
        failures += check_status("prepared: short quantize output",
                                 cq4_quantize_activations_f32(x, BATCH * COLS, BATCH, COLS, G, other,
                                                              asize - 1, NULL),
                                 CQ4_ERR_OUTPUT_TOO_SMALL);
        failures += check_equal("prepared: refused quantized products", "y", parts, canary,
                                sizeof(float), BATCH * ROWS, 0);
        free(acts);
        free(other);
    }

    /* Bad input: each refused with its status, nothing written. */
    {
        cq4_options opt = cq4_options_default();
        uint8_t *bad = malloc(size);
        struct {
            const char *what;
            cq4_status got, want;
        } cases[11];
        size_t n = 0;
        if (!bad) {
            free(prep);
            return failures + 1;
        }
        memcpy(bad, prep, size);
        bad[0] ^= 1; /* the magic */
        for (i = 0; i < BATCH * ROWS; i++)
            canary[i] = y[i] = 12345.0f;
#define CASE(w_, call_, want_) cases[n].what = w_, cases[n].got = call_, cases[n++].want = want_
        CASE("NULL prepared", cq4_prepared_matmul_f32(NULL, size, x, BATCH * COLS, BATCH, 0, y,
                                                      BATCH * ROWS, NULL),
             CQ4_ERR_NULL_POINTER);
        CASE("precision 2", cq4_prepared_matmul_f32(prep, size, x, BATCH * COLS, BATCH, 2, y,
                                                    BATCH * ROWS, NULL),
             CQ4_ERR_BAD_PRECISION);
        CASE("no header", cq4_prepared_matmul_f32(prep, 63, x, BATCH * COLS, BATCH, 0, y,
                                                  BATCH * ROWS, NULL),
             CQ4_ERR_BAD_PREPARED);
        CASE("bad magic", cq4_prepared_matmul_f32(bad, size, x, BATCH * COLS, BATCH, 0, y,
                                                  BATCH * ROWS, NULL),
             CQ4_ERR_BAD_PREPARED);
        CASE("short prepared", cq4_prepared_matmul_f32(prep, size - 1, x, BATCH * COLS, BATCH, 0, y,
                                                       BATCH * ROWS, NULL),
             CQ4_ERR_INPUT_TOO_SHORT);
        CASE("short x", cq4_prepared_matmul_f32(prep, size, x, BATCH * COLS - 1, BATCH, 0, y,
                                                BATCH * ROWS, NULL),
             CQ4_ERR_INPUT_TOO_SHORT);
        CASE("short y", cq4_prepared_matmul_f32(prep, size, x, BATCH * COLS, BATCH, 0, y,
                                                BATCH * ROWS - 1, NULL),
             CQ4_ERR_OUTPUT_TOO_SMALL);
        CASE("y over prepared", cq4_prepared_matmul_f32(prep, size, x, 1 * COLS, 1, 0,
                                                        (float *)(void *)(prep + 64), ROWS, NULL),
             CQ4_ERR_OVERLAPPING_BUFFERS);
        CASE("range past rows", cq4_prepared_matmul_rows_f32(prep, size, x, BATCH * COLS, BATCH, 0,
                                                             3, ROWS + 1, y, BATCH * ROWS, ROWS,
                                                             NULL),
             CQ4_ERR_BAD_ROW_RANGE);
        opt.kernel = 77;
        CASE("bad options", cq4_prepared_matmul_f32(prep, size, x, BATCH * COLS, BATCH, 0, y,
                                                    BATCH * ROWS, &opt),
             CQ4_ERR_BAD_OPTIONS);
        CASE("size of g = 0", cq4_prepared_size(ROWS, COLS, 0, &size), CQ4_ERR_BAD_GROUP_SIZE);
#undef CASE
        for (i = 0; i < n; i++) {
            char ctx[64];
            snprintf(ctx, sizeof ctx, "prepared: %s", cases[i].what);
            failures += check_status(ctx, cases[i].got, cases[i].want);
        }
        failures += check_equal("prepared: refused calls", "y", y, canary, sizeof(float),
                                BATCH * ROWS, 0);
        free(bad);
    }
    free(prep);
    return failures;
}

/* ---------------------------------------------------------------------- */
/* GGML Q4_0 interop                                                      */
/* ---------------------------------------------------------------------- */

/* f16 bits to float, written out here so the check does not trust the
 * library's own conversion. */
static float half_to_float(uint16_t h)
{
    int exp = (h >> 10) & 31, mant = h & 1023;
    float mag = exp == 0 ? ldexpf((float)mant, -24)
              : exp == 31 ? (mant ? NAN : INFINITY)
                          : ldexpf((float)(mant | 1024), exp - 25);
    return (h & 0x8000) ? -mag : mag;
}

static int check_canary(const char *ctx, const uint8_t *buf, size_t n)
{
    if (canary_intact(buf, 1, n))
        return 0;
    fprintf(stderr, "%s: bytes past the output (or of a refused call) were written\n", ctx);
    return 1;
}

/* Quantize to Q4_0, import, unpack: each element equals GGML's decode of
 * the block, (nibble - 8) * d, with element j in the low nibble of byte j
 * and element j + 16 in the high one. Export gives the blocks back. Bad
 * input writes nothing. */
int cq4_harness_q4_0(void)
{
    enum { ROWS = 2, COLS = 64, NB = ROWS * COLS / CQ4_Q4_0_BLOCK, BYTES = NB * CQ4_Q4_0_BLOCK_BYTES };
    static float src[ROWS * COLS], scales[NB + CANARY_N], w[ROWS * COLS];
    static uint8_t blocks[BYTES + CANARY_N], back[BYTES + CANARY_N], packed[ROWS * COLS / 2 + CANARY_N];
    cq4_q4_0_report report;
    int failures = 0;
    size_t i;

    for (i = 0; i < ROWS * COLS; i++)
        src[i] = (float)((long)(i * 29 % 61) - 30) / 7.0f;
    canary_fill(blocks, 1, BYTES + CANARY_N);
    failures += check_status("q4_0: quantize",
                             cq4_q4_0_quantize_f32(src, ROWS * COLS, ROWS, COLS, blocks, BYTES), CQ4_OK);
    failures += check_canary("q4_0: quantize", blocks + BYTES, CANARY_N);
    failures += check_status("q4_0: import",
                             cq4_q4_0_import(blocks, BYTES, ROWS, COLS, packed, ROWS * COLS / 2, scales, NB),
                             CQ4_OK);
    failures += check_status("q4_0: unpack", cq4_unpack_f32(packed, ROWS * COLS / 2, scales, NB, ROWS,
                                                            COLS, CQ4_Q4_0_BLOCK, w, ROWS * COLS),
                             CQ4_OK);
    for (i = 0; i < ROWS * COLS; i++) {
        const uint8_t *blk = blocks + (i / 32) * CQ4_Q4_0_BLOCK_BYTES;
        size_t e = i % 32;
        uint16_t d = (uint16_t)(blk[0] | blk[1] << 8);
        int nibble = e < 16 ? blk[2 + e] & 15 : blk[2 + e - 16] >> 4;
        float want = (float)(nibble - 8) * half_to_float(d);
        if (memcmp(&want, &w[i], sizeof want) != 0) {
            fprintf(stderr, "q4_0: element %zu decodes to %g, GGML gives %g\n", i, w[i], want);
            failures++;
        }
    }
    canary_fill(back, 1, BYTES + CANARY_N);
    report.scales = 0;
    failures += check_status("q4_0: export", cq4_q4_0_export(packed, ROWS * COLS / 2, scales, NB, ROWS,
                                                             COLS, back, BYTES, &report),
                             CQ4_OK);
    if (memcmp(back, blocks, BYTES) != 0 || report.scales != NB || report.overflowed ||
        report.subnormal_loss || report.rounded) {
        fputs("q4_0: export did not give the imported blocks back, or reported a loss\n", stderr);
        failures++;
    }
    failures += check_canary("q4_0: export", back + BYTES, CANARY_N);

    /* Refused calls write nothing. */
    canary_fill(back, 1, BYTES + CANARY_N);
    failures += check_status("q4_0: 48 cols", cq4_q4_0_quantize_f32(src, ROWS * COLS, ROWS, 48, back, BYTES),
                             CQ4_ERR_BAD_COLS);
    failures += check_status("q4_0: short src",
                             cq4_q4_0_quantize_f32(src, ROWS * COLS - 1, ROWS, COLS, back, BYTES),
                             CQ4_ERR_INPUT_TOO_SHORT);
    failures += check_status("q4_0: short blocks",
                             cq4_q4_0_export(packed, ROWS * COLS / 2, scales, NB, ROWS, COLS, back,
                                             BYTES - 1, NULL),
                             CQ4_ERR_OUTPUT_TOO_SMALL);
    failures += check_status("q4_0: overlap",
                             cq4_q4_0_import(blocks, BYTES, ROWS, COLS, blocks, ROWS * COLS / 2, scales, NB),
                             CQ4_ERR_OVERLAPPING_BUFFERS);
    failures += check_canary("q4_0: refused", back, BYTES + CANARY_N);
    return failures;
}

/* ---------------------------------------------------------------------- */
/* Encoders and the quality report                                        */
/* ---------------------------------------------------------------------- */

/* Sum of squared errors of the unpacked matrix, computed here. */
static double squared_error(const float *w, const uint8_t *packed, const float *scales, size_t rows,
                            size_t cols, size_t g, double *signal)
{
    size_t r, c, gpr = (cols + g - 1) / g, rb = gpr * ((g + 1) / 2);
    double e2 = 0;
    *signal = 0;
    for (r = 0; r < rows; r++) {
        for (c = 0; c < cols; c++) {
            size_t k = c / g, i = c % g;
            uint8_t byte = packed[r * rb + k * ((g + 1) / 2) + i / 2];
            int u = i % 2 ? byte >> 4 : byte & 15;
            double d = (double)((float)(u - 8) * scales[r * gpr + k]);
            double x = w[r * cols + c];
            e2 += (x - d) * (x - d);
            *signal += x * x;
        }
    }
    return e2;
}

/* SIGNED puts each group's extreme on the -8 level; SEARCH (with
 * importance) is no worse than ABSMAX; the quality report agrees with the
 * error computed here; bad encoder options write nothing. */
int cq4_harness_encoders(void)
{
    enum { ROWS = 3, COLS = 40, G = 8, GPR = COLS / G, RB = COLS / 2 };
    static float w[ROWS * COLS], importance[COLS], scales[GPR * ROWS + CANARY_N];
    static uint8_t packed[ROWS * RB + CANARY_N];
    cq4_encoder_options enc = cq4_encoder_options_default();
    cq4_quality q;
    double e2[3], signal;
    int failures = 0;
    uint32_t id;
    size_t i, r, k;

    for (i = 0; i < ROWS * COLS; i++)
        w[i] = (float)((long)(i * 41 % 97) - 48) / 11.0f * (float)(1 + i % 7);
    for (i = 0; i < COLS; i++)
        importance[i] = (float)(i % 5);
    for (id = CQ4_ENCODER_ABSMAX; id <= CQ4_ENCODER_SEARCH; id++) {
        enc.encoder = id;
        enc.importance = id == CQ4_ENCODER_SEARCH ? importance : NULL;
        enc.importance_len = id == CQ4_ENCODER_SEARCH ? COLS : 0;
        failures += check_status("encoders: pack",
                                 cq4_pack_encoded_f32(w, ROWS * COLS, ROWS, COLS, G, packed, ROWS * RB,
                                                      scales, ROWS * GPR, NULL, &enc),
                                 CQ4_OK);
        e2[id] = squared_error(w, packed, scales, ROWS, COLS, G, &signal);
        failures += check_status("encoders: quality",
                                 cq4_quality_f32(w, ROWS * COLS, packed, ROWS * RB, scales, ROWS * GPR,
                                                 ROWS, COLS, G, &q),
                                 CQ4_OK);
        if (fabs(q.rmse - sqrt(e2[id] / (ROWS * COLS))) > 1e-12 * q.rmse ||
            fabs(q.snr_db - 10 * log10(signal / e2[id])) > 1e-9) {
            fprintf(stderr, "encoders: quality report (rmse %g, snr %g) disagrees\n", q.rmse, q.snr_db);
            failures++;
        }
        if (id != CQ4_ENCODER_SIGNED)
            continue;
        for (r = 0; r < ROWS; r++) {
            for (k = 0; k < GPR; k++) {
                size_t first = 0;
                const float *grp = w + r * COLS + k * G;
                for (i = 1; i < G; i++)
                    if (fabsf(grp[i]) > fabsf(grp[first]))
                        first = i;
                {
                    uint8_t byte = packed[r * RB + k * (G / 2) + first / 2];
                    int u = first % 2 ? byte >> 4 : byte & 15;
                    if (u != 0 || scales[r * GPR + k] != grp[first] / -8.0f) {
                        fprintf(stderr, "encoders: signed group %zu,%zu: nibble %d, scale %g\n", r, k, u,
                                scales[r * GPR + k]);
                        failures++;
                    }
                }
            }
        }
    }
    if (!(e2[CQ4_ENCODER_SIGNED] < e2[CQ4_ENCODER_ABSMAX])) {
        fputs("encoders: signed is not better than absmax on this matrix\n", stderr);
        failures++;
    }

    /* Refused calls write nothing. */
    canary_fill(packed, 1, ROWS * RB + CANARY_N);
    enc.encoder = CQ4_ENCODER_SEARCH;
    enc.importance = importance;
    enc.importance_len = COLS;
    importance[7] = -1.0f;
    failures += check_status("encoders: negative importance",
                             cq4_pack_encoded_f32(w, ROWS * COLS, ROWS, COLS, G, packed, ROWS * RB, scales,
                                                  ROWS * GPR, NULL, &enc),
                             CQ4_ERR_BAD_IMPORTANCE);
    importance[7] = 1.0f;
    enc.importance_len = COLS - 1;
    failures += check_status("encoders: short importance",
                             cq4_pack_encoded_f32(w, ROWS * COLS, ROWS, COLS, G, packed, ROWS * RB, scales,
                                                  ROWS * GPR, NULL, &enc),
                             CQ4_ERR_INPUT_TOO_SHORT);
    enc.encoder = CQ4_ENCODER_SIGNED;
    failures += check_status("encoders: importance without search",
                             cq4_pack_encoded_f32(w, ROWS * COLS, ROWS, COLS, G, packed, ROWS * RB, scales,
                                                  ROWS * GPR, NULL, &enc),
                             CQ4_ERR_BAD_OPTIONS);
    failures += check_canary("encoders: refused", packed, ROWS * RB + CANARY_N);
    return failures;
}

/* ---------------------------------------------------------------------- */
/* The calibration Hessian and the error-compensating encoder              */
/* ---------------------------------------------------------------------- */

/* cq4_encoder_options as version 0.2 of the header declared it. */
typedef struct {
    uint32_t struct_size;
    uint32_t encoder;
    const float *importance;
    size_t importance_len;
} encoder_options_0_2;

/* sum over the rows of ((W - decoded) x)^2: the layer's output error on
 * the calibration activations. */
static double output_error(const float *w, const uint8_t *packed, const float *scales,
                           const float *x, size_t n, size_t rows, size_t cols, size_t g)
{
    size_t k, r, c, gpr = (cols + g - 1) / g, rb = gpr * ((g + 1) / 2);
    double e2 = 0;
    for (k = 0; k < n; k++) {
        for (r = 0; r < rows; r++) {
            double y = 0;
            for (c = 0; c < cols; c++) {
                size_t grp = c / g, i = c % g;
                uint8_t byte = packed[r * rb + grp * ((g + 1) / 2) + i / 2];
                int u = i % 2 ? byte >> 4 : byte & 15;
                double d = (double)((float)(u - 8) * scales[r * gpr + grp]);
                y += ((double)w[r * cols + c] - d) * x[k * cols + c];
            }
            e2 += y * y;
        }
    }
    return e2;
}

/* Calibrate, then pack: the Hessian of two batches equals that of one and
 * the sums computed here (the values make every sum exact), from f32, f16
 * and bf16 alike; the error-compensating pack is the same on every thread
 * count and has less output error on the calibration activations than the
 * default encoder; 0.2's struct is still read; bad calls write nothing. */
int cq4_harness_hessian(void)
{
    enum { ROWS = 8, COLS = 48, G = 16, N = 96, GPR = COLS / G, RB = COLS / 2, HL = COLS * COLS };
    static float w[ROWS * COLS], x[N * COLS], scales[ROWS * GPR + CANARY_N];
    static float scales2[ROWS * GPR + CANARY_N];
    static uint16_t x16[N * COLS], xb16[N * COLS];
    static double h[HL + CANARY_N], h2[HL], want[HL];
    static uint8_t packed[ROWS * RB + CANARY_N], packed2[ROWS * RB + CANARY_N];
    cq4_encoder_options enc = cq4_encoder_options_default();
    encoder_options_0_2 old;
    cq4_options pool = cq4_options_default();
    double ec_error, absmax_error, indefinite[4] = {1, 2, 2, 1};
    int failures = 0;
    size_t i, j, k, n = 0;

    failures += check_status("hessian: size", cq4_hessian_size(COLS, &n), CQ4_OK);
    if (n != HL) {
        fprintf(stderr, "hessian: size %zu, want %d\n", n, HL);
        failures++;
    }
    n = 7;
    failures += check_status("hessian: size overflow", cq4_hessian_size(SIZE_MAX / 2, &n),
                             CQ4_ERR_SIZE_OVERFLOW);
    failures += n != 7;

    /* Multiples of 1/16 below 8: f16 and bf16 hold them, f64 sums them
     * exactly. Columns 5 and 6 move together. */
    for (i = 0; i < N * COLS; i++) {
        long v = (long)((i * 2654435761u) >> 7 & 255) - 128;
        x[i] = (float)v / 16.0f;
        if (i % COLS == 6)
            x[i] = x[i - 1] * 0.5f;
    }
    for (i = 0; i < N * COLS; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], 4);
        if (!f32_to_f16_exact(bits, &x16[i])) {
            fprintf(stderr, "hessian: %g is not an f16\n", x[i]);
            return failures + 1;
        }
        xb16[i] = (uint16_t)(bits >> 16);
    }
    for (i = 0; i < COLS; i++)
        for (j = 0; j < COLS; j++)
            for (k = 0, want[i * COLS + j] = 0; k < N; k++)
                want[i * COLS + j] += (double)x[k * COLS + i] * x[k * COLS + j];

    /* One call, two calls, each element type. */
    memset(h, 0, sizeof h);
    canary_fill(h + HL, 1, CANARY_N * sizeof(double));
    failures += check_status("hessian: f32", cq4_hessian_accumulate_f32(x, N * COLS, N, COLS, h, HL, NULL),
                             CQ4_OK);
    failures += check_equal("hessian: f32", "H", h, want, 1, sizeof want, 0);
    failures += check_canary("hessian: past H", (const uint8_t *)(h + HL), CANARY_N * sizeof(double));
    memset(h2, 0, sizeof h2);
    pool.threads = 0;
    failures += check_status("hessian: f16, 1/2",
                             cq4_hessian_accumulate_f16(x16, 40 * COLS, 40, COLS, h2, HL, &pool), CQ4_OK);
    failures += check_status("hessian: f16, 2/2",
                             cq4_hessian_accumulate_f16(x16 + 40 * COLS, (N - 40) * COLS, N - 40, COLS, h2,
                                                        HL, &pool),
                             CQ4_OK);
    failures += check_equal("hessian: f16 in two calls", "H", h2, want, 1, sizeof want, 0);
    memset(h2, 0, sizeof h2);
    failures += check_status("hessian: bf16", cq4_hessian_accumulate_bf16(xb16, N * COLS, N, COLS, h2, HL, NULL),
                             CQ4_OK);
    failures += check_equal("hessian: bf16", "H", h2, want, 1, sizeof want, 0);

    /* Pack with it: the same bytes on the pool, less output error on the
     * calibration activations than absmax / 7. */
    for (i = 0; i < ROWS * COLS; i++)
        w[i] = (float)((long)(i * 41 % 97) - 48) / 13.0f * (float)(1 + i % 5);
    enc.encoder = CQ4_ENCODER_ERROR_COMPENSATING;
    enc.hessian = h;
    enc.hessian_len = HL;
    failures += check_status("hessian: pack",
                             cq4_pack_encoded_f32(w, ROWS * COLS, ROWS, COLS, G, packed, ROWS * RB, scales,
                                                  ROWS * GPR, NULL, &enc),
                             CQ4_OK);
    failures += check_status("hessian: pack on the pool",
                             cq4_pack_encoded_f32(w, ROWS * COLS, ROWS, COLS, G, packed2, ROWS * RB, scales2,
                                                  ROWS * GPR, &pool, &enc),
                             CQ4_OK);
    failures += check_equal("hessian: pool", "packed", packed2, packed, 1, ROWS * RB, 0);
    failures += check_equal("hessian: pool", "scales", scales2, scales, 4, ROWS * GPR, 0);
    ec_error = output_error(w, packed, scales, x, N, ROWS, COLS, G);
    failures += check_status("hessian: absmax",
                             cq4_pack_f32(w, ROWS * COLS, ROWS, COLS, G, packed2, ROWS * RB, scales2,
                                          ROWS * GPR),
                             CQ4_OK);
    absmax_error = output_error(w, packed2, scales2, x, N, ROWS, COLS, G);
    if (!(ec_error < absmax_error)) {
        fprintf(stderr, "hessian: output error %g, absmax / 7's %g\n", ec_error, absmax_error);
        failures++;
    }

    /* 0.2's struct: read as far as it goes. */
    old.struct_size = (uint32_t)sizeof old;
    old.encoder = CQ4_ENCODER_SIGNED;
    old.importance = NULL;
    old.importance_len = 0;
    failures += check_status("hessian: 0.2's struct",
                             cq4_pack_encoded_f32(w, ROWS * COLS, ROWS, COLS, G, packed, ROWS * RB, scales,
                                                  ROWS * GPR, NULL, (const cq4_encoder_options *)(const void *)&old),
                             CQ4_OK);
    enc = cq4_encoder_options_default();
    enc.encoder = CQ4_ENCODER_SIGNED;
    failures += check_status("hessian: signed",
                             cq4_pack_encoded_f32(w, ROWS * COLS, ROWS, COLS, G, packed2, ROWS * RB, scales2,
                                                  ROWS * GPR, NULL, &enc),
                             CQ4_OK);
    failures += check_equal("hessian: 0.2's struct", "packed", packed, packed2, 1, ROWS * RB, 0);

    /* Refused calls write nothing. */
    memcpy(h2, h, sizeof h2);
    canary_fill(packed, 1, ROWS * RB + CANARY_N);
    canary_fill(scales, 4, ROWS * GPR + CANARY_N);
#define PACK(enc_) cq4_pack_encoded_f32(w, ROWS * COLS, ROWS, COLS, G, packed, ROWS * RB, scales, ROWS * GPR, \
                                        NULL, enc_)
    enc = cq4_encoder_options_default();
    enc.hessian = h;
    enc.hessian_len = HL;
    failures += check_status("hessian: given to absmax", PACK(&enc), CQ4_ERR_BAD_OPTIONS);
    enc.encoder = CQ4_ENCODER_ERROR_COMPENSATING;
    enc.hessian = NULL;
    failures += check_status("hessian: not given", PACK(&enc), CQ4_ERR_BAD_OPTIONS);
    enc.hessian = h;
    enc.damping = NAN;
    failures += check_status("hessian: NaN damping", PACK(&enc), CQ4_ERR_BAD_OPTIONS);
    enc.damping = -1;
    failures += check_status("hessian: negative damping", PACK(&enc), CQ4_ERR_BAD_OPTIONS);
    enc.damping = 0.05;
    enc.hessian_len = HL - 1;
    failures += check_status("hessian: short", PACK(&enc), CQ4_ERR_INPUT_TOO_SHORT);
    enc.hessian_len = HL;
    h[1] += 1.0;
    failures += check_status("hessian: asymmetric", PACK(&enc), CQ4_ERR_BAD_HESSIAN);
    h[1] -= 1.0;
    failures += check_status("hessian: packed in H",
                             cq4_pack_encoded_f32(w, ROWS * COLS, ROWS, COLS, G, (uint8_t *)(void *)(h + 5),
                                                  ROWS * RB, scales, ROWS * GPR, NULL, &enc),
                             CQ4_ERR_OVERLAPPING_BUFFERS);
    enc.hessian = indefinite;
    enc.hessian_len = 4;
    enc.damping = 0;
    failures += check_status("hessian: indefinite",
                             cq4_pack_encoded_f32(w, 4, 2, 2, 2, packed, 2, scales, 2, NULL, &enc),
                             CQ4_ERR_BAD_HESSIAN);
#undef PACK
    failures += check_canary("hessian: refused packs", packed, ROWS * RB + CANARY_N);
    if (!canary_intact(scales, 4, ROWS * GPR + CANARY_N)) {
        fputs("hessian: refused packs wrote scales\n", stderr);
        failures++;
    }
    failures += check_status("hessian: x in H",
                             cq4_hessian_accumulate_f32((const float *)(const void *)(h + 1), 8, 2, 4, h, 16,
                                                        NULL),
                             CQ4_ERR_OVERLAPPING_BUFFERS);
    failures += check_status("hessian: H short", cq4_hessian_accumulate_f32(x, N * COLS, N, COLS, h, HL - 1, NULL),
                             CQ4_ERR_OUTPUT_TOO_SMALL);
    failures += check_status("hessian: x short", cq4_hessian_accumulate_f32(x, N * COLS - 1, N, COLS, h, HL, NULL),
                             CQ4_ERR_INPUT_TOO_SHORT);
    failures += check_status("hessian: NULL", cq4_hessian_accumulate_bf16(NULL, 0, 0, COLS, h, HL, NULL),
                             CQ4_ERR_NULL_POINTER);
    failures += check_equal("hessian: refused accumulates", "H", h, h2, 1, sizeof h2, 0);
    return failures;
}
