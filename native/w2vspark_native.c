/* w2vspark_native: optional compiled helpers for the training kernel (w2vspark/partition.py).
 *
 * scatter_add(w, ids, rows, dim): w[ids[i], :] += rows[i, :] for i = 0..n-1, in that order, float32.
 * The additions happen in exactly the order of numpy's np.add.at over the flattened element indices, so
 * results are bit-identical to the numpy fallback.
 * segment_sum(out, w, ids, counts, dim): out[g, :] = 0 + w[ids[k], :] + w[ids[k + 1], :] + ... over the counts[g]
 * ids of segment g (segments consecutive in ids), added one row after another as the numpy fallback does.
 * skipgram_step(...): one skip-gram minibatch (negative sampling or hierarchical softmax) with the damping of
 * repeated rows, the math of w2vspark.partition.skipgram_step; see the comment above the function.
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

/* 1 when every index lies in [0, num_rows); otherwise an IndexError naming the helper, and 0 */
static int rows_in_range(const int64_t *index, Py_ssize_t n, Py_ssize_t num_rows, const char *name)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (index[i] < 0 || index[i] >= num_rows) {
            PyErr_Format(PyExc_IndexError, "%s: row index %lld out of range [0, %zd)", name, (long long)index[i],
                         num_rows);
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
    if (!rows_in_range(index, n, num_rows, "scatter_add"))
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
    if (!rows_in_range(index, n, num_rows, "segment_sum"))
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

/* a . b over dim floats, in eight interleaved partial sums added at the end (a fixed order: the same result
 * whatever the vector width the compiler chose) */
static inline float dot(const float *restrict a, const float *restrict b, Py_ssize_t dim)
{
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t j = 0;
    for (; j + 8 <= dim; j += 8)
        for (int t = 0; t < 8; t++)
            part[t] += a[j + t] * b[j + t];
    for (int t = 0; j < dim; j++, t++)
        part[t] += a[j] * b[j];
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

/* dst[j] += scale * src[j] */
static inline void axpy(float *restrict dst, float scale, const float *restrict src, Py_ssize_t dim)
{
    for (Py_ssize_t j = 0; j < dim; j++)
        dst[j] += scale * src[j];
}

/* s(z) = 1 / (1 + exp(-z)) without exp of a positive number */
static inline float sigmoid_f(float z)
{
    if (z >= 0) {
        float e = expf(-z);
        return 1.0f / (1.0f + e);
    }
    float e = expf(z);
    return e / (1.0f + e);
}

/* log s(z) = -log(1 + exp(-z)), stable for large |z| */
static inline double log_sigmoid_d(double z)
{
    return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z));
}

/* Jaakkola and Jordan's curvature bound of the logistic loss, (s(z) - 1/2) / z, 1/4 near 0
 * (w2vspark.losses.logistic_curvature_bound) */
static inline float curvature_bound(float z, float s)
{
    return fabsf(z) < 1e-3f ? 0.25f : (s - 0.5f) / z;
}

/* the row's slot among this minibatch's distinct rows, given one on first sight with a zero summed step in
 * sums (a slot is only trusted when it points back at the row, so stale values in the scratch can never send a
 * row to another's slot) */
static inline Py_ssize_t slot_of(int32_t *slot, int64_t row, int64_t *rows, Py_ssize_t *count, float *sums,
                                 Py_ssize_t dim)
{
    if (slot[row] < 0 || slot[row] >= *count || rows[slot[row]] != row) {
        slot[row] = (int32_t)*count;
        rows[*count] = row;
        memset(sums + *count * dim, 0, (size_t)dim * sizeof(float));
        (*count)++;
    }
    return slot[row];
}

/* what one compiled step works on (the arguments of skipgram_step, checked, and its scratch) */
struct step_job {
    Py_ssize_t G, C, L, label_rows, dim, max_rows;
    float lr;
    int with_loss, damping;
    const int64_t *ctx, *out;
    const float *label;
    float *win, *wout, *step_sum, *pair_step, *sq, *curv;
    int32_t *slot_in, *slot_out;
    double *h;
    int64_t *rows;
    double loss;
};

/* The arithmetic of skipgram_step, without the GIL; -> 1 when memory ran out (nothing then changed). On x86-64
 * it is compiled twice, for AVX2 and for the baseline, and the loader picks one for the CPU: the operations and
 * their order are the same in both (no fused multiply-add, fixed partial sums), so are the results. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static int step_compute(struct step_job *job)
{
    const Py_ssize_t G = job->G, C = job->C, L = job->L, label_rows = job->label_rows, dim = job->dim;
    const Py_ssize_t max_rows = job->max_rows;
    const float lr = job->lr;
    const int with_loss = job->with_loss, damping = job->damping;
    const int64_t *ctx = job->ctx, *out = job->out;
    const float *label = job->label;
    float *win = job->win, *wout = job->wout, *step_sum = job->step_sum, *pair_step = job->pair_step;
    float *sq = job->sq, *curv = job->curv;
    int32_t *slot_in = job->slot_in, *slot_out = job->slot_out;
    double *h = job->h;
    int64_t *rows = job->rows;
    int64_t *rows_out = rows + G * C;  /* out rows are numbered after the G C possible in rows */
    Py_ssize_t n_in = 0, n_out = 0;
    double loss = 0.0;
    int memory_error = 0;
    float *dirs = NULL;
    double *along = NULL;
    /* pass 1: every pair's gradient at the minibatch's starting parameters, summed per row */
    for (Py_ssize_t g = 0; g < G; g++) {
        const int64_t *cg = ctx + g * C, *og = out + g * L;
        const float *lab = label + (label_rows == 1 ? 0 : g * L);
        float *pair_curv = damping ? curv + g * C * L : NULL;
        if (damping) {
            for (Py_ssize_t c = 0; c < C; c++)
                sq[c] = cg[c] < 0 ? 0.0f : dot(win + cg[c] * dim, win + cg[c] * dim, dim);
            for (Py_ssize_t k = 0; k < L; k++)
                sq[C + k] = og[k] < 0 ? 0.0f : dot(wout + og[k] * dim, wout + og[k] * dim, dim);
        }
        for (Py_ssize_t c = 0; c < C; c++) {
            if (cg[c] < 0)
                continue;
            const float *v = win + cg[c] * dim;
            const Py_ssize_t r = slot_of(slot_in, cg[c], rows, &n_in, step_sum, dim);
            double trace = 0.0;
            for (Py_ssize_t k = 0; k < L; k++) {
                if (og[k] < 0)
                    continue;
                const float *u = wout + og[k] * dim;
                const float z = dot(v, u, dim), s = sigmoid_f(z);
                const float step = (lab[k] - s) * lr;
                if (with_loss)
                    loss -= log_sigmoid_d(lab[k] >= 0.5f ? (double)z : -(double)z);
                axpy(step_sum + r * dim, step, u, dim);
                pair_step[c * L + k] = step;
                if (damping) {
                    pair_curv[c * L + k] = curvature_bound(z, s);
                    trace += (double)(pair_curv[c * L + k] * sq[C + k]);
                }
            }
            h[r] += trace;
        }
        for (Py_ssize_t k = 0; k < L; k++) {
            if (og[k] < 0)
                continue;
            const Py_ssize_t r = G * C + slot_of(slot_out, og[k], rows_out, &n_out, step_sum + G * C * dim, dim);
            double trace = 0.0;
            for (Py_ssize_t c = 0; c < C; c++) {
                if (cg[c] < 0)
                    continue;
                axpy(step_sum + r * dim, pair_step[c * L + k], win + cg[c] * dim, dim);
                if (damping)
                    trace += (double)(pair_curv[c * L + k] * sq[c]);
            }
            h[r] += trace;
        }
    }
    /* pass 2 (damping): for the rows whose trace bound cuts the step (lr h > 1), h becomes the curvature along
     * the row's own summed step, sum over its pairs of c(z) (x . e)^2 */
    int any_cut = 0;
    for (Py_ssize_t r = 0; damping && r < G * C + n_out; r++)
        any_cut |= (r < n_in || r >= G * C) && (double)lr * h[r] > 1.0;
    if (any_cut) {
        dirs = malloc((size_t)(max_rows * dim) * sizeof(float));  /* read for cut rows only */
        along = calloc((size_t)max_rows, sizeof(double));
        memory_error = !dirs || !along;
    }
    if (any_cut && !memory_error) {
        for (Py_ssize_t r = 0; r < G * C + n_out; r++) {
            if ((r >= n_in && r < G * C) || (double)lr * h[r] <= 1.0)
                continue;
            const float *d = step_sum + r * dim;
            const float norm = sqrtf(dot(d, d, dim));
            for (Py_ssize_t j = 0; j < dim; j++)  /* a zero step has a zero direction: nothing along it, factor 1 */
                dirs[r * dim + j] = norm > 0 ? d[j] / norm : 0.0f;
        }
        for (Py_ssize_t g = 0; g < G; g++) {
            const int64_t *cg = ctx + g * C, *og = out + g * L;
            const float *pair_curv = curv + g * C * L;
            for (Py_ssize_t c = 0; c < C; c++) {
                if (cg[c] < 0)
                    continue;
                const Py_ssize_t r = slot_in[cg[c]];
                if ((double)lr * h[r] <= 1.0)
                    continue;
                for (Py_ssize_t k = 0; k < L; k++) {
                    if (og[k] < 0)
                        continue;
                    const float p = dot(wout + og[k] * dim, dirs + r * dim, dim);
                    along[r] += (double)(pair_curv[c * L + k] * (p * p));
                }
            }
            for (Py_ssize_t k = 0; k < L; k++) {
                if (og[k] < 0)
                    continue;
                const Py_ssize_t r = G * C + slot_out[og[k]];
                if ((double)lr * h[r] <= 1.0)
                    continue;
                for (Py_ssize_t c = 0; c < C; c++) {
                    if (cg[c] < 0)
                        continue;
                    const float p = dot(win + cg[c] * dim, dirs + r * dim, dim);
                    along[r] += (double)(pair_curv[c * L + k] * (p * p));
                }
            }
        }
        for (Py_ssize_t r = 0; r < G * C + n_out; r++)
            if ((r < n_in || r >= G * C) && (double)lr * h[r] > 1.0)
                h[r] = along[r];
    }
    /* pass 3: every row moves once, by its factor 1 / max(1, lr h) times its summed step */
    for (Py_ssize_t r = 0; !memory_error && r < G * C + n_out; r++) {
        if (r >= n_in && r < G * C)
            continue;
        const float f = damping ? (float)(1.0 / fmax(1.0, (double)lr * h[r])) : 1.0f;
        float *w = r < G * C ? win + rows[r] * dim : wout + rows_out[r - G * C] * dim;
        axpy(w, f, step_sum + r * dim, dim);
    }
    for (Py_ssize_t r = 0; r < n_in; r++)
        slot_in[rows[r]] = -1;
    for (Py_ssize_t r = 0; r < n_out; r++)
        slot_out[rows_out[r]] = -1;
    free(dirs);
    free(along);
    job->loss = loss;
    return memory_error;
}

/* One skip-gram minibatch, applied in place; the loss of its pairs is returned (0 unless with_loss).
 *
 * Window g scores each valid context row contexts[g, c] (-1 = padding) of w_in against each valid output row
 * out_ids[g, k] (-1 = padding) of w_out with label labels[g or 0, k]. All gradients are taken at the parameters
 * the minibatch starts from; each distinct row's steps are summed (D), and with damping scaled by
 * 1 / max(1, lr H): H = sum c(z) |x|^2 over the row's pairs (x the vector it is multiplied with), and, for the
 * rows where lr H > 1, H measured along the row's summed step instead, sum c(z) (x . D / |D|)^2. Each row then
 * moves once by its factor times D. This is w2vspark.partition.skipgram_step with the rows' steps summed before
 * they are scaled: the same result up to float32 rounding. slot_in (rows of w_in,) and slot_out (rows of w_out,)
 * are int32 scratch holding -1, left holding -1.
 */
static PyObject *skipgram_step(PyObject *self, PyObject *args)
{
    Py_buffer w_in, w_out, contexts, out_ids, labels, slot_in_buf, slot_out_buf;
    Py_ssize_t G, C, L, label_rows, dim;
    float lr;
    int with_loss, damping;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*w*y*y*y*w*w*nnnnnfpp", &w_in, &w_out, &contexts, &out_ids, &labels,
                          &slot_in_buf, &slot_out_buf, &G, &C, &L, &label_rows, &dim, &lr, &with_loss, &damping))
        return NULL;
    PyObject *result = NULL;
    /* per distinct row r (in rows first, then out rows): summed step (dim), curvature h, and for the rows the
     * trace bound cuts, the unit direction of the step; per window: pair steps, curvatures, squared lengths */
    float *step_sum = NULL, *pair_step = NULL, *curv = NULL, *sq = NULL;
    double *h = NULL;
    int64_t *rows = NULL;
    const Py_ssize_t row_bytes = dim * (Py_ssize_t)sizeof(float);
    if (G < 0 || C <= 0 || L <= 0 || dim <= 0 || (label_rows != 1 && label_rows != G)
        || w_in.len % row_bytes != 0 || w_out.len % row_bytes != 0
        || contexts.len != G * C * (Py_ssize_t)sizeof(int64_t) || out_ids.len != G * L * (Py_ssize_t)sizeof(int64_t)
        || labels.len != label_rows * L * (Py_ssize_t)sizeof(float)
        || slot_in_buf.len != (w_in.len / row_bytes) * (Py_ssize_t)sizeof(int32_t)
        || slot_out_buf.len != (w_out.len / row_bytes) * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "skipgram_step: shapes or dtypes do not match (float32 w_in, w_out and "
                                          "labels; int64 contexts and out_ids; int32 slots, one per row)");
        goto done;
    }
    if (slot_in_buf.buf == slot_out_buf.buf) {
        PyErr_SetString(PyExc_ValueError, "skipgram_step: slot_in and slot_out must be two arrays");
        goto done;
    }
    const int64_t *ctx = (const int64_t *)contexts.buf, *out = (const int64_t *)out_ids.buf;
    for (Py_ssize_t i = 0; i < G * C; i++)
        if (ctx[i] < -1 || ctx[i] >= w_in.len / row_bytes) {
            PyErr_Format(PyExc_IndexError, "skipgram_step: context row %lld out of range", (long long)ctx[i]);
            goto done;
        }
    for (Py_ssize_t i = 0; i < G * L; i++)
        if (out[i] < -1 || out[i] >= w_out.len / row_bytes) {
            PyErr_Format(PyExc_IndexError, "skipgram_step: output row %lld out of range", (long long)out[i]);
            goto done;
        }
    const Py_ssize_t max_rows = G * (C + L) + 1;
    step_sum = malloc((size_t)(max_rows * dim) * sizeof(float));  /* zeroed row by row in slot_of */
    h = calloc((size_t)max_rows, sizeof(double));
    rows = malloc((size_t)max_rows * sizeof(int64_t));
    pair_step = malloc((size_t)(C * L) * sizeof(float));
    sq = malloc((size_t)(C + L) * sizeof(float));
    curv = damping ? malloc((size_t)(G * C * L + 1) * sizeof(float)) : NULL;
    if (!step_sum || !h || !rows || !pair_step || !sq || (damping && !curv)) {
        PyErr_NoMemory();
        goto done;
    }
    struct step_job job = {G, C, L, label_rows, dim, max_rows, lr, with_loss, damping, ctx, out,
                           (const float *)labels.buf, (float *)w_in.buf, (float *)w_out.buf, step_sum, pair_step,
                           sq, curv, (int32_t *)slot_in_buf.buf, (int32_t *)slot_out_buf.buf, h, rows, 0.0};
    int memory_error;
    Py_BEGIN_ALLOW_THREADS
    memory_error = step_compute(&job);
    Py_END_ALLOW_THREADS
    if (memory_error)
        PyErr_NoMemory();
    else
        result = PyFloat_FromDouble(job.loss);
done:
    free(step_sum);
    free(pair_step);
    free(curv);
    free(sq);
    free(h);
    free(rows);
    PyBuffer_Release(&w_in);
    PyBuffer_Release(&w_out);
    PyBuffer_Release(&contexts);
    PyBuffer_Release(&out_ids);
    PyBuffer_Release(&labels);
    PyBuffer_Release(&slot_in_buf);
    PyBuffer_Release(&slot_out_buf);
    return result;
}

static PyMethodDef methods[] = {
    {"scatter_add", scatter_add, METH_VARARGS,
     "scatter_add(w, ids, rows, dim): w[ids[i]] += rows[i] in index order (float32 w and rows, int64 ids)."},
    {"segment_sum", segment_sum, METH_VARARGS,
     "segment_sum(out, w, ids, counts, dim): out[g] = the sum of w[ids] over segment g, row after row (float32)."},
    {"skipgram_step", skipgram_step, METH_VARARGS,
     "skipgram_step(w_in, w_out, contexts, out_ids, labels, slot_in, slot_out, G, C, L, label_rows, dim, lr, "
     "with_loss, damping) -> loss: one damped skip-gram minibatch, in place."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "w2vspark_native",
                                    "Optional compiled helpers for w2vspark's training kernel.", -1, methods};

PyMODINIT_FUNC PyInit_w2vspark_native(void) { return PyModule_Create(&module); }
