/* The compiled Postfix log reader: the same reconstruction as postfix_log.PostfixLogReader,
 * written for speed, with the Python reader as its reference.
 *
 * It reads blocks of complete lines (bytes), parses the common lines itself (the classic
 * syslog, ISO 8601 and RFC 5424 envelopes; connect, disconnect, TLS established, client=,
 * message-id=, queue active, removed, pickup, delivery status, bounce notice, smtpd's session
 * problems and rejects, smtp's remote problems, diagnostics, and the lines of daemons without
 * a parser and of other programs, which it counts per hour unless they are kept raw), and
 * hands every other line to a Python callback that runs the reference parsers
 * (postfix_envelope, postfix_messages). Either way the event is
 * applied to one state machine, a line-for-line port of PostfixLogReader._apply, and the
 * rows are written into column buffers (no Python object per value) that the wrapper
 * (postfix_fast.py) turns into Arrow arrays.
 *
 * A line the fast parsers accept gives exactly the event the Python parser gives; anything
 * unusual (non-ASCII, an odd shape) is declined and goes to Python. The differential tests
 * (tests/lab_ingest/test_postfix_fast.py) hold the two readers to the same rows.
 * Row keys are the reference's: BLAKE2b (RFC 7693) with an 8-byte digest of the fields
 * joined by 0x1f, read as a signed big-endian 64-bit integer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define NONE_I64 INT64_MIN

/* ------------------------------------------------------------------ BLAKE2b, RFC 7693 */
static const uint64_t B2_IV[8] = {
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL, 0xA54FF53A5F1D36F1ULL,
    0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL, 0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL};
static const uint8_t B2_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

typedef struct { uint64_t h[8], t[2]; uint8_t b[128]; size_t c; } B2;

#define ROTR64(x, y) (((x) >> (y)) ^ ((x) << (64 - (y))))
#define B2G(a, b, c, d, x, y) do { \
    v[a] = v[a] + v[b] + (x); v[d] = ROTR64(v[d] ^ v[a], 32); \
    v[c] = v[c] + v[d]; v[b] = ROTR64(v[b] ^ v[c], 24); \
    v[a] = v[a] + v[b] + (y); v[d] = ROTR64(v[d] ^ v[a], 16); \
    v[c] = v[c] + v[d]; v[b] = ROTR64(v[b] ^ v[c], 63); } while (0)

static void b2_compress(B2 *ctx, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) { v[i] = ctx->h[i]; v[i + 8] = B2_IV[i]; }
    v[12] ^= ctx->t[0];
    v[13] ^= ctx->t[1];
    if (last) v[14] = ~v[14];
    for (int i = 0; i < 16; i++) {
        const uint8_t *p = ctx->b + 8 * i;
        m[i] = (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24)
             | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
    }
    for (int i = 0; i < 12; i++) {
        const uint8_t *s = B2_SIGMA[i];
        B2G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) ctx->h[i] ^= v[i] ^ v[i + 8];
}

/* The signed big-endian integer of an 8-byte BLAKE2b digest of data (no key). */
static int64_t blake2b_key(const char *data, size_t n) {
    B2 ctx;
    for (int i = 0; i < 8; i++) ctx.h[i] = B2_IV[i];
    ctx.h[0] ^= 0x01010000ULL ^ 8ULL;          /* digest length 8, no key */
    ctx.t[0] = ctx.t[1] = 0;
    ctx.c = 0;
    for (size_t i = 0; i < n; i++) {
        if (ctx.c == 128) {
            ctx.t[0] += 128;
            if (ctx.t[0] < 128) ctx.t[1]++;
            b2_compress(&ctx, 0);
            ctx.c = 0;
        }
        ctx.b[ctx.c++] = (uint8_t)data[i];
    }
    ctx.t[0] += ctx.c;
    if (ctx.t[0] < ctx.c) ctx.t[1]++;
    while (ctx.c < 128) ctx.b[ctx.c++] = 0;
    b2_compress(&ctx, 1);
    uint64_t out = 0;
    for (int i = 0; i < 8; i++) out = (out << 8) | ((ctx.h[i >> 3] >> (8 * (i & 7))) & 0xFF);
    return (int64_t)out;
}

/* ------------------------------------------------------------------ strings and times */
typedef struct { const char *p; Py_ssize_t n; } Slice;     /* p == NULL: None */
/* An owned copy; p == NULL: None. A short text lives in the struct itself (most host names,
 * queue ids, addresses and TLS names: no malloc), so a Str must not move once set: the open
 * states are heap objects that never do; list items (StrVec) use str_set_heap. */
#define STR_SMALL 40
typedef struct { char *p; Py_ssize_t n; char small[STR_SMALL]; } Str;

static const Slice NONE_SLICE = {NULL, 0};

static Slice sl(const char *p, Py_ssize_t n) { Slice s = {p, n}; return s; }
static Slice sl_c(const char *p) { return sl(p, (Py_ssize_t)strlen(p)); }
static Slice sl_of(const Str *s) { return sl(s->p, s->n); }

static void str_free(Str *s) {
    if (s->p != NULL && s->p != s->small) free(s->p);
    s->p = NULL;
    s->n = 0;
}
static int str_copy(Str *dst, Slice src, int inline_ok) {
    str_free(dst);
    if (src.p == NULL) return 0;
    if (inline_ok && src.n < STR_SMALL) {
        dst->p = dst->small;
    } else {
        dst->p = malloc(src.n + 1);
        if (dst->p == NULL) { PyErr_NoMemory(); return -1; }
    }
    memcpy(dst->p, src.p, src.n);
    dst->p[src.n] = 0;
    dst->n = src.n;
    return 0;
}
static int str_set(Str *dst, Slice src) { return str_copy(dst, src, 1); }
static int str_set_heap(Str *dst, Slice src) { return str_copy(dst, src, 0); }

static int sl_eq(Slice a, Slice b) {
    if (a.p == NULL || b.p == NULL) return a.p == NULL && b.p == NULL;
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}
static int sl_is(Slice a, const char *lit) {
    size_t n = strlen(lit);
    return a.p != NULL && (size_t)a.n == n && memcmp(a.p, lit, n) == 0;
}
static int starts(const char *p, Py_ssize_t n, const char *lit) {
    size_t k = strlen(lit);
    return (size_t)n >= k && memcmp(p, lit, k) == 0;
}

/* A growing byte buffer (row-key text, column data). */
typedef struct { char *p; Py_ssize_t n, cap; } Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->n + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    b->p = p;
    b->cap = cap;
    return 0;
}
static inline int buf_add(Buf *b, const void *p, Py_ssize_t n) {
    if (b->n + n > b->cap && buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}
/* fixed-size appends without a call to memcpy */
static inline int buf_u8(Buf *b, uint8_t v) {
    if (b->n + 1 > b->cap && buf_reserve(b, 1) < 0) return -1;
    b->p[b->n++] = (char)v;
    return 0;
}
static inline int buf_i32(Buf *b, int32_t v) {
    if (b->n + 4 > b->cap && buf_reserve(b, 4) < 0) return -1;
    memcpy(b->p + b->n, &v, 4);     /* a fixed-size memcpy compiles to one store */
    b->n += 4;
    return 0;
}
static inline int buf_i64(Buf *b, int64_t v) {
    if (b->n + 8 > b->cap && buf_reserve(b, 8) < 0) return -1;
    memcpy(b->p + b->n, &v, 8);
    b->n += 8;
    return 0;
}

/* Python's str(datetime) of a UTC time: 'YYYY-MM-DD HH:MM:SS[.ffffff]+00:00'. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}
static char *put_digits(char *o, int64_t v, int width) {
    for (int k = width - 1; k >= 0; k--) { o[k] = (char)('0' + v % 10); v /= 10; }
    return o + width;
}
static int fmt_ts(char *out, int64_t us) {
    /* by hand, not sprintf: a log with a distinct microsecond on every line formats one per row */
    int64_t days = us >= 0 ? us / 86400000000LL : -((-us + 86400000000LL - 1) / 86400000000LL);
    int64_t rest = us - days * 86400000000LL;
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    int64_t secs = rest / 1000000, micro = rest % 1000000;
    if (y < 0 || y > 9999)
        return sprintf(out, "%04lld-%02u-%02u %02lld:%02lld:%02lld.%06lld+00:00", (long long)y, mo, d,
                       (long long)(secs / 3600), (long long)(secs / 60 % 60), (long long)(secs % 60),
                       (long long)micro);
    char *o = put_digits(out, y, 4);
    *o++ = '-'; o = put_digits(o, mo, 2); *o++ = '-'; o = put_digits(o, d, 2); *o++ = ' ';
    o = put_digits(o, secs / 3600, 2); *o++ = ':'; o = put_digits(o, secs / 60 % 60, 2); *o++ = ':';
    o = put_digits(o, secs % 60, 2);
    if (micro) { *o++ = '.'; o = put_digits(o, micro, 6); }
    memcpy(o, "+00:00", 6);
    return (int)(o + 6 - out);
}

/* A key part: text, integer, time or boolean; None is ''. */
typedef enum { P_STR, P_INT, P_TS, P_BOOL } PartKind;
typedef struct { PartKind kind; Slice s; int64_t i; } Part;
static Part pt_s(Slice s) { Part p = {P_STR, s, 0}; return p; }
static Part pt_c(const char *c) { return pt_s(sl_c(c)); }
static Part pt_i(int64_t i) { Part p = {P_INT, NONE_SLICE, i}; return p; }
static Part pt_t(int64_t t) { Part p = {P_TS, NONE_SLICE, t}; return p; }
static Part pt_b(int b) { Part p = {P_BOOL, NONE_SLICE, b}; return p; }

/* The text of the last time formatted (lines of one second share it). */
typedef struct { int64_t us; int n; char text[48]; } TsMemo;

static int put_int_text(char *out, int64_t v) {
    char tmp[24];
    int n = 0, neg = v < 0;
    uint64_t u = neg ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    int k = 0;
    if (neg) out[k++] = '-';
    while (n) out[k++] = tmp[--n];
    return k;
}

static int row_key(Buf *scratch, TsMemo *memo, const Part *parts, int n, int64_t *out) {
    if (buf_reserve(scratch, 256) < 0) return -1;
    scratch->n = 0;
    for (int i = 0; i < n; i++) {
        if (buf_reserve(scratch, 64) < 0) return -1;
        if (i) scratch->p[scratch->n++] = '\x1f';
        const Part *p = parts + i;
        switch (p->kind) {
        case P_STR:
            if (p->s.p && buf_add(scratch, p->s.p, p->s.n) < 0) return -1;
            break;
        case P_INT:
            if (p->i != NONE_I64) scratch->n += put_int_text(scratch->p + scratch->n, p->i);
            break;
        case P_TS:
            if (p->i != NONE_I64) {
                if (memo->n == 0 || memo->us != p->i) {
                    memo->n = fmt_ts(memo->text, p->i);
                    memo->us = p->i;
                }
                memcpy(scratch->p + scratch->n, memo->text, memo->n);
                scratch->n += memo->n;
            }
            break;
        case P_BOOL:
            if (p->i) { memcpy(scratch->p + scratch->n, "True", 4); scratch->n += 4; }
            else { memcpy(scratch->p + scratch->n, "False", 5); scratch->n += 5; }
            break;
        }
    }
    *out = blake2b_key(scratch->p, (size_t)scratch->n);
    return 0;
}

/* ------------------------------------------------------------------ column buffers */
typedef enum { K_I64, K_F64, K_BOOL, K_TS, K_STR, K_LIST } ColKind;
typedef struct {
    const char *name;
    ColKind kind;
    Buf valid;     /* one byte per row: 1 valid, 0 null */
    Buf data;      /* int64 / double / one byte per bool / string bytes */
    Buf offsets;   /* int32 string offsets (K_STR), list offsets (K_LIST) */
    Buf child_offsets, child_data;   /* K_LIST: the strings */
    Py_ssize_t nchild;
} Col;

typedef struct { const char *name; int ncols; Col *cols; Py_ssize_t nrows; } Table;

static int col_start(Col *c) {
    /* string and list columns start with offset 0 */
    if ((c->kind == K_STR || c->kind == K_LIST) && c->offsets.n == 0) {
        int32_t z = 0;
        if (buf_add(&c->offsets, &z, 4) < 0) return -1;
        if (c->kind == K_LIST && buf_add(&c->child_offsets, &z, 4) < 0) return -1;
    }
    return 0;
}
static inline int col_valid(Col *c, int v) { return buf_u8(&c->valid, (uint8_t)(v != 0)); }
static inline int put_i64(Col *c, int64_t v) {
    if (col_valid(c, v != NONE_I64) < 0) return -1;
    return buf_i64(&c->data, v == NONE_I64 ? 0 : v);
}
static inline int put_f64(Col *c, double v) {
    if (col_valid(c, !isnan(v)) < 0) return -1;
    if (isnan(v)) v = 0;
    int64_t bits;
    memcpy(&bits, &v, 8);
    return buf_i64(&c->data, bits);
}
static inline int put_bool(Col *c, int v) {
    if (col_valid(c, 1) < 0) return -1;
    return buf_u8(&c->data, (uint8_t)(v != 0));
}
static inline int put_str(Col *c, Slice s) {
    if ((c->offsets.n == 0 && col_start(c) < 0) || col_valid(c, s.p != NULL) < 0) return -1;
    if (s.p && s.n && buf_add(&c->data, s.p, s.n) < 0) return -1;
    if (c->data.n > INT32_MAX) { PyErr_SetString(PyExc_OverflowError, "column batch over 2 GiB"); return -1; }
    return buf_i32(&c->offsets, (int32_t)c->data.n);
}

typedef struct { Str *items; Py_ssize_t n, cap; } StrVec;

static int vec_add(StrVec *v, Slice s) {
    if (v->n == v->cap) {
        Py_ssize_t cap = v->cap ? v->cap * 2 : 4;
        Str *p = realloc(v->items, cap * sizeof(Str));
        if (p == NULL) { PyErr_NoMemory(); return -1; }
        v->items = p;
        v->cap = cap;
    }
    v->items[v->n].p = NULL;
    v->items[v->n].n = 0;
    if (str_set_heap(&v->items[v->n], s) < 0) return -1;     /* the array moves when it grows */
    v->n++;
    return 0;
}
static void vec_free(StrVec *v) {
    for (Py_ssize_t i = 0; i < v->n; i++) str_free(&v->items[i]);
    free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}
static int put_list(Col *c, const StrVec *v) {
    if (col_start(c) < 0 || col_valid(c, 1) < 0) return -1;
    for (Py_ssize_t i = 0; i < v->n; i++) {
        if (buf_add(&c->child_data, v->items[i].p ? v->items[i].p : "", v->items[i].n) < 0) return -1;
        int32_t end = (int32_t)c->child_data.n;
        if (buf_add(&c->child_offsets, &end, 4) < 0) return -1;
        c->nchild++;
    }
    int32_t end = (int32_t)c->nchild;
    return buf_add(&c->offsets, &end, 4);
}

static void col_reset(Col *c) {
    c->valid.n = c->data.n = c->offsets.n = c->child_offsets.n = c->child_data.n = 0;
    c->nchild = 0;
}
static void col_free(Col *c) {
    free(c->valid.p); free(c->data.p); free(c->offsets.p); free(c->child_offsets.p); free(c->child_data.p);
    memset(&c->valid, 0, sizeof(Buf)); memset(&c->data, 0, sizeof(Buf)); memset(&c->offsets, 0, sizeof(Buf));
    memset(&c->child_offsets, 0, sizeof(Buf)); memset(&c->child_data, 0, sizeof(Buf));
}

/* The tables, column for column the fields of postfix_log's row NamedTuples. */
#define S(n) {n, K_STR}
#define I(n) {n, K_I64}
#define T(n) {n, K_TS}
#define F(n) {n, K_F64}
#define B(n) {n, K_BOOL}
#define L(n) {n, K_LIST}
typedef struct { const char *name; ColKind kind; } ColDef;
static const ColDef SESSION_COLS[] = {
    I("session_key"), S("host"), S("instance"), S("program"), I("pid"), T("connect_at"), T("disconnect_at"),
    T("first_seen_at"), S("client_name"), S("client_addr"), I("client_port"), S("tls_trust"),
    S("tls_protocol"), S("tls_cipher"), S("tls_cipher_bits"), S("tls_key_exchange"),
    S("tls_server_signature"), S("tls_problem"), L("queue_ids"), L("rejects"), S("end_problem"),
    S("commands"), B("complete"), I("session_seq"), I("source_line")};
static const ColDef MESSAGE_COLS[] = {
    I("message_key"), S("host"), S("instance"), S("queue_id"), T("first_seen_at"), T("queued_at"),
    T("removed_at"), S("origin"), I("session_key"), S("client_name"), S("client_addr"), S("tls_trust"),
    S("tls_protocol"), S("tls_cipher"), S("message_id"), S("sender"), I("size"), I("nrcpt"),
    S("notice_for_queue_id"), B("expired"), B("complete"), I("source_line")};
static const ColDef DELIVERY_COLS[] = {
    I("delivery_key"), T("logged_at"), S("host"), S("instance"), S("program"), S("daemon"), I("pid"),
    S("queue_id"), I("message_key"), S("sender"), S("message_id"), S("recipient"), S("orig_recipient"),
    S("relay"), S("relay_host"), S("relay_addr"), I("relay_port"), I("conn_use"), F("delay"),
    F("delay_before_qmgr"), F("delay_in_qmgr"), F("delay_conn_setup"), F("delay_transmission"),
    S("tls_feature"), S("dsn"), S("status"), S("reason"), B("reason_truncated"), S("tls_trust"), S("tls_protocol"),
    S("tls_cipher"), S("tls_cipher_bits"), S("tls_problem"), I("source_line")};
static const ColDef NOTICE_COLS[] = {
    I("notice_key"), T("logged_at"), S("host"), S("instance"), S("queue_id"), I("message_key"),
    S("notice_recipient"), S("notice_kind"), S("notice_queue_id"), I("source_line")};
static const ColDef RESOLVER_COLS[] = {
    I("event_key"), T("logged_at"), S("host"), S("program"), I("pid"), S("level"), S("logger"),
    S("event"), S("domain"), S("detail"), I("source_line")};
static const ColDef OTHER_COLS[] = {
    I("line_key"), T("logged_at"), S("host"), S("program"), I("pid"), S("daemon"), S("queue_id"),
    S("kind"), S("message"), I("source_line")};
static const ColDef COUNT_COLS[] = {
    I("count_key"), T("hour"), S("host"), S("program"), S("daemon"), S("kind"), T("first_logged_at"),
    T("last_logged_at"), I("lines"), B("complete"), I("source_line")};
#undef S
#undef I
#undef T
#undef F
#undef B
#undef L

enum { TB_SESSION, TB_MESSAGE, TB_DELIVERY, TB_NOTICE, TB_RESOLVER, TB_OTHER, TB_COUNT, N_TABLES };
static const char *TABLE_NAMES[N_TABLES] = {"SessionRow", "MessageRow", "DeliveryRow", "NoticeRow",
                                            "ResolverRow", "OtherRow", "OtherCountRow"};
static const ColDef *TABLE_DEFS[N_TABLES] = {SESSION_COLS, MESSAGE_COLS, DELIVERY_COLS, NOTICE_COLS,
                                             RESOLVER_COLS, OTHER_COLS, COUNT_COLS};
static const int TABLE_NCOLS[N_TABLES] = {
    sizeof(SESSION_COLS) / sizeof(ColDef), sizeof(MESSAGE_COLS) / sizeof(ColDef),
    sizeof(DELIVERY_COLS) / sizeof(ColDef), sizeof(NOTICE_COLS) / sizeof(ColDef),
    sizeof(RESOLVER_COLS) / sizeof(ColDef), sizeof(OTHER_COLS) / sizeof(ColDef),
    sizeof(COUNT_COLS) / sizeof(ColDef)};

/* ------------------------------------------------------------------ events */
typedef enum {
    EV_CONNECT, EV_DISCONNECT, EV_SESSION_PROBLEM, EV_TLS, EV_TLS_PROBLEM, EV_CLIENT, EV_REJECTED,
    EV_MESSAGE_ID, EV_QUEUE_ACTIVE, EV_REMOVED, EV_EXPIRED, EV_PICKUP, EV_DELIVERY, EV_NOTICE,
    EV_REMOTE_PROBLEM, EV_DIAGNOSTIC, N_EVENTS
} EvKind;

/* The classes of postfix_messages, in EvKind order (for events that come from Python). */
static const char *EVENT_CLASS_NAMES[N_EVENTS] = {
    "Connect", "Disconnect", "SessionProblem", "TlsEstablished", "TlsProblem", "ClientQueued",
    "Rejected", "MessageIdSeen", "QueueActive", "Removed", "Expired", "Pickup", "Delivery", "Notice",
    "RemoteProblem", "Diagnostic"};

typedef struct {
    EvKind kind;
    Slice queue_id, name, addr, commands, problem, stage, detail;
    int64_t port;
    /* TLS established */
    Slice trust, protocol, cipher, bits, kex, sig;
    /* rejected / diagnostic */
    Slice action, status_code, enhanced_code, status_message, level, diag_peer_addr;
    Slice message_id, sender;
    int64_t size, nrcpt;
    /* delivery */
    Slice recipient, orig_recipient, relay, relay_host, relay_addr, tls_feature, dsn, status, reason;
    int reason_truncated;
    int64_t relay_port, conn_use;
    double delay, d[4];
    /* notice */
    Slice notice_recipient, notice_kind, notice_queue_id;
} Ev;

static void ev_clear(Ev *e, EvKind kind) {
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->port = e->size = e->nrcpt = e->relay_port = e->conn_use = NONE_I64;
    e->delay = e->d[0] = e->d[1] = e->d[2] = e->d[3] = NAN;
}

/* The envelope of a line. */
typedef struct {
    int64_t ts;
    Slice host, program, message;
    int64_t pid;
} Env;

/* ------------------------------------------------------------------ state */
typedef struct {
    int refs;
    Str trust, protocol, cipher, bits, kex, sig, peer_name, peer_addr;
} Tls;

static void tls_decref(Tls *t) {
    if (t == NULL || --t->refs > 0) return;
    str_free(&t->trust); str_free(&t->protocol); str_free(&t->cipher); str_free(&t->bits);
    str_free(&t->kex); str_free(&t->sig); str_free(&t->peer_name); str_free(&t->peer_addr);
    free(t);
}
static Tls *tls_new(const Ev *e) {
    Tls *t = calloc(1, sizeof(Tls));
    if (t == NULL) { PyErr_NoMemory(); return NULL; }
    t->refs = 1;
    if (str_set(&t->trust, e->trust) < 0 || str_set(&t->protocol, e->protocol) < 0
        || str_set(&t->cipher, e->cipher) < 0 || str_set(&t->bits, e->bits) < 0
        || str_set(&t->kex, e->kex) < 0 || str_set(&t->sig, e->sig) < 0
        || str_set(&t->peer_name, e->name) < 0 || str_set(&t->peer_addr, e->addr) < 0) {
        tls_decref(t);
        return NULL;
    }
    return t;
}
static void tls_assign(Tls **dst, Tls *src) {
    if (src) src->refs++;
    tls_decref(*dst);
    *dst = src;
}

typedef struct {
    Str host, instance, program;
    int64_t pid, connect_at, first_seen_at;
    Str client_name, client_addr;
    int64_t client_port;
    Tls *tls;
    Str tls_problem;
    StrVec queue_ids, rejects;
    Str end_problem;
    int has_key;
    int64_t key, offset, line, seq;
} Session;

typedef struct {
    Str host, instance, queue_id;
    int64_t first_seen_at, queued_at;
    const char *origin;      /* "smtpd" | "pickup" | "bounce" | NULL */
    int64_t session_key;     /* NONE_I64: none */
    Str client_name, client_addr;
    Tls *tls;
    Str message_id, sender;
    int64_t size, nrcpt;
    Str notice_for;
    int expired;
    int64_t key, offset, line;
} Message;

typedef struct {
    Tls *tls;
    int has_problem;
    Str problem, problem_addr, problem_detail;
    Str queue_id;
} SmtpProc;

static void session_free(PyObject *cap) {
    Session *s = PyCapsule_GetPointer(cap, "session");
    str_free(&s->host); str_free(&s->instance); str_free(&s->program);
    str_free(&s->client_name); str_free(&s->client_addr); tls_decref(s->tls);
    str_free(&s->tls_problem); vec_free(&s->queue_ids); vec_free(&s->rejects); str_free(&s->end_problem);
    free(s);
}
static void message_free(PyObject *cap) {
    Message *m = PyCapsule_GetPointer(cap, "message");
    str_free(&m->host); str_free(&m->instance); str_free(&m->queue_id);
    str_free(&m->client_name); str_free(&m->client_addr); tls_decref(m->tls);
    str_free(&m->message_id); str_free(&m->sender); str_free(&m->notice_for);
    free(m);
}
static void smtp_free(PyObject *cap) {
    SmtpProc *p = PyCapsule_GetPointer(cap, "smtp");
    tls_decref(p->tls);
    str_free(&p->problem); str_free(&p->problem_addr); str_free(&p->problem_detail); str_free(&p->queue_id);
    free(p);
}

/* One group of counted other lines (postfix_log.PostfixLogReader._count). */
typedef struct {
    Str host, program, daemon, kind;
    int64_t first_key, first_line, first_at, last_at, lines;
    uint64_t hash;
} CountGroup;
#define COUNT_SLOTS 4096       /* a power of two, more than twice MAX_OPEN_COUNTS */

/* ------------------------------------------------------------------ the reader object */
typedef struct {
    PyObject_HEAD
    PyObject *stamp_cache;     /* EnvelopeParser._stamp_cache */
    PyObject *stamp_fn;        /* EnvelopeParser._stamp */
    PyObject *fallback;        /* callable(text) -> None | Quarantined | row | (LogLine, instance, daemon, event) */
    PyObject *event_classes[N_EVENTS];
    PyObject *row_classes[N_TABLES];
    PyObject *quarantined_class;
    PyObject *sessions, *messages, *smtp, *notice_parents;   /* dicts, insertion-ordered */
    PyObject *pending_evicted;                                /* list of message capsules */
    PyObject *quarantined;                                    /* list of (offset, Quarantined) */
    PyObject *session_seq;     /* process key -> (time, connect, sessions begun then): OrderedDict */
    Py_ssize_t quarantined_bytes;                             /* raw bytes held in quarantined */
    /* other daemons' and programs' lines: kept raw (keep_other) or counted from byte count_from on */
    int keep_other;
    int64_t count_from, cur_offset;
    CountGroup *groups;
    int ngroups, max_groups, has_count_hour;
    int32_t *slots;            /* COUNT_SLOTS: group index + 1, 0 empty */
    int64_t count_hour;
    Py_ssize_t max_sessions, max_messages, max_smtp, max_notice_parents;
    int64_t max_rewind;
    long long lines, blank, interpreted, fast, slow;
    Table tables[N_TABLES];
    Buf scratch, keybuf;
    Buf json_log, json_key;    /* a docker json-file line's decoded log string and a key */
    TsMemo ts_memo;
    /* the last stamp seen, valid until Python code runs again */
    char memo_stamp[15];
    int memo_valid;
    int64_t memo_ts;
} Reader;

static int64_t dt_to_us(PyObject *dt) {
    /* an aware datetime in UTC (the envelope parser converts every zone to UTC) */
    int64_t days = days_from_civil(PyDateTime_GET_YEAR(dt), PyDateTime_GET_MONTH(dt), PyDateTime_GET_DAY(dt));
    int64_t us = ((days * 24 + PyDateTime_DATE_GET_HOUR(dt)) * 60 + PyDateTime_DATE_GET_MINUTE(dt)) * 60
                 + PyDateTime_DATE_GET_SECOND(dt);
    us = us * 1000000 + PyDateTime_DATE_GET_MICROSECOND(dt);
    PyObject *tz = PyDateTime_DATE_GET_TZINFO(dt);
    if (tz != Py_None && tz != PyDateTime_TimeZone_UTC) {
        PyObject *off = PyObject_CallMethod(dt, "utcoffset", NULL);
        if (off == NULL) return NONE_I64;
        if (off != Py_None)
            us -= ((int64_t)PyDateTime_DELTA_GET_DAYS(off) * 86400 + PyDateTime_DELTA_GET_SECONDS(off)) * 1000000
                  + PyDateTime_DELTA_GET_MICROSECONDS(off);
        Py_DECREF(off);
    }
    return us;
}

/* --- column writers for each row kind --- */
#define TB(r, i) (&(r)->tables[i])
#define COL(t, i) (&(t)->cols[i])

static int key_of(Reader *r, const Part *parts, int n, int64_t *out) {
    return row_key(&r->keybuf, &r->ts_memo, parts, n, out);
}

static int count_other(Reader *r, Slice host, Slice program, Slice daemon, Slice kind, int64_t ts,
                       int64_t lineno, const Env *env, int64_t line_key);
static int counted_kind(Reader *r, Slice kind) {
    return !r->keep_other && (sl_is(kind, "uninterpreted") || sl_is(kind, "not postfix"));
}

static int emit_other(Reader *r, const Env *env, Slice daemon, Slice qid, Slice kind, int64_t lineno) {
    if (counted_kind(r, kind))
        return count_other(r, env->host, env->program, daemon, kind, env->ts, lineno, env, 0);
    Part parts[] = {pt_c("line"), pt_t(env->ts), pt_s(env->host), pt_s(env->program), pt_i(env->pid),
                    pt_s(env->message)};
    int64_t key;
    if (key_of(r, parts, 6, &key) < 0) return -1;
    Table *t = TB(r, TB_OTHER);
    if (put_i64(COL(t, 0), key) < 0 || put_i64(COL(t, 1), env->ts) < 0 || put_str(COL(t, 2), env->host) < 0
        || put_str(COL(t, 3), env->program) < 0 || put_i64(COL(t, 4), env->pid) < 0
        || put_str(COL(t, 5), daemon) < 0 || put_str(COL(t, 6), qid) < 0 || put_str(COL(t, 7), kind) < 0
        || put_str(COL(t, 8), env->message) < 0 || put_i64(COL(t, 9), lineno) < 0)
        return -1;
    t->nrows++;
    return 0;
}

static int session_key(Reader *r, Session *s, int64_t *out) {
    if (!s->has_key) {
        Part parts[] = {pt_c("smtpd"), pt_s(sl_of(&s->host)), pt_s(sl_of(&s->program)), pt_i(s->pid),
                        pt_t(s->connect_at != NONE_I64 ? s->connect_at : s->first_seen_at),
                        pt_b(s->connect_at == NONE_I64), pt_i(s->seq)};
        /* a second session of the process at the same time: the sequence joins the key */
        if (key_of(r, parts, s->seq ? 7 : 6, &s->key) < 0) return -1;
        s->has_key = 1;
    }
    *out = s->key;
    return 0;
}

static int emit_session(Reader *r, Session *s, int64_t disconnect_at, Slice commands, int complete) {
    int64_t key;
    if (session_key(r, s, &key) < 0) return -1;
    Table *t = TB(r, TB_SESSION);
    Tls *tls = s->tls;
    Slice none = NONE_SLICE;
    if (put_i64(COL(t, 0), key) < 0 || put_str(COL(t, 1), sl_of(&s->host)) < 0
        || put_str(COL(t, 2), sl_of(&s->instance)) < 0 || put_str(COL(t, 3), sl_of(&s->program)) < 0
        || put_i64(COL(t, 4), s->pid) < 0 || put_i64(COL(t, 5), s->connect_at) < 0
        || put_i64(COL(t, 6), disconnect_at) < 0 || put_i64(COL(t, 7), s->first_seen_at) < 0
        || put_str(COL(t, 8), sl_of(&s->client_name)) < 0 || put_str(COL(t, 9), sl_of(&s->client_addr)) < 0
        || put_i64(COL(t, 10), s->client_port) < 0
        || put_str(COL(t, 11), tls ? sl_of(&tls->trust) : none) < 0
        || put_str(COL(t, 12), tls ? sl_of(&tls->protocol) : none) < 0
        || put_str(COL(t, 13), tls ? sl_of(&tls->cipher) : none) < 0
        || put_str(COL(t, 14), tls ? sl_of(&tls->bits) : none) < 0
        || put_str(COL(t, 15), tls ? sl_of(&tls->kex) : none) < 0
        || put_str(COL(t, 16), tls ? sl_of(&tls->sig) : none) < 0
        || put_str(COL(t, 17), sl_of(&s->tls_problem)) < 0 || put_list(COL(t, 18), &s->queue_ids) < 0
        || put_list(COL(t, 19), &s->rejects) < 0 || put_str(COL(t, 20), sl_of(&s->end_problem)) < 0
        || put_str(COL(t, 21), commands) < 0 || put_bool(COL(t, 22), complete && s->connect_at != NONE_I64) < 0
        || put_i64(COL(t, 23), s->seq) < 0 || put_i64(COL(t, 24), s->line) < 0)
        return -1;
    t->nrows++;
    return 0;
}

static int emit_message(Reader *r, Message *m, int64_t removed_at) {
    Table *t = TB(r, TB_MESSAGE);
    Tls *tls = m->tls;
    Slice none = NONE_SLICE;
    if (put_i64(COL(t, 0), m->key) < 0 || put_str(COL(t, 1), sl_of(&m->host)) < 0
        || put_str(COL(t, 2), sl_of(&m->instance)) < 0 || put_str(COL(t, 3), sl_of(&m->queue_id)) < 0
        || put_i64(COL(t, 4), m->first_seen_at) < 0 || put_i64(COL(t, 5), m->queued_at) < 0
        || put_i64(COL(t, 6), removed_at) < 0 || put_str(COL(t, 7), sl_c(m->origin ? m->origin : "unknown")) < 0
        || put_i64(COL(t, 8), m->session_key) < 0 || put_str(COL(t, 9), sl_of(&m->client_name)) < 0
        || put_str(COL(t, 10), sl_of(&m->client_addr)) < 0
        || put_str(COL(t, 11), tls ? sl_of(&tls->trust) : none) < 0
        || put_str(COL(t, 12), tls ? sl_of(&tls->protocol) : none) < 0
        || put_str(COL(t, 13), tls ? sl_of(&tls->cipher) : none) < 0
        || put_str(COL(t, 14), sl_of(&m->message_id)) < 0 || put_str(COL(t, 15), sl_of(&m->sender)) < 0
        || put_i64(COL(t, 16), m->size) < 0 || put_i64(COL(t, 17), m->nrcpt) < 0
        || put_str(COL(t, 18), sl_of(&m->notice_for)) < 0 || put_bool(COL(t, 19), m->expired) < 0
        || put_bool(COL(t, 20), removed_at != NONE_I64) < 0 || put_i64(COL(t, 21), m->line) < 0)
        return -1;
    t->nrows++;
    return 0;
}

/* --- dictionary keys: length-prefixed parts (None distinct from '') --- */
static PyObject *dict_key(Reader *r, Slice a, Slice b, Slice c, int64_t pid, int with_pid) {
    Buf *k = &r->scratch;
    k->n = 0;
    Slice parts[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        int32_t n = parts[i].p ? (int32_t)parts[i].n : -1;
        if (buf_add(k, &n, 4) < 0) return NULL;
        if (parts[i].p && buf_add(k, parts[i].p, parts[i].n) < 0) return NULL;
    }
    if (with_pid && buf_add(k, &pid, 8) < 0) return NULL;
    return PyBytes_FromStringAndSize(k->p, k->n);
}
/* (host, program, pid): smtpd sessions and smtp processes */
static PyObject *proc_key(Reader *r, const Env *env) {
    return dict_key(r, env->host, env->program, NONE_SLICE, env->pid, 1);
}
/* (host, instance, queue id): queue files and notice parents */
static PyObject *queue_key(Reader *r, Slice host, Slice instance, Slice qid) {
    return dict_key(r, host, instance, qid, 0, 0);
}

static PyObject *dict_pop(PyObject *d, PyObject *key);
static int dict_set_capped(PyObject *d, PyObject *key, PyObject *value, Py_ssize_t cap);

/* PostfixLogReader._next_seq: how many sessions this process began before at the same time. */
static int next_seq(Reader *r, PyObject *key, int64_t at, int connect, int64_t *seq) {
    PyObject *last = dict_pop(r->session_seq, key);
    if (last == NULL && PyErr_Occurred()) return -1;
    int64_t st[3] = {0, 0, 0};
    if (last != NULL) {
        memcpy(st, PyBytes_AS_STRING(last), sizeof(st));
        Py_DECREF(last);
    }
    *seq = last != NULL && st[0] == at && st[1] == connect ? st[2] : 0;
    int64_t now[3] = {at, connect, *seq + 1};
    PyObject *v = PyBytes_FromStringAndSize((const char *)now, sizeof(now));
    if (v == NULL) return -1;
    int rc = dict_set_capped(r->session_seq, key, v, r->max_smtp);
    Py_DECREF(v);
    return rc;
}

static Session *new_session(Reader *r, const Env *env, Slice instance, int64_t offset, int64_t lineno,
                            PyObject *key, int connect) {
    Session *s = calloc(1, sizeof(Session));
    if (s == NULL) { PyErr_NoMemory(); return NULL; }
    PyObject *cap = PyCapsule_New(s, "session", session_free);
    if (cap == NULL) { free(s); return NULL; }
    s->pid = env->pid;
    s->connect_at = NONE_I64;
    s->first_seen_at = env->ts;
    s->client_port = NONE_I64;
    s->offset = offset;
    s->line = lineno;
    if (next_seq(r, key, env->ts, connect, &s->seq) < 0) { Py_DECREF(cap); return NULL; }
    if (str_set(&s->host, env->host) < 0 || str_set(&s->instance, instance) < 0
        || str_set(&s->program, env->program) < 0 || PyObject_SetItem(r->sessions, key, cap) < 0) {
        Py_DECREF(cap);
        return NULL;
    }
    Py_DECREF(cap);    /* the dict holds it */
    return s;
}

/* Pop a dict entry's capsule (a new reference) or NULL without error when absent. */
static PyObject *dict_pop(PyObject *d, PyObject *key) {
    PyObject *v = PyDict_GetItemWithError(d, key);
    if (v == NULL) return NULL;
    Py_INCREF(v);
    if (PyObject_DelItem(d, key) < 0) { Py_DECREF(v); return NULL; }
    return v;
}
/* Pop the oldest entry of an OrderedDict (a new reference to its value): O(1), where a
 * plain dict's first entry is found by walking past every deleted slot before it. */
static PyObject *dict_pop_oldest(PyObject *d) {
    PyObject *item = PyObject_CallMethod(d, "popitem", "O", Py_False);
    if (item == NULL) return NULL;
    PyObject *v = PyTuple_GET_ITEM(item, 1);
    Py_INCREF(v);
    Py_DECREF(item);
    return v;
}

/* d[key] = value, then the oldest entry dropped when d holds more than cap. */
static int dict_set_capped(PyObject *d, PyObject *key, PyObject *value, Py_ssize_t cap) {
    if (PyObject_SetItem(d, key, value) < 0) return -1;
    if (PyDict_GET_SIZE(d) > cap) {
        PyObject *old = dict_pop_oldest(d);
        if (old == NULL) return -1;
        Py_DECREF(old);
    }
    return 0;
}

static Message *get_message(Reader *r, const Env *env, Slice instance, Slice qid, int64_t offset,
                            int64_t lineno) {
    PyObject *key = queue_key(r, env->host, instance, qid);
    if (key == NULL) return NULL;
    PyObject *cap = PyDict_GetItemWithError(r->messages, key);
    if (cap != NULL) { Py_DECREF(key); return PyCapsule_GetPointer(cap, "message"); }
    if (PyErr_Occurred()) { Py_DECREF(key); return NULL; }
    Message *m = calloc(1, sizeof(Message));
    if (m == NULL) { Py_DECREF(key); PyErr_NoMemory(); return NULL; }
    cap = PyCapsule_New(m, "message", message_free);
    if (cap == NULL) { free(m); Py_DECREF(key); return NULL; }
    m->first_seen_at = env->ts;
    m->queued_at = NONE_I64;
    m->session_key = NONE_I64;
    m->size = m->nrcpt = NONE_I64;
    m->offset = offset;
    m->line = lineno;
    Part parts[] = {pt_c("msg"), pt_s(env->host), pt_s(instance), pt_s(qid), pt_t(env->ts)};
    if (str_set(&m->host, env->host) < 0 || str_set(&m->instance, instance) < 0 || str_set(&m->queue_id, qid) < 0
        || key_of(r, parts, 5, &m->key) < 0 || PyObject_SetItem(r->messages, key, cap) < 0) {
        Py_DECREF(cap); Py_DECREF(key);
        return NULL;
    }
    Py_DECREF(cap);
    PyObject *parent = dict_pop(r->notice_parents, key);
    Py_DECREF(key);
    if (parent != NULL) {
        Slice p = sl(PyBytes_AS_STRING(parent), PyBytes_GET_SIZE(parent));
        int rc = str_set(&m->notice_for, p);
        Py_DECREF(parent);
        if (rc < 0) return NULL;
        m->origin = "bounce";
    } else if (PyErr_Occurred()) {
        return NULL;
    }
    if (PyDict_GET_SIZE(r->messages) > r->max_messages) {
        PyObject *old = dict_pop_oldest(r->messages);
        if (old == NULL) return NULL;
        int rc = PyList_Append(r->pending_evicted, old);
        Py_DECREF(old);
        if (rc < 0) return NULL;
    }
    return m;
}

static int remember_notice(Reader *r, Slice host, Slice instance, Slice notice_qid, Slice parent) {
    PyObject *key = queue_key(r, host, instance, notice_qid);
    if (key == NULL) return -1;
    PyObject *cap = PyDict_GetItemWithError(r->messages, key);
    if (cap != NULL) {
        Message *m = PyCapsule_GetPointer(cap, "message");
        Py_DECREF(key);
        m->origin = "bounce";
        return str_set(&m->notice_for, parent);
    }
    if (PyErr_Occurred()) { Py_DECREF(key); return -1; }
    PyObject *v = PyBytes_FromStringAndSize(parent.p, parent.n);
    if (v == NULL) { Py_DECREF(key); return -1; }
    int rc = dict_set_capped(r->notice_parents, key, v, r->max_notice_parents);
    Py_DECREF(v);
    Py_DECREF(key);
    return rc;
}

static SmtpProc *get_smtp(Reader *r, const Env *env) {
    PyObject *key = proc_key(r, env);
    if (key == NULL) return NULL;
    PyObject *cap = PyDict_GetItemWithError(r->smtp, key);
    if (cap != NULL) { Py_DECREF(key); return PyCapsule_GetPointer(cap, "smtp"); }
    if (PyErr_Occurred()) { Py_DECREF(key); return NULL; }
    SmtpProc *p = calloc(1, sizeof(SmtpProc));
    if (p == NULL) { Py_DECREF(key); PyErr_NoMemory(); return NULL; }
    cap = PyCapsule_New(p, "smtp", smtp_free);
    if (cap == NULL) { free(p); Py_DECREF(key); return NULL; }
    int rc = dict_set_capped(r->smtp, key, cap, r->max_smtp);
    Py_DECREF(cap);
    Py_DECREF(key);
    return rc < 0 ? NULL : p;
}

/* --- applying one event: a port of PostfixLogReader._apply / _smtpd / _delivery --- */
static Slice level_or_note(const Ev *e) { return e->level.p && e->level.n ? e->level : sl_c("note"); }

static int apply_delivery(Reader *r, const Env *env, Slice instance, Slice daemon, const Ev *e, int64_t lineno) {
    PyObject *key = queue_key(r, env->host, instance, e->queue_id);
    if (key == NULL) return -1;
    PyObject *cap = PyDict_GetItemWithError(r->messages, key);
    Py_DECREF(key);
    if (cap == NULL && PyErr_Occurred()) return -1;
    Message *m = cap ? PyCapsule_GetPointer(cap, "message") : NULL;
    Tls *tls = NULL;
    Str problem = {NULL, 0};
    Buf *pb = &r->scratch;
    int has_problem = 0;
    if (sl_is(daemon, "smtp") || sl_is(daemon, "lmtp") || sl_is(daemon, "relay")
        || (env->program.n >= 5 && memcmp(env->program.p + env->program.n - 5, "/smtp", 5) == 0)) {
        PyObject *pk = proc_key(r, env);
        if (pk == NULL) return -1;
        PyObject *pc = PyDict_GetItemWithError(r->smtp, pk);
        Py_DECREF(pk);
        if (pc == NULL && PyErr_Occurred()) return -1;
        if (pc != NULL) {
            SmtpProc *p = PyCapsule_GetPointer(pc, "smtp");
            int conn_use_falsy = e->conn_use == NONE_I64 || e->conn_use == 0;
            if (p->queue_id.p != NULL && !sl_eq(sl_of(&p->queue_id), e->queue_id) && conn_use_falsy) {
                tls_assign(&p->tls, NULL);
                p->has_problem = 0;
            }
            if (p->tls != NULL && sl_eq(sl_of(&p->tls->peer_addr), e->relay_addr) && e->relay_addr.p != NULL)
                tls = p->tls;
            if (p->has_problem && e->relay_addr.p != NULL && sl_eq(sl_of(&p->problem_addr), e->relay_addr)) {
                pb->n = 0;
                if (buf_add(pb, p->problem.p, p->problem.n) < 0 || buf_add(pb, ": ", 2) < 0
                    || buf_add(pb, p->problem_detail.p ? p->problem_detail.p : "None",
                               p->problem_detail.p ? p->problem_detail.n : 4) < 0)
                    return -1;
                if (str_set(&problem, sl(pb->p, pb->n)) < 0) return -1;
                has_problem = 1;
            }
            if (str_set(&p->queue_id, e->queue_id) < 0) { str_free(&problem); return -1; }
        }
    }
    Part parts[] = {pt_c("delivery"), pt_t(env->ts), pt_s(env->host), pt_s(env->program), pt_i(env->pid),
                    pt_s(e->queue_id), pt_s(e->recipient), pt_s(e->status), pt_s(e->reason)};
    int64_t dkey;
    if (key_of(r, parts, 9, &dkey) < 0) { str_free(&problem); return -1; }
    Table *t = TB(r, TB_DELIVERY);
    Slice none = NONE_SLICE;
    int rc = 0;
    if (put_i64(COL(t, 0), dkey) < 0 || put_i64(COL(t, 1), env->ts) < 0 || put_str(COL(t, 2), env->host) < 0
        || put_str(COL(t, 3), instance) < 0 || put_str(COL(t, 4), env->program) < 0
        || put_str(COL(t, 5), daemon) < 0 || put_i64(COL(t, 6), env->pid) < 0
        || put_str(COL(t, 7), e->queue_id) < 0 || put_i64(COL(t, 8), m ? m->key : NONE_I64) < 0
        || put_str(COL(t, 9), m ? sl_of(&m->sender) : none) < 0
        || put_str(COL(t, 10), m ? sl_of(&m->message_id) : none) < 0
        || put_str(COL(t, 11), e->recipient) < 0 || put_str(COL(t, 12), e->orig_recipient) < 0
        || put_str(COL(t, 13), e->relay) < 0 || put_str(COL(t, 14), e->relay_host) < 0
        || put_str(COL(t, 15), e->relay_addr) < 0 || put_i64(COL(t, 16), e->relay_port) < 0
        || put_i64(COL(t, 17), e->conn_use) < 0 || put_f64(COL(t, 18), e->delay) < 0
        || put_f64(COL(t, 19), e->d[0]) < 0 || put_f64(COL(t, 20), e->d[1]) < 0
        || put_f64(COL(t, 21), e->d[2]) < 0 || put_f64(COL(t, 22), e->d[3]) < 0
        || put_str(COL(t, 23), e->tls_feature) < 0 || put_str(COL(t, 24), e->dsn) < 0
        || put_str(COL(t, 25), e->status) < 0 || put_str(COL(t, 26), e->reason) < 0
        || put_bool(COL(t, 27), e->reason_truncated) < 0
        || put_str(COL(t, 28), tls ? sl_of(&tls->trust) : none) < 0
        || put_str(COL(t, 29), tls ? sl_of(&tls->protocol) : none) < 0
        || put_str(COL(t, 30), tls ? sl_of(&tls->cipher) : none) < 0
        || put_str(COL(t, 31), tls ? sl_of(&tls->bits) : none) < 0
        || put_str(COL(t, 32), has_problem ? sl_of(&problem) : none) < 0 || put_i64(COL(t, 33), lineno) < 0)
        rc = -1;
    else
        t->nrows++;
    str_free(&problem);
    return rc;
}

static int set_client_if_none(Session *s, Slice name, Slice addr) {
    if (s->client_addr.p != NULL) return 0;
    if (str_set(&s->client_name, name) < 0 || str_set(&s->client_addr, addr) < 0) return -1;
    return 0;
}

static int apply_smtpd(Reader *r, const Env *env, Slice instance, const Ev *e, int64_t offset, int64_t lineno) {
    Slice smtpd = sl_c("smtpd");
    PyObject *key = proc_key(r, env);
    if (key == NULL) return -1;
    int rc = 0;
    if (e->kind == EV_CONNECT) {
        PyObject *old = dict_pop(r->sessions, key);
        if (old == NULL && PyErr_Occurred()) { Py_DECREF(key); return -1; }
        if (old != NULL) {
            rc = emit_session(r, PyCapsule_GetPointer(old, "session"), NONE_I64, NONE_SLICE, 0);
            Py_DECREF(old);
            if (rc < 0) { Py_DECREF(key); return -1; }
        }
        Session *s = new_session(r, env, instance, offset, lineno, key, 1);
        Py_DECREF(key);
        if (s == NULL) return -1;
        s->connect_at = env->ts;
        if (str_set(&s->client_name, e->name) < 0 || str_set(&s->client_addr, e->addr) < 0) return -1;
        s->client_port = e->port;
        if (PyDict_GET_SIZE(r->sessions) > r->max_sessions) {
            PyObject *oldest = dict_pop_oldest(r->sessions);
            if (oldest == NULL) return -1;
            rc = emit_session(r, PyCapsule_GetPointer(oldest, "session"), NONE_I64, NONE_SLICE, 0);
            Py_DECREF(oldest);
        }
        return rc;
    }
    PyObject *cap = PyDict_GetItemWithError(r->sessions, key);
    Session *s;
    if (cap == NULL) {
        if (PyErr_Occurred()) { Py_DECREF(key); return -1; }
        if (e->kind == EV_DIAGNOSTIC && e->queue_id.p == NULL && e->diag_peer_addr.p == NULL) {
            Py_DECREF(key);
            return emit_other(r, env, smtpd, NONE_SLICE, level_or_note(e), lineno);
        }
        s = new_session(r, env, instance, offset, lineno, key, 0);
        if (s == NULL) { Py_DECREF(key); return -1; }
    } else {
        s = PyCapsule_GetPointer(cap, "session");
    }
    if (e->kind == EV_DISCONNECT) {
        PyObject *held = dict_pop(r->sessions, key);
        Py_DECREF(key);
        if (held == NULL) return -1;
        rc = set_client_if_none(s, e->name, e->addr);
        if (rc == 0) rc = emit_session(r, s, env->ts, e->commands, 1);
        Py_DECREF(held);
        return rc;
    }
    Py_DECREF(key);
    switch (e->kind) {
    case EV_TLS: {
        Tls *t = tls_new(e);
        if (t == NULL) return -1;
        tls_assign(&s->tls, t);
        tls_decref(t);
        return set_client_if_none(s, e->name, e->addr);
    }
    case EV_CLIENT: {
        if (vec_add(&s->queue_ids, e->queue_id) < 0 || set_client_if_none(s, e->name, e->addr) < 0) return -1;
        int64_t skey;
        if (session_key(r, s, &skey) < 0) return -1;
        Tls *stls = s->tls;
        if (stls) stls->refs++;          /* the session may be evicted by get_message below */
        Message *m = get_message(r, env, instance, e->queue_id, offset, lineno);
        if (m == NULL) { tls_decref(stls); return -1; }
        m->origin = "smtpd";
        m->session_key = skey;
        rc = (str_set(&m->client_name, e->name) < 0 || str_set(&m->client_addr, e->addr) < 0) ? -1 : 0;
        tls_assign(&m->tls, stls);
        tls_decref(stls);
        return rc;
    }
    case EV_REJECTED: {
        Buf *b = &r->scratch;
        b->n = 0;
        Slice bits[5] = {e->action, e->stage, e->status_code, e->enhanced_code, e->status_message};
        int first = 1;
        for (int i = 0; i < 5; i++) {
            if (bits[i].p == NULL || bits[i].n == 0) continue;
            if (!first && buf_add(b, " ", 1) < 0) return -1;
            if (buf_add(b, bits[i].p, bits[i].n) < 0) return -1;
            first = 0;
        }
        if (vec_add(&s->rejects, sl(b->p ? b->p : "", b->n)) < 0) return -1;
        Slice qid = sl_is(e->queue_id, "NOQUEUE") ? NONE_SLICE : e->queue_id;
        return emit_other(r, env, smtpd, qid, e->action, lineno);
    }
    case EV_SESSION_PROBLEM: {
        Buf *b = &r->scratch;
        b->n = 0;
        if (sl_is(e->problem, "SSL_accept error")) {
            if (buf_add(b, "SSL_accept error", 16) < 0) return -1;
            if (e->detail.p && e->detail.n) {
                if (buf_add(b, ": ", 2) < 0 || buf_add(b, e->detail.p, e->detail.n) < 0) return -1;
            }
            return str_set(&s->tls_problem, sl(b->p, b->n));
        }
        if (buf_add(b, e->problem.p, e->problem.n) < 0) return -1;
        if (e->stage.p && e->stage.n) {
            if (buf_add(b, " after ", 7) < 0 || buf_add(b, e->stage.p, e->stage.n) < 0) return -1;
        }
        return str_set(&s->end_problem, sl(b->p, b->n));
    }
    case EV_DIAGNOSTIC:
        return emit_other(r, env, smtpd, e->queue_id, level_or_note(e), lineno);
    default:
        return emit_other(r, env, smtpd, NONE_SLICE, sl_c("uninterpreted"), lineno);
    }
}

static int apply_event(Reader *r, const Env *env, Slice instance, Slice daemon, const Ev *e, int64_t offset,
                       int64_t lineno) {
    if (e->kind == EV_DELIVERY) return apply_delivery(r, env, instance, daemon, e, lineno);
    if (sl_is(daemon, "smtpd")) return apply_smtpd(r, env, instance, e, offset, lineno);
    switch (e->kind) {
    case EV_QUEUE_ACTIVE: {
        Message *m = get_message(r, env, instance, e->queue_id, offset, lineno);
        if (m == NULL || str_set(&m->sender, e->sender) < 0) return -1;
        m->size = e->size;
        m->nrcpt = e->nrcpt;
        if (m->queued_at == NONE_I64) m->queued_at = env->ts;
        return 0;
    }
    case EV_MESSAGE_ID: {
        Message *m = get_message(r, env, instance, e->queue_id, offset, lineno);
        return m == NULL ? -1 : str_set(&m->message_id, e->message_id);
    }
    case EV_REMOVED: {
        PyObject *key = queue_key(r, env->host, instance, e->queue_id);
        if (key == NULL) return -1;
        PyObject *cap = dict_pop(r->messages, key);
        Py_DECREF(key);
        if (cap == NULL) {
            if (PyErr_Occurred()) return -1;
            return emit_other(r, env, daemon, e->queue_id, sl_c("removed (queue file not seen)"), lineno);
        }
        int rc = emit_message(r, PyCapsule_GetPointer(cap, "message"), env->ts);
        Py_DECREF(cap);
        return rc;
    }
    case EV_TLS: {
        SmtpProc *p = get_smtp(r, env);
        if (p == NULL) return -1;
        Tls *t = tls_new(e);
        if (t == NULL) return -1;
        tls_assign(&p->tls, t);
        tls_decref(t);
        p->has_problem = 0;
        str_free(&p->queue_id);
        return 0;
    }
    case EV_TLS_PROBLEM: {
        SmtpProc *p = get_smtp(r, env);
        if (p == NULL) return -1;
        p->has_problem = 1;
        if (str_set(&p->problem, e->problem) < 0 || str_set(&p->problem_addr, e->addr) < 0
            || str_set(&p->problem_detail, e->detail) < 0)
            return -1;
        return 0;
    }
    case EV_NOTICE: {
        PyObject *key = queue_key(r, env->host, instance, e->queue_id);
        if (key == NULL) return -1;
        PyObject *cap = PyDict_GetItemWithError(r->messages, key);
        Py_DECREF(key);
        if (cap == NULL && PyErr_Occurred()) return -1;
        int64_t mkey = cap ? ((Message *)PyCapsule_GetPointer(cap, "message"))->key : NONE_I64;
        if (remember_notice(r, env->host, instance, e->notice_queue_id, e->queue_id) < 0) return -1;
        Part parts[] = {pt_c("notice"), pt_t(env->ts), pt_s(env->host), pt_s(instance), pt_s(e->queue_id),
                        pt_s(e->notice_queue_id)};
        int64_t nkey;
        if (key_of(r, parts, 6, &nkey) < 0) return -1;
        Table *t = TB(r, TB_NOTICE);
        if (put_i64(COL(t, 0), nkey) < 0 || put_i64(COL(t, 1), env->ts) < 0 || put_str(COL(t, 2), env->host) < 0
            || put_str(COL(t, 3), instance) < 0 || put_str(COL(t, 4), e->queue_id) < 0
            || put_i64(COL(t, 5), mkey) < 0 || put_str(COL(t, 6), e->notice_recipient) < 0
            || put_str(COL(t, 7), e->notice_kind) < 0 || put_str(COL(t, 8), e->notice_queue_id) < 0
            || put_i64(COL(t, 9), lineno) < 0)
            return -1;
        t->nrows++;
        return 0;
    }
    case EV_PICKUP: {
        Message *m = get_message(r, env, instance, e->queue_id, offset, lineno);
        if (m == NULL) return -1;
        if (m->origin == NULL) m->origin = "pickup";
        if (m->sender.p == NULL || m->sender.n == 0) return str_set(&m->sender, e->sender);
        return 0;
    }
    case EV_EXPIRED: {
        Message *m = get_message(r, env, instance, e->queue_id, offset, lineno);
        if (m == NULL) return -1;
        m->expired = 1;
        if (m->sender.p == NULL || m->sender.n == 0) return str_set(&m->sender, e->sender);
        return 0;
    }
    case EV_DIAGNOSTIC:
        return emit_other(r, env, daemon, e->queue_id, level_or_note(e), lineno);
    case EV_REMOTE_PROBLEM:
        return emit_other(r, env, daemon, e->queue_id, sl_c("remote problem"), lineno);
    case EV_REJECTED:
        return emit_other(r, env, daemon, e->queue_id, e->action, lineno);
    default:
        return emit_other(r, env, daemon, NONE_SLICE, sl_c("uninterpreted"), lineno);
    }
}

/* --- other lines counted per (host, program, daemon, kind) and hour --- */
static uint64_t fnv(uint64_t h, Slice s) {
    if (s.p == NULL) return (h ^ 0xFF) * 0x100000001B3ULL;
    for (Py_ssize_t i = 0; i < s.n; i++) h = (h ^ (unsigned char)s.p[i]) * 0x100000001B3ULL;
    return (h ^ 0x1F) * 0x100000001B3ULL;
}
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
#define HOUR_US 3600000000LL

static int flush_counts(Reader *r, int complete) {
    Table *t = TB(r, TB_COUNT);
    int rc = 0;
    for (int g = 0; g < r->ngroups; g++) {
        CountGroup *c = &r->groups[g];
        Part parts[] = {pt_c("count"), pt_i(c->first_key), pt_i(c->first_line)};
        int64_t key;
        if (rc == 0 && (key_of(r, parts, 3, &key) < 0 || put_i64(COL(t, 0), key) < 0
                        || put_i64(COL(t, 1), floor_div(c->first_at, HOUR_US) * HOUR_US) < 0
                        || put_str(COL(t, 2), sl_of(&c->host)) < 0 || put_str(COL(t, 3), sl_of(&c->program)) < 0
                        || put_str(COL(t, 4), sl_of(&c->daemon)) < 0 || put_str(COL(t, 5), sl_of(&c->kind)) < 0
                        || put_i64(COL(t, 6), c->first_at) < 0 || put_i64(COL(t, 7), c->last_at) < 0
                        || put_i64(COL(t, 8), c->lines) < 0 || put_bool(COL(t, 9), complete) < 0
                        || put_i64(COL(t, 10), c->first_line) < 0))
            rc = -1;
        if (rc == 0) t->nrows++;
        str_free(&c->host); str_free(&c->program); str_free(&c->daemon); str_free(&c->kind);
    }
    r->ngroups = 0;
    memset(r->slots, 0, COUNT_SLOTS * sizeof(int32_t));
    return rc;
}

/* PostfixLogReader._count: one more line of a group; the groups are written when the hour
 * changes or there are max_groups of them. The first line's key (env's, or line_key) names it. */
static int count_other(Reader *r, Slice host, Slice program, Slice daemon, Slice kind, int64_t ts,
                       int64_t lineno, const Env *env, int64_t line_key) {
    if (r->cur_offset < r->count_from) return 0;
    int64_t hour = floor_div(ts, HOUR_US);
    if (r->has_count_hour && hour != r->count_hour && flush_counts(r, 1) < 0) return -1;
    r->count_hour = hour;
    r->has_count_hour = 1;
    uint64_t h = fnv(fnv(fnv(fnv(0xCBF29CE484222325ULL, host), program), daemon), kind);
    uint32_t slot = (uint32_t)(h & (COUNT_SLOTS - 1));
    while (r->slots[slot]) {
        CountGroup *c = &r->groups[r->slots[slot] - 1];
        if (c->hash == h && sl_eq(sl_of(&c->host), host) && sl_eq(sl_of(&c->program), program)
            && sl_eq(sl_of(&c->daemon), daemon) && sl_eq(sl_of(&c->kind), kind)) {
            if (ts < c->first_at) c->first_at = ts;
            if (ts > c->last_at) c->last_at = ts;
            c->lines++;
            return 0;
        }
        slot = (slot + 1) & (COUNT_SLOTS - 1);
    }
    if (r->ngroups >= r->max_groups) {
        if (flush_counts(r, 1) < 0) return -1;
        slot = (uint32_t)(h & (COUNT_SLOTS - 1));
    }
    if (env != NULL) {
        Part parts[] = {pt_c("line"), pt_t(env->ts), pt_s(env->host), pt_s(env->program), pt_i(env->pid),
                        pt_s(env->message)};
        if (key_of(r, parts, 6, &line_key) < 0) return -1;
    }
    CountGroup *c = &r->groups[r->ngroups];
    memset(c, 0, sizeof(*c));
    if (str_set_heap(&c->host, host) < 0 || str_set_heap(&c->program, program) < 0
        || str_set_heap(&c->daemon, daemon) < 0 || str_set_heap(&c->kind, kind) < 0)
        return -1;
    c->first_key = line_key;
    c->first_line = lineno;
    c->first_at = c->last_at = ts;
    c->lines = 1;
    c->hash = h;
    r->slots[slot] = ++r->ngroups;
    return 0;
}

static int flush_evicted(Reader *r) {
    Py_ssize_t n = PyList_GET_SIZE(r->pending_evicted);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (emit_message(r, PyCapsule_GetPointer(PyList_GET_ITEM(r->pending_evicted, i), "message"), NONE_I64) < 0)
            return -1;
    }
    return n ? PyList_SetSlice(r->pending_evicted, 0, n, NULL) : 0;
}

/* ------------------------------------------------------------------ the fast parsers */
/* Python's \s for an ASCII character */
static int is_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* text[*i:] starts with lit: advance */
static int eat(const char *p, Py_ssize_t n, Py_ssize_t *i, const char *lit) {
    size_t k = strlen(lit);
    if ((size_t)(n - *i) < k || memcmp(p + *i, lit, k) != 0) return 0;
    *i += (Py_ssize_t)k;
    return 1;
}

/* \S+ at t[*i] (at least one character): its slice, and *i after it; 0 if none */
static int token(const char *p, Py_ssize_t n, Py_ssize_t *i, Slice *out) {
    Py_ssize_t j = *i;
    while (j < n && !is_space((unsigned char)p[j])) j++;
    if (j == *i) return 0;
    *out = sl(p + *i, j - *i);
    *i = j;
    return 1;
}

/* Up to 18 decimal digits as an int (more: decline). */
static int parse_uint(const char *p, Py_ssize_t n, int64_t *out) {
    if (n < 1 || n > 18) return 0;
    int64_t v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)p[i])) return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* postfix_messages._QID_PREFIX: ``QID: `` -> the queue id and the body after it */
static const char LONG_QID[] = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
static int qid_prefix(Slice t, Slice *qid, Slice *body) {
    Py_ssize_t i = 0;
    if (t.n >= 9 && memcmp(t.p, "NOQUEUE: ", 9) == 0) {
        *qid = sl(t.p, 7);
        *body = sl(t.p + 9, t.n - 9);
        return 1;
    }
    int hex = 1, lng = 1;
    while (i < t.n && t.p[i] != ':') {
        unsigned char c = (unsigned char)t.p[i];
        if (!(is_digit(c) || (c >= 'A' && c <= 'F'))) hex = 0;
        if (c == 0 || !memchr(LONG_QID, c, sizeof(LONG_QID) - 1)) lng = 0;
        if (!hex && !lng) break;
        i++;
    }
    if (i >= t.n - 1 || t.p[i] != ':' || t.p[i + 1] != ' ') return 0;
    int ok = (hex && i >= 5) || (lng && i >= 9);
    if (!ok) return 0;
    *qid = sl(t.p, i);
    *body = sl(t.p + i + 2, t.n - i - 2);
    return 1;
}

/* _PEER = ([^\s\[\]]*)\[([^\]]*)\](?::(\d+))? at t[*i]; the port only as the caller allows:
 * need_after == NULL: take the longest digit run (nothing must follow); else the port run must be
 * followed by what need_after accepts, or the whole optional group is skipped (regex backtracking
 * over the digits can never help, since a digit is not what follows). */
static int peer(Slice t, Py_ssize_t *i, Slice *name, Slice *addr, int64_t *port) {
    Py_ssize_t j = *i;
    while (j < t.n && t.p[j] != '[' && t.p[j] != ']' && !is_space((unsigned char)t.p[j])) j++;
    if (j >= t.n || t.p[j] != '[') return 0;
    *name = sl(t.p + *i, j - *i);
    Py_ssize_t a = j + 1, k = a;
    while (k < t.n && t.p[k] != ']') k++;
    if (k >= t.n) return 0;
    *addr = sl(t.p + a, k - a);
    k++;
    *port = NONE_I64;
    if (k < t.n && t.p[k] == ':') {
        Py_ssize_t d = k + 1;
        while (d < t.n && is_digit((unsigned char)t.p[d])) d++;
        if (d > k + 1) {
            if (!parse_uint(t.p + k + 1, d - k - 1, port)) return -1;   /* too long: decline */
            k = d;
        }
    }
    *i = k;
    return 1;
}

static double parse_float(Slice s, int *ok) {
    /* postfix_messages._float on text of [\d.]: '' -> None; invalid -> None */
    *ok = 1;
    if (s.n == 0) return NAN;
    int dots = 0, digits = 0;
    for (Py_ssize_t i = 0; i < s.n; i++) {
        if (s.p[i] == '.') dots++;
        else if (is_digit((unsigned char)s.p[i])) digits++;
        else { *ok = 0; return NAN; }
    }
    if (dots > 1 || digits == 0) return NAN;
    if (s.n > 60) { *ok = 0; return NAN; }
    char tmp[64];
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = 0;
    return strtod(tmp, NULL);
}

/* postfix_messages.parse_relay: ([^\[\]]*)\[([^\]]*)\](?::(\d+))?$ else (value, None, None) */
static int relay_parts(Ev *e) {
    Slice v = e->relay;
    e->relay_host = v;
    e->relay_addr = NONE_SLICE;
    e->relay_port = NONE_I64;
    Py_ssize_t j = 0;
    while (j < v.n && v.p[j] != '[' && v.p[j] != ']') j++;
    if (j >= v.n || v.p[j] != '[') return 1;
    Py_ssize_t k = j + 1;
    while (k < v.n && v.p[k] != ']') k++;
    if (k >= v.n) return 1;
    Py_ssize_t end = k + 1;
    int64_t port = NONE_I64;
    if (end < v.n) {
        if (v.p[end] != ':' || end + 1 >= v.n) return 1;
        for (Py_ssize_t d = end + 1; d < v.n; d++)
            if (!is_digit((unsigned char)v.p[d])) return 1;
        if (!parse_uint(v.p + end + 1, v.n - end - 1, &port)) return 0;
    }
    e->relay_host = sl(v.p, j);
    e->relay_addr = sl(v.p + j + 1, k - j - 1);
    e->relay_port = port;
    return 1;
}

/* postfix_messages._DELIVERY on ``to=...`` (the body after the queue id); 0 declines */
static int parse_delivery(Slice qid, Slice b, Ev *e) {
    ev_clear(e, EV_DELIVERY);
    e->queue_id = qid;
    Py_ssize_t i = 0, j;
    /* to=<X>,  (the strict form; anything else goes to Python) */
    if (!eat(b.p, b.n, &i, "to=<")) return 0;
    j = i;
    while (j < b.n && b.p[j] != '>' && b.p[j] != ',') j++;
    if (j >= b.n || b.p[j] != '>') return 0;
    e->recipient = sl(b.p + i, j - i);
    i = j + 1;
    if (!eat(b.p, b.n, &i, ", ")) return 0;
    if (eat(b.p, b.n, &i, "orig_to=<")) {
        j = i;
        while (j < b.n && b.p[j] != '>' && b.p[j] != ',') j++;
        if (j >= b.n || b.p[j] != '>') return 0;
        e->orig_recipient = sl(b.p + i, j - i);
        i = j + 1;
        if (!eat(b.p, b.n, &i, ", ")) return 0;
    } else if (b.n - i >= 8 && memcmp(b.p + i, "orig_to=", 8) == 0) {
        return 0;
    }
    if (!eat(b.p, b.n, &i, "relay=")) return 0;
    j = i;
    while (j < b.n && b.p[j] != ',') j++;
    if (j >= b.n) return 0;
    e->relay = sl(b.p + i, j - i);
    i = j;
    if (!eat(b.p, b.n, &i, ", ")) return 0;
    if (eat(b.p, b.n, &i, "conn_use=")) {
        j = i;
        while (j < b.n && is_digit((unsigned char)b.p[j])) j++;
        if (!parse_uint(b.p + i, j - i, &e->conn_use)) return 0;
        i = j;
        if (!eat(b.p, b.n, &i, ", ")) return 0;
    }
    if (!eat(b.p, b.n, &i, "delay=")) return 0;
    j = i;
    while (j < b.n && (is_digit((unsigned char)b.p[j]) || b.p[j] == '.')) j++;
    if (j == i) return 0;
    int ok;
    e->delay = parse_float(sl(b.p + i, j - i), &ok);
    if (!ok) return 0;
    i = j;
    if (!eat(b.p, b.n, &i, ", delays=")) return 0;
    j = i;
    while (j < b.n && (is_digit((unsigned char)b.p[j]) || b.p[j] == '.' || b.p[j] == '/')) j++;
    if (j == i) return 0;
    {
        Slice ds = sl(b.p + i, j - i);
        Py_ssize_t parts = 1;
        for (Py_ssize_t q = 0; q < ds.n; q++) parts += ds.p[q] == '/';
        if (parts == 4) {
            Py_ssize_t start = 0, k = 0;
            for (Py_ssize_t q = 0; q <= ds.n; q++) {
                if (q == ds.n || ds.p[q] == '/') {
                    e->d[k++] = parse_float(sl(ds.p + start, q - start), &ok);
                    if (!ok) return 0;
                    start = q + 1;
                }
            }
        }
    }
    i = j;
    if (!eat(b.p, b.n, &i, ", ")) return 0;
    if (eat(b.p, b.n, &i, "tls=")) {
        j = i;
        while (j < b.n && b.p[j] != ',') j++;
        if (j >= b.n) return 0;
        e->tls_feature = sl(b.p + i, j - i);
        i = j;
        if (!eat(b.p, b.n, &i, ", ")) return 0;
    }
    if (!eat(b.p, b.n, &i, "dsn=")) return 0;
    /* \d\.\d{1,3}\.\d{1,3} */
    j = i;
    if (j + 1 >= b.n || !is_digit((unsigned char)b.p[j]) || b.p[j + 1] != '.') return 0;
    j += 2;
    Py_ssize_t s0 = j;
    while (j < b.n && is_digit((unsigned char)b.p[j])) j++;
    if (j - s0 < 1 || j - s0 > 3 || j >= b.n || b.p[j] != '.') return 0;
    j++;
    s0 = j;
    while (j < b.n && is_digit((unsigned char)b.p[j])) j++;
    if (j - s0 < 1 || j - s0 > 3) return 0;
    e->dsn = sl(b.p + i, j - i);
    i = j;
    if (!eat(b.p, b.n, &i, ", status=") || !token(b.p, b.n, &i, &e->status)) return 0;
    if (!eat(b.p, b.n, &i, " (")) return 0;
    /* \((.*?)(\)?)$: a reason without its closing ')' was cut by syslog's line limit */
    e->reason_truncated = b.n == i || b.p[b.n - 1] != ')';
    e->reason = sl(b.p + i, b.n - i - !e->reason_truncated);
    return relay_parts(e);
}

/* _TLS: (Anonymous|Untrusted|Trusted|Verified) TLS connection established (from|to) PEER: (\S+) with
 * cipher (\S+) \((\d+/\d+) bits\)(?: key-exchange (\S+))?(?: server-signature (\S+) \(([^)]*?)(?:
 * bits)?\))?(?: server-digest (\S+))?   -- not anchored at the end */
static int parse_tls(Slice t, Ev *e) {
    ev_clear(e, EV_TLS);
    static const char *trusts[] = {"Anonymous", "Untrusted", "Trusted", "Verified"};
    Py_ssize_t i = 0;
    int found = 0;
    for (int k = 0; k < 4 && !found; k++) {
        Py_ssize_t save = i;
        if (eat(t.p, t.n, &i, trusts[k])) { e->trust = sl(t.p, i); found = 1; }
        else i = save;
    }
    if (!found || !eat(t.p, t.n, &i, " TLS connection established ")) return 0;
    if (eat(t.p, t.n, &i, "from ")) e->stage = sl_c("from");
    else if (eat(t.p, t.n, &i, "to ")) e->stage = sl_c("to");
    else return 0;
    /* PEER then ": ": the port's digits must be followed by ':' (never a digit): greedy is right */
    int pr = peer(t, &i, &e->name, &e->addr, &e->port);
    if (pr <= 0) return 0;
    if (!eat(t.p, t.n, &i, ": ") || !token(t.p, t.n, &i, &e->protocol)
        || !eat(t.p, t.n, &i, " with cipher ") || !token(t.p, t.n, &i, &e->cipher) || !eat(t.p, t.n, &i, " ("))
        return 0;
    Py_ssize_t j = i;
    while (j < t.n && is_digit((unsigned char)t.p[j])) j++;
    if (j == i || j >= t.n || t.p[j] != '/') return 0;
    Py_ssize_t k = j + 1;
    while (k < t.n && is_digit((unsigned char)t.p[k])) k++;
    if (k == j + 1) return 0;
    e->bits = sl(t.p + i, k - i);
    i = k;
    if (!eat(t.p, t.n, &i, " bits)")) return 0;
    /* the optional tail */
    Py_ssize_t save = i;
    if (eat(t.p, t.n, &i, " key-exchange ") && !token(t.p, t.n, &i, &e->kex)) i = save;
    /* " server-signature S (SIZE)": S is stored; the size (up to the first ')', a trailing
     * " bits" dropped) is not, but the match needs its ')' */
    save = i;
    Slice sig;
    if (eat(t.p, t.n, &i, " server-signature ") && token(t.p, t.n, &i, &sig) && eat(t.p, t.n, &i, " (")
        && memchr(t.p + i, ')', t.n - i) != NULL) {
        e->sig = sig;
        i = (const char *)memchr(t.p + i, ')', t.n - i) - t.p + 1;
    } else {
        i = save;
    }
    /* server-digest is not stored */
    return 1;
}

/* postfix_messages._diagnostic(text): ``LEVEL: [QID: ][NAME[ADDR]: ]text`` (the level before the
 * first ": "); the row needs the level, the queue id (not NOQUEUE) and, for smtpd, the address. */
static int diagnostic(Slice text, Ev *e) {
    static const char *levels[] = {"warning", "error", "fatal", "panic", "info"};
    const char *c = text.n >= 2 ? memmem(text.p, text.n, ": ", 2) : NULL;
    if (c == NULL || c - text.p > 7) return 0;
    Slice level = sl(text.p, c - text.p);
    int found = 0;
    for (int k = 0; k < 5 && !found; k++) found = sl_is(level, levels[k]);
    if (!found) return 0;
    ev_clear(e, EV_DIAGNOSTIC);
    e->level = level;
    Slice rest = sl(c + 2, text.n - (c + 2 - text.p)), qid, body;
    if (qid_prefix(rest, &qid, &body) && !sl_is(qid, "NOQUEUE")) {
        e->queue_id = qid;
        rest = body;
    }
    /* _PEER_PREFIX: ([^\s\[\]]+)\[([0-9A-Fa-f]*[.:][0-9A-Fa-f.:]*|unknown)\]: */
    Py_ssize_t j = 0;
    while (j < rest.n && rest.p[j] != '[' && rest.p[j] != ']' && !is_space((unsigned char)rest.p[j])) j++;
    if (j == 0 || j >= rest.n || rest.p[j] != '[') return 1;
    Py_ssize_t a = j + 1, k = a;
    int sep = 0, ok = 1;
    while (k < rest.n && rest.p[k] != ']') {
        unsigned char ch = (unsigned char)rest.p[k];
        if (ch == '.' || ch == ':') sep = 1;
        else if (!(is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))) ok = 0;
        k++;
    }
    Slice addr = sl(rest.p + a, k - a);
    if ((ok && sep) || sl_is(addr, "unknown"))
        if (k + 2 < rest.n && rest.p[k + 1] == ':' && rest.p[k + 2] == ' ') e->diag_peer_addr = addr;
    return 1;
}

/* smtpd's _SESSION_PROBLEM: PROBLEM (?:after (\S+(?: \w+)?)(?: \([^)]*\))? )?from PEER(?::? ?(.*))?$ */
static int session_problem_at(Slice t, Py_ssize_t i, Slice *name, Slice *addr, Slice *detail) {
    /* " from PEER" and the detail, from t[i] (the space before "from") */
    int64_t port;
    if (!eat(t.p, t.n, &i, " from ") || peer(t, &i, name, addr, &port) <= 0) return 0;
    if (i < t.n && t.p[i] == ':') i++;
    if (i < t.n && t.p[i] == ' ') i++;
    *detail = sl(t.p + i, t.n - i);
    return 1;
}
static int is_word(unsigned char c) { return is_digit(c) || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Python's \w (str.isalnum() or '_') for the character s[j] belongs to: any byte of a non-ASCII
 * character answers for the whole character (the compiled parsers read only valid UTF-8, and a
 * slice always starts at an ASCII delimiter, so its lead byte is found before j). */
static int word_at(const char *s, Py_ssize_t j) {
    const unsigned char *p = (const unsigned char *)s;
    if (p[j] < 0x80) return is_word(p[j]);
    while ((p[j] & 0xC0) == 0x80) j--;
    unsigned c = p[j], need = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
    Py_UCS4 cp = c & (0x3F >> need);
    for (unsigned k = 1; k <= need; k++) cp = cp << 6 | (p[j + k] & 0x3F);
    return Py_UNICODE_ISALNUM(cp);
}
static int skip_paren(Slice t, Py_ssize_t i) {
    /* (?: \([^)]*\))? greedy: the index after it, or i */
    if (i + 1 < t.n && t.p[i] == ' ' && t.p[i + 1] == '(') {
        const char *close = memchr(t.p + i + 2, ')', t.n - i - 2);
        if (close != NULL) return (int)(close - t.p + 1);
    }
    return (int)i;
}
static int session_problem(Slice t, Ev *e) {
    static const char *problems[] = {"lost connection", "timeout", "too many errors", "bare <LF> received",
                                     "improper command pipelining", "SSL_accept error"};
    Py_ssize_t i = 0;
    int k = 0;
    for (; k < 6; k++) {
        i = 0;
        if (eat(t.p, t.n, &i, problems[k]) && i < t.n && t.p[i] == ' ') break;
    }
    if (k == 6) return 0;
    ev_clear(e, EV_SESSION_PROBLEM);
    e->problem = sl(t.p, i);
    if (t.n - i > 7 && memcmp(t.p + i, " after ", 7) == 0) {
        Py_ssize_t s0 = i + 7, j = s0;
        while (j < t.n && !is_space((unsigned char)t.p[j])) j++;
        if (j == s0) return 0;
        /* with a following word (greedy), then without */
        if (j + 1 < t.n && t.p[j] == ' ' && word_at(t.p, j + 1)) {
            Py_ssize_t w = j + 1;
            while (w < t.n && word_at(t.p, w)) w++;
            if (session_problem_at(t, skip_paren(t, w), &e->name, &e->addr, &e->detail)) {
                e->stage = sl(t.p + s0, w - s0);
                return 1;
            }
        }
        if (session_problem_at(t, skip_paren(t, j), &e->name, &e->addr, &e->detail)) {
            e->stage = sl(t.p + s0, j - s0);
            return 1;
        }
        return 0;
    }
    return session_problem_at(t, i, &e->name, &e->addr, &e->detail);
}

/* _KV_TAIL from p[i] to the end: (?=from=|to=)(?:from=<[^>]*>)? ?(?:to=<[^>]*>)?(?: proto=\S+)?(?: helo=<[^>]*>)?$ */
static Py_ssize_t bracketed(const char *p, Py_ssize_t n, Py_ssize_t i, const char *lit) {
    /* lit<[^>]*> at p[i]: the index after it, or i when it is not there */
    Py_ssize_t k = i;
    if (!eat(p, n, &k, lit)) return i;
    const char *gt = memchr(p + k, '>', n - k);
    return gt == NULL ? i : gt - p + 1;
}
static int kv_rest(const char *p, Py_ssize_t n, Py_ssize_t k) {
    k = bracketed(p, n, k, "to=<");
    Py_ssize_t save = k;
    Slice proto;
    if (!(eat(p, n, &k, " proto=") && token(p, n, &k, &proto))) k = save;
    k = bracketed(p, n, k, " helo=<");
    return k == n;
}
static int kv_tail(const char *p, Py_ssize_t n, Py_ssize_t i) {
    if (!starts(p + i, n - i, "from=") && !starts(p + i, n - i, "to=")) return 0;
    i = bracketed(p, n, i, "from=<");
    if (i < n && p[i] == ' ' && kv_rest(p, n, i + 1)) return 1;
    return kv_rest(p, n, i);
}

/* postfix_messages._REJECT on the body after ``QID: ``: ACTION: STAGE from PEER: [CODE ][X.Y.Z ]
 * [<data>: |Service unavailable; ... [addr] ]MESSAGE[; KV_TAIL]. 0 declines. */
static int parse_reject(Slice qid, Slice b, Ev *e) {
    const char *p = b.p;
    Py_ssize_t n = b.n, i = 0;
    while (i < n && (word_at(p, i) || p[i] == '-')) i++;
    if (i == 0 || n - i < 2 || p[i] != ':' || p[i + 1] != ' ') return 0;
    ev_clear(e, EV_REJECTED);
    e->queue_id = qid;
    e->action = sl(p, i);
    i += 2;
    Py_ssize_t s0 = i;
    Slice stage;
    if (!token(p, n, &i, &stage)) return 0;
    static const char *suffixes[] = {" TO", " FROM", " of DATA"};
    Py_ssize_t after = -1;
    for (int k = 0; k < 3 && after < 0; k++) {
        Py_ssize_t j = i;
        if (eat(p, n, &j, suffixes[k]) && starts(p + j, n - j, " from ")) after = j;
    }
    if (after < 0) after = i;
    e->stage = sl(p + s0, after - s0);
    i = after;
    int64_t port;
    if (!eat(p, n, &i, " from ") || peer(b, &i, &e->name, &e->addr, &port) <= 0 || !eat(p, n, &i, ": ")) return 0;
    if (n - i >= 4 && is_digit((unsigned char)p[i]) && is_digit((unsigned char)p[i + 1])
        && is_digit((unsigned char)p[i + 2]) && p[i + 3] == ' ') {
        e->status_code = sl(p + i, 3);
        i += 4;
    }
    /* \d\.\d{1,3}\.\d{1,3} then a space */
    if (n - i >= 6 && is_digit((unsigned char)p[i]) && p[i + 1] == '.') {
        Py_ssize_t j = i + 2, d1 = j;
        while (j < n && j - d1 < 4 && is_digit((unsigned char)p[j])) j++;
        if (j - d1 >= 1 && j - d1 <= 3 && j < n && p[j] == '.') {
            Py_ssize_t d2 = ++j;
            while (j < n && j - d2 < 4 && is_digit((unsigned char)p[j])) j++;
            if (j - d2 >= 1 && j - d2 <= 3 && j < n && p[j] == ' ') {
                e->enhanced_code = sl(p + i, j - i);
                i = j + 1;
            }
        }
    }
    /* (?:<([^>]*)>: |Service unavailable; [\w ]+ \[([^\]]*)\] )? */
    if (i < n && p[i] == '<') {
        const char *gt = memchr(p + i, '>', n - i);
        if (gt != NULL && gt + 2 < p + n && gt[1] == ':' && gt[2] == ' ') i = gt - p + 3;
    } else if (starts(p + i, n - i, "Service unavailable; ")) {
        Py_ssize_t j = i + 21, w = j;
        while (j < n && (word_at(p, j) || p[j] == ' ')) j++;
        /* [\w ]+ backs off to the last " [" inside its run */
        Py_ssize_t k = j;
        while (k > w + 1 && !(p[k - 1] == ' ' && k < n && p[k] == '[')) k--;
        if (k > w + 1 && k < n && p[k] == '[') {
            const char *rb = memchr(p + k, ']', n - k);
            if (rb != NULL && rb + 1 < p + n && rb[1] == ' ') i = rb - p + 2;
        }
    }
    /* (.*?)(?:; KV_TAIL)?$: the first "; " the rest of which is a KV tail ends the message */
    Py_ssize_t end = n;
    for (const char *sc = memchr(p + i, ';', n - i); sc != NULL; sc = memchr(sc + 1, ';', p + n - sc - 1)) {
        if (sc + 1 < p + n && sc[1] == ' ' && kv_tail(p, n, sc - p + 2)) { end = sc - p; break; }
        if (sc + 1 >= p + n) break;
    }
    e->status_message = sl(p + i, end - i);
    return 1;
}

/* parse_smtp's remote problems after ``QID: ``: _SAID, _LOST, _TIMED_OUT (the row needs no more
 * than that it is one); 0 declines. */
static int remote_problem(Slice qid, Slice b, Ev *e) {
    static const char *heads[] = {"host ", "lost connection with ", "conversation with "};
    static const char *tails[][2] = {{" said: ", " refused to talk to me: "}, {" while ", NULL},
                                     {" timed out while ", NULL}};
    for (int k = 0; k < 3; k++) {
        Py_ssize_t i = 0;
        if (!eat(b.p, b.n, &i, heads[k])) continue;
        ev_clear(e, EV_REMOTE_PROBLEM);
        e->queue_id = qid;
        if (peer(b, &i, &e->name, &e->addr, &e->port) <= 0) return 0;
        for (int t = 0; t < 2; t++)
            if (tails[k][t] != NULL && starts(b.p + i, b.n - i, tails[k][t])) return 1;
        return 0;
    }
    return 0;
}

/* Daemons with a parser of their own in postfix_messages.PARSERS; any other daemon's line is
 * a diagnostic or an uninterpreted line. */
static int has_parser(Slice d) {
    static const char *names[] = {"smtpd", "smtp", "lmtp", "relay", "local", "virtual", "pipe", "error", "retry",
                                  "discard", "qmgr", "cleanup", "bounce", "pickup"};
    for (int k = 0; k < 14; k++)
        if (sl_is(d, names[k])) return 1;
    return 0;
}

#define FAST_UNINTERPRETED 2

/* The message kinds this reader parses itself: 1 an event, FAST_UNINTERPRETED a line no parser
 * interprets (e->queue_id: its _QID_PREFIX), 0 declines (the Python parser decides). */
static int fast_message(Slice daemon, Slice text, Ev *e) {
    Slice qid, body;
    Py_ssize_t i = 0;
    if (text.n > 0 && text.p[0] >= 'e' && text.p[0] <= 'w' && diagnostic(text, e)) return 1;
    if (!has_parser(daemon)) {
        /* parse_other: only diagnostics; the rest is kept as it is */
        ev_clear(e, EV_DIAGNOSTIC);
        if (qid_prefix(text, &qid, &body)) e->queue_id = qid;
        return FAST_UNINTERPRETED;
    }
    if (sl_is(daemon, "smtpd")) {
        if (starts(text.p, text.n, "connect from ")) {
            ev_clear(e, EV_CONNECT);
            i = 13;
            if (peer(text, &i, &e->name, &e->addr, &e->port) <= 0) return 0;
            if (i == text.n || text.p[i] == ' ') return 1;
            return 0;
        }
        if (starts(text.p, text.n, "disconnect from ")) {
            ev_clear(e, EV_DISCONNECT);
            i = 16;
            if (peer(text, &i, &e->name, &e->addr, &e->port) <= 0) return 0;
            if (i == text.n) return 1;           /* commands None */
            if (text.p[i] != ' ') return 0;
            e->commands = sl(text.p + i + 1, text.n - i - 1);
            return 1;
        }
        if (text.n > 0 && (text.p[0] == 'A' || text.p[0] == 'U' || text.p[0] == 'T' || text.p[0] == 'V'))
            if (starts(text.p, text.n, "Anonymous TLS ") || starts(text.p, text.n, "Untrusted TLS ")
                || starts(text.p, text.n, "Trusted TLS ") || starts(text.p, text.n, "Verified TLS "))
                return parse_tls(text, e);
        if (text.n > 0 && (text.p[0] == 'l' || text.p[0] == 't' || text.p[0] == 'b' || text.p[0] == 'i'
                           || text.p[0] == 'S') && session_problem(text, e))
            return 1;
        if (qid_prefix(text, &qid, &body) && !starts(body.p, body.n, "client=")) return parse_reject(qid, body, e);
        if (qid_prefix(text, &qid, &body) && starts(body.p, body.n, "client=")) {
            ev_clear(e, EV_CLIENT);
            e->queue_id = qid;
            i = 7;
            if (peer(body, &i, &e->name, &e->addr, &e->port) <= 0) return 0;
            /* (?:, sasl_method=[^,]*, sasl_username=([^,]*))? is not stored: nothing to check */
            return 1;
        }
        return 0;
    }
    /* _diagnostic(body, qid), which every other parser tries last (no earlier shape of theirs
     * starts with a level) */
    if (qid_prefix(text, &qid, &body) && body.n > 0 && body.p[0] >= 'e' && body.p[0] <= 'w' && diagnostic(body, e)) {
        e->queue_id = qid;
        return 1;
    }
    int smtp_like = sl_is(daemon, "smtp") || sl_is(daemon, "lmtp") || sl_is(daemon, "relay");
    int agent = sl_is(daemon, "local") || sl_is(daemon, "virtual") || sl_is(daemon, "pipe")
                || sl_is(daemon, "error") || sl_is(daemon, "retry") || sl_is(daemon, "discard");
    if (smtp_like || agent) {
        if (qid_prefix(text, &qid, &body)) {
            if (starts(body.p, body.n, "to=")) return parse_delivery(qid, body, e);
            return smtp_like && remote_problem(qid, body, e);
        }
        if (smtp_like && starts(text.p, text.n, "connect to ")) {
            /* _CONNECT_TO: connect to PEER: (.*)$ */
            ev_clear(e, EV_REMOTE_PROBLEM);
            i = 11;
            return peer(text, &i, &e->name, &e->addr, &e->port) > 0 && starts(text.p + i, text.n - i, ": ");
        }
        if (smtp_like && (starts(text.p, text.n, "Anonymous TLS ") || starts(text.p, text.n, "Untrusted TLS ")
                          || starts(text.p, text.n, "Trusted TLS ") || starts(text.p, text.n, "Verified TLS ")))
            return parse_tls(text, e);
        return 0;
    }
    if (!qid_prefix(text, &qid, &body)) return 0;
    if (sl_is(daemon, "qmgr")) {
        if (body.n == 7 && memcmp(body.p, "removed", 7) == 0) {
            ev_clear(e, EV_REMOVED);
            e->queue_id = qid;
            return 1;
        }
        if (starts(body.p, body.n, "from=<")) {
            /* from=<([^>]*)>, size=(\d+), nrcpt=(\d+) -- not anchored at the end */
            ev_clear(e, EV_QUEUE_ACTIVE);
            e->queue_id = qid;
            i = 6;
            Py_ssize_t j = i;
            while (j < body.n && body.p[j] != '>') j++;
            if (j >= body.n) return 0;
            e->sender = sl(body.p + i, j - i);
            i = j + 1;
            if (!eat(body.p, body.n, &i, ", size=")) return 0;
            j = i;
            while (j < body.n && is_digit((unsigned char)body.p[j])) j++;
            if (!parse_uint(body.p + i, j - i, &e->size)) return 0;
            i = j;
            if (!eat(body.p, body.n, &i, ", nrcpt=")) return 0;
            j = i;
            while (j < body.n && is_digit((unsigned char)body.p[j])) j++;
            if (!parse_uint(body.p + i, j - i, &e->nrcpt)) return 0;
            return 1;
        }
        if (starts(body.p, body.n, "to=")) return parse_delivery(qid, body, e);
        if (starts(body.p, body.n, "from=")) return 0;
        /* parse_qmgr: any other queue-file line is a note (a diagnostic without a level) */
        ev_clear(e, EV_DIAGNOSTIC);
        e->queue_id = qid;
        return 1;
    }
    if (sl_is(daemon, "cleanup")) {
        if (starts(body.p, body.n, "reject: ") || starts(body.p, body.n, "milter-reject: "))
            return parse_reject(qid, body, e);
        if (!starts(body.p, body.n, "message-id=")) return 0;
        ev_clear(e, EV_MESSAGE_ID);
        e->queue_id = qid;
        Slice v = sl(body.p + 11, body.n - 11);
        if (v.n >= 2 && v.p[0] == '<' && v.p[v.n - 1] == '>') v = sl(v.p + 1, v.n - 2);
        e->message_id = v;
        return 1;
    }
    if (sl_is(daemon, "pickup")) {
        /* uid=(\d+) from=<([^>]*)> */
        ev_clear(e, EV_PICKUP);
        e->queue_id = qid;
        i = 0;
        if (!eat(body.p, body.n, &i, "uid=")) return 0;
        Py_ssize_t j = i;
        while (j < body.n && is_digit((unsigned char)body.p[j])) j++;
        if (!parse_uint(body.p + i, j - i, &e->size)) return 0;     /* uid kept in size: unused */
        i = j;
        if (!eat(body.p, body.n, &i, " from=<")) return 0;
        j = i;
        while (j < body.n && body.p[j] != '>') j++;
        if (j >= body.n) return 0;
        e->sender = sl(body.p + i, j - i);
        e->size = NONE_I64;
        return 1;
    }
    if (sl_is(daemon, "bounce")) {
        /* (sender|postmaster) (non-delivery|delay|delivery status|success) notification: (\S+)$ */
        ev_clear(e, EV_NOTICE);
        e->queue_id = qid;
        i = 0;
        if (eat(body.p, body.n, &i, "sender ")) e->notice_recipient = sl_c("sender");
        else if (eat(body.p, body.n, &i, "postmaster ")) e->notice_recipient = sl_c("postmaster");
        else return 0;
        static const char *kinds[] = {"non-delivery", "delay", "delivery status", "success"};
        int found = 0;
        for (int k = 0; k < 4 && !found; k++) {
            Py_ssize_t save = i;
            if (eat(body.p, body.n, &i, kinds[k]) && eat(body.p, body.n, &i, " notification: ")) {
                e->notice_kind = sl_c(kinds[k]);
                found = 1;
            } else {
                i = save;
            }
        }
        if (!found || i >= body.n) return 0;
        for (Py_ssize_t j = i; j < body.n; j++)
            if (is_space((unsigned char)body.p[j])) return 0;
        e->notice_queue_id = sl(body.p + i, body.n - i);
        return 1;
    }
    return 0;
}

/* postfix_log._RESOLVER_PROGRAMS, by the whole name or its last part: the resolver's lines are
 * read by the Python reader. */
static int resolver_program(Slice prog) {
    static const char *names[] = {"mta-sts-daemon", "postfix-mta-sts-resolver", "mta-sts-resolver"};
    Py_ssize_t j = prog.n;
    while (j > 0 && prog.p[j - 1] != '/') j--;
    Slice base = sl(prog.p + j, prog.n - j);
    for (int k = 0; k < 3; k++)
        if (sl_is(prog, names[k]) || sl_is(base, names[k])) return 1;
    return 0;
}

/* postfix_envelope.split_program: ``postfix-a/smtpd`` -> (postfix-a, smtpd); 0: not Postfix */
static int split_program(Slice prog, Slice *instance, Slice *daemon) {
    const char *slash = memchr(prog.p, '/', prog.n);
    if (slash == NULL) return 0;
    Py_ssize_t first = slash - prog.p;
    if (first < 7 || memcmp(prog.p, "postfix", 7) != 0) return 0;
    Py_ssize_t last = prog.n - 1;
    while (last > first && prog.p[last] != '/') last--;
    if (last == prog.n - 1) return 0;
    *instance = sl(prog.p, first);
    *daemon = sl(prog.p + last + 1, prog.n - last - 1);
    return 1;
}

/* `` host prog[pid]: `` from p[at] (a space) on, as postfix_envelope's _CLASSIC_TAIL / _ISO read
 * it: host \S+, program [^\s\[\]:]+, an optional [pid] of digits, ':' and an optional space. */
static int env_tail(const char *p, Py_ssize_t n, Py_ssize_t at, Env *env) {
    if (at >= n || p[at] != ' ') return 0;
    Py_ssize_t h = at + 1;
    const char *sp = memchr(p + h, ' ', n - h);
    if (sp == NULL) return 0;
    Py_ssize_t spi = sp - p;
    if (spi <= h) return 0;
    const char *colon = memchr(p + spi + 1, ':', n - spi - 1);
    if (colon == NULL) return 0;
    Py_ssize_t ci = colon - p;
    if (ci <= spi + 1) return 0;
    Slice host = sl(p + h, spi - h);
    const char *lb = memchr(p + spi + 1, '[', ci - spi - 1);
    Slice prog;
    int64_t pid = NONE_I64;
    if (lb == NULL) {
        prog = sl(p + spi + 1, ci - spi - 1);
    } else {
        Py_ssize_t lbi = lb - p;
        if (p[ci - 1] != ']' || !parse_uint(p + lbi + 1, ci - 1 - lbi - 1, &pid)) return 0;
        prog = sl(p + spi + 1, lbi - spi - 1);
    }
    if (prog.n == 0) return 0;
    for (Py_ssize_t k = 0; k < prog.n; k++) {
        unsigned char c = (unsigned char)prog.p[k];
        if (is_space(c) || c == '[' || c == ']' || c == ':') return 0;
    }
    for (Py_ssize_t k = 0; k < host.n; k++)
        if (is_space((unsigned char)host.p[k])) return 0;
    Py_ssize_t end = (ci + 1 < n && p[ci + 1] == ' ') ? ci + 2 : ci + 1;
    env->host = host;
    env->program = prog;
    env->pid = pid;
    env->message = sl(p + end, n - end);
    return 1;
}

/* Exactly n ASCII digits at p as a number; -1 if not digits. */
static int digits_n(const char *p, int n) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((unsigned char)p[i])) return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* postfix_envelope._fraction: the first six of 1-9 digits as microseconds; *len the digits. */
static int fraction_us(const char *p, Py_ssize_t n, Py_ssize_t at, Py_ssize_t *len) {
    Py_ssize_t j = at;
    while (j < n && j - at < 10 && is_digit((unsigned char)p[j])) j++;
    *len = j - at;
    if (*len < 1 || *len > 9) return -1;
    int us = 0;
    for (Py_ssize_t k = 0; k < 6; k++) us = us * 10 + (k < *len ? p[at + k] - '0' : 0);
    return us;
}

static int days_in_month(int y, int m) {
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : d[m - 1];
}

/* The classic envelope, as EnvelopeParser._classic: the 15-character stamp through the
 * reference's own cache (its year tracker), an optional fraction (maillog_file,
 * journalctl -o short-precise), then the tail. 0 declines. */
static int classic_envelope(Reader *r, Slice line, Env *env) {
    if (line.n < 17) return 0;
    int64_t ts;
    if (r->memo_valid && memcmp(r->memo_stamp, line.p, 15) == 0) {
        ts = r->memo_ts;
    } else {
        PyObject *stamp = PyUnicode_DecodeASCII(line.p, 15, NULL);
        if (stamp == NULL) { PyErr_Clear(); return 0; }
        PyObject *dt = PyDict_GetItemWithError(r->stamp_cache, stamp);
        if (dt == NULL) {
            if (PyErr_Occurred()) { Py_DECREF(stamp); return -1; }
            dt = PyObject_CallOneArg(r->stamp_fn, stamp);
            Py_DECREF(stamp);
            r->memo_valid = 0;      /* Python ran: its caches may have changed */
            if (dt == NULL) return -1;
            Py_DECREF(dt);          /* the cache holds it (or it is None) */
            if (dt == Py_None) return 0;
            return classic_envelope(r, line, env);
        }
        Py_DECREF(stamp);
        if (dt == Py_None) return 0;
        if (!PyDateTime_Check(dt)) return 0;
        ts = dt_to_us(dt);
        if (ts == NONE_I64) return -1;
        memcpy(r->memo_stamp, line.p, 15);
        r->memo_ts = ts;
        r->memo_valid = 1;
    }
    Py_ssize_t at = 15;
    if (line.p[15] == '.') {
        /* _CLASSIC_TAIL: (?:\.(\d{1,9}))? -- the whole second's time with these microseconds */
        Py_ssize_t len;
        int us = fraction_us(line.p, line.n, 16, &len);
        if (us < 0) return 0;
        ts += us;
        at = 16 + len;
    }
    if (!env_tail(line.p, line.n, at, env)) return 0;
    env->ts = ts;
    return 1;
}

/* _ISO: (?:<\d{1,3}>)?YYYY-MM-DD[T ]hh:mm:ss(?:[.,]\d{1,9})?(Z|[+-]\d\d:?\d\d)? then the tail, as
 * rsyslog's RSYSLOG_FileFormat and journalctl -o short-iso write it; converted to UTC. 0 declines
 * (and declines what the reference could also read another way: a host that is a log level
 * after a space-separated stamp could be the resolver's own format). */
/* YYYY-MM-DD[T ]hh:mm:ss(?:[.,]\d{1,9})?(Z|[+-]\d\d:?\d\d)? at p[*at]: the time in UTC
 * microseconds and *at after it; 0 if it is not one or Python's datetime would refuse it.
 * *docker: the stamp is also one of docker logs --timestamps (a T, a zone, no ',' fraction). */
static int iso_stamp(const char *p, Py_ssize_t n, Py_ssize_t *at, int64_t *out, int *docker) {
    Py_ssize_t i = *at;
    if (n - i < 19) return 0;
    const char *s = p + i;
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':') return 0;
    int y = digits_n(s, 4), mo = digits_n(s + 5, 2), d = digits_n(s + 8, 2), hh = digits_n(s + 11, 2),
        mi = digits_n(s + 14, 2), ss = digits_n(s + 17, 2);
    if (y < 2 || y > 9998 || mo < 1 || mo > 12 || d < 1 || hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0
        || ss > 59 || d > days_in_month(y, mo))
        return 0;
    i += 19;
    int us = 0;
    *docker = s[10] == 'T';
    if (i < n && p[i] == ',') *docker = 0;
    if (i < n && (p[i] == '.' || p[i] == ',')) {
        Py_ssize_t len;
        us = fraction_us(p, n, i + 1, &len);
        if (us < 0) return 0;
        i += 1 + len;
    }
    int64_t offset_min = 0;
    int zone = 1;
    if (i < n && p[i] == 'Z') {
        i++;
    } else if (i < n && (p[i] == '+' || p[i] == '-')) {
        int sign = p[i] == '+' ? 1 : -1;
        if (n - i < 5) return 0;
        int oh = digits_n(p + i + 1, 2), om;
        Py_ssize_t k = i + 3;
        if (p[k] == ':') k++;
        if (n - k < 2 || (om = digits_n(p + k, 2)) < 0 || oh < 0) return 0;
        if (oh * 60 + om >= 1440) return 0;      /* dt.timezone refuses it: the reference reads no line */
        if (p[i + 3] != ':') *docker = 0;
        offset_min = sign * (oh * 60 + om);
        i = k + 2;
    } else {
        zone = 0;
    }
    *docker = *docker && zone;
    int64_t secs = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + hh) * 60 + mi) * 60 + ss;
    *out = (secs - offset_min * 60) * 1000000 + us;
    *at = i;
    return 1;
}

static int iso_envelope(Slice line, Env *env) {
    const char *p = line.p;
    Py_ssize_t n = line.n, i = 0;
    if (n > 0 && p[0] == '<') {
        Py_ssize_t j = 1;
        while (j < n && j < 5 && is_digit((unsigned char)p[j])) j++;
        if (j == 1 || j > 4 || j >= n || p[j] != '>') return 0;
        i = j + 1;
    }
    int64_t ts;
    int docker;
    Py_ssize_t start = i;
    if (!iso_stamp(p, n, &i, &ts, &docker) || !env_tail(p, n, i, env)) return 0;
    if (p[start + 10] == ' ') {
        /* the resolver's own format (2024-03-01 10:00:00 INFO ...) could read it too */
        static const char *levels[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};
        for (int k = 0; k < 5; k++)
            if (sl_is(env->host, levels[k])) return 0;
    }
    if (docker && start == 0 && env->host.n > 0) {
        /* a docker logs --timestamps line whose "host" starts another envelope: the reference
         * reads it as ISO, but it is a rare and odd line; leave it to the reference */
        unsigned char h0 = (unsigned char)env->host.p[0];
        if (h0 == '<' || is_digit(h0) || (h0 >= 'A' && h0 <= 'Z')) return 0;
    }
    env->ts = ts;
    return 1;
}

/* RFC 5424 section 6.3 STRUCTURED-DATA at p[i] (not "-"): one or more SD-ELEMENTs
 * ``[...]``, as postfix_envelope._RFC5424 reads them: inside an element any character but
 * ``]``, ``"`` and ``\``, a backslash pair (``\]``, ``\"``, ``\\``, 6.3.3), or a quoted
 * PARAM-VALUE whose ``"``/``\`` are escaped. The index after the last element; 0 when the
 * first element does not close (the reference then reads no line) or when an element after
 * it does not (the reference reads the line with an empty message: left to it). */
static Py_ssize_t sd_elements(const char *p, Py_ssize_t n, Py_ssize_t i) {
    Py_ssize_t end = 0;
    while (i < n && p[i] == '[') {
        Py_ssize_t k = i + 1;
        for (;;) {
            if (k >= n) return 0;
            char c = p[k];
            if (c == ']') break;
            if (c == '\\') {
                k += 2;
            } else if (c == '"') {
                for (k++; k < n && p[k] != '"'; k++)
                    if (p[k] == '\\') k++;
                if (k >= n) return 0;
                k++;
            } else {
                k++;
            }
        }
        i = end = k + 1;
    }
    return end;
}

/* _RFC5424 (RFC 5424 section 6): <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG], SD the
 * NILVALUE "-" or structured data (sd_elements); a message's leading BOM (6.4) is not part of
 * it. 0 declines. */
static int rfc5424_envelope(Slice line, Env *env) {
    const char *p = line.p;
    Py_ssize_t n = line.n, j = 1;
    while (j < n && j < 5 && is_digit((unsigned char)p[j])) j++;
    if (j == 1 || j > 4 || n - j < 3 || memcmp(p + j, ">1 ", 3) != 0) return 0;
    Py_ssize_t i = j + 3;
    int64_t ts;
    int docker;
    Slice tok[5];
    for (int k = 0; k < 5; k++) {
        if (k > 0 && (i >= n || p[i++] != ' ')) return 0;
        if (!token(p, n, &i, &tok[k])) return 0;
    }
    Py_ssize_t at = 0;
    if (!iso_stamp(tok[0].p, tok[0].n, &at, &ts, &docker) || at != tok[0].n) return 0;
    if (sl_is(tok[2], "-") || n - i < 2 || p[i] != ' ') return 0;
    if (p[i + 1] == '-') {
        i += 2;
    } else if ((i = sd_elements(p, n, i + 1)) == 0) {
        return 0;
    }
    if (i < n && p[i] != ' ') return 0;
    env->ts = ts;
    env->host = sl_is(tok[1], "-") ? NONE_SLICE : tok[1];
    env->program = tok[2];
    if (!parse_uint(tok[3].p, tok[3].n, &env->pid)) env->pid = NONE_I64;
    env->message = i < n ? sl(p + i + 1, n - i - 1) : sl(p + i, 0);
    if (starts(env->message.p, env->message.n, "\xef\xbb\xbf")) env->message = sl(env->message.p + 3, env->message.n - 3);
    return 1;
}

/* The envelopes but container stdout: classic, RFC 5424, ISO 8601; 0 declines. */
static int plain_envelope(Reader *r, Slice line, Env *env) {
    if (line.n == 0) return 0;
    unsigned char c = (unsigned char)line.p[0];
    if (c >= 'A' && c <= 'Z') return classic_envelope(r, line, env);
    if (c == '<' && line.n > 4 && (memcmp(line.p + 2, ">1 ", 3) == 0 || memcmp(line.p + 3, ">1 ", 3) == 0
                                   || memcmp(line.p + 4, ">1 ", 3) == 0))
        return rfc5424_envelope(line, env);
    if (is_digit(c) || c == '<') return iso_envelope(line, env);
    return 0;
}

/* _COMPOSE: [\w.-]+\s*\| at p[*i] (a docker compose logs prefix); *i after it. */
static int compose_prefix(const char *p, Py_ssize_t n, Py_ssize_t *i) {
    Py_ssize_t j = *i;
    while (j < n && (word_at(p, j) || p[j] == '.' || p[j] == '-')) j++;
    if (j == *i) return 0;
    while (j < n && is_space((unsigned char)p[j])) j++;
    if (n - j < 2 || p[j] != '|' || p[j + 1] != ' ') return 0;
    *i = j + 2;
    return 1;
}

/* EnvelopeParser._container without the json-file form: a docker logs --timestamps stamp
 * and/or a docker compose logs prefix, then a classic, ISO or RFC 5424 line. The reference
 * tries it last: taken only where no other envelope can read the whole line, so after a
 * docker stamp only a classic line (an ISO or <PRI> line there can make the whole line an
 * ISO line, which the reference reads as such). */
static int container_envelope(Reader *r, Slice line, Env *env) {
    const char *p = line.p;
    Py_ssize_t n = line.n, i = 0;
    int docker = 0;
    if (is_digit((unsigned char)p[0])) {
        int64_t ts;
        if (!iso_stamp(p, n, &i, &ts, &docker) || !docker || i >= n || p[i] != ' ') return 0;
        i++;
        compose_prefix(p, n, &i);
    } else if (!compose_prefix(p, n, &i)) {
        return 0;
    }
    Slice inner = sl(p + i, n - i);
    if (inner.n == 0) return 0;
    if (docker && !(inner.p[0] >= 'A' && inner.p[0] <= 'Z')) return 0;
    return plain_envelope(r, inner, env);
}

/* ---- non-ASCII text */
enum { TEXT_INVALID = -2, TEXT_OTHER = -1, TEXT_OK = 0 };

/* Whether the compiled parsers can read p[:n] as the reference reads its text: TEXT_OK (ASCII,
 * or UTF-8 whose characters are no spaces and no decimal digits for Python: word_at gives its
 * \w), TEXT_OTHER (a space such as U+00A0 or a digit such as U+0663, which Python's \s, \d,
 * isdecimal() and int() see: left to the reference), TEXT_INVALID (not UTF-8 as CPython's strict
 * decoder reads it: the caller reads Python's replacement of it instead). */
static int text_class(const char *s, Py_ssize_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (Py_ssize_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c < 0x80) { i++; continue; }
        unsigned cp, need, lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) { cp = c & 0x1F; need = 1; }
        else if (c >= 0xE0 && c <= 0xEF) {
            cp = c & 0x0F; need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;          /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            cp = c & 0x07; need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return TEXT_INVALID;
        }
        if (n - i <= (Py_ssize_t)need) return TEXT_INVALID;
        for (unsigned k = 1; k <= need; k++) {
            unsigned b = p[i + k];
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return TEXT_INVALID;
            cp = cp << 6 | (b & 0x3F);
        }
        i += need + 1;
        if (Py_UNICODE_ISSPACE((Py_UCS4)cp) || Py_UNICODE_ISDECIMAL((Py_UCS4)cp)) return TEXT_OTHER;
    }
    return TEXT_OK;
}

/* ---- docker's json-file lines: one JSON object (RFC 8259) per line, as json.loads reads it */
static int json_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static Py_ssize_t json_skip_ws(const char *p, Py_ssize_t n, Py_ssize_t i) {
    while (i < n && json_ws(p[i])) i++;
    return i;
}

static int hex4(const char *p, Py_ssize_t n, Py_ssize_t i, unsigned *out) {
    if (n - i < 4) return 0;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[i + k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static int utf8_put(Buf *b, unsigned cp) {
    char o[4];
    int k;
    if (cp < 0x80) { o[0] = (char)cp; k = 1; }
    else if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
    else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
    } else {
        o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        o[2] = (char)(0x80 | (cp >> 6 & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
    }
    return buf_add(b, o, k);
}

/* A JSON string (RFC 8259 section 7) at p[*i] == '"', decoded into out (NULL: only checked);
 * *i after its closing quote. 1 read, 0 declined (what json.loads refuses: a raw control
 * character, a bad escape; and a lone surrogate, which it keeps and no column can hold: all
 * left to the reference), -1 out of memory. Surrogate pairs become one character. */
static int json_string(const char *p, Py_ssize_t n, Py_ssize_t *i, Buf *out) {
    Py_ssize_t k = *i + 1;
    if (out) out->n = 0;
    for (;;) {
        Py_ssize_t run = k;
        while (k < n && p[k] != '"' && p[k] != '\\' && (unsigned char)p[k] >= 0x20) k++;
        if (out && k > run && buf_add(out, p + run, k - run) < 0) return -1;
        if (k >= n || (unsigned char)p[k] < 0x20) return 0;
        if (p[k] == '"') { *i = k + 1; return 1; }
        if (k + 1 >= n) return 0;
        char c = p[k + 1], lit;
        unsigned cp;
        switch (c) {
        case '"': lit = '"'; break;
        case '\\': lit = '\\'; break;
        case '/': lit = '/'; break;
        case 'b': lit = '\b'; break;
        case 'f': lit = '\f'; break;
        case 'n': lit = '\n'; break;
        case 'r': lit = '\r'; break;
        case 't': lit = '\t'; break;
        case 'u':
            if (!hex4(p, n, k + 2, &cp)) return 0;
            k += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return 0;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (n - k < 6 || p[k] != '\\' || p[k + 1] != 'u' || !hex4(p, n, k + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return 0;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                k += 6;
            }
            if (out && utf8_put(out, cp) < 0) return -1;
            continue;
        default:
            return 0;
        }
        if (out && buf_add(out, &lit, 1) < 0) return -1;
        k += 2;
    }
}

/* A JSON value other than a string at p[*i], checked and skipped: a number as RFC 8259 section 6
 * writes it, true, false, null, an array or an object (nested at most 16 deep). 0 declines
 * (json.loads' NaN and Infinity too: left to the reference). */
static int json_skip_value(const char *p, Py_ssize_t n, Py_ssize_t *i, int depth) {
    Py_ssize_t k = *i;
    if (k >= n || depth > 16) return 0;
    char c = p[k];
    if (c == '"') return json_string(p, n, i, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        k = json_skip_ws(p, n, k + 1);
        if (k < n && p[k] == close) { *i = k + 1; return 1; }
        for (;;) {
            if (c == '{') {
                if (k >= n || p[k] != '"') return 0;
                int got = json_string(p, n, &k, NULL);
                if (got <= 0) return got;
                k = json_skip_ws(p, n, k);
                if (k >= n || p[k] != ':') return 0;
                k = json_skip_ws(p, n, k + 1);
            }
            int got = json_skip_value(p, n, &k, depth + 1);
            if (got <= 0) return got;
            k = json_skip_ws(p, n, k);
            if (k < n && p[k] == close) { *i = k + 1; return 1; }
            if (k >= n || p[k] != ',') return 0;
            k = json_skip_ws(p, n, k + 1);
        }
    }
    static const char *words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++)
        if (starts(p + k, n - k, words[w])) { *i = k + (Py_ssize_t)strlen(words[w]); return 1; }
    if (c == '-') k++;
    if (k >= n || !is_digit((unsigned char)p[k])) return 0;
    if (p[k] == '0') k++;
    else while (k < n && is_digit((unsigned char)p[k])) k++;
    if (k < n && p[k] == '.') {
        if (++k >= n || !is_digit((unsigned char)p[k])) return 0;
        while (k < n && is_digit((unsigned char)p[k])) k++;
    }
    if (k < n && (p[k] == 'e' || p[k] == 'E')) {
        k++;
        if (k < n && (p[k] == '+' || p[k] == '-')) k++;
        if (k >= n || !is_digit((unsigned char)p[k])) return 0;
        while (k < n && is_digit((unsigned char)p[k])) k++;
    }
    *i = k;
    return 1;
}

/* EnvelopeParser._container's json-file form: {"log": "<a line>\n", "stream": ..., "time": ...}
 * (docker's json-file logging driver), the log string decoded into r->json_log, its trailing
 * CR/LF removed (rstrip("\r\n")); the line inside read as a plain line (classic, ISO, RFC 5424:
 * the reference tries those first too). A line docker split at 16 KiB arrives as several
 * objects: each is read on its own, as the reference does (the first, without its newline, as a
 * line; the others are not log lines). 1 read (env points into r->json_log), 0 declined (a key
 * twice, a log that is not a string or holds a line break, anything odd: left to the
 * reference), -1 error. */
static int docker_json_envelope(Reader *r, Slice line, Env *env) {
    const char *p = line.p;
    Py_ssize_t n = line.n, i = json_skip_ws(p, n, 1);
    int have_log = 0;
    if (i < n && p[i] == '}') return 0;           /* {}: no log */
    for (;;) {
        if (i >= n || p[i] != '"') return 0;
        int got = json_string(p, n, &i, &r->json_key);
        if (got <= 0) return got;
        i = json_skip_ws(p, n, i);
        if (i >= n || p[i] != ':') return 0;
        i = json_skip_ws(p, n, i + 1);
        if (r->json_key.n == 3 && memcmp(r->json_key.p, "log", 3) == 0) {
            if (have_log || i >= n || p[i] != '"') return 0;
            got = json_string(p, n, &i, &r->json_log);
            if (got <= 0) return got;
            have_log = 1;
        } else {
            got = json_skip_value(p, n, &i, 1);
            if (got <= 0) return got;
        }
        i = json_skip_ws(p, n, i);
        if (i < n && p[i] == '}') break;
        if (i >= n || p[i] != ',') return 0;
        i = json_skip_ws(p, n, i + 1);
    }
    if (!have_log || json_skip_ws(p, n, i + 1) != n) return 0;
    Slice inner = sl(r->json_log.p, r->json_log.n);
    while (inner.n > 0 && (inner.p[inner.n - 1] == '\n' || inner.p[inner.n - 1] == '\r')) inner.n--;
    if (inner.n == 0 || memchr(inner.p, '\n', inner.n) != NULL || text_class(inner.p, inner.n) != TEXT_OK)
        return 0;
    return plain_envelope(r, inner, env);
}

/* The envelope of a line (valid UTF-8 of class cls), where the compiled reader reads it itself;
 * 0 declines. A docker json-file line's own text does not matter, only its log string's. */
static int fast_envelope(Reader *r, Slice line, int cls, Env *env) {
    if (line.n == 0) return 0;
    if (line.p[0] == '{') return docker_json_envelope(r, line, env);
    if (cls != TEXT_OK) return 0;
    int got = plain_envelope(r, line, env);
    if (got != 0) return got;
    unsigned char c = (unsigned char)line.p[0];
    if (word_at(line.p, 0) || c == '.' || c == '-') return container_envelope(r, line, env);
    return 0;
}

/* ------------------------------------------------------------------ events from Python */
static int py_slice(PyObject *o, Slice *out) {
    if (o == Py_None) { *out = NONE_SLICE; return 0; }
    if (!PyUnicode_Check(o)) { PyErr_SetString(PyExc_TypeError, "expected str or None"); return -1; }
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(o, &n);
    if (p == NULL) return -1;
    *out = sl(p, n);
    return 0;
}
static int py_int(PyObject *o, int64_t *out) {
    if (o == Py_None) { *out = NONE_I64; return 0; }
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    *out = v;
    return 0;
}
static int py_float(PyObject *o, double *out) {
    if (o == Py_None) { *out = NAN; return 0; }
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) return -1;
    *out = v;
    return 0;
}
#define IT(i) PyTuple_GET_ITEM(ev, i)

/* An event NamedTuple of postfix_messages as an Ev (slices point into the tuple's strings). */
static int event_from_python(Reader *r, PyObject *ev, Ev *e) {
    int kind = -1;
    for (int k = 0; k < N_EVENTS; k++)
        if ((PyObject *)Py_TYPE(ev) == r->event_classes[k]) { kind = k; break; }
    if (kind < 0 || !PyTuple_Check(ev)) { PyErr_SetString(PyExc_TypeError, "unknown event"); return -1; }
    ev_clear(e, (EvKind)kind);
    switch (kind) {
    case EV_CONNECT:
        return (py_slice(IT(0), &e->name) || py_slice(IT(1), &e->addr) || py_int(IT(2), &e->port)) ? -1 : 0;
    case EV_DISCONNECT:
        return (py_slice(IT(0), &e->name) || py_slice(IT(1), &e->addr) || py_int(IT(2), &e->port)
                || py_slice(IT(3), &e->commands)) ? -1 : 0;
    case EV_SESSION_PROBLEM:
        return (py_slice(IT(0), &e->problem) || py_slice(IT(1), &e->stage) || py_slice(IT(2), &e->name)
                || py_slice(IT(3), &e->addr) || py_slice(IT(4), &e->detail)) ? -1 : 0;
    case EV_TLS:
        return (py_slice(IT(1), &e->trust) || py_slice(IT(2), &e->name) || py_slice(IT(3), &e->addr)
                || py_int(IT(4), &e->port) || py_slice(IT(5), &e->protocol) || py_slice(IT(6), &e->cipher)
                || py_slice(IT(7), &e->bits) || py_slice(IT(8), &e->kex) || py_slice(IT(9), &e->sig)) ? -1 : 0;
    case EV_TLS_PROBLEM:
        return (py_slice(IT(0), &e->problem) || py_slice(IT(1), &e->name) || py_slice(IT(2), &e->addr)
                || py_int(IT(3), &e->port) || py_slice(IT(4), &e->detail)) ? -1 : 0;
    case EV_CLIENT:
        return (py_slice(IT(0), &e->queue_id) || py_slice(IT(1), &e->name) || py_slice(IT(2), &e->addr)
                || py_int(IT(3), &e->port)) ? -1 : 0;
    case EV_REJECTED:
        return (py_slice(IT(0), &e->queue_id) || py_slice(IT(1), &e->action) || py_slice(IT(2), &e->stage)
                || py_slice(IT(5), &e->status_code) || py_slice(IT(6), &e->enhanced_code)
                || py_slice(IT(8), &e->status_message)) ? -1 : 0;
    case EV_MESSAGE_ID:
        return (py_slice(IT(0), &e->queue_id) || py_slice(IT(1), &e->message_id)) ? -1 : 0;
    case EV_QUEUE_ACTIVE:
        return (py_slice(IT(0), &e->queue_id) || py_slice(IT(1), &e->sender) || py_int(IT(2), &e->size)
                || py_int(IT(3), &e->nrcpt)) ? -1 : 0;
    case EV_REMOVED:
        return py_slice(IT(0), &e->queue_id);
    case EV_EXPIRED:
    case EV_PICKUP:
        return (py_slice(IT(0), &e->queue_id) || py_slice(IT(kind == EV_EXPIRED ? 1 : 2), &e->sender)) ? -1 : 0;
    case EV_DELIVERY: {
        PyObject *d = IT(9);
        if (py_slice(IT(0), &e->queue_id) || py_slice(IT(1), &e->recipient) || py_slice(IT(2), &e->orig_recipient)
            || py_slice(IT(3), &e->relay) || py_slice(IT(4), &e->relay_host) || py_slice(IT(5), &e->relay_addr)
            || py_int(IT(6), &e->relay_port) || py_int(IT(7), &e->conn_use) || py_float(IT(8), &e->delay)
            || py_slice(IT(10), &e->tls_feature) || py_slice(IT(11), &e->dsn) || py_slice(IT(12), &e->status)
            || py_slice(IT(13), &e->reason))
            return -1;
        e->reason_truncated = PyObject_IsTrue(IT(14));
        if (!PyTuple_Check(d) || PyTuple_GET_SIZE(d) != 4) { PyErr_SetString(PyExc_TypeError, "delays"); return -1; }
        for (int k = 0; k < 4; k++)
            if (py_float(PyTuple_GET_ITEM(d, k), &e->d[k]) < 0) return -1;
        return 0;
    }
    case EV_NOTICE:
        return (py_slice(IT(0), &e->queue_id) || py_slice(IT(1), &e->notice_recipient)
                || py_slice(IT(2), &e->notice_kind) || py_slice(IT(3), &e->notice_queue_id)) ? -1 : 0;
    case EV_REMOTE_PROBLEM:
        return py_slice(IT(0), &e->queue_id);
    case EV_DIAGNOSTIC:
        return (py_slice(IT(0), &e->queue_id) || py_slice(IT(1), &e->level) || py_slice(IT(4), &e->diag_peer_addr))
                   ? -1 : 0;
    }
    return -1;
}
#undef IT

/* A finished row (OtherRow / ResolverRow NamedTuple from Python) into its table. */
static int append_python_row(Reader *r, PyObject *row) {
    int tb = -1;
    for (int k = 0; k < N_TABLES; k++)
        if ((PyObject *)Py_TYPE(row) == r->row_classes[k]) { tb = k; break; }
    if (tb < 0) { PyErr_SetString(PyExc_TypeError, "unknown row"); return -1; }
    Table *t = TB(r, tb);
    if (PyTuple_GET_SIZE(row) != t->ncols) { PyErr_SetString(PyExc_TypeError, "row width"); return -1; }
    if (tb == TB_OTHER) {
        Slice kind;
        if (py_slice(PyTuple_GET_ITEM(row, 7), &kind) < 0) return -1;
        if (counted_kind(r, kind)) {
            Slice host, program, daemon;
            int64_t key, ts, lineno;
            PyObject *at = PyTuple_GET_ITEM(row, 1);
            if (!PyDateTime_Check(at)) { PyErr_SetString(PyExc_TypeError, "expected datetime"); return -1; }
            ts = dt_to_us(at);
            if (ts == NONE_I64 || py_int(PyTuple_GET_ITEM(row, 0), &key) || py_slice(PyTuple_GET_ITEM(row, 2), &host)
                || py_slice(PyTuple_GET_ITEM(row, 3), &program) || py_slice(PyTuple_GET_ITEM(row, 5), &daemon)
                || py_int(PyTuple_GET_ITEM(row, 9), &lineno))
                return -1;
            return count_other(r, host, program, daemon, kind, ts, lineno, NULL, key);
        }
    }
    for (int c = 0; c < t->ncols; c++) {
        PyObject *v = PyTuple_GET_ITEM(row, c);
        Col *col = COL(t, c);
        int rc = 0;
        switch (col->kind) {
        case K_I64: { int64_t x; rc = py_int(v, &x); if (!rc) rc = put_i64(col, x); break; }
        case K_F64: { double x; rc = py_float(v, &x); if (!rc) rc = put_f64(col, x); break; }
        case K_BOOL: rc = put_bool(col, PyObject_IsTrue(v)); break;
        case K_TS: {
            int64_t x = NONE_I64;
            if (v != Py_None) {
                if (!PyDateTime_Check(v)) { PyErr_SetString(PyExc_TypeError, "expected datetime"); return -1; }
                x = dt_to_us(v);
                if (x == NONE_I64) return -1;
            }
            rc = put_i64(col, x);
            break;
        }
        case K_STR: { Slice s; rc = py_slice(v, &s); if (!rc) rc = put_str(col, s); break; }
        case K_LIST: {
            StrVec vec = {NULL, 0, 0};
            Py_ssize_t n = PyList_Check(v) ? PyList_GET_SIZE(v) : 0;
            for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
                Slice s;
                rc = py_slice(PyList_GET_ITEM(v, i), &s);
                if (!rc) rc = vec_add(&vec, s);
            }
            if (!rc) rc = put_list(col, &vec);
            vec_free(&vec);
            break;
        }
        }
        if (rc < 0) return -1;
    }
    t->nrows++;
    return 0;
}

/* ------------------------------------------------------------------ one line */
static int slow_line(Reader *r, const char *p, Py_ssize_t n, int64_t offset, int64_t lineno) {
    r->slow++;
    r->memo_valid = 0;
    PyObject *text = PyUnicode_DecodeUTF8(p, n, "replace");
    if (text == NULL) return -1;
    PyObject *res = PyObject_CallFunction(r->fallback, "OLL", text, (long long)offset, (long long)lineno);
    Py_DECREF(text);
    if (res == NULL) return -1;
    int rc = 0;
    if (res == Py_None) {
        r->blank++;
    } else if ((PyObject *)Py_TYPE(res) == r->quarantined_class) {
        PyObject *item = Py_BuildValue("(LO)", (long long)offset, res);
        rc = item ? PyList_Append(r->quarantined, item) : -1;
        Py_XDECREF(item);
        r->quarantined_bytes += n + 64;
    } else if (PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 4 && !PyObject_TypeCheck(res, (PyTypeObject *)r->row_classes[0])
               && (PyObject *)Py_TYPE(res) == (PyObject *)&PyTuple_Type) {
        /* (LogLine, instance, daemon, event) */
        PyObject *ll = PyTuple_GET_ITEM(res, 0);
        Env env;
        Slice instance, daemon;
        Ev e;
        PyObject *tsobj = PyTuple_GetItem(ll, 0);
        if (tsobj == NULL || !PyDateTime_Check(tsobj)) { Py_DECREF(res); PyErr_SetString(PyExc_TypeError, "LogLine"); return -1; }
        env.ts = dt_to_us(tsobj);
        if (env.ts == NONE_I64 || py_slice(PyTuple_GET_ITEM(ll, 1), &env.host) || py_slice(PyTuple_GET_ITEM(ll, 2), &env.program)
            || py_int(PyTuple_GET_ITEM(ll, 3), &env.pid) || py_slice(PyTuple_GET_ITEM(ll, 4), &env.message)
            || py_slice(PyTuple_GET_ITEM(res, 1), &instance) || py_slice(PyTuple_GET_ITEM(res, 2), &daemon)
            || event_from_python(r, PyTuple_GET_ITEM(res, 3), &e)) {
            Py_DECREF(res);
            return -1;
        }
        r->interpreted++;
        rc = apply_event(r, &env, instance, daemon, &e, offset, lineno);
        if (rc == 0) rc = flush_evicted(r);
    } else {
        /* a finished row: ResolverRow (interpreted) or OtherRow */
        if ((PyObject *)Py_TYPE(res) == r->row_classes[TB_RESOLVER]) r->interpreted++;
        rc = append_python_row(r, res);
    }
    Py_DECREF(res);
    return rc;
}

/* One line read by the compiled parsers: 1 done, 0 declined (the reference reads it), -1 error. */
static int fast_line(Reader *r, const char *p, Py_ssize_t n, int cls, int64_t offset, int64_t lineno) {
    Env env;
    int got = fast_envelope(r, sl(p, n), cls, &env);
    if (got <= 0) return got;
    Slice instance, daemon;
    if (split_program(env.program, &instance, &daemon)) {
        Ev e;
        int kind = fast_message(daemon, env.message, &e);
        if (kind == FAST_UNINTERPRETED) {
            r->fast++;
            return emit_other(r, &env, daemon, e.queue_id, sl_c("uninterpreted"), lineno) < 0 ? -1 : 1;
        }
        if (kind) {
            r->fast++;
            r->interpreted++;
            if (apply_event(r, &env, instance, daemon, &e, offset, lineno) < 0) return -1;
            return flush_evicted(r) < 0 ? -1 : 1;
        }
    } else if (!resolver_program(env.program)) {
        /* PostfixLogReader._non_postfix: another program's line, kept as it is */
        r->fast++;
        return emit_other(r, &env, NONE_SLICE, NONE_SLICE, sl_c("not postfix"), lineno) < 0 ? -1 : 1;
    }
    return 0;
}

static int one_line(Reader *r, const char *p, Py_ssize_t n, int64_t offset, int64_t lineno) {
    r->lines++;
    r->cur_offset = offset;
    int ascii = 1, blank = 1;
    Py_ssize_t i = 0;
    while (i < n && is_space((unsigned char)p[i])) i++;
    blank = i == n;
    uint64_t high = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        high |= w;
    }
    for (; i < n; i++) high |= (unsigned char)p[i];
    ascii = (high & 0x8080808080808080ULL) == 0;
    if (ascii && blank) { r->blank++; return 0; }
    int got;
    if (ascii) {
        got = fast_line(r, p, n, TEXT_OK, offset, lineno);
    } else {
        /* The text the reference reads: the bytes decoded as UTF-8, invalid ones replaced by
         * U+FFFD (its reader decodes with errors="replace"); read here as that text's UTF-8. */
        int cls = text_class(p, n);
        PyObject *text = NULL;
        const char *q = p;
        Py_ssize_t m = n;
        if (cls == TEXT_INVALID) {
            text = PyUnicode_DecodeUTF8(p, n, "replace");
            if (text == NULL || (q = PyUnicode_AsUTF8AndSize(text, &m)) == NULL) { Py_XDECREF(text); return -1; }
            cls = text_class(q, m);
        }
        got = fast_line(r, q, m, cls, offset, lineno);
        Py_XDECREF(text);
    }
    if (got != 0) return got < 0 ? -1 : 0;
    return slow_line(r, p, n, offset, lineno);
}

/* ------------------------------------------------------------------ Python methods */
static PyObject *Reader_feed(Reader *r, PyObject *args) {
    Py_buffer view;
    long long base, lineno;
    if (!PyArg_ParseTuple(args, "y*LL", &view, &base, &lineno)) return NULL;
    const char *p = view.buf, *end = p + view.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        if (nl == NULL) break;              /* the caller gives complete lines only */
        Py_ssize_t n = nl - p;
        while (n > 0 && p[n - 1] == '\r') n--;
        lineno++;
        if (one_line(r, p, n, base + (p - (const char *)view.buf), lineno) < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
        p = nl + 1;
    }
    PyBuffer_Release(&view);
    return PyLong_FromLongLong(lineno);
}

static int odict_clear(PyObject *d) {
    PyObject *res = PyObject_CallMethod(d, "clear", NULL);
    if (res == NULL) return -1;
    Py_DECREF(res);
    return 0;
}

static PyObject *Reader_finish(Reader *r, PyObject *unused) {
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(r->sessions, &pos, &k, &v))
        if (emit_session(r, PyCapsule_GetPointer(v, "session"), NONE_I64, NONE_SLICE, 0) < 0) return NULL;
    if (odict_clear(r->sessions) < 0) return NULL;
    pos = 0;
    while (PyDict_Next(r->messages, &pos, &k, &v))
        if (emit_message(r, PyCapsule_GetPointer(v, "message"), NONE_I64) < 0) return NULL;
    if (odict_clear(r->messages) < 0 || odict_clear(r->smtp) < 0) return NULL;
    if (flush_counts(r, 0) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Reader_resume_point(Reader *r, PyObject *arg) {
    long long end = PyLong_AsLongLong(arg);
    if (end == -1 && PyErr_Occurred()) return NULL;
    long long best = end;
    int64_t at = NONE_I64;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(r->sessions, &pos, &k, &v)) {
        Session *s = PyCapsule_GetPointer(v, "session");
        if (s->offset < best && end - s->offset <= r->max_rewind) { best = s->offset; at = s->first_seen_at; }
    }
    pos = 0;
    while (PyDict_Next(r->messages, &pos, &k, &v)) {
        Message *m = PyCapsule_GetPointer(v, "message");
        if (m->offset < best && end - m->offset <= r->max_rewind) { best = m->offset; at = m->first_seen_at; }
    }
    if (at == NONE_I64) return Py_BuildValue("(LO)", best, Py_None);
    return Py_BuildValue("(LL)", best, (long long)at);
}

static PyObject *buf_bytes(const Buf *b) { return PyBytes_FromStringAndSize(b->p ? b->p : "", b->n); }

/* {row class name: (nrows, [(column, kind, valid, data, offsets, child_offsets, child_data)])} */
static PyObject *Reader_take(Reader *r, PyObject *unused) {
    PyObject *out = PyDict_New();
    if (out == NULL) return NULL;
    for (int tb = 0; tb < N_TABLES; tb++) {
        Table *t = TB(r, tb);
        if (t->nrows == 0) continue;
        PyObject *cols = PyList_New(t->ncols);
        if (cols == NULL) { Py_DECREF(out); return NULL; }
        for (int c = 0; c < t->ncols; c++) {
            Col *col = COL(t, c);
            if (col_start(col) < 0) { Py_DECREF(cols); Py_DECREF(out); return NULL; }
            PyObject *item = Py_BuildValue("(siNNNNN)", col->name, (int)col->kind, buf_bytes(&col->valid),
                                           buf_bytes(&col->data), buf_bytes(&col->offsets),
                                           buf_bytes(&col->child_offsets), buf_bytes(&col->child_data));
            if (item == NULL) { Py_DECREF(cols); Py_DECREF(out); return NULL; }
            PyList_SET_ITEM(cols, c, item);
            col_reset(col);
        }
        PyObject *entry = Py_BuildValue("(nN)", t->nrows, cols);
        if (entry == NULL || PyDict_SetItemString(out, TABLE_NAMES[tb], entry) < 0) {
            Py_XDECREF(entry);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(entry);
        t->nrows = 0;
    }
    return out;
}

static PyObject *Reader_pending(Reader *r, void *closure) {
    Py_ssize_t n = 0;
    for (int tb = 0; tb < N_TABLES; tb++) n += r->tables[tb].nrows;
    return PyLong_FromSsize_t(n);
}
static PyObject *Reader_take_quarantined(Reader *r, PyObject *unused) {
    PyObject *q = r->quarantined;
    r->quarantined = PyList_New(0);
    if (r->quarantined == NULL) { r->quarantined = q; return NULL; }
    r->quarantined_bytes = 0;
    return q;
}
static PyObject *Reader_pending_quarantined(Reader *r, void *closure) {
    return PyLong_FromSsize_t(r->quarantined_bytes);
}
static PyObject *Reader_counters(Reader *r, PyObject *unused) {
    return Py_BuildValue("{s:L,s:L,s:L,s:L,s:L}", "lines", r->lines, "blank", r->blank, "interpreted",
                         r->interpreted, "fast", r->fast, "slow", r->slow);
}
static PyObject *Reader_open_state(Reader *r, PyObject *unused) {
    return Py_BuildValue("(nnnn)", PyDict_GET_SIZE(r->sessions), PyDict_GET_SIZE(r->messages),
                         PyDict_GET_SIZE(r->smtp), PyDict_GET_SIZE(r->notice_parents));
}

static int Reader_init(Reader *r, PyObject *args, PyObject *kw) {
    static char *names[] = {"stamp_cache", "stamp", "fallback", "events", "rows", "quarantined", "caps",
                            "keep_other_lines", "count_from", NULL};
    PyObject *stamp_cache, *stamp_fn, *fallback, *events, *rows, *qclass, *caps;
    int keep_other = 0;
    long long count_from = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!OOOOOO|pL", names, &PyDict_Type, &stamp_cache, &stamp_fn,
                                     &fallback, &events, &rows, &qclass, &caps, &keep_other, &count_from))
        return -1;
    long long ms, mm, mp, mn, rw, mc;
    if (!PyArg_ParseTuple(caps, "LLLLLL", &ms, &mm, &mp, &mn, &rw, &mc)) return -1;
    if (mc < 1 || mc > COUNT_SLOTS / 2) { PyErr_SetString(PyExc_ValueError, "MAX_OPEN_COUNTS out of range"); return -1; }
    r->max_sessions = ms; r->max_messages = mm; r->max_smtp = mp; r->max_notice_parents = mn; r->max_rewind = rw;
    r->keep_other = keep_other;
    r->count_from = count_from;
    if (r->groups == NULL) {
        r->groups = calloc(COUNT_SLOTS / 2, sizeof(CountGroup));
        r->slots = calloc(COUNT_SLOTS, sizeof(int32_t));
        if (r->groups == NULL || r->slots == NULL) { PyErr_NoMemory(); return -1; }
    }
    r->max_groups = (int)mc;
    Py_INCREF(stamp_cache); Py_XSETREF(r->stamp_cache, stamp_cache);
    Py_INCREF(stamp_fn); Py_XSETREF(r->stamp_fn, stamp_fn);
    Py_INCREF(fallback); Py_XSETREF(r->fallback, fallback);
    Py_INCREF(qclass); Py_XSETREF(r->quarantined_class, qclass);
    for (int k = 0; k < N_EVENTS; k++) {
        PyObject *cls = PyObject_GetAttrString(events, EVENT_CLASS_NAMES[k]);
        if (cls == NULL) return -1;
        Py_XSETREF(r->event_classes[k], cls);
    }
    for (int k = 0; k < N_TABLES; k++) {
        PyObject *cls = PyObject_GetAttrString(rows, TABLE_NAMES[k]);
        if (cls == NULL) return -1;
        Py_XSETREF(r->row_classes[k], cls);
    }
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL) return -1;
    PyObject *ordered_dict = PyObject_GetAttrString(collections, "OrderedDict");
    Py_DECREF(collections);
    if (ordered_dict == NULL) return -1;
    /* the open-state maps: insertion-ordered with O(1) eviction of the oldest */
    Py_XSETREF(r->sessions, PyObject_CallNoArgs(ordered_dict));
    Py_XSETREF(r->messages, PyObject_CallNoArgs(ordered_dict));
    Py_XSETREF(r->smtp, PyObject_CallNoArgs(ordered_dict));
    Py_XSETREF(r->notice_parents, PyObject_CallNoArgs(ordered_dict));
    Py_XSETREF(r->session_seq, PyObject_CallNoArgs(ordered_dict));
    Py_XSETREF(r->pending_evicted, PyList_New(0));
    Py_XSETREF(r->quarantined, PyList_New(0));
    Py_DECREF(ordered_dict);
    if (!r->sessions || !r->messages || !r->smtp || !r->notice_parents || !r->pending_evicted || !r->quarantined
        || !r->session_seq)
        return -1;
    for (int tb = 0; tb < N_TABLES; tb++) {
        Table *t = TB(r, tb);
        if (t->cols == NULL) {
            t->ncols = TABLE_NCOLS[tb];
            t->name = TABLE_NAMES[tb];
            t->cols = calloc(t->ncols, sizeof(Col));
            if (t->cols == NULL) { PyErr_NoMemory(); return -1; }
            for (int c = 0; c < t->ncols; c++) {
                t->cols[c].name = TABLE_DEFS[tb][c].name;
                t->cols[c].kind = TABLE_DEFS[tb][c].kind;
            }
        }
    }
    return 0;
}

static int Reader_traverse(Reader *r, visitproc visit, void *arg) {
    Py_VISIT(r->stamp_cache); Py_VISIT(r->stamp_fn); Py_VISIT(r->fallback); Py_VISIT(r->quarantined_class);
    for (int k = 0; k < N_EVENTS; k++) Py_VISIT(r->event_classes[k]);
    for (int k = 0; k < N_TABLES; k++) Py_VISIT(r->row_classes[k]);
    Py_VISIT(r->sessions); Py_VISIT(r->messages); Py_VISIT(r->smtp); Py_VISIT(r->notice_parents);
    Py_VISIT(r->pending_evicted); Py_VISIT(r->quarantined); Py_VISIT(r->session_seq);
    return 0;
}
static int Reader_clear(Reader *r) {
    Py_CLEAR(r->stamp_cache); Py_CLEAR(r->stamp_fn); Py_CLEAR(r->fallback); Py_CLEAR(r->quarantined_class);
    for (int k = 0; k < N_EVENTS; k++) Py_CLEAR(r->event_classes[k]);
    for (int k = 0; k < N_TABLES; k++) Py_CLEAR(r->row_classes[k]);
    Py_CLEAR(r->sessions); Py_CLEAR(r->messages); Py_CLEAR(r->smtp); Py_CLEAR(r->notice_parents);
    Py_CLEAR(r->pending_evicted); Py_CLEAR(r->quarantined); Py_CLEAR(r->session_seq);
    return 0;
}
static void Reader_dealloc(Reader *r) {
    PyObject_GC_UnTrack(r);
    Reader_clear(r);
    for (int tb = 0; tb < N_TABLES; tb++) {
        Table *t = TB(r, tb);
        if (t->cols) {
            for (int c = 0; c < t->ncols; c++) col_free(&t->cols[c]);
            free(t->cols);
        }
    }
    if (r->groups) {
        for (int g = 0; g < r->ngroups; g++) {
            CountGroup *c = &r->groups[g];
            str_free(&c->host); str_free(&c->program); str_free(&c->daemon); str_free(&c->kind);
        }
        free(r->groups);
    }
    free(r->slots);
    free(r->scratch.p);
    free(r->keybuf.p);
    free(r->json_log.p);
    free(r->json_key.p);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef Reader_methods[] = {
    {"feed", (PyCFunction)Reader_feed, METH_VARARGS,
     "feed(block, base_offset, lineno) -> last line number: complete lines (bytes ending in a newline)"},
    {"finish", (PyCFunction)Reader_finish, METH_NOARGS, "write every state still open as an incomplete row"},
    {"resume_point", (PyCFunction)Reader_resume_point, METH_O,
     "resume_point(end_offset) -> (offset, first_seen_at_us or None)"},
    {"take", (PyCFunction)Reader_take, METH_NOARGS, "the rows written since the last take, as column buffers"},
    {"take_quarantined", (PyCFunction)Reader_take_quarantined, METH_NOARGS, "[(offset, Quarantined)]"},
    {"counters", (PyCFunction)Reader_counters, METH_NOARGS, "lines, blank, interpreted, fast, slow"},
    {"open_state", (PyCFunction)Reader_open_state, METH_NOARGS, "sizes of the open-state maps"},
    {NULL}};

static PyGetSetDef Reader_getset[] = {
    {"pending_rows", (getter)Reader_pending, NULL, "rows written and not yet taken", NULL},
    {"pending_quarantined_bytes", (getter)Reader_pending_quarantined, NULL,
     "bytes of quarantined lines held (their raw bytes and some overhead each) until take_quarantined", NULL},
    {NULL}};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collectors.lab_ingest._postfix_fast.Reader",
    .tp_doc = "The compiled Postfix log reader (see postfix_fast.py).",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Reader_init,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_traverse = (traverseproc)Reader_traverse,
    .tp_clear = (inquiry)Reader_clear,
    .tp_methods = Reader_methods,
    .tp_getset = Reader_getset,
};

static PyObject *py_row_key_text(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (!PyArg_Parse(arg, "y*", &view)) return NULL;
    int64_t k = blake2b_key(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromLongLong(k);
}
static PyObject *py_format_time(PyObject *self, PyObject *arg) {
    long long us = PyLong_AsLongLong(arg);
    if (us == -1 && PyErr_Occurred()) return NULL;
    char tmp[64];
    int n = fmt_ts(tmp, us);
    return PyUnicode_FromStringAndSize(tmp, n);
}

static PyMethodDef module_methods[] = {
    {"key_of_text", py_row_key_text, METH_O, "the row key (BLAKE2b-64, signed) of UTF-8 bytes"},
    {"format_time", py_format_time, METH_O, "str(datetime) of a UTC time given in microseconds"},
    {NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_postfix_fast",
                                    "The compiled Postfix log reader.", -1, module_methods};

PyMODINIT_FUNC PyInit__postfix_fast(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    if (PyType_Ready(&ReaderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(m, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(&ReaderType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "K_I64", K_I64) || PyModule_AddIntConstant(m, "K_F64", K_F64)
        || PyModule_AddIntConstant(m, "K_BOOL", K_BOOL) || PyModule_AddIntConstant(m, "K_TS", K_TS)
        || PyModule_AddIntConstant(m, "K_STR", K_STR) || PyModule_AddIntConstant(m, "K_LIST", K_LIST)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
