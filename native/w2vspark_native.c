/* w2vspark_native: optional compiled helpers for the training kernel (w2vspark/train/task.py).
 *
 * scatter_add(w, ids, rows, dim): w[ids[i], :] += rows[i, :] for i = 0..n-1, in that order, float32.
 * The additions happen in exactly the order of numpy's np.add.at over the flattened element indices, so
 * results are bit-identical to the numpy fallback.
 * segment_sum(out, w, ids, counts, dim): out[g, :] = 0 + w[ids[k], :] + w[ids[k + 1], :] + ... over the counts[g]
 * ids of segment g (segments consecutive in ids), added one row after another as the numpy fallback does.
 * minibatch_step(...): one skip-gram or CBOW minibatch (negative sampling or hierarchical softmax) with the
 * damping of repeated rows, the math of w2vspark.train.task.skipgram_step and cbow_step; see the comment above
 * the function.
 * sequential_step(...): the same windows trained one after another (skip-gram pair by pair),
 * w2vspark.train.task.sequential_step.
 * window_rows(...): the windows of a chunk of sentences ordered widest first, w2vspark.sampling.window_groups
 * followed by w2vspark.train.task.by_width with the same result; see the comment above the function.
 * alias_draw(...): negative samples by the alias method from uniform numbers, as w2vspark.vocab.NoiseSampler.draw.
 * huffman_merge(...), huffman_paths(...): the Huffman tree of w2vspark.huffman.huffman_tree and its paths.
 * Plain C on Python's buffer protocol: no numpy headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* dst[j] += src[j] for j = 0..dim-1: the one float32 addition both helpers are made of */
static inline void add_row(float *restrict dst, const float *restrict src, Py_ssize_t dim)
{
    for (Py_ssize_t j = 0; j < dim; j++)
        dst[j] += src[j];
}

/* 1 when every index lies in [lowest, num_rows) (lowest -1: padding allowed); otherwise an IndexError naming
 * what the index is, and 0 */
static int rows_in_range(const int64_t *index, Py_ssize_t n, int64_t lowest, Py_ssize_t num_rows, const char *what)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (index[i] < lowest || index[i] >= num_rows) {
            PyErr_Format(PyExc_IndexError, "%s %lld out of range [%lld, %zd)", what, (long long)index[i],
                         (long long)lowest, num_rows);
            return 0;
        }
    }
    return 1;
}

static PyObject *scatter_add(PyObject *self, PyObject *args)
{
    Py_buffer w, ids, rows;
    Py_ssize_t dim;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*y*y*n", &w, &ids, &rows, &dim))
        return NULL;
    PyObject *result = NULL;
    if (dim <= 0 || w.len % (dim * (Py_ssize_t)sizeof(float)) != 0 || ids.len % (Py_ssize_t)sizeof(int64_t) != 0) {
        PyErr_SetString(PyExc_ValueError, "scatter_add: w must hold float32 rows of dim values, ids int64");
        goto done;
    }
    const Py_ssize_t num_rows = w.len / (dim * (Py_ssize_t)sizeof(float));
    const Py_ssize_t n = ids.len / (Py_ssize_t)sizeof(int64_t);
    if (rows.len != n * dim * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "scatter_add: rows must be float32 of shape (len(ids), dim)");
        goto done;
    }
    const int64_t *index = (const int64_t *)ids.buf;
    if (!rows_in_range(index, n, 0, num_rows, "scatter_add: row index"))
        goto done;
    float *target = (float *)w.buf;
    const float *source = (const float *)rows.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        add_row(target + index[i] * dim, source + i * dim, dim);
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&w);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&rows);
    return result;
}

/* row_differences(out, a, b, ids, dim): out[i] = a[ids[i]] - b[ids[i]] for every i (float32 a, b and out, int64
 * ids): a task's deltas of the rows it touched, in one pass without gathered copies of either matrix */
static PyObject *row_differences(PyObject *self, PyObject *args)
{
    Py_buffer out, a, b, ids;
    Py_ssize_t dim;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*y*y*y*n", &out, &a, &b, &ids, &dim))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t row_bytes = dim * (Py_ssize_t)sizeof(float);
    if (dim <= 0 || a.len % row_bytes != 0 || a.len != b.len || ids.len % (Py_ssize_t)sizeof(int64_t) != 0) {
        PyErr_SetString(PyExc_ValueError, "row_differences: a and b must hold the same number of float32 rows of dim "
                                          "values, ids int64");
        goto done;
    }
    const Py_ssize_t n = ids.len / (Py_ssize_t)sizeof(int64_t);
    if (out.len != n * row_bytes) {
        PyErr_SetString(PyExc_ValueError, "row_differences: out must be float32 of shape (len(ids), dim)");
        goto done;
    }
    const int64_t *index = (const int64_t *)ids.buf;
    if (!rows_in_range(index, n, 0, a.len / row_bytes, "row_differences: row index"))
        goto done;
    const float *x = (const float *)a.buf, *y = (const float *)b.buf;
    float *target = (float *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const float *xr = x + index[i] * dim, *yr = y + index[i] * dim;
        float *restrict dst = target + i * dim;
        for (Py_ssize_t j = 0; j < dim; j++)
            dst[j] = xr[j] - yr[j];
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&out);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&ids);
    return result;
}

static PyObject *segment_sum(PyObject *self, PyObject *args)
{
    Py_buffer out, w, ids, counts;
    Py_ssize_t dim;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*y*y*y*n", &out, &w, &ids, &counts, &dim))
        return NULL;
    PyObject *result = NULL;
    if (dim <= 0 || w.len % (dim * (Py_ssize_t)sizeof(float)) != 0 || ids.len % (Py_ssize_t)sizeof(int64_t) != 0
        || counts.len % (Py_ssize_t)sizeof(int64_t) != 0) {
        PyErr_SetString(PyExc_ValueError, "segment_sum: w must hold float32 rows of dim values, ids and counts int64");
        goto done;
    }
    const Py_ssize_t num_rows = w.len / (dim * (Py_ssize_t)sizeof(float));
    const Py_ssize_t n = ids.len / (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t segments = counts.len / (Py_ssize_t)sizeof(int64_t);
    if (out.len != segments * dim * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "segment_sum: out must be float32 of shape (len(counts), dim)");
        goto done;
    }
    const int64_t *index = (const int64_t *)ids.buf;
    const int64_t *count = (const int64_t *)counts.buf;
    Py_ssize_t total = 0;
    for (Py_ssize_t g = 0; g < segments; g++) {
        if (count[g] < 0) {
            PyErr_SetString(PyExc_ValueError, "segment_sum: negative count");
            goto done;
        }
        total += count[g];
    }
    if (total != n) {
        PyErr_SetString(PyExc_ValueError, "segment_sum: the counts must add up to len(ids)");
        goto done;
    }
    if (!rows_in_range(index, n, 0, num_rows, "segment_sum: row index"))
        goto done;
    const float *source = (const float *)w.buf;
    float *target = (float *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t k = 0;
    for (Py_ssize_t g = 0; g < segments; g++) {
        float *restrict dst = target + g * dim;
        for (Py_ssize_t j = 0; j < dim; j++)
            dst[j] = 0.0f;
        for (int64_t c = 0; c < count[g]; c++, k++)
            add_row(dst, source + index[k] * dim, dim);
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&out);
    PyBuffer_Release(&w);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&counts);
    return result;
}

/* eight (four) floats in a vector register, read from and written to float arrays (any alignment, may alias
 * them); additions and products are element by element, so they round as the scalar ones do */
typedef float float8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef float float4 __attribute__((vector_size(16), aligned(4), may_alias));

/* the end of a . b: the floats from j on (fewer than eight) into partial sums 0, 1, ..., then the eight sums
 * added in a fixed order */
static inline __attribute__((always_inline)) float dot_finish(float part[8], const float *a, const float *b,
                                                               Py_ssize_t j, Py_ssize_t dim)
{
    for (int t = 0; j < dim; j++, t++)
        part[t] += a[j] * b[j];
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

/* a . b over dim floats, in eight interleaved partial sums added at the end (a fixed order: the same result
 * whatever the vector width the compiler chose) */
static inline float dot(const float *restrict a, const float *restrict b, Py_ssize_t dim)
{
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t j = 0;
    for (; j + 8 <= dim; j += 8)
        for (int t = 0; t < 8; t++)
            part[t] += a[j + t] * b[j + t];
    return dot_finish(part, a, b, j, dim);
}

/* out[i] = dot(a, b[i], dim) for i = 0..n-1, bit for bit, four at a time: dot's eight partial sums of each are a
 * vector register, and four independent ones keep the adder busy where one waits on its own last addition */
static inline __attribute__((always_inline)) void dots(const float *restrict a, const float *const *b, Py_ssize_t n,
                                                        float *restrict out, Py_ssize_t dim)
{
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float8 p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0};
        const float *b0 = b[i], *b1 = b[i + 1], *b2 = b[i + 2], *b3 = b[i + 3];
        Py_ssize_t j = 0;
        for (; j + 8 <= dim; j += 8) {
            const float8 x = *(const float8 *)(a + j);
            p0 += x * *(const float8 *)(b0 + j);
            p1 += x * *(const float8 *)(b1 + j);
            p2 += x * *(const float8 *)(b2 + j);
            p3 += x * *(const float8 *)(b3 + j);
        }
        float part[4][8];
        memcpy(part[0], &p0, sizeof(p0));
        memcpy(part[1], &p1, sizeof(p1));
        memcpy(part[2], &p2, sizeof(p2));
        memcpy(part[3], &p3, sizeof(p3));
        for (int q = 0; q < 4; q++)
            out[i + q] = dot_finish(part[q], a, b[i + q], j, dim);
    }
    for (; i < n; i++)
        out[i] = dot(a, b[i], dim);
}

/* dst[j] += scale * src[j] */
static inline void axpy(float *restrict dst, float scale, const float *restrict src, Py_ssize_t dim)
{
    for (Py_ssize_t j = 0; j < dim; j++)
        dst[j] += scale * src[j];
}

/* dst[j] += scale[0] src[0][j], then += scale[1] src[1][j], ...: n axpy calls in that order (so the same float32
 * result), with dst held in registers 32 floats at a time across the n rows instead of loaded and stored n
 * times */
static inline __attribute__((always_inline)) void add_scaled_rows(float *restrict dst, const float *const *src,
                                                                   const float *scale, Py_ssize_t n, Py_ssize_t dim)
{
    Py_ssize_t j = 0;
    for (; j + 32 <= dim; j += 32) {
        float8 a0 = *(float8 *)(dst + j), a1 = *(float8 *)(dst + j + 8), a2 = *(float8 *)(dst + j + 16),
               a3 = *(float8 *)(dst + j + 24);
        for (Py_ssize_t i = 0; i < n; i++) {
            const float *x = src[i] + j;
            const float8 s = {scale[i], scale[i], scale[i], scale[i], scale[i], scale[i], scale[i], scale[i]};
            a0 += s * *(const float8 *)x;
            a1 += s * *(const float8 *)(x + 8);
            a2 += s * *(const float8 *)(x + 16);
            a3 += s * *(const float8 *)(x + 24);
        }
        *(float8 *)(dst + j) = a0;
        *(float8 *)(dst + j + 8) = a1;
        *(float8 *)(dst + j + 16) = a2;
        *(float8 *)(dst + j + 24) = a3;
    }
    for (; j + 8 <= dim; j += 8) {
        float8 a = *(float8 *)(dst + j);
        for (Py_ssize_t i = 0; i < n; i++) {
            const float8 s = {scale[i], scale[i], scale[i], scale[i], scale[i], scale[i], scale[i], scale[i]};
            a += s * *(const float8 *)(src[i] + j);
        }
        *(float8 *)(dst + j) = a;
    }
    for (; j + 4 <= dim; j += 4) {
        float4 a = *(float4 *)(dst + j);
        for (Py_ssize_t i = 0; i < n; i++) {
            const float4 s = {scale[i], scale[i], scale[i], scale[i]};
            a += s * *(const float4 *)(src[i] + j);
        }
        *(float4 *)(dst + j) = a;
    }
    if (j < dim) {  /* the last dim mod 4 floats, side by side */
        float a[4];
        const Py_ssize_t rest = dim - j;
        for (Py_ssize_t t = 0; t < rest; t++)
            a[t] = dst[j + t];
        for (Py_ssize_t i = 0; i < n; i++)
            for (Py_ssize_t t = 0; t < rest; t++)
                a[t] += scale[i] * src[i][j + t];
        for (Py_ssize_t t = 0; t < rest; t++)
            dst[j + t] = a[t];
    }
}

/* true when row has a slot among this minibatch's distinct rows: a slot is only trusted when it points back at
 * the row, so stale values in the scratch can never send a row to another's slot */
static inline int slotted(const int32_t *slot, int64_t row, const int64_t *rows, Py_ssize_t count)
{
    const int32_t s = slot[row];
    return s >= 0 && s < count && rows[s] == row;
}

/* the row's slot among this minibatch's distinct rows, given one on first sight with a zero summed step in
 * sums */
static inline Py_ssize_t slot_of(int32_t *slot, int64_t row, int64_t *rows, Py_ssize_t *count, float *sums,
                                 float *norm2, Py_ssize_t dim)
{
    if (!slotted(slot, row, rows, *count)) {
        slot[row] = (int32_t)*count;
        rows[*count] = row;
        memset(sums + *count * dim, 0, (size_t)dim * sizeof(float));
        norm2[*count] = -1.0f;  /* not measured yet */
        (*count)++;
    }
    return slot[row];
}

enum { SKIPGRAM = 0, CBOW_MEAN = 1, CBOW_SUM = 2 };
enum { PREFETCH_AHEAD = 4 };  /* pass 3 asks for the parameter row this many slots ahead */
#define SATURATED_SCORE 6.0f  /* with skip_saturated, products with |z| >= this take no step (gensim's MAX_EXP) */

/* what one compiled step works on: its checked arguments and its scratch */
struct step_job {
    Py_ssize_t G, C, L, label_rows, dim;
    int model, with_loss, damping, skip_saturated;
    float lr;
    const int64_t *ctx, *out;  /* (G, C) context rows of w_in, (G, L) output rows of w_out; -1 = padding */
    const float *label;        /* (label_rows, L) */
    float *win, *wout;
    int32_t *slot_in, *slot_out;
    uint8_t *touched_in, *touched_out;  /* (rows of w_in,), (rows of w_out,): set to 1 for every row the step moves */
    float *step_sum;  /* (G C + G L, dim) each distinct row's summed step: in rows from slot 0, out rows from G C */
    double *h;        /* (G C + G L,) each distinct row's curvature */
    float *norm2;     /* (G C + G L,) each distinct row's squared length, -1 until asked for (damping) */
    int64_t *rows;    /* (G C + G L,) the row of each slot */
    float *curv;      /* each product's curvature bound: (G, C, L) skip-gram, (G, L) CBOW */
    float *hidden;    /* (G, dim) CBOW: each window's h */
    float *bounds;    /* (max(C, L) + 8,) one row's or window's products' curvature bounds */
    double *occ_trace;  /* with damping, (G C + G L,): each occurrence's share of its row's trace (skip-gram: sum
                         * c(z) |x|^2 over its products): context (g, c) at g C + c, output (g, k) at G C + g L + k */
    int32_t *occ_slot;  /* CBOW with damping, (G C + G L,): each occurrence's slot, laid out as occ_trace; -1 for
                         * padding and for the outputs of a window without contexts */
    Py_ssize_t *window_slots;  /* (C + L,) skip-gram: the current window's rows' slots, -1 for padding */
    Py_ssize_t *valid;         /* (C + L,) the current window's non-padding contexts (skip-gram), then outputs */
    const float **vecs;        /* (C + L,) their parameter rows, in the same order */
    float *work;      /* (C L + C + L + max(C, L)) skip-gram: the current window's steps, squared lengths and one
                       * row's or column's steps; CBOW (dim + L,): its step of h and its products' steps */
    Py_ssize_t n_in, n_out;
    double loss;
};

typedef int int8v __attribute__((vector_size(32)));

/* the float8 whose lanes are those of x where mask is set (-1) and of y elsewhere (0) */
static inline __attribute__((always_inline)) float8 select8(int8v mask, float8 x, float8 y)
{
    int8v xb, yb;
    memcpy(&xb, &x, sizeof(x));
    memcpy(&yb, &y, sizeof(y));
    xb = (xb & mask) | (yb & ~mask);
    memcpy(&x, &xb, sizeof(x));
    return x;
}

/* exp(x) for x <= 0, eight at a time, within one unit in the last place (checked against the C library's expf
 * on every seventh float of [-86, 0]); 0 below -86 (exp(-86) = 4.5e-38). Range reduction x = n ln 2 + r,
 * |r| <= ln 2 / 2 (ln 2 in two parts, Cody and Waite), the Taylor polynomial of exp(r) to degree 7 (error below
 * 2^-27), times 2^n set in the exponent bits. The same operations in every build, so the same results. */
static inline __attribute__((always_inline)) float8 exp_nonpositive(float8 x)
{
    const float8 zero = {0}, low = zero - 86.0f;
    const int8v under = x < low;
    x = select8(under, low, x);
    const int8v n = __builtin_convertvector(x * 1.44269504088896341f - 0.5f, int8v);  /* x <= 0: rounds to nearest */
    const float8 nf = __builtin_convertvector(n, float8);
    const float8 r = (x - nf * 0.693145751953125f) - nf * 1.428606765330187045e-06f;
    float8 poly = r * (1.0f / 5040) + 1.0f / 720;
    poly = poly * r + 1.0f / 120;
    poly = poly * r + 1.0f / 24;
    poly = poly * r + 1.0f / 6;
    poly = poly * r + 0.5f;
    poly = poly * r + 1.0f;
    poly = poly * r + 1.0f;
    const int8v bits = (n + 127) << 23;  /* 2^n, n >= -124 */
    float8 scale;
    memcpy(&scale, &bits, sizeof(scale));
    return select8(under, zero, poly * scale);
}

/* n products of scores z_step[0..n-1] with labels lab[pos[i]]: each one's step lr (label - s(z)) replaces its
 * score, s(z) = 1 / (1 + e) or e / (1 + e) from e = exp(-|z|) (never exp of a positive number), eight at a time;
 * with damping, bound[i] gets its curvature bound c(z) (w2vspark.losses.logistic_curvature_bound); with the loss,
 * -log s(+-z) = log(1 + e) - min(+-z, 0) is added to it. With skip_saturated a product with |z| >= 6 gets step
 * and bound 0 (it takes no part in the step; its loss still counts). z_step and bound hold n rounded up to 8
 * floats. */
static inline __attribute__((always_inline)) void product_steps(struct step_job *j, const float *lab,
                                                                 const Py_ssize_t *pos, Py_ssize_t n,
                                                                 float *z_step, float *bound)
{
    const float8 zero = {0}, one = zero + 1.0f, half = zero + 0.5f, lr = zero + j->lr;
    for (Py_ssize_t i = n; i < ((n + 7) & ~(Py_ssize_t)7); i++)
        z_step[i] = 0.0f;
    for (Py_ssize_t i = 0; i < n; i += 8) {
        float8 label = zero;
        for (Py_ssize_t q = 0; q < 8 && i + q < n; q++)
            label[q] = lab[pos[i + q]];
        const float8 z = *(const float8 *)(z_step + i);
        const int8v positive = z >= zero;
        const float8 abs_z = select8(positive, z, -z);
        const float8 e = exp_nonpositive(-abs_z);
        const float8 s = select8(positive, one, e) / (one + e);
        const int8v none = {0}, skipped = j->skip_saturated ? abs_z >= SATURATED_SCORE : none;
        *(float8 *)(z_step + i) = select8(skipped, zero, (label - s) * lr);
        if (j->damping)
            *(float8 *)(bound + i) = select8(skipped, zero, select8(abs_z < 1e-3f, zero + 0.25f, (s - half) / z));
        if (j->with_loss)
            for (Py_ssize_t q = 0; q < 8 && i + q < n; q++) {
                const double signed_z = label[q] >= 0.5f ? (double)z[q] : -(double)z[q];
                j->loss += log1p((double)e[q]) - (signed_z < 0 ? signed_z : 0.0);
            }
    }
}

/* the slot of a row of w_in (numbered from 0) or of w_out (numbered from G C) in this minibatch */
static inline Py_ssize_t in_slot(struct step_job *j, int64_t row)
{
    return slot_of(j->slot_in, row, j->rows, &j->n_in, j->step_sum, j->norm2, j->dim);
}

static inline Py_ssize_t out_slot(struct step_job *j, int64_t row)
{
    const Py_ssize_t in_slots = j->G * j->C;
    return in_slots + slot_of(j->slot_out, row, j->rows + in_slots, &j->n_out, j->step_sum + in_slots * j->dim,
                              j->norm2 + in_slots, j->dim);
}

/* |row|^2 of the row in slot r (of w_in below G C, of w_out from there), measured once per minibatch: the
 * parameters do not move before the minibatch's last pass */
static inline float slot_norm2(struct step_job *j, Py_ssize_t r)
{
    if (j->norm2[r] < 0.0f) {
        const float *row = r < j->G * j->C ? j->win + j->rows[r] * j->dim : j->wout + j->rows[r] * j->dim;
        j->norm2[r] = dot(row, row, j->dim);
    }
    return j->norm2[r];
}

/* asks the cache for one row of dim floats, to be read (or, with for_write, written) soon */
static inline void prefetch_row(const float *row, Py_ssize_t dim, int for_write)
{
    const char *p = (const char *)row;
    for (Py_ssize_t b = 0; b < dim * (Py_ssize_t)sizeof(float); b += 64) {
        if (for_write)
            __builtin_prefetch(p + b, 1, 3);
        else
            __builtin_prefetch(p + b, 0, 3);
    }
}

/* asks the cache for the rows of window g (its context rows and output rows) that no earlier window of the
 * minibatch read (they have no slot yet), to be read soon: the windows of a minibatch touch rows all over both
 * matrices, and the first read of each waits on memory (the top of the Huffman tree and the frequent words are
 * read by nearly every window and stay cached). The sequential step keeps no slots (slot_in NULL): all of the
 * window's rows, to be written (it moves them at once) */
static inline void prefetch_window(const struct step_job *j, Py_ssize_t g)
{
    if (g >= j->G)
        return;
    const int sequential = j->slot_in == NULL;
    const int64_t *out_rows = sequential ? NULL : j->rows + j->G * j->C;
    for (Py_ssize_t i = 0; i < j->C; i++) {
        const int64_t row = j->ctx[g * j->C + i];
        if (row >= 0 && (sequential || !slotted(j->slot_in, row, j->rows, j->n_in)))
            prefetch_row(j->win + row * j->dim, j->dim, sequential);
    }
    for (Py_ssize_t k = 0; k < j->L; k++) {
        const int64_t row = j->out[g * j->L + k];
        if (row >= 0 && (sequential || !slotted(j->slot_out, row, out_rows, j->n_out)))
            prefetch_row(j->wout + row * j->dim, j->dim, sequential);
    }
}

/* the non-padding entries of ids (n,) (row indices of matrix, -1 = padding): their positions in pos and their
 * rows in vecs -> their number */
static inline Py_ssize_t valid_rows(const int64_t *ids, Py_ssize_t n, const float *matrix, Py_ssize_t dim,
                                    Py_ssize_t *pos, const float **vecs)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (ids[i] >= 0) {
            pos[count] = i;
            vecs[count++] = matrix + ids[i] * dim;
        }
    return count;
}

/* dots(a, b, n, out) and norm2[i] = dot(b[i], b[i]) in the same pass over each b[i], bit for bit */
static inline __attribute__((always_inline)) void dots_norms(const float *restrict a, const float *const *b,
                                                              Py_ssize_t n, float *restrict out,
                                                              float *restrict norm2, Py_ssize_t dim)
{
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float8 p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0}, q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0};
        const float *b0 = b[i], *b1 = b[i + 1], *b2 = b[i + 2], *b3 = b[i + 3];
        Py_ssize_t j = 0;
        for (; j + 8 <= dim; j += 8) {
            const float8 x = *(const float8 *)(a + j);
            const float8 y0 = *(const float8 *)(b0 + j), y1 = *(const float8 *)(b1 + j),
                         y2 = *(const float8 *)(b2 + j), y3 = *(const float8 *)(b3 + j);
            p0 += x * y0;
            p1 += x * y1;
            p2 += x * y2;
            p3 += x * y3;
            q0 += y0 * y0;
            q1 += y1 * y1;
            q2 += y2 * y2;
            q3 += y3 * y3;
        }
        float part[8][8];
        memcpy(part[0], &p0, sizeof(p0));
        memcpy(part[1], &p1, sizeof(p1));
        memcpy(part[2], &p2, sizeof(p2));
        memcpy(part[3], &p3, sizeof(p3));
        memcpy(part[4], &q0, sizeof(q0));
        memcpy(part[5], &q1, sizeof(q1));
        memcpy(part[6], &q2, sizeof(q2));
        memcpy(part[7], &q3, sizeof(q3));
        for (int q = 0; q < 4; q++) {
            out[i + q] = dot_finish(part[q], a, b[i + q], j, dim);
            norm2[i + q] = dot_finish(part[4 + q], b[i + q], b[i + q], j, dim);
        }
    }
    for (; i < n; i++) {
        out[i] = dot(a, b[i], dim);
        norm2[i] = dot(b[i], b[i], dim);
    }
}

/* for i = 0..n-1 in order: acc += scale[i] rows[i] (add_scaled_rows' order) with rows[i] as it was, then
 * rows[i] += move[i] v (axpy's result): each row read once, acc and v held in registers 32 floats at a time */
static inline __attribute__((always_inline)) void gather_and_move(float *restrict acc, float *const *rows,
                                                                   const float *scale, const float *move,
                                                                   const float *restrict v, Py_ssize_t n,
                                                                   Py_ssize_t dim)
{
    Py_ssize_t j = 0;
    for (; j + 32 <= dim; j += 32) {
        float8 a0 = *(float8 *)(acc + j), a1 = *(float8 *)(acc + j + 8), a2 = *(float8 *)(acc + j + 16),
               a3 = *(float8 *)(acc + j + 24);
        const float8 v0 = *(const float8 *)(v + j), v1 = *(const float8 *)(v + j + 8),
                     v2 = *(const float8 *)(v + j + 16), v3 = *(const float8 *)(v + j + 24);
        for (Py_ssize_t i = 0; i < n; i++) {
            float *x = rows[i] + j;
            const float8 s = {scale[i], scale[i], scale[i], scale[i], scale[i], scale[i], scale[i], scale[i]};
            const float8 m = {move[i], move[i], move[i], move[i], move[i], move[i], move[i], move[i]};
            const float8 x0 = *(float8 *)x, x1 = *(float8 *)(x + 8), x2 = *(float8 *)(x + 16),
                         x3 = *(float8 *)(x + 24);
            a0 += s * x0;
            a1 += s * x1;
            a2 += s * x2;
            a3 += s * x3;
            *(float8 *)x = x0 + m * v0;
            *(float8 *)(x + 8) = x1 + m * v1;
            *(float8 *)(x + 16) = x2 + m * v2;
            *(float8 *)(x + 24) = x3 + m * v3;
        }
        *(float8 *)(acc + j) = a0;
        *(float8 *)(acc + j + 8) = a1;
        *(float8 *)(acc + j + 16) = a2;
        *(float8 *)(acc + j + 24) = a3;
    }
    for (; j < dim; j++) {
        float a = acc[j];
        for (Py_ssize_t i = 0; i < n; i++) {
            a += scale[i] * rows[i][j];
            rows[i][j] += move[i] * v[j];
        }
        acc[j] = a;
    }
}

/* skip-gram, pass 1: every (context, output) product's gradient at the minibatch's starting parameters, summed
 * per row, with each row's trace curvature sum c(z) |x|^2. Each context row's steps over the window's outputs,
 * and each output row's over its contexts, are added to the row's summed step in one pass over it
 * (add_scaled_rows), in the order of the products */
static inline __attribute__((always_inline)) void skipgram_gradients(struct step_job *j)
{
    const Py_ssize_t C = j->C, L = j->L, dim = j->dim;
    float *pair_step = j->work, *sq = j->work + C * L, *steps = j->work + C * L + C + L;
    Py_ssize_t *slot = j->window_slots;  /* (C + L,) this window's rows' slots */
    for (Py_ssize_t g = 0; g < j->G; g++) {
        const int64_t *cg = j->ctx + g * C, *og = j->out + g * L;
        const float *lab = j->label + (j->label_rows == 1 ? 0 : g * L);
        float *pair_curv = j->curv + g * C * L;
        prefetch_window(j, g + 1);
        Py_ssize_t *vc = j->valid, *vk = j->valid + C;  /* the valid contexts and outputs */
        const float **xc = j->vecs, **xk = j->vecs + C;  /* their rows */
        const Py_ssize_t nc = valid_rows(cg, C, j->win, dim, vc, xc), nk = valid_rows(og, L, j->wout, dim, vk, xk);
        for (Py_ssize_t c = 0; c < C; c++)
            slot[c] = cg[c] < 0 ? -1 : in_slot(j, cg[c]);
        for (Py_ssize_t k = 0; k < L; k++)
            slot[C + k] = og[k] < 0 ? -1 : out_slot(j, og[k]);
        if (j->damping)
            for (Py_ssize_t i = 0; i < C + L; i++)
                sq[i] = slot[i] < 0 ? 0.0f : slot_norm2(j, slot[i]);
        for (Py_ssize_t a = 0; a < nc; a++) {
            const Py_ssize_t c = vc[a], r = slot[c];
            double trace = 0.0;
            dots(xc[a], xk, nk, steps, dim);  /* z, then the steps in their place */
            product_steps(j, lab, vk, nk, steps, j->bounds);
            for (Py_ssize_t b = 0; b < nk; b++) {
                const Py_ssize_t k = vk[b];
                pair_step[c * L + k] = steps[b];
                if (j->damping) {
                    pair_curv[c * L + k] = j->bounds[b];
                    trace += (double)(j->bounds[b] * sq[C + k]);
                }
            }
            add_scaled_rows(j->step_sum + r * dim, xk, steps, nk, dim);
            j->h[r] += trace;
            if (j->damping)
                j->occ_trace[g * C + c] = trace;
        }
        for (Py_ssize_t b = 0; b < nk; b++) {
            const Py_ssize_t k = vk[b], r = slot[C + k];
            double trace = 0.0;
            for (Py_ssize_t a = 0; a < nc; a++) {
                const Py_ssize_t c = vc[a];
                steps[a] = pair_step[c * L + k];
                if (j->damping)
                    trace += (double)(pair_curv[c * L + k] * sq[c]);
            }
            add_scaled_rows(j->step_sum + r * dim, xc, steps, nc, dim);
            j->h[r] += trace;
            if (j->damping)
                j->occ_trace[j->G * C + g * L + k] = trace;
        }
    }
}

/* CBOW, pass 1: window g's h (the sum of its context rows, divided by their number for the mean) scored against
 * its output rows; the output rows step by lr (label - s) h, and every context row by the step of h (mean) or
 * by 1/n of it (sum), as word2vec.c and gensim train CBOW; each context occurrence's curvature is the window's
 * curvature in h divided by n */
static inline __attribute__((always_inline)) void cbow_gradients(struct step_job *j)
{
    const Py_ssize_t C = j->C, L = j->L, dim = j->dim;
    float *dh = j->work, *steps = j->work + dim;
    for (Py_ssize_t g = 0; g < j->G; g++) {
        const int64_t *cg = j->ctx + g * C, *og = j->out + g * L;
        const float *lab = j->label + (j->label_rows == 1 ? 0 : g * L);
        float *hg = j->hidden + g * dim;
        int32_t *slot_c = j->occ_slot + g * C, *slot_k = j->occ_slot + j->G * C + g * L;
        Py_ssize_t n = 0;
        prefetch_window(j, g + 1);
        for (Py_ssize_t i = 0; j->damping && i < C; i++)
            slot_c[i] = -1;
        for (Py_ssize_t i = 0; j->damping && i < L; i++)
            slot_k[i] = -1;
        for (Py_ssize_t i = 0; i < dim; i++)
            hg[i] = 0.0f;
        for (Py_ssize_t c = 0; c < C; c++)
            if (cg[c] >= 0) {
                add_row(hg, j->win + cg[c] * dim, dim);
                n++;
            }
        if (n == 0)
            continue;
        if (j->model == CBOW_MEAN)
            for (Py_ssize_t i = 0; i < dim; i++)
                hg[i] /= (float)n;
        const float hh = j->damping ? dot(hg, hg, dim) : 0.0f;
        double trace_in = 0.0;
        for (Py_ssize_t i = 0; i < dim; i++)
            dh[i] = 0.0f;
        const Py_ssize_t nk = valid_rows(og, L, j->wout, dim, j->valid, j->vecs);  /* the valid outputs */
        dots(hg, j->vecs, nk, steps, dim);  /* z, then the steps in their place */
        product_steps(j, lab, j->valid, nk, steps, j->bounds);
        for (Py_ssize_t b = 0; b < nk; b++) {
            const Py_ssize_t k = j->valid[b];
            const Py_ssize_t r = out_slot(j, og[k]);
            axpy(j->step_sum + r * dim, steps[b], hg, dim);
            if (j->damping) {
                const float bound = j->curv[g * L + k] = j->bounds[b];
                const double share = (double)(bound * hh);
                j->h[r] += share;
                j->occ_trace[j->G * C + g * L + k] = share;
                slot_k[k] = (int32_t)r;
                trace_in += (double)(bound * slot_norm2(j, r));
            }
        }
        add_scaled_rows(dh, j->vecs, steps, nk, dim);
        for (Py_ssize_t c = 0; c < C; c++) {
            if (cg[c] < 0)
                continue;
            const Py_ssize_t r = in_slot(j, cg[c]);
            if (j->model == CBOW_SUM)
                for (Py_ssize_t i = 0; i < dim; i++)
                    j->step_sum[r * dim + i] += dh[i] / (float)n;
            else
                add_row(j->step_sum + r * dim, dh, dim);
            if (j->damping) {
                j->h[r] += trace_in / (double)n;
                j->occ_trace[g * C + c] = trace_in / (double)n;
                slot_c[c] = (int32_t)r;
            }
        }
    }
}

/* 1 / max(1, lr h) with damping, else 1: the factor that keeps a step of curvature h short of its quadratic
 * bound's minimum */
static inline float damping_factor(const struct step_job *j, double h)
{
    const double lr_h = (double)j->lr * h;
    return j->damping && lr_h > 1.0 ? (float)(1.0 / lr_h) : 1.0f;
}

static inline int is_cut(const struct step_job *j, Py_ssize_t r)
{
    return (r < j->n_in || r >= j->G * j->C) && (double)j->lr * j->h[r] > 1.0;
}

/* true when a cut row's curvature along its step can no longer exceed 1 / lr: what its products visited so far
 * added (along) plus the trace of those not yet visited (rest: each is at most its share of the trace, as
 * (x . e)^2 <= |x|^2), with a margin far above float rounding. Its factor is then 1 whatever the rest adds, so
 * its pass 2 stops early without changing any result. */
static inline int settled(const struct step_job *j, double along, double rest)
{
    return (double)j->lr * (along + rest * (1.0 + 1e-4)) <= 1.0;
}

/* skip-gram, pass 2: each cut row's curvature along its step direction e, sum c(z) (x . e)^2 over its products,
 * until the row is settled; rest (slots,) starts at each row's trace and loses each visited occurrence's share
 * (occ_trace, from pass 1) */
static inline __attribute__((always_inline)) void skipgram_along(struct step_job *j, const float *dirs,
                                                                  double *along, double *rest)
{
    const Py_ssize_t C = j->C, L = j->L, dim = j->dim, in_slots = j->G * j->C;
    Py_ssize_t *vc = j->valid, *vk = j->valid + C;
    const float **xc = j->vecs, **xk = j->vecs + C;
    float *p = j->work + C * L + C + L;  /* (max(C, L),) x . e of one cut row's products */
    for (Py_ssize_t g = 0; g < j->G; g++) {
        const int64_t *cg = j->ctx + g * C, *og = j->out + g * L;
        const float *pair_curv = j->curv + g * C * L;
        const Py_ssize_t nc = valid_rows(cg, C, j->win, dim, vc, xc), nk = valid_rows(og, L, j->wout, dim, vk, xk);
        for (Py_ssize_t a = 0; a < nc; a++) {
            const Py_ssize_t c = vc[a], r = j->slot_in[cg[c]];
            if (!is_cut(j, r) || settled(j, along[r], rest[r]))
                continue;
            dots(dirs + r * dim, xk, nk, p, dim);
            double sum = along[r];
            for (Py_ssize_t b = 0; b < nk; b++)
                sum += (double)(pair_curv[c * L + vk[b]] * (p[b] * p[b]));
            along[r] = sum;
            rest[r] -= j->occ_trace[g * C + c];
        }
        for (Py_ssize_t b = 0; b < nk; b++) {
            const Py_ssize_t k = vk[b], r = in_slots + j->slot_out[og[k]];
            if (!is_cut(j, r) || settled(j, along[r], rest[r]))
                continue;
            dots(dirs + r * dim, xc, nc, p, dim);
            double sum = along[r];
            for (Py_ssize_t a = 0; a < nc; a++)
                sum += (double)(pair_curv[vc[a] * L + k] * (p[a] * p[a]));
            along[r] = sum;
            rest[r] -= j->occ_trace[in_slots + g * L + k];
        }
    }
}

/* CBOW, pass 2: a context occurrence's curvature along e is sum_k c(z_k) (u_k . e)^2 / n, an output's c(z) (h . e)^2;
 * as skip-gram's, each cut row is measured until it is settled. The occurrences come from pass 1's slots, so a
 * window none of whose rows is cut costs a look at its C + L slots, and its outputs' rows are gathered only when
 * one of its contexts is measured. */
static inline __attribute__((always_inline)) void cbow_along(struct step_job *j, const float *dirs, double *along,
                                                              double *rest, int contexts_cut, int outputs_cut)
{
    const Py_ssize_t C = j->C, L = j->L, dim = j->dim, in_slots = j->G * j->C;
    float *p = j->work + dim;  /* (L,) u . e of one cut context row's products */
    for (Py_ssize_t g = 0; g < j->G; g++) {
        const int32_t *slot_c = j->occ_slot + g * C, *slot_k = j->occ_slot + in_slots + g * L;
        Py_ssize_t n = 0, nk = -1;
        for (Py_ssize_t c = 0; contexts_cut && c < C; c++)
            n += slot_c[c] >= 0;
        for (Py_ssize_t c = 0; contexts_cut && c < C; c++) {
            const Py_ssize_t r = slot_c[c];
            if (r < 0 || !is_cut(j, r) || settled(j, along[r], rest[r]))
                continue;
            if (nk < 0)
                nk = valid_rows(j->out + g * L, L, j->wout, dim, j->valid, j->vecs);
            double sum = 0.0;
            dots(dirs + r * dim, j->vecs, nk, p, dim);
            for (Py_ssize_t b = 0; b < nk; b++)
                sum += (double)(j->curv[g * L + j->valid[b]] * (p[b] * p[b]));
            along[r] += sum / (double)n;
            rest[r] -= j->occ_trace[g * C + c];
        }
        for (Py_ssize_t k = 0; outputs_cut && k < L; k++) {
            const Py_ssize_t r = slot_k[k];
            if (r < 0 || !is_cut(j, r) || settled(j, along[r], rest[r]))
                continue;
            const float q = dot(j->hidden + g * dim, dirs + r * dim, dim);
            along[r] += (double)(j->curv[g * L + k] * (q * q));
            rest[r] -= j->occ_trace[in_slots + g * L + k];
        }
    }
}

/* The arithmetic of one step, without the GIL; -> 1 when memory ran out (nothing then changed). On x86-64 it is
 * compiled twice, for AVX2 and for the baseline, and the loader picks one for the CPU: the operations and their
 * order are the same in both (no fused multiply-add, fixed partial sums), so are the results. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static int step_compute(struct step_job *j)
{
    const Py_ssize_t dim = j->dim, in_slots = j->G * j->C, slots = j->G * (j->C + j->L);
    if (j->model == SKIPGRAM)
        skipgram_gradients(j);
    else
        cbow_gradients(j);
    int contexts_cut = 0, outputs_cut = 0, memory_error = 0;
    for (Py_ssize_t r = 0; j->damping && r < j->n_in; r++)
        contexts_cut |= is_cut(j, r);
    for (Py_ssize_t r = in_slots; j->damping && r < in_slots + j->n_out; r++)
        outputs_cut |= is_cut(j, r);
    const int any_cut = contexts_cut || outputs_cut;
    /* rows the trace bound cuts (lr h > 1): h becomes the curvature along the row's own summed step */
    float *dirs = any_cut ? malloc((size_t)(slots * dim + 1) * sizeof(float)) : NULL;  /* read for cut rows only */
    double *along = any_cut ? calloc((size_t)(2 * slots) + 1, sizeof(double)) : NULL;  /* then each row's rest */
    memory_error = any_cut && (!dirs || !along);
    if (any_cut && !memory_error) {
        for (Py_ssize_t r = 0; r < in_slots + j->n_out; r++) {
            if (!is_cut(j, r))
                continue;
            const float *d = j->step_sum + r * dim;
            const float norm = sqrtf(dot(d, d, dim));
            for (Py_ssize_t i = 0; i < dim; i++)  /* a zero step has a zero direction: nothing along it */
                dirs[r * dim + i] = norm > 0 ? d[i] / norm : 0.0f;
        }
        memcpy(along + slots, j->h, (size_t)slots * sizeof(double));
        if (j->model == SKIPGRAM)
            skipgram_along(j, dirs, along, along + slots);
        else
            cbow_along(j, dirs, along, along + slots, contexts_cut, outputs_cut);
        for (Py_ssize_t r = 0; r < in_slots + j->n_out; r++)
            if (is_cut(j, r))
                j->h[r] = along[r];
    }
    free(dirs);
    free(along);
    /* pass 3: every row moves once, by its factor 1 / max(1, lr h) times its summed step (the rows a few slots
     * ahead are asked for early: by now most have left the cache) */
    for (int out = 0; !memory_error && out < 2; out++) {
        const Py_ssize_t first = out ? in_slots : 0, end = out ? in_slots + j->n_out : j->n_in;
        float *matrix = out ? j->wout : j->win;
        for (Py_ssize_t r = first; r < end; r++) {
            if (r + PREFETCH_AHEAD < end)
                prefetch_row(matrix + j->rows[r + PREFETCH_AHEAD] * dim, dim, 1);
            axpy(matrix + j->rows[r] * dim, damping_factor(j, j->h[r]), j->step_sum + r * dim, dim);
        }
    }
    for (Py_ssize_t r = 0; r < j->n_in; r++) {
        j->slot_in[j->rows[r]] = -1;
        j->touched_in[j->rows[r]] = 1;
    }
    for (Py_ssize_t r = 0; r < j->n_out; r++) {
        j->slot_out[j->rows[in_slots + r]] = -1;
        j->touched_out[j->rows[in_slots + r]] = 1;
    }
    return memory_error;
}

/* The arguments both steps share, checked (shapes and dtypes, rows in range) and set in j (j's sizes, lr, model
 * and flags already parsed): -> 1, or 0 with a Python error that names the step */
static int job_buffers(struct step_job *j, const char *name, Py_buffer *w_in, Py_buffer *w_out, Py_buffer *contexts,
                       Py_buffer *out_ids, Py_buffer *labels, Py_buffer *touched_in, Py_buffer *touched_out)
{
    const Py_ssize_t G = j->G, C = j->C, L = j->L, row_bytes = j->dim * (Py_ssize_t)sizeof(float);
    if (G < 0 || C <= 0 || L <= 0 || j->dim <= 0 || (j->label_rows != 1 && j->label_rows != G)
        || j->model < SKIPGRAM || j->model > CBOW_SUM || w_in->len % row_bytes != 0 || w_out->len % row_bytes != 0
        || contexts->len != G * C * (Py_ssize_t)sizeof(int64_t) || out_ids->len != G * L * (Py_ssize_t)sizeof(int64_t)
        || labels->len != j->label_rows * L * (Py_ssize_t)sizeof(float)
        || touched_in->len != w_in->len / row_bytes || touched_out->len != w_out->len / row_bytes) {
        PyErr_Format(PyExc_ValueError, "%s: shapes or dtypes do not match (float32 w_in, w_out and labels; int64 "
                                       "contexts and out_ids; one-byte touched marks, one per row; model 0-2)", name);
        return 0;
    }
    char what[64];
    j->ctx = (const int64_t *)contexts->buf;
    j->out = (const int64_t *)out_ids->buf;
    snprintf(what, sizeof(what), "%s: context row", name);
    if (!rows_in_range(j->ctx, G * C, -1, w_in->len / row_bytes, what))
        return 0;
    snprintf(what, sizeof(what), "%s: output row", name);
    if (!rows_in_range(j->out, G * L, -1, w_out->len / row_bytes, what))
        return 0;
    j->label = (const float *)labels->buf;
    j->win = (float *)w_in->buf;
    j->wout = (float *)w_out->buf;
    j->touched_in = (uint8_t *)touched_in->buf;
    j->touched_out = (uint8_t *)touched_out->buf;
    return 1;
}

/* One skip-gram or CBOW minibatch (negative sampling or hierarchical softmax), applied in place; the loss of its
 * products is returned (0 unless with_loss).
 *
 * Skip-gram (model 0) scores each valid context row contexts[g, c] (-1 = padding) of w_in against each valid
 * output row out_ids[g, k] (-1 = padding) of w_out with label labels[g or 0, k]; CBOW scores the window's h, the
 * mean (model 1) or the sum (model 2) of its context rows. All gradients are taken at the parameters the
 * minibatch starts from; each distinct row's steps are summed (D), and with damping scaled by 1 / max(1, lr H):
 * H = sum c(z) |x|^2 over the row's products (x the vector it is multiplied with), and for the rows where
 * lr H > 1, H measured along the row's summed step instead, sum c(z) (x . D / |D|)^2 (skip-gram stops measuring a
 * row once its products not yet measured cannot lift it above 1 / lr: its factor is 1 either way). Each row then
 * moves once by its factor times D. This is w2vspark.train.task.skipgram_step / cbow_step with the rows' steps summed
 * before they are scaled: the same result up to float32 rounding. slot_in (rows of w_in,) and slot_out (rows of
 * w_out,) are int32 scratch, left holding -1; touched_in and touched_out (one byte per row of w_in, w_out) get 1
 * for every row of a valid context or output (the rows the step moves; the others are left as they are).
 * skip_saturated (optional, default false): products with |z| >= 6 take no step (product_steps).
 */
static PyObject *minibatch_step(PyObject *self, PyObject *args)
{
    Py_buffer w_in, w_out, contexts, out_ids, labels, slot_in, slot_out, touched_in, touched_out;
    struct step_job j;
    memset(&j, 0, sizeof(j));
    (void)self;
    if (!PyArg_ParseTuple(args, "w*w*y*y*y*w*w*w*w*nnnnnfipp|p", &w_in, &w_out, &contexts, &out_ids, &labels,
                          &slot_in, &slot_out, &touched_in, &touched_out, &j.G, &j.C, &j.L, &j.label_rows, &j.dim,
                          &j.lr, &j.model, &j.with_loss, &j.damping, &j.skip_saturated))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t G = j.G, C = j.C, L = j.L, dim = j.dim, row_bytes = dim * (Py_ssize_t)sizeof(float);
    if (!job_buffers(&j, "minibatch_step", &w_in, &w_out, &contexts, &out_ids, &labels, &touched_in, &touched_out))
        goto done;  /* dim > 0 and whole rows from here */
    if (slot_in.len != (w_in.len / row_bytes) * (Py_ssize_t)sizeof(int32_t)
        || slot_out.len != (w_out.len / row_bytes) * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "minibatch_step: shapes or dtypes do not match (int32 slots, one per row)");
        goto done;
    }
    if (slot_in.buf == slot_out.buf) {
        PyErr_SetString(PyExc_ValueError, "minibatch_step: slot_in and slot_out must be two arrays");
        goto done;
    }
    j.slot_in = (int32_t *)slot_in.buf;
    j.slot_out = (int32_t *)slot_out.buf;
    const Py_ssize_t slots = G * (C + L) + 1;
    j.step_sum = malloc((size_t)(slots * dim) * sizeof(float));  /* zeroed row by row in slot_of */
    j.h = calloc((size_t)slots, sizeof(double));
    j.norm2 = malloc((size_t)slots * sizeof(float));
    j.window_slots = malloc((size_t)(C + L) * sizeof(Py_ssize_t));
    j.rows = malloc((size_t)slots * sizeof(int64_t));
    j.valid = malloc((size_t)(C + L) * sizeof(Py_ssize_t));
    j.vecs = malloc((size_t)(C + L) * sizeof(const float *));
    j.work = malloc((size_t)(C * L + C + L + (C > L ? C : L) + dim + 8) * sizeof(float));  /* steps: 8 spare */
    j.bounds = malloc((size_t)((C > L ? C : L) + 8) * sizeof(float));
    j.curv = malloc((size_t)((j.model == SKIPGRAM ? G * C * L : G * L) + 1) * sizeof(float));  /* set with damping */
    j.occ_trace = j.damping ? malloc((size_t)slots * sizeof(double)) : NULL;
    j.occ_slot = j.model != SKIPGRAM && j.damping ? malloc((size_t)slots * sizeof(int32_t)) : NULL;
    j.hidden = j.model == SKIPGRAM ? NULL : malloc((size_t)(G * dim + 1) * sizeof(float));
    int memory_error = !j.step_sum || !j.h || !j.norm2 || !j.window_slots || !j.valid || !j.vecs || !j.rows
                       || !j.work || !j.bounds || !j.curv || (j.model != SKIPGRAM && !j.hidden)
                       || (j.damping && !j.occ_trace) || (j.model != SKIPGRAM && j.damping && !j.occ_slot);
    if (!memory_error) {
        Py_BEGIN_ALLOW_THREADS
        memory_error = step_compute(&j);
        Py_END_ALLOW_THREADS
    }
    if (memory_error)
        PyErr_NoMemory();
    else
        result = PyFloat_FromDouble(j.loss);
done:
    free(j.step_sum);
    free(j.h);
    free(j.norm2);
    free(j.window_slots);
    free(j.valid);
    free((void *)j.vecs);
    free(j.rows);
    free(j.work);
    free(j.bounds);
    free(j.occ_trace);
    free(j.occ_slot);
    free(j.curv);
    free(j.hidden);
    PyBuffer_Release(&w_in);
    PyBuffer_Release(&w_out);
    PyBuffer_Release(&contexts);
    PyBuffer_Release(&out_ids);
    PyBuffer_Release(&labels);
    PyBuffer_Release(&slot_in);
    PyBuffer_Release(&slot_out);
    PyBuffer_Release(&touched_in);
    PyBuffer_Release(&touched_out);
    return result;
}

/* One input vector x (a context row, or CBOW's h) against the current window's nk valid output rows u_k (xk,
 * distinct: no row twice): z_k = x . u_k, s_k = lr (label_k - s(z_k)); e (dim,) = sum_k s_k u_k with the u_k as
 * they were; then each u_k moves by f_k s_k x, f_k = 1 / max(1, lr c(z_k) |x|^2) with damping (u_k's curvature
 * along its step, exactly; a row that is two of the outputs, a negative drawn twice, sums its c(z)), else 1.
 * -> sum_k c(z_k) |u_k|^2 (the trace bound of the curvature in x; 0 without damping). The squared lengths come
 * from the same pass over each row as its product. */
static inline __attribute__((always_inline)) double score_and_move(struct step_job *j, const float *x,
                                                                    const float *lab, Py_ssize_t nk, int distinct,
                                                                    float *e)
{
    const Py_ssize_t L = j->L, dim = j->dim;
    float *step = j->work, *move = step + L + 8, *sq = move + L + 8;  /* (L + 8,) each */
    const float **xk = j->vecs;
    if (j->damping)
        dots_norms(x, xk, nk, step, sq, dim);
    else
        dots(x, xk, nk, step, dim);
    product_steps(j, lab, j->valid, nk, step, j->bounds);  /* z, then the steps in their place */
    double trace = 0.0;
    if (j->damping) {
        const double xx = (double)dot(x, x, dim);
        for (Py_ssize_t b = 0; b < nk; b++) {
            double row_bound = (double)j->bounds[b];
            for (Py_ssize_t a = 0; !distinct && a < nk; a++)
                row_bound += a != b && xk[a] == xk[b] ? (double)j->bounds[a] : 0.0;
            move[b] = step[b] * damping_factor(j, row_bound * xx);
            trace += (double)(j->bounds[b] * sq[b]);
        }
    } else {
        memcpy(move, step, (size_t)nk * sizeof(float));
    }
    memset(e, 0, (size_t)dim * sizeof(float));
    if (distinct) {
        gather_and_move(e, (float *const *)xk, step, move, x, nk, dim);
    } else {  /* e from the rows as x found them, then each product's move */
        add_scaled_rows(e, xk, step, nk, dim);
        for (Py_ssize_t b = 0; b < nk; b++)
            axpy((float *)xk[b], move[b], x, dim);
    }
    return trace;
}

/* The windows of a minibatch one after another, each step taken at the parameters the earlier ones left
 * (word2vec.c's order). Skip-gram: pair by pair, each valid context row v of window g scored against the
 * window's output rows (score_and_move), then v moves by f_v e, f_v = damping_factor(trace): the trace bound of
 * v's curvature. CBOW: the window's h (the sum of its n context rows, divided by n for the mean) scored once,
 * then each context row moves by f e (mean: h's own step, as word2vec.c and gensim) or f e / n (sum), f =
 * damping_factor(r trace / n) for a row that is r of the window's contexts (the minibatch step's curvature of a
 * context occurrence). Without damping every factor is 1. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void sequential_compute(struct step_job *j)
{
    const Py_ssize_t C = j->C, L = j->L, dim = j->dim;
    float *e = j->work + 3 * (L + 8), *h = e + dim;  /* (dim,) each */
    for (Py_ssize_t g = 0; g < j->G; g++) {
        const int64_t *cg = j->ctx + g * C, *og = j->out + g * L;
        const float *lab = j->label + (j->label_rows == 1 ? 0 : g * L);
        prefetch_window(j, g + 1);
        Py_ssize_t n = 0;
        for (Py_ssize_t c = 0; c < C; c++)
            n += cg[c] >= 0;
        const Py_ssize_t nk = valid_rows(og, L, j->wout, dim, j->valid, j->vecs);
        if (nk == 0 || n == 0)
            continue;
        int distinct = 1;  /* no output row twice (a path never repeats a node; negatives may repeat) */
        for (Py_ssize_t b = 0; b < nk; b++) {
            j->touched_out[og[j->valid[b]]] = 1;
            for (Py_ssize_t a = 0; a < b; a++)
                distinct &= j->vecs[a] != j->vecs[b];
        }
        if (j->model == SKIPGRAM) {
            for (Py_ssize_t c = 0; c < C; c++) {
                if (cg[c] < 0)
                    continue;
                float *v = j->win + cg[c] * dim;
                j->touched_in[cg[c]] = 1;
                const double trace = score_and_move(j, v, lab, nk, distinct, e);
                axpy(v, damping_factor(j, trace), e, dim);
            }
            continue;
        }
        for (Py_ssize_t i = 0; i < dim; i++)
            h[i] = 0.0f;
        for (Py_ssize_t c = 0; c < C; c++)
            if (cg[c] >= 0)
                add_row(h, j->win + cg[c] * dim, dim);
        if (j->model == CBOW_MEAN)
            for (Py_ssize_t i = 0; i < dim; i++)
                h[i] /= (float)n;
        const double trace = score_and_move(j, h, lab, nk, distinct, e);
        for (Py_ssize_t c = 0; c < C; c++) {
            if (cg[c] < 0)
                continue;
            Py_ssize_t r = 0;  /* the row's contexts in this window */
            for (Py_ssize_t a = 0; j->damping && a < C; a++)
                r += cg[a] == cg[c];
            float f = damping_factor(j, (double)r * trace / (double)n);
            if (j->model == CBOW_SUM)
                f /= (float)n;
            axpy(j->win + cg[c] * dim, f, e, dim);
            j->touched_in[cg[c]] = 1;
        }
    }
}

/* sequential_step(w_in, w_out, contexts, out_ids, labels, touched_in, touched_out, G, C, L, label_rows, dim, lr,
 * model, with_loss, damping[, skip_saturated]) -> loss: the windows of one minibatch (arguments as
 * minibatch_step's; model 0 skip-gram, 1 CBOW with the mean, 2 with the sum) trained one after another
 * (sequential_compute), in place; touched_in / touched_out get 1 for every row it moves. */
static PyObject *sequential_step(PyObject *self, PyObject *args)
{
    Py_buffer w_in, w_out, contexts, out_ids, labels, touched_in, touched_out;
    struct step_job j;
    memset(&j, 0, sizeof(j));
    (void)self;
    if (!PyArg_ParseTuple(args, "w*w*y*y*y*w*w*nnnnnfipp|p", &w_in, &w_out, &contexts, &out_ids, &labels,
                          &touched_in, &touched_out, &j.G, &j.C, &j.L, &j.label_rows, &j.dim, &j.lr, &j.model,
                          &j.with_loss, &j.damping, &j.skip_saturated))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t L = j.L, dim = j.dim;
    if (!job_buffers(&j, "sequential_step", &w_in, &w_out, &contexts, &out_ids, &labels, &touched_in, &touched_out))
        goto done;
    j.valid = malloc((size_t)L * sizeof(Py_ssize_t));
    j.vecs = malloc((size_t)L * sizeof(const float *));
    j.work = malloc((size_t)(3 * (L + 8) + 2 * dim) * sizeof(float));
    j.bounds = malloc((size_t)(L + 8) * sizeof(float));
    if (!j.valid || !j.vecs || !j.work || !j.bounds) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    sequential_compute(&j);
    Py_END_ALLOW_THREADS
    result = PyFloat_FromDouble(j.loss);
done:
    free(j.valid);
    free((void *)j.vecs);
    free(j.work);
    free(j.bounds);
    PyBuffer_Release(&w_in);
    PyBuffer_Release(&w_out);
    PyBuffer_Release(&contexts);
    PyBuffer_Release(&out_ids);
    PyBuffer_Release(&labels);
    PyBuffer_Release(&touched_in);
    PyBuffer_Release(&touched_out);
    return result;
}

/* window_rows(ids, offsets, sizes, reach, targets, contexts, counts) -> G. ids (N,) int32 the tokens of S sentences
 * (sentence s is ids[offsets[s]:offsets[s+1]], offsets (S+1,) int64), sizes (N,) int64 each position's window
 * size b >= 1, reach the widest window to lay out. Position p's contexts are the tokens at most min(b, reach)
 * positions away in its sentence, left ones from the farthest, then right ones from the nearest. Fills the first
 * G rows of targets (N,) int32, contexts (N, 2 reach) int32 (padded with -1) and counts (N,) int64 with the
 * G positions that have a context, ordered by their number of contexts, most first, and by position among equals
 * (a stable counting sort): the rows that numpy's window_groups and by_width give. */
static PyObject *window_rows(PyObject *self, PyObject *args)
{
    Py_buffer ids, offsets, sizes, targets, contexts, counts;
    Py_ssize_t reach;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*nw*w*w*", &ids, &offsets, &sizes, &reach, &targets, &contexts, &counts))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t n = ids.len / (Py_ssize_t)sizeof(int32_t), width = 2 * reach;
    const Py_ssize_t sentences = offsets.len / (Py_ssize_t)sizeof(int64_t) - 1;
    int32_t *position_count = NULL;
    Py_ssize_t *next = NULL;
    if (reach < 1 || sentences < 0 || sizes.len != n * (Py_ssize_t)sizeof(int64_t)
        || targets.len != n * (Py_ssize_t)sizeof(int32_t) || counts.len != n * (Py_ssize_t)sizeof(int64_t)
        || contexts.len != n * width * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "window_rows: int32 ids (N,), int64 offsets (S+1,) and sizes (N,), reach "
                                          ">= 1, outputs int32 (N,), int32 (N, 2 reach), int64 (N,)");
        goto done;
    }
    const int64_t *off = (const int64_t *)offsets.buf, *b = (const int64_t *)sizes.buf;
    if (off[0] != 0 || off[sentences] != n) {
        PyErr_SetString(PyExc_ValueError, "window_rows: offsets must run from 0 to len(ids)");
        goto done;
    }
    for (Py_ssize_t s = 0; s < sentences; s++)
        if (off[s + 1] < off[s]) {
            PyErr_SetString(PyExc_ValueError, "window_rows: offsets must not decrease");
            goto done;
        }
    position_count = malloc((size_t)(n + 1) * sizeof(int32_t));
    next = calloc((size_t)width + 2, sizeof(Py_ssize_t));
    if (!position_count || !next) {
        PyErr_NoMemory();
        goto done;
    }
    const int32_t *tok = (const int32_t *)ids.buf;
    int32_t *tgt = (int32_t *)targets.buf, *ctx = (int32_t *)contexts.buf;
    int64_t *cnt = (int64_t *)counts.buf;
    Py_ssize_t windows = 0;
    Py_BEGIN_ALLOW_THREADS
    /* each position's number of contexts, and how many positions have each number */
    for (Py_ssize_t s = 0; s < sentences; s++)
        for (int64_t p = off[s]; p < off[s + 1]; p++) {
            const int64_t size = b[p] < reach ? b[p] : reach;
            const int64_t left = p - off[s] < size ? p - off[s] : size;
            const int64_t right = off[s + 1] - 1 - p < size ? off[s + 1] - 1 - p : size;
            const int32_t c = (int32_t)((left > 0 ? left : 0) + (right > 0 ? right : 0));
            position_count[p] = c;
            next[c]++;
        }
    /* the first row of each number of contexts, widest first; positions without context are left out */
    Py_ssize_t row = 0;
    for (Py_ssize_t c = width; c >= 1; c--) {
        const Py_ssize_t k = next[c];
        next[c] = row;
        row += k;
    }
    windows = row;
    for (Py_ssize_t s = 0; s < sentences; s++)
        for (int64_t p = off[s]; p < off[s + 1]; p++) {
            const int32_t c = position_count[p];
            if (c == 0)
                continue;
            const Py_ssize_t r = next[c]++;
            const int64_t size = b[p] < reach ? b[p] : reach;
            const int64_t first = p - size > off[s] ? p - size : off[s];
            const int64_t last = p + size < off[s + 1] - 1 ? p + size : off[s + 1] - 1;
            int32_t *out = ctx + r * width;
            Py_ssize_t k = 0;
            for (int64_t q = first; q <= last; q++)
                if (q != p)
                    out[k++] = tok[q];
            for (; k < width; k++)
                out[k] = -1;
            tgt[r] = tok[p];
            cnt[r] = c;
        }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(windows);
done:
    free(position_count);
    free(next);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&sizes);
    PyBuffer_Release(&targets);
    PyBuffer_Release(&contexts);
    PyBuffer_Release(&counts);
    return result;
}

/* alias_draw(u, accept, alias, out): Walker's alias method (w2vspark.vocab.NoiseSampler.draw) for n uniform numbers
 * u (n,) float64 in [0, 1) and a table of V buckets, accept (V,) float64 and alias (V,) int32: x = u V picks bucket
 * b = min(floor(x), V - 1), and out[i] (n,) int32 is b when x - b < accept[b], else alias[b]. The same float64
 * operations as numpy's path, so the same draws. */
static PyObject *alias_draw(PyObject *self, PyObject *args)
{
    Py_buffer u, accept, alias, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &u, &accept, &alias, &out))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t n = u.len / (Py_ssize_t)sizeof(double), size = accept.len / (Py_ssize_t)sizeof(double);
    if (size < 1 || size > INT32_MAX || u.len % (Py_ssize_t)sizeof(double) != 0
        || accept.len % (Py_ssize_t)sizeof(double) != 0 || alias.len != size * (Py_ssize_t)sizeof(int32_t)
        || out.len != n * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "alias_draw: float64 u (n,) and accept (V,), int32 alias (V,) and out (n,)");
        goto done;
    }
    const double *x = (const double *)u.buf, *acc = (const double *)accept.buf;
    const int32_t *other = (const int32_t *)alias.buf;
    int32_t *draw = (int32_t *)out.buf;
    Py_ssize_t bad = -1;  /* the first u outside [0, 1) or bucket whose alias is out of range */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const double scaled = x[i] * (double)size;
        if (!(scaled >= 0.0 && x[i] < 1.0)) {
            bad = i;
            break;
        }
        int32_t bucket = (int32_t)scaled;
        if (bucket > size - 1)
            bucket = (int32_t)(size - 1);
        draw[i] = scaled - (double)bucket < acc[bucket] ? bucket : other[bucket];
        if (draw[i] < 0 || draw[i] >= size) {
            bad = i;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "alias_draw: u[%zd] is not in [0, 1), or its bucket's alias is out of range "
                     "[0, %zd)", bad, size);
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&u);
    PyBuffer_Release(&accept);
    PyBuffer_Release(&alias);
    PyBuffer_Release(&out);
    return result;
}

/* huffman_merge(counts, parent, branch, depth) -> L: the two-queue Huffman construction of
 * w2vspark.huffman.huffman_tree. counts (V,) int64 in descending order (leaf slot i has counts[i]); merged node m
 * is slot V + m. Each merge joins the two smallest remaining nodes, the first on branch 0, the second on branch 1;
 * a leaf is taken before a merged node only when its count is strictly smaller. Fills parent (2V - 1,) int64 (the
 * root's is itself), branch (2V - 1,) int8 and depth (2V - 1,) int64 (edges from the root); -> the deepest leaf's
 * depth. */
static PyObject *huffman_merge(PyObject *self, PyObject *args)
{
    Py_buffer counts, parent, branch, depth;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*w*w*", &counts, &parent, &branch, &depth))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t V = counts.len / (Py_ssize_t)sizeof(int64_t), nodes = 2 * V - 1;
    int64_t *merged_count = NULL;
    if (V < 2 || counts.len % (Py_ssize_t)sizeof(int64_t) != 0 || parent.len != nodes * (Py_ssize_t)sizeof(int64_t)
        || branch.len != nodes || depth.len != nodes * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "huffman_merge: int64 counts (V,) with V >= 2, int64 parent (2V - 1,), "
                                          "int8 branch (2V - 1,), int64 depth (2V - 1,)");
        goto done;
    }
    const int64_t *leaf_count = (const int64_t *)counts.buf;
    for (Py_ssize_t i = 1; i < V; i++)
        if (leaf_count[i] > leaf_count[i - 1]) {
            PyErr_Format(PyExc_ValueError, "huffman_merge: counts must not increase (counts[%zd] > counts[%zd])", i,
                         i - 1);
            goto done;
        }
    merged_count = malloc((size_t)V * sizeof(int64_t));
    if (!merged_count) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t *up = (int64_t *)parent.buf, *level = (int64_t *)depth.buf;
    int8_t *side = (int8_t *)branch.buf;
    int64_t deepest = 0;
    Py_BEGIN_ALLOW_THREADS
    memset(side, 0, (size_t)nodes);
    Py_ssize_t leaf = V - 1, merged = 0;  /* next smallest leaf slot, next unused merged node */
    for (Py_ssize_t m = 0; m < V - 1; m++) {
        Py_ssize_t picked[2];
        int64_t total = 0;
        for (int k = 0; k < 2; k++) {
            if (leaf >= 0 && (merged >= m || leaf_count[leaf] < merged_count[merged])) {
                total += leaf_count[leaf];
                picked[k] = leaf--;
            } else {
                total += merged_count[merged];
                picked[k] = V + merged++;
            }
        }
        merged_count[m] = total;
        up[picked[0]] = up[picked[1]] = V + m;
        side[picked[1]] = 1;
    }
    up[nodes - 1] = nodes - 1;
    level[nodes - 1] = 0;
    for (Py_ssize_t n = nodes - 2; n >= 0; n--) {  /* a parent's slot is always above its children's */
        level[n] = level[up[n]] + 1;
        if (n < V && level[n] > deepest)
            deepest = level[n];
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromLongLong((long long)deepest);
done:
    free(merged_count);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&parent);
    PyBuffer_Release(&branch);
    PyBuffer_Release(&depth);
    return result;
}

/* huffman_paths(parent, branch, depth, order, points, codes, lengths): each leaf slot i's path, root first, into row
 * order[i] of points (V, L) int32 (inner node of slot V + m numbered V - 2 - m, the root 0; -1 pads) and codes
 * (V, L) int8 (the branch taken at each, 0 on padding), its length into lengths (V,) int32; parent, branch and
 * depth as huffman_merge fills them, order (V,) int64 a permutation. */
static PyObject *huffman_paths(PyObject *self, PyObject *args)
{
    Py_buffer parent, branch, depth, order, points, codes, lengths;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*w*w*", &parent, &branch, &depth, &order, &points, &codes, &lengths))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t V = order.len / (Py_ssize_t)sizeof(int64_t), nodes = 2 * V - 1;
    const Py_ssize_t L = V > 0 ? points.len / (V * (Py_ssize_t)sizeof(int32_t)) : 0;
    if (V < 2 || parent.len != nodes * (Py_ssize_t)sizeof(int64_t) || branch.len != nodes
        || depth.len != nodes * (Py_ssize_t)sizeof(int64_t) || points.len != V * L * (Py_ssize_t)sizeof(int32_t)
        || codes.len != V * L || lengths.len != V * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "huffman_paths: int64 parent, int8 branch, int64 depth (2V - 1,), int64 "
                                          "order (V,), int32 points (V, L), int8 codes (V, L), int32 lengths (V,)");
        goto done;
    }
    const int64_t *up = (const int64_t *)parent.buf, *level = (const int64_t *)depth.buf;
    const int64_t *row = (const int64_t *)order.buf;
    const int8_t *side = (const int8_t *)branch.buf;
    for (Py_ssize_t i = 0; i < V; i++)
        if (row[i] < 0 || row[i] >= V || level[i] < 1 || level[i] > L) {
            PyErr_Format(PyExc_ValueError, "huffman_paths: leaf slot %zd has row %lld or depth %lld out of range", i,
                         (long long)row[i], (long long)level[i]);
            goto done;
        }
    int32_t *point = (int32_t *)points.buf, *length = (int32_t *)lengths.buf;
    int8_t *code = (int8_t *)codes.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < V; i++) {
        int32_t *p = point + row[i] * L;
        int8_t *c = code + row[i] * L;
        const Py_ssize_t n = (Py_ssize_t)level[i];
        Py_ssize_t node = i;
        for (Py_ssize_t k = n - 1; k >= 0; k--) {  /* the step into node is taken at its parent, position k */
            c[k] = side[node];
            node = (Py_ssize_t)up[node];
            p[k] = (int32_t)(nodes - 1 - node);
        }
        for (Py_ssize_t k = n; k < L; k++) {
            p[k] = -1;
            c[k] = 0;
        }
        length[row[i]] = (int32_t)n;
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&parent);
    PyBuffer_Release(&branch);
    PyBuffer_Release(&depth);
    PyBuffer_Release(&order);
    PyBuffer_Release(&points);
    PyBuffer_Release(&codes);
    PyBuffer_Release(&lengths);
    return result;
}

static PyMethodDef methods[] = {
    {"scatter_add", scatter_add, METH_VARARGS,
     "scatter_add(w, ids, rows, dim): w[ids[i]] += rows[i] in index order (float32 w and rows, int64 ids)."},
    {"row_differences", row_differences, METH_VARARGS,
     "row_differences(out, a, b, ids, dim): out[i] = a[ids[i]] - b[ids[i]] (float32 a, b and out, int64 ids)."},
    {"segment_sum", segment_sum, METH_VARARGS,
     "segment_sum(out, w, ids, counts, dim): out[g] = the sum of w[ids] over segment g, row after row (float32)."},
    {"minibatch_step", minibatch_step, METH_VARARGS,
     "minibatch_step(w_in, w_out, contexts, out_ids, labels, slot_in, slot_out, touched_in, touched_out, G, C, L, "
     "label_rows, dim, lr, model, with_loss, damping[, skip_saturated]) -> loss: one damped skip-gram (model 0) or "
     "CBOW (1 mean, 2 sum) minibatch, in place."},
    {"sequential_step", sequential_step, METH_VARARGS,
     "sequential_step(w_in, w_out, contexts, out_ids, labels, touched_in, touched_out, G, C, L, label_rows, dim, "
     "lr, model, with_loss, damping[, skip_saturated]) -> loss: one minibatch's windows trained one after another, "
     "in place."},
    {"window_rows", window_rows, METH_VARARGS,
     "window_rows(ids, offsets, sizes, reach, targets, contexts, counts) -> G: the windows that have a context, "
     "widest first, into the first G rows of the outputs."},
    {"alias_draw", alias_draw, METH_VARARGS,
     "alias_draw(u, accept, alias, out): the alias method's draws for uniform numbers u into out (int32)."},
    {"huffman_merge", huffman_merge, METH_VARARGS,
     "huffman_merge(counts, parent, branch, depth) -> L: the Huffman tree of counts sorted descending."},
    {"huffman_paths", huffman_paths, METH_VARARGS,
     "huffman_paths(parent, branch, depth, order, points, codes, lengths): every leaf's path, root first."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "w2vspark_native",
                                    "Optional compiled helpers for w2vspark's training kernel.", -1, methods};

PyMODINIT_FUNC PyInit_w2vspark_native(void) { return PyModule_Create(&module); }
