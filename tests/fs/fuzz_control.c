/* libFuzzer target: control requests as they arrive on the socket, one line each,
 * handled by the real dispatcher against a daemon state with no datastores and a
 * live scheduler. Every input must produce one JSON reply and nothing else. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mig.h"
#include "vdsfs.h"

char *control_handle(struct vds *v, const char *line);

static struct vds *v;

static struct vds *fuzz_vds(void)
{
	struct vds *d = calloc(1, sizeof(*d));

	d->create_named = -1;
	d->ctl_fd = -1;
	d->next_mig_id = 1;
	pthread_rwlock_init(&d->ns_lock, NULL);
	pthread_mutex_init(&d->mig_lock, NULL);
	node_table_init(&d->nodes);
	if (mig_init(d))
		abort();
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), *out;
	json_object *o;

	if (!v)
		v = fuzz_vds();
	memcpy(line, data, size);
	line[size] = 0;
	out = control_handle(v, line);
	o = out ? json_tokener_parse(out) : NULL;
	if (!o || !json_object_is_type(o, json_type_object))
		abort();	/* every request gets a JSON object back */
	json_object_put(o);
	free(out);
	free(line);
	return 0;
}
