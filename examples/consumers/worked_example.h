/*
 * The README's worked example grown to two rows and a padded group: W[2, 6]
 * packed at group size 4, and what the format defines each step to give.
 * Shared by the C and C++ consumers, which check the installed library
 * against it.
 */
#ifndef WORKED_EXAMPLE_H
#define WORKED_EXAMPLE_H

#include <stddef.h>
#include <stdint.h>

enum { WE_ROWS = 2, WE_COLS = 6, WE_GROUP = 4 };

/* Row 0 starts with the README's [7.0, -5.6, 0.0, 3.5]; the second group of
 * each row holds two values and two padding zeros. */
static const float we_weights[WE_ROWS * WE_COLS] = {
    7.0f,   -5.6f, 0.0f, 3.5f, 3.5f, -7.0f,
    -14.0f, 6.0f,  2.0f, 0.0f, 0.0f, 0.0f,
};

/* scale = max(max|w| / 7, 1e-5) per group, row by row. */
static const float we_scales[WE_ROWS * 2] = {1.0f, 1.0f, 2.0f, 1e-5f};

/* u = round(w / scale) + 8, two per byte, the even element in the low
 * nibble; padding and all-zero groups give u = 8. Row 0: u = 15 2 8 12 |
 * 12 1 8 8; row 1: u = 1 11 9 8 | 8 8 8 8. */
static const uint8_t we_packed[WE_ROWS * 4] = {
    0x2F, 0xC8, 0x1C, 0x88,
    0xB1, 0x89, 0x88, 0x88,
};

/* w = (u - 8) * scale. */
static const float we_unpacked[WE_ROWS * WE_COLS] = {
    7.0f,   -6.0f, 0.0f, 4.0f, 4.0f, -7.0f,
    -14.0f, 6.0f,  2.0f, 0.0f, 0.0f, 0.0f,
};

/* y = W x for x = [1, 2, 3, 4, 5, 6], exact in f32: 7 - 12 + 16 + 20 - 42
 * and -14 + 12 + 6. */
static const float we_x[WE_COLS] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
static const float we_y[WE_ROWS] = {-11.0f, 4.0f};

#endif
