/*
 * A C program built against an installed cortex_q4 with pkg-config, shared
 * or static (see .ci/install): packs, unpacks and multiplies the worked
 * example and exits non-zero on the first difference from it.
 */
#include <stdio.h>
#include <string.h>

#include <cortex_q4.h>

#include "../worked_example.h"

static int failed(const char *what) {
    fprintf(stderr, "consumer.c: %s\n", what);
    return 1;
}

static int check(const char *what, cq4_status st) {
    if (st == CQ4_OK)
        return 0;
    fprintf(stderr, "consumer.c: %s: %s\n", what, cq4_status_message(st));
    return 1;
}

int main(void) {
    if (cq4_abi_version() != CQ4_ABI_VERSION)
        return failed("the library's ABI version is not the header's");
    if (strcmp(cq4_version(), CQ4_VERSION_STRING) != 0)
        return failed("the library's version is not the header's");

    cq4_layout layout;
    if (check("layout", cq4_layout_get(WE_ROWS, WE_COLS, WE_GROUP, &layout)))
        return 1;
    if (layout.packed_len != sizeof we_packed || layout.scales_len != 4)
        return failed("layout sizes");

    uint8_t packed[sizeof we_packed];
    float scales[4];
    if (check("pack", cq4_pack_f32(we_weights, WE_ROWS * WE_COLS, WE_ROWS, WE_COLS,
                                   WE_GROUP, packed, sizeof packed, scales, 4)))
        return 1;
    if (memcmp(packed, we_packed, sizeof packed) != 0)
        return failed("packed bytes");
    if (memcmp(scales, we_scales, sizeof scales) != 0)
        return failed("scales");

    float restored[WE_ROWS * WE_COLS];
    if (check("unpack", cq4_unpack_f32(packed, sizeof packed, scales, 4, WE_ROWS,
                                       WE_COLS, WE_GROUP, restored,
                                       WE_ROWS * WE_COLS)))
        return 1;
    if (memcmp(restored, we_unpacked, sizeof restored) != 0)
        return failed("unpacked values");

    const cq4_matrix w = {packed, sizeof packed, scales, 4, WE_ROWS, WE_COLS, WE_GROUP};
    float y[WE_ROWS];
    if (check("matmul", cq4_matmul_f32(&w, we_x, WE_COLS, 1, CQ4_PRECISION_EXACT,
                                       y, WE_ROWS, NULL)))
        return 1;
    if (memcmp(y, we_y, sizeof y) != 0)
        return failed("y = W x");

    printf("C consumer: cortex_q4 %s (ABI %u) packs, unpacks and multiplies "
           "the worked example as specified\n",
           cq4_version(), (unsigned)cq4_abi_version());
    return 0;
}
