/* Private to agent/: module identities in IoT Hub, as the IoT Edge security daemon keeps them
 * (upstream.identities "iothub", docs/CLOUD.md): every module of the
 * deployment, $edgeAgent and $edgeHub has an identity upstream whose SAS
 * keys are the ones berth derives from the device key:
 *
 *   primary   = base64(HMAC-SHA256(device key, "<module>\n<generation id>"))
 *   secondary = base64(HMAC-SHA256(device key, "<module>\n<generation id>\nsecondary"))
 *
 * A module's generation id is new whenever it is deployed from nothing, so
 * a removed and redeployed module gets new keys; $edgeAgent and $edgeHub
 * use IDENTITY_SYSTEM_GENERATION.
 *
 * The REST calls run in a short-lived child (`berth identities`, not
 * listed), so the daemon never maps libcurl and never waits on the network:
 * it hands the child a job on descriptor 3 and reads one JSON line per
 * identity from its stdout when it exits. */
#ifndef BERTH_AGENT_IDENTITIES_H
#define BERTH_AGENT_IDENTITIES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/sas.h"

#define IDENTITY_SYSTEM_GENERATION "berth-system"
#define IDENTITY_API_VERSION	   "2021-04-12"
#define IDENTITY_NAME_MAX	   128
#define IDENTITY_ETAG_MAX	   128
#define IDENTITY_BODY_MAX	   (64 * 1024) /* of one module's JSON */
#define IDENTITY_JOB_MAX	   (1024 * 1024)

/* The two keys IoT Hub is given for an identity. */
NODISCARD int identity_keys(const char *device_key, const char *name, const char *generation_id,
			    char primary[SAS_KEY_B64_MAX], char secondary[SAS_KEY_B64_MAX],
			    struct berr *err);

/* What a GET of a module identity answered (IoT Hub's Module JSON, outside
 * input): its etag, and whether it authenticates with exactly these SAS
 * keys. */
struct identity_seen {
	char etag[IDENTITY_ETAG_MAX + 1];
	bool keys_match;
	char managed_by[64];
};
NODISCARD int identity_parse(const char *body, size_t len, const char *primary,
			     const char *secondary, struct identity_seen *out, struct berr *err);

/* The request body of a PUT: deviceId, moduleId, managedBy, SAS keys. */
char *identity_body(const char *device_id, const char *name, const char *primary,
		    const char *secondary);

/* "ErrorCode:ModuleNotFound;..." out of IoT Hub's error body, one line, for
 * a log line (empty when there is none). */
void identity_error_text(const char *body, size_t len, char *out, size_t cap);

#endif
