/*
 * makedumpfile's flattened format (-F, and QEMU's kdump output): a 4096-byte header, then records
 * {be64 offset, be64 size, data} meant to be written at `offset` of the real file, ended by
 * {-1, -1}. We read it in place: index the records once, resolve overlaps (the last record in file
 * order wins, as `makedumpfile -R` does by rewriting), and translate reads; gaps read as zeros.
 */
#include "dump_priv.h"
#include "growarray.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLAT_SIGNATURE "makedumpfile"
#define FLAT_TYPE 1
#define FLAT_VERSION 1
#define SCAN_WINDOW (256 * 1024)

struct record {
	uint64_t target, len, file_off;
	size_t seq;
};

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v);
}

bool flat_detect(const uint8_t *head, size_t len)
{
	return len >= 32 && memcmp(head, FLAT_SIGNATURE, strlen(FLAT_SIGNATURE)) == 0 &&
	       be64_at(head + 16) == FLAT_TYPE;
}

static int cmp_record_target(const void *a, const void *b)
{
	const struct record *x = a, *y = b;
	if (x->target != y->target)
		return x->target < y->target ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Max-heap of record indices by seq: the newest active record is on top. */
struct heap {
	size_t *v, n;
};

static void heap_push(struct heap *h, const struct record *r, size_t idx)
{
	size_t i = h->n++;
	h->v[i] = idx;
	while (i > 0 && r[h->v[(i - 1) / 2]].seq < r[h->v[i]].seq) {
		size_t p = (i - 1) / 2, t = h->v[p];
		h->v[p] = h->v[i];
		h->v[i] = t;
		i = p;
	}
}

static void heap_pop(struct heap *h, const struct record *r)
{
	h->v[0] = h->v[--h->n];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < h->n && r[h->v[l]].seq > r[h->v[m]].seq)
			m = l;
		if (l + 1 < h->n && r[h->v[l + 1]].seq > r[h->v[m]].seq)
			m = l + 1;
		if (m == i)
			break;
		size_t t = h->v[m];
		h->v[m] = h->v[i];
		h->v[i] = t;
		i = m;
	}
}

static bool push_extent(struct flat_index *idx, size_t *cap, uint64_t target, uint64_t len,
			uint64_t file_off)
{
	if (idx->n) {
		struct flat_extent *last = &idx->ext[idx->n - 1];
		if (last->target + last->len == target && last->file_off + last->len == file_off) {
			last->len += len;
			return true;
		}
	}
	if (grow_array(&idx->ext, cap, idx->n + 1, sizeof(*idx->ext)))
		return false;
	idx->ext[idx->n++] = (struct flat_extent){ target, len, file_off };
	return true;
}

/* Turn records (sorted by target) into non-overlapping extents where the highest seq wins. */
static struct vm_error *resolve(struct record *r, size_t n, struct flat_index *idx)
{
	size_t cap = 0;
	bool disjoint = true;
	for (size_t i = 1; i < n; i++)
		if (r[i - 1].target + r[i - 1].len > r[i].target)
			disjoint = false;
	if (disjoint) {
		for (size_t i = 0; i < n; i++)
			if (!push_extent(idx, &cap, r[i].target, r[i].len, r[i].file_off))
				return &vm_error_nomem;
		return NULL;
	}
	uint64_t *bounds = malloc(2 * n * sizeof(*bounds));
	struct heap h = { malloc(n * sizeof(size_t)), 0 };
	if (!bounds || !h.v) {
		free(bounds);
		free(h.v);
		return &vm_error_nomem;
	}
	for (size_t i = 0; i < n; i++) {
		bounds[2 * i] = r[i].target;
		bounds[2 * i + 1] = r[i].target + r[i].len;
	}
	qsort(bounds, 2 * n, sizeof(*bounds), cmp_u64);
	size_t next = 0;
	struct vm_error *err = NULL;
	for (size_t b = 0; b + 1 < 2 * n; b++) {
		uint64_t lo = bounds[b], hi = bounds[b + 1];
		if (lo == hi)
			continue;
		while (next < n && r[next].target <= lo)
			heap_push(&h, r, next++);
		while (h.n && r[h.v[0]].target + r[h.v[0]].len <= lo)
			heap_pop(&h, r);
		if (!h.n)
			continue;
		const struct record *w = &r[h.v[0]];
		if (!push_extent(idx, &cap, lo, hi - lo, w->file_off + (lo - w->target))) {
			err = &vm_error_nomem;
			break;
		}
	}
	free(bounds);
	free(h.v);
	return err;
}

struct vm_error *flat_index_build(int fd, const char *path, uint64_t file_size, struct flat_index **ret)
{
	uint8_t head[32];
	if (file_size < FLAT_HEADER_SIZE || pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head))
		return vm_error_create(VM_ERR_FORMAT, 0, "%s: flattened header is cut short (file is %llu bytes)",
				       path, (unsigned long long)file_size);
	if (!flat_detect(head, sizeof(head)))
		return vm_error_create(VM_ERR_FORMAT, 0, "%s: not a makedumpfile flattened file", path);
	if (be64_at(head + 24) != FLAT_VERSION)
		return vm_error_create(VM_ERR_UNSUPPORTED, 24, "%s: flattened format version %llu (only 1 is known)",
				       path, (unsigned long long)be64_at(head + 24));

	uint8_t *win = malloc(SCAN_WINDOW);
	struct flat_index *idx = calloc(1, sizeof(*idx));
	struct record *recs = NULL;
	size_t nrec = 0, cap = 0;
	struct vm_error *err = NULL;
	if (!win || !idx) {
		err = &vm_error_nomem;
		goto out;
	}
	uint64_t win_off = 0, win_len = 0, pos = FLAT_HEADER_SIZE;
	for (;;) {
		if (pos < win_off || pos + 16 > win_off + win_len) {
			if (file_size - pos < 16) {
				err = vm_error_create(VM_ERR_FORMAT, pos,
						      "%s: flattened file ends at %#llx without its end marker",
						      path, (unsigned long long)pos);
				goto out;
			}
			uint64_t want = file_size - pos < SCAN_WINDOW ? file_size - pos : SCAN_WINDOW;
			ssize_t got = pread(fd, win, want, (off_t)pos);
			if (got < 16) {
				err = got < 0 ? vm_error_errno(pos, "%s: read at %#llx", path, (unsigned long long)pos)
					      : vm_error_create(VM_ERR_FORMAT, pos, "%s: short read at %#llx",
								path, (unsigned long long)pos);
				goto out;
			}
			win_off = pos;
			win_len = (uint64_t)got;
		}
		const uint8_t *h = win + (pos - win_off);
		int64_t off = (int64_t)be64_at(h), size = (int64_t)be64_at(h + 8);
		if (off == -1 && size == -1)
			break;
		if (off < 0 || size <= 0 || (uint64_t)size > file_size - pos - 16 ||
		    (uint64_t)off > UINT64_MAX - (uint64_t)size) {
			err = vm_error_create(VM_ERR_FORMAT, pos,
					      "%s: flattened record at %#llx is bad (offset %lld, size %lld, file %llu bytes)",
					      path, (unsigned long long)pos, (long long)off, (long long)size,
					      (unsigned long long)file_size);
			goto out;
		}
		err = grow_array(&recs, &cap, nrec + 1, sizeof(*recs));
		if (err)
			goto out;
		recs[nrec] = (struct record){ (uint64_t)off, (uint64_t)size, pos + 16, nrec };
		nrec++;
		pos += 16 + (uint64_t)size;
	}
	bool sorted = true;
	for (size_t i = 1; i < nrec && sorted; i++)
		sorted = recs[i - 1].target < recs[i].target;
	if (!sorted)
		qsort(recs, nrec, sizeof(*recs), cmp_record_target);
	err = resolve(recs, nrec, idx);
	if (err)
		goto out;
	idx->nrecords = nrec;
	idx->size = idx->n ? idx->ext[idx->n - 1].target + idx->ext[idx->n - 1].len : 0;
out:
	free(win);
	free(recs);
	if (err) {
		flat_index_free(idx);
		return err;
	}
	*ret = idx;
	return NULL;
}

void flat_index_free(struct flat_index *idx)
{
	if (!idx)
		return;
	free(idx->ext);
	free(idx);
}
