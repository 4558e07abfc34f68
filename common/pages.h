/* Resident pages of a long-running process. A process keeps mapped every
 * page of code it ever ran, and the kernel maps 64 kB around each page it
 * faults in: after start-up most of libc and of the binary count in its RSS
 * though its idle loop runs a small part of them. */
#ifndef BERTH_PAGES_H
#define BERTH_PAGES_H

/* Unmaps from this process the pages of its unmodified file mappings (code
 * and read-only data of which no page has a private copy). The pages stay
 * in the page cache, shared and reclaimable, and come back on their next
 * use; what the process runs again becomes resident again. Cheap enough to
 * call after every burst of work (one read of /proc/self/smaps). */
void pages_drop_file_mappings(void);

#endif
