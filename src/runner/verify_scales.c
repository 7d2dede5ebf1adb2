/* verify_scales.c — `mechdiff verify`: the dimension scales of a dataset,
 * read from the attributes of HDF5's dimension-scale convention
 * (DIMENSION_LIST and DIMENSION_LABELS on the dataset; CLASS, NAME and
 * REFERENCE_LIST on the scale) without libhdf5_hl. A hand-edited file may
 * hold references to objects that are gone (h5py deletes a dataset or a
 * scale without detaching it), which H5DS* follow, reading whatever now lies
 * at that address (another object, or garbage that libhdf5 1.10 leaks
 * memory on), and attributes of other types on which H5DSis_scale leaks
 * identifiers. Here every reference is checked against the objects the file
 * holds (md_verify_list_objects) before it is followed, and every attribute
 * through md_h5_attr_read_str.
 * Ownership: v->objs belongs to v (md_verify_file frees it); a scale
 * md_verify_open_scale opens is the caller's to H5Dclose; every other
 * identifier and buffer is closed or freed before its function returns. */
#include <stdlib.h>
#include <string.h>

#include "runner/h5util.h"
#include "runner/verify_int.h"

static herr_t add_object(hid_t o, const char *name, const H5O_info_t *info, void *arg)
{
    (void)o;
    (void)name;
    md_vctx *v = arg;
    if (v->n_objs == v->cap_objs) {
        int cap = v->cap_objs ? 2 * v->cap_objs : 256;
        md_vobj *grown = realloc(v->objs, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        v->objs = grown;
        v->cap_objs = cap;
    }
    v->objs[v->n_objs++] = (md_vobj){info->addr, info->type};
    return 0;
}

static int cmp_obj(const void *a, const void *b)
{
    haddr_t x = ((const md_vobj *)a)->addr, y = ((const md_vobj *)b)->addr;
    return x < y ? -1 : x > y;
}

void md_verify_list_objects(md_vctx *v)
{
    v->n_objs = 0;
    if (H5Ovisit2(v->file, H5_INDEX_NAME, H5_ITER_INC, add_object, v, H5O_INFO_BASIC) < 0)
        md_verify_defect(v, "/", "its objects cannot be listed (out of memory, or a damaged file)");
    if (v->n_objs > 1) qsort(v->objs, (size_t)v->n_objs, sizeof *v->objs, cmp_obj); /* objs NULL when none */
}

/* 1 when ref is a dataset of the file (0: deleted, or another object). */
static int ref_is_dataset(const md_vctx *v, hobj_ref_t ref)
{
    md_vobj key = {(haddr_t)ref, H5O_TYPE_UNKNOWN};
    if (!v->n_objs) return 0; /* the objects could not be listed */
    const md_vobj *o = bsearch(&key, v->objs, (size_t)v->n_objs, sizeof *v->objs, cmp_obj);
    return o && o->type == H5O_TYPE_DATASET;
}

/* The references of attribute DIMENSION_LIST of d for dimension dim
 * (malloc'd, *n of them); NULL with *n = 0 when there are none, -1 in *n
 * when the attribute is not one vlen of object references per dimension. */
static hobj_ref_t *dimension_list(hid_t d, unsigned dim, int rank, int64_t *n)
{
    *n = 0;
    if (H5Aexists(d, "DIMENSION_LIST") <= 0) return NULL;
    hid_t a = H5Aopen(d, "DIMENSION_LIST", H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1;
    hid_t base = t >= 0 && H5Tget_class(t) == H5T_VLEN ? H5Tget_super(t) : -1;
    hid_t mt = H5Tvlen_create(H5T_STD_REF_OBJ);
    int ok = base >= 0 && H5Tget_class(base) == H5T_REFERENCE && H5Tequal(base, H5T_STD_REF_OBJ) > 0 &&
             H5Sget_simple_extent_npoints(sp) == rank;
    hvl_t *vl = ok ? calloc((size_t)rank, sizeof *vl) : NULL;
    hobj_ref_t *refs = NULL;
    if (vl && H5Aread(a, mt, vl) >= 0) {
        if (vl[dim].len > 0 && (refs = malloc(vl[dim].len * sizeof *refs))) {
            memcpy(refs, vl[dim].p, vl[dim].len * sizeof *refs);
            *n = (int64_t)vl[dim].len;
        }
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, vl);
    } else {
        *n = -1;
    }
    free(vl);
    H5Tclose(mt);
    if (base >= 0) H5Tclose(base);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return refs;
}

hid_t md_verify_open_scale(md_vctx *v, hid_t d, unsigned dim, int rank, const char *object, const char *dname)
{
    int64_t n = 0;
    hobj_ref_t *refs = dimension_list(d, dim, rank, &n);
    hid_t s = -1;
    if (!object) { /* quiet: the caller reported it already */
        if (n > 0 && ref_is_dataset(v, refs[0])) s = H5Rdereference2(d, H5P_DEFAULT, H5R_OBJECT, &refs[0]);
    } else if (n < 0)
        md_verify_defect(v, object, "attribute 'DIMENSION_LIST' is not one list of object references per dimension");
    else if (n == 0)
        md_verify_defect(v, object, "dimension %u (%s) has no dimension scale attached", dim, dname);
    else if (!ref_is_dataset(v, refs[0]))
        md_verify_defect(v, object, "dimension %u (%s): its scale reference points at no dataset of the file (the scale "
                         "was deleted or replaced)", dim, dname);
    else if ((s = H5Rdereference2(d, H5P_DEFAULT, H5R_OBJECT, &refs[0])) < 0)
        md_verify_defect(v, object, "the dimension scale of dimension %u (%s) cannot be opened", dim, dname);
    free(refs);
    return s;
}

typedef struct ref_entry {
    hobj_ref_t ref;
    int dim;
} ref_entry;

int md_verify_lists_back(const md_vctx *v, hid_t s, hid_t d, unsigned dim)
{
    H5O_info_t info;
    if (H5Aexists(s, "REFERENCE_LIST") <= 0 || H5Oget_info2(d, &info, H5O_INFO_BASIC) < 0) return 0;
    hid_t a = H5Aopen(s, "REFERENCE_LIST", H5P_DEFAULT), sp = a >= 0 ? H5Aget_space(a) : -1;
    hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(ref_entry));
    H5Tinsert(mt, "dataset", HOFFSET(ref_entry, ref), H5T_STD_REF_OBJ);
    H5Tinsert(mt, "dimension", HOFFSET(ref_entry, dim), H5T_NATIVE_INT);
    hssize_t n = sp >= 0 && H5Sget_simple_extent_type(sp) == H5S_SIMPLE ? H5Sget_simple_extent_npoints(sp) : -1;
    ref_entry *e = n > 0 ? calloc((size_t)n, sizeof *e) : NULL;
    int found = -1;
    if (e && H5Aread(a, mt, e) >= 0) {
        found = 0;
        for (hssize_t i = 0; i < n && found >= 0; i++) {
            if (!ref_is_dataset(v, e[i].ref)) found = -1;
            else if ((haddr_t)e[i].ref == info.addr && e[i].dim == (int)dim) found = 1;
        }
    }
    free(e);
    H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return found;
}

void md_verify_read_label(hid_t d, unsigned dim, char *buf, size_t len)
{
    buf[0] = '\0';
    if (H5Aexists(d, "DIMENSION_LABELS") <= 0) return;
    hid_t a = H5Aopen(d, "DIMENSION_LABELS", H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t n = sp >= 0 && H5Sget_simple_extent_type(sp) == H5S_SIMPLE ? H5Sget_simple_extent_npoints(sp) : -1;
    hid_t mt = md_h5_str_type();
    char **labels = t >= 0 && H5Tget_class(t) == H5T_STRING && n > (hssize_t)dim ? calloc((size_t)n, sizeof *labels)
                                                                                  : NULL;
    if (labels && H5Aread(a, mt, labels) >= 0) {
        snprintf(buf, len, "%s", labels[dim] ? labels[dim] : "");
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, labels);
    }
    free(labels);
    H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
}
