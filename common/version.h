/* This binary's version and the source revision it was built from, both set
 * by the Makefile: the revision is git's (with "-dirty" for local changes),
 * the one `git archive` wrote into packaging/revision, BERTH_REVISION as given
 * to make, or "unknown". */
#ifndef BERTH_COMMON_VERSION_H
#define BERTH_COMMON_VERSION_H

extern const char berth_version[];
extern const char berth_revision[];

#endif
