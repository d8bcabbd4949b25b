// A C++17 program built against an installed cortex_q4 with CMake
// (find_package(cortex_q4), target cortex_q4::cortex_q4): packs on the
// library's thread pool, unpacks, multiplies one row range per call as an
// engine's own threads would, and exits non-zero on the first difference
// from the worked example.
#include <cstdio>
#include <cstring>
#include <vector>

#include <cortex_q4.h>

#include "../worked_example.h"

namespace {

template <typename T, std::size_t N>
bool same(const std::vector<T>& got, const T (&want)[N]) {
    return got.size() == N && std::memcmp(got.data(), want, sizeof want) == 0;
}

int fail(const char* what) {
    std::fprintf(stderr, "consumer.cpp: %s\n", what);
    return 1;
}

}  // namespace

int main() {
    cq4_layout layout;
    if (cq4_layout_get(WE_ROWS, WE_COLS, WE_GROUP, &layout) != CQ4_OK)
        return fail("layout");

    std::vector<uint8_t> packed(layout.packed_len);
    std::vector<float> scales(layout.scales_len);
    cq4_options pool = cq4_options_default();
    pool.threads = 0;  // every thread of the library's pool
    if (cq4_pack_f32_ex(we_weights, WE_ROWS * WE_COLS, WE_ROWS, WE_COLS, WE_GROUP,
                        packed.data(), packed.size(), scales.data(), scales.size(),
                        &pool) != CQ4_OK)
        return fail("pack");
    if (!same(packed, we_packed) || !same(scales, we_scales))
        return fail("packed bytes or scales");

    // A refused call returns its status and writes nothing.
    std::vector<uint8_t> short_packed(layout.packed_len - 1, 0xAB);
    std::vector<float> untouched(layout.scales_len, -1.0f);
    if (cq4_pack_f32(we_weights, WE_ROWS * WE_COLS, WE_ROWS, WE_COLS, WE_GROUP,
                     short_packed.data(), short_packed.size(), untouched.data(),
                     untouched.size()) != CQ4_ERR_OUTPUT_TOO_SMALL ||
        short_packed != std::vector<uint8_t>(layout.packed_len - 1, 0xAB) ||
        untouched != std::vector<float>(layout.scales_len, -1.0f))
        return fail("a too-small output was not refused cleanly");

    std::vector<float> restored(layout.elements);
    if (cq4_unpack_f32(packed.data(), packed.size(), scales.data(), scales.size(),
                       WE_ROWS, WE_COLS, WE_GROUP, restored.data(),
                       restored.size()) != CQ4_OK ||
        !same(restored, we_unpacked))
        return fail("unpack");

    const cq4_matrix w{packed.data(), packed.size(), scales.data(), scales.size(),
                       WE_ROWS, WE_COLS, WE_GROUP};
    std::vector<float> y(WE_ROWS);
    for (std::size_t row = 0; row < WE_ROWS; row++) {
        if (cq4_matmul_rows_f32(&w, we_x, WE_COLS, 1, CQ4_PRECISION_EXACT, row,
                                row + 1, y.data() + row, y.size() - row, WE_ROWS,
                                nullptr) != CQ4_OK)
            return fail("matmul_rows");
    }
    if (!same(y, we_y))
        return fail("y = W x");

    std::printf("C++ consumer: cortex_q4 %s packs, unpacks and multiplies the "
                "worked example as specified\n",
                cq4_version());
    return 0;
}
