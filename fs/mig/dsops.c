/* dsops.c - the datastore list at runtime: add, remove, maintenance.
 *
 * Here rather than in store/ because each change must be made against the
 * namespace (its lock, store.h's rule 3) and the migrations (a datastore in use
 * by one stays). The checks are the mount's own: vds_ds_parse for the spec,
 * store_add (ds_canonicalize, ds_check_layout, ds_open) for the directory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsspec.h"
#include "errmsg.h"
#include "log.h"
#include "mig_int.h"

int mig_ds_add(struct migs *g, const char *spec, int *index, char *err, size_t len)
{
	struct store *s = g->store;
	struct vds_ds_spec *cur = calloc(VDS_MAX_DS, sizeof(*cur));
	char *canon = NULL;
	int n = 0, before, ret;

	if (!cur)
		return vds_err(err, len, -ENOMEM, "out of memory");
	ns_lock_excl(g->ns);
	/* The live names, so a repeated one is refused as on the command line. */
	for (int i = 0; i < s->nds; i++)
		if (store_live(s, i))
			memcpy(cur[n++].name, s->ds[i].name, sizeof(cur[0].name));
	ns_unlock(g->ns);
	before = n;
	ret = vds_ds_parse(cur, &n, spec, err, len);
	if (!ret && n != before + 1)
		ret = vds_err(err, len, -EINVAL, "datastore add: one NAME=PATH at a time");
	/* Not under the lock: a path inside the mount is looked up through it. */
	if (!ret)
		ret = ds_canonicalize(cur[before].name, cur[before].path, &canon, err, len);
	if (!ret) {
		ns_lock_excl(g->ns);
		/* Checked again under the lock: another add may have taken the name. */
		if (store_by_name(s, cur[before].name) >= 0)
			ret = vds_err(err, len, -EINVAL, "datastore name '%s' is given twice",
				      cur[before].name);
		else
			ret = store_add(s, cur[before].name, canon, err, len);
		ns_unlock(g->ns);
	}
	free(canon);
	vds_ds_free(cur, n);
	free(cur);
	if (ret < 0)
		return ret;
	*index = ret;
	vds_log(LOG_NOTICE, "vdsfs: datastore %s (%s) added\n", s->ds[ret].name, s->ds[ret].path);
	return 0;
}

int mig_ds_remove(struct migs *g, const char *name, char *err, size_t len)
{
	struct store *s = g->store;
	struct store_count c;
	int i, busy, ret = 0;

	ns_lock_excl(g->ns);
	i = store_by_name(s, name);
	if (i < 0)
		ret = vds_err(err, len, -ENOENT, "unknown datastore '%s'", name);
	else if ((busy = mig_active_on(g, i)))
		ret = vds_err(err, len, -EBUSY, "datastore %s is used by %d active migration%s; "
			      "wait for them or cancel them", name, busy, busy == 1 ? "" : "s");
	if (!ret) {
		/* Under the lock no name operation can add anything to it meanwhile;
		 * one object is enough to refuse, and stops the walk. */
		store_count(&s->ds[i], 1, &c);
		if (c.files || c.others || c.dirs)
			ret = -ENOTEMPTY;
		else
			store_remove(s, i);
	}
	ns_unlock(g->ns);
	if (ret == -ENOTEMPTY) {
		store_count(&s->ds[i], 0, &c);	/* the whole count, for the message */
		vds_err(err, len, ret, "datastore %s holds %" PRIu64 " file%s and %" PRIu64
			" folder%s; run 'vdsctl evacuate %s' first", name, c.files + c.others,
			c.files + c.others == 1 ? "" : "s", c.dirs, c.dirs == 1 ? "" : "s", name);
	}
	if (!ret)
		vds_log(LOG_NOTICE, "vdsfs: datastore %s (%s) removed\n", name, s->ds[i].path);
	return ret;
}

int mig_ds_maintenance(struct migs *g, const char *name, bool on, char *err, size_t len)
{
	struct store *s = g->store;
	int i, ret = 0;

	ns_lock_excl(g->ns);
	i = store_by_name(s, name);
	if (i < 0)
		ret = vds_err(err, len, -ENOENT, "unknown datastore '%s'", name);
	else
		store_set_maint(s, i, on);
	ns_unlock(g->ns);
	return ret;
}

size_t mig_cancel_on(struct migs *g, int ds)
{
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0, asked = 0;
	char err[256];

	migs_lock(g);
	for (struct mig *m = g->head; m; m = m->next) {
		if (m->dropped || mig_phase_final(m->phase) || (m->src != ds && m->dst != ds))
			continue;
		if (n == cap) {
			uint64_t *p = realloc(ids, (cap = cap ? cap * 2 : 16) * sizeof(*p));

			if (!p)
				break;
			ids = p;
		}
		ids[n++] = m->id;
	}
	migs_unlock(g);
	/* The ordinary cancel, one by one: a switching one is past cancelling. */
	for (size_t i = 0; i < n; i++)
		asked += mig_cancel(g, ids[i], err, sizeof(err)) == 0;
	free(ids);
	return asked;
}
