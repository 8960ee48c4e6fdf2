/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The launcher protocol decoder (src/shared/launch-proto.h): what
 * owampd-launcher, running as root, reads from owampd. Besides memory
 * safety: a datagram that decodes must re-encode to exactly the same
 * octets (the format is canonical: every unused field is zero), so nothing
 * a request carries can be ignored by the decoder and still reach a unit.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "launch-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        LaunchMsg m;
        uint8_t again[LAUNCH_MSG_SIZE];

        if (launch_msg_decode(data, size, &m) < 0)
                return 0;
        if (size != LAUNCH_MSG_SIZE || launch_msg_encode(&m, again) < 0 || memcmp(again, data, size) != 0)
                abort();
        if (m.type != LAUNCH_MSG_HELLO && (!launch_sid_valid(m.sid) || strlen(m.sid) != LAUNCH_SID_LEN))
                abort();
        return 0;
}
