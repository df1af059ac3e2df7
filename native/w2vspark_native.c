/* w2vspark_native: optional compiled helpers for the training kernel (w2vspark/partition.py).
 *
 * scatter_add(w, ids, rows, dim): w[ids[i], :] += rows[i, :] for i = 0..n-1, in that order, float32.
 * The additions happen in exactly the order of numpy's np.add.at over the flattened element indices, so
 * results are bit-identical to the numpy fallback.
 * segment_sum(out, w, ids, counts, dim): out[g, :] = 0 + w[ids[k], :] + w[ids[k + 1], :] + ... over the counts[g]
 * ids of segment g (segments consecutive in ids), added one row after another as the numpy fallback does.
 * Plain C on Python's buffer protocol: no numpy headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

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

static PyMethodDef methods[] = {
    {"scatter_add", scatter_add, METH_VARARGS,
     "scatter_add(w, ids, rows, dim): w[ids[i]] += rows[i] in index order (float32 w and rows, int64 ids)."},
    {"segment_sum", segment_sum, METH_VARARGS,
     "segment_sum(out, w, ids, counts, dim): out[g] = the sum of w[ids] over segment g, row after row (float32)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "w2vspark_native",
                                    "Optional compiled helpers for w2vspark's training kernel.", -1, methods};

PyMODINIT_FUNC PyInit_w2vspark_native(void) { return PyModule_Create(&module); }
