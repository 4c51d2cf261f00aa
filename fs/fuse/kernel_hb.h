/* kernel_hb.h - tell ThreadSanitizer what the kernel orders between our threads.
 *
 * A request or an I/O op is written by one thread, handed to the kernel through an
 * io_uring SQE, and read by another thread once its CQE comes back. The kernel
 * orders the two (the SQ tail is released by the submitter, the CQ tail acquired
 * by the reaper), but TSan sees no synchronisation and reports a race on every
 * field. Marking the hand-over per object keeps real races visible, which a
 * suppression of the file would not. Costs nothing outside a TSan build.
 */
#ifndef VDS_KERNEL_HB_H
#define VDS_KERNEL_HB_H

#if defined(__SANITIZE_THREAD__)
#define VDS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VDS_TSAN 1
#endif
#endif

#ifdef VDS_TSAN
#include <sanitizer/tsan_interface.h>
/* p goes to the kernel: the caller writes none of it until it comes back. */
#define handed_to_kernel(p)	__tsan_release(p)
/* p came back in a CQE: what was written before handed_to_kernel(p) is visible. */
#define back_from_kernel(p)	__tsan_acquire(p)
#else
#define handed_to_kernel(p)	((void)(p))
#define back_from_kernel(p)	((void)(p))
#endif

#endif
