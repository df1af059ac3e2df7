/* w2vspark_native: optional compiled helpers for the training kernel (w2vspark/partition.py).
 *
 * scatter_add(w, ids, rows, dim): w[ids[i], :] += rows[i, :] for i = 0..n-1, in that order, float32.
 * The additions happen in exactly the order of numpy's np.add.at over the flattened element indices, so
 * results are bit-identical to the numpy fallback. Plain C on Python's buffer protocol: no numpy headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

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
    for (Py_ssize_t i = 0; i < n; i++) {
        if (index[i] < 0 || index[i] >= num_rows) {
            PyErr_Format(PyExc_IndexError, "scatter_add: row index %lld out of range [0, %zd)",
                         (long long)index[i], num_rows);
            goto done;
        }
    }
    float *target = (float *)w.buf;
    const float *source = (const float *)rows.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        float *restrict dst = target + index[i] * dim;
        const float *restrict src = source + i * dim;
        for (Py_ssize_t j = 0; j < dim; j++)
            dst[j] += src[j];
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&w);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&rows);
    return result;
}

static PyMethodDef methods[] = {
    {"scatter_add", scatter_add, METH_VARARGS,
     "scatter_add(w, ids, rows, dim): w[ids[i]] += rows[i] in index order (float32 w and rows, int64 ids)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "w2vspark_native",
                                    "Optional compiled helpers for w2vspark's training kernel.", -1, methods};

PyMODINIT_FUNC PyInit_w2vspark_native(void) { return PyModule_Create(&module); }
