//! The `sax` module: Symbolic Aggregate approXimation of time series, as Heka's `sax` extension
//! (lua_sandbox_extensions `sax` 0.5.0, built from trink/symtseries), so that scripts compute
//! the same words and distances, and preserve the same state, as under hekad.
//!
//! ```lua
//! require "sax"
//! win = sax.window.new(n, w, c)     -- 1 < n <= 4096, 1 < w <= 2048, w divides n, 2 <= c <= 16
//! win:add(v)                        -- a number, or an array of numbers (the last n of them)
//! print(win)                        -- the word of the last n values, e.g. "CDC"
//! local word = win:get_word()       -- a copy of that word
//! local a = sax.word.new({10.3, 7, 1, -5, -5, 7.2}, 2, 8)   -- from a series: "FC"
//! local b = sax.word.new("FC", 8)   -- from SAX notation
//! print(a == b, a == win)           -- words and windows compare by w, c and symbols
//! local d, above, below = sax.mindist(a, win)   -- nil when w, c (or n) differ
//! win:clear()
//! sax.version()                     -- "0.5.0"
//! ```
//!
//! A word has `w` symbols over an alphabet of `c` letters: the series is z-normalised (mean and
//! population standard deviation of its finite values; a deviation under 0.01 maps every frame
//! to 0), cut into `w` frames of `n / w` values whose means (PAA) are placed among the Gaussian
//! breakpoints for `c`. `A` is the lowest region, `A + c - 1` the highest. NaNs are left out of
//! a frame's mean; a frame of NaNs only (or holding both infinities) is `#`; a frame whose mean
//! is infinite gets the highest or lowest letter. The breakpoints and MINDIST lookup tables are
//! the reference's single-precision constants, compared and summed in double as it does; a
//! window updates its mean and sum of squared deviations on every value with the reference's
//! on-line formulas, so that borderline words come out the same. A window that has not seen
//! `n` values yet still has a word, `#` where a frame has no value.
//!
//! `sax.mindist(a, b)` (words or windows of the same `w` and `c`, and the same `n` unless one of
//! them came from SAX notation, which has none and takes the other's, or `w`) returns the lower
//! bound of the Euclidean distance and its two parts: over the frames where `a` is above `b`,
//! and where it is below. A `#` frame counts as the letter farthest from the other's.
//!
//! Errors carry the reference's texts, `luaL_argerror`-style: a method call does not count
//! `self`. `win:add()` reads as `win:add(nil)` (the reference, counting arguments, reports the
//! count). Values and symbols live outside the Lua heap and count against `memory_limit`.
//! Preserved data, as the reference writes it, creates a window unless the script already did,
//! then clears it and adds its last `n` values; a word is re-created from its SAX notation (so,
//! as in the reference, without its `n`).

use mlua::{
    AnyUserData, Function, Lua, MetaMethod, MultiValue, Table, UserData, UserDataFields,
    UserDataMethods, UserDataRef, Value, Variadic,
};

use crate::lua_literal::quote;
use crate::lua_util::{check_bytes, loc, rt, to_number, type_name};
use crate::memory::Reservation;
use crate::number::format_g;

const VERSION: &str = "0.5.0";
const MIN_CARDINALITY: u8 = 2;
const MAX_CARDINALITY: u8 = 16;
/// Below this standard deviation a series counts as stationary (every frame maps to 0).
const STAT_EPS: f64 = 1e-2;
/// Limits on `n` and `w` checked by the Lua binding.
const MAX_N: i32 = 4096;
const MAX_W: i32 = 2048;
/// Registry key of the `__eq` function shared by both metatables: Lua 5.1 only calls `__eq`
/// for two userdata whose handlers are the same function, and words compare with windows.
const EQ_KEY: &str = "hekate.sax.eq";

/// Breakpoints for cardinality `c` (index `c - 2`), ascending; stored as `float`, as the
/// reference's table.
// 0.318 is a Gaussian quantile, not 1/π
#[allow(clippy::approx_constant)]
static BREAKS: [&[f64]; 15] = [
    &[0.0],
    &[-0.430, 0.430],
    &[-0.674, 0.0, 0.674],
    &[-0.841, -0.253, 0.253, 0.841],
    &[-0.967, -0.430, 0.0, 0.430, 0.967],
    &[-1.067, -0.565, -0.180, 0.180, 0.565, 1.067],
    &[-1.150, -0.674, -0.318, 0.0, 0.318, 0.674, 1.150],
    &[-1.220, -0.764, -0.430, -0.139, 0.139, 0.430, 0.764, 1.220],
    &[
        -1.281, -0.841, -0.524, -0.253, 0.0, 0.253, 0.524, 0.841, 1.281,
    ],
    &[
        -1.335, -0.908, -0.604, -0.348, -0.114, 0.114, 0.348, 0.604, 0.908, 1.335,
    ],
    &[
        -1.382, -0.967, -0.674, -0.430, -0.210, 0.0, 0.210, 0.430, 0.674, 0.967, 1.382,
    ],
    &[
        -1.426, -1.020, -0.736, -0.502, -0.293, -0.096, 0.096, 0.293, 0.502, 0.736, 1.020, 1.426,
    ],
    &[
        -1.465, -1.067, -0.791, -0.565, -0.366, -0.180, 0.0, 0.180, 0.366, 0.565, 0.791, 1.067,
        1.465,
    ],
    &[
        -1.501, -1.110, -0.841, -0.622, -0.430, -0.253, -0.083, 0.083, 0.253, 0.430, 0.622, 0.841,
        1.110, 1.501,
    ],
    &[
        -1.534, -1.150, -0.887, -0.674, -0.488, -0.318, -0.157, 0.0, 0.157, 0.318, 0.488, 0.674,
        0.887, 1.150, 1.534,
    ],
];

// MINDIST lookup tables, `c × c`, indexed by internal symbols (0 = highest region), as the
// reference's `float` tables.
#[rustfmt::skip]
const MINDIST_2: [f64; 4] = [0.0; 4];
#[rustfmt::skip]
const MINDIST_3: [f64; 9] = [
    0.000, 0.000, 0.861,
    0.000, 0.000, 0.000,
    0.861, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_4: [f64; 16] = [
    0.000, 0.000, 0.674, 1.349,
    0.000, 0.000, 0.000, 0.674,
    0.674, 0.000, 0.000, 0.000,
    1.349, 0.674, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_5: [f64; 25] = [
    0.000, 0.000, 0.588, 1.095, 1.683,
    0.000, 0.000, 0.000, 0.507, 1.095,
    0.588, 0.000, 0.000, 0.000, 0.588,
    1.095, 0.507, 0.000, 0.000, 0.000,
    1.683, 1.095, 0.588, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_6: [f64; 36] = [
    0.000, 0.000, 0.537, 0.967, 1.398, 1.935,
    0.000, 0.000, 0.000, 0.431, 0.861, 1.398,
    0.537, 0.000, 0.000, 0.000, 0.431, 0.967,
    0.967, 0.431, 0.000, 0.000, 0.000, 0.537,
    1.398, 0.861, 0.431, 0.000, 0.000, 0.000,
    1.935, 1.398, 0.967, 0.537, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_7: [f64; 49] = [
    0.000, 0.000, 0.502, 0.888, 1.248, 1.634, 2.135,
    0.000, 0.000, 0.000, 0.386, 0.746, 1.132, 1.634,
    0.502, 0.000, 0.000, 0.000, 0.360, 0.746, 1.248,
    0.888, 0.386, 0.000, 0.000, 0.000, 0.386, 0.888,
    1.248, 0.746, 0.360, 0.000, 0.000, 0.000, 0.502,
    1.634, 1.132, 0.746, 0.386, 0.000, 0.000, 0.000,
    2.135, 1.634, 1.248, 0.888, 0.502, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_8: [f64; 64] = [
    0.000, 0.000, 0.476, 0.832, 1.150, 1.469, 1.825, 2.301,
    0.000, 0.000, 0.000, 0.356, 0.674, 0.993, 1.349, 1.825,
    0.476, 0.000, 0.000, 0.000, 0.319, 0.637, 0.993, 1.469,
    0.832, 0.356, 0.000, 0.000, 0.000, 0.319, 0.674, 1.150,
    1.150, 0.674, 0.319, 0.000, 0.000, 0.000, 0.356, 0.832,
    1.469, 0.993, 0.637, 0.319, 0.000, 0.000, 0.000, 0.476,
    1.825, 1.349, 0.993, 0.674, 0.356, 0.000, 0.000, 0.000,
    2.301, 1.825, 1.469, 1.150, 0.832, 0.476, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_9: [f64; 81] = [
    0.000, 0.000, 0.456, 0.790, 1.081, 1.360, 1.651, 1.985, 2.441,
    0.000, 0.000, 0.000, 0.334, 0.625, 0.904, 1.195, 1.529, 1.985,
    0.456, 0.000, 0.000, 0.000, 0.291, 0.570, 0.861, 1.195, 1.651,
    0.790, 0.334, 0.000, 0.000, 0.000, 0.279, 0.570, 0.904, 1.360,
    1.081, 0.625, 0.291, 0.000, 0.000, 0.000, 0.291, 0.625, 1.081,
    1.360, 0.904, 0.570, 0.279, 0.000, 0.000, 0.000, 0.334, 0.790,
    1.651, 1.195, 0.861, 0.570, 0.291, 0.000, 0.000, 0.000, 0.456,
    1.985, 1.529, 1.195, 0.904, 0.625, 0.334, 0.000, 0.000, 0.000,
    2.441, 1.985, 1.651, 1.360, 1.081, 0.790, 0.456, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_10: [f64; 100] = [
    0.000, 0.000, 0.440, 0.757, 1.028, 1.282, 1.535, 1.806, 2.123, 2.563,
    0.000, 0.000, 0.000, 0.317, 0.588, 0.842, 1.095, 1.366, 1.683, 2.123,
    0.440, 0.000, 0.000, 0.000, 0.271, 0.524, 0.778, 1.049, 1.366, 1.806,
    0.757, 0.317, 0.000, 0.000, 0.000, 0.253, 0.507, 0.778, 1.095, 1.535,
    1.028, 0.588, 0.271, 0.000, 0.000, 0.000, 0.253, 0.524, 0.842, 1.282,
    1.282, 0.842, 0.524, 0.253, 0.000, 0.000, 0.000, 0.271, 0.588, 1.028,
    1.535, 1.095, 0.778, 0.507, 0.253, 0.000, 0.000, 0.000, 0.317, 0.757,
    1.806, 1.366, 1.049, 0.778, 0.524, 0.271, 0.000, 0.000, 0.000, 0.440,
    2.123, 1.683, 1.366, 1.095, 0.842, 0.588, 0.317, 0.000, 0.000, 0.000,
    2.563, 2.123, 1.806, 1.535, 1.282, 1.028, 0.757, 0.440, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_11: [f64; 121] = [
    0.000, 0.000, 0.427, 0.731, 0.986, 1.221, 1.449, 1.684, 1.940, 2.244, 2.670,
    0.000, 0.000, 0.000, 0.304, 0.560, 0.794, 1.023, 1.257, 1.513, 1.817, 2.244,
    0.427, 0.000, 0.000, 0.000, 0.256, 0.490, 0.719, 0.953, 1.209, 1.513, 1.940,
    0.731, 0.304, 0.000, 0.000, 0.000, 0.235, 0.463, 0.698, 0.953, 1.257, 1.684,
    0.986, 0.560, 0.256, 0.000, 0.000, 0.000, 0.228, 0.463, 0.719, 1.023, 1.449,
    1.221, 0.794, 0.490, 0.235, 0.000, 0.000, 0.000, 0.235, 0.490, 0.794, 1.221,
    1.449, 1.023, 0.719, 0.463, 0.228, 0.000, 0.000, 0.000, 0.256, 0.560, 0.986,
    1.684, 1.257, 0.953, 0.698, 0.463, 0.235, 0.000, 0.000, 0.000, 0.304, 0.731,
    1.940, 1.513, 1.209, 0.953, 0.719, 0.490, 0.256, 0.000, 0.000, 0.000, 0.427,
    2.244, 1.817, 1.513, 1.257, 1.023, 0.794, 0.560, 0.304, 0.000, 0.000, 0.000,
    2.670, 2.244, 1.940, 1.684, 1.449, 1.221, 0.986, 0.731, 0.427, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_12: [f64; 144] = [
    0.000, 0.000, 0.416, 0.709, 0.952, 1.173, 1.383, 1.593, 1.814, 2.057, 2.350, 2.766,
    0.000, 0.000, 0.000, 0.293, 0.537, 0.757, 0.967, 1.178, 1.398, 1.642, 1.935, 2.350,
    0.416, 0.000, 0.000, 0.000, 0.244, 0.464, 0.674, 0.885, 1.105, 1.349, 1.642, 2.057,
    0.709, 0.293, 0.000, 0.000, 0.000, 0.220, 0.431, 0.641, 0.861, 1.105, 1.398, 1.814,
    0.952, 0.537, 0.244, 0.000, 0.000, 0.000, 0.210, 0.421, 0.641, 0.885, 1.178, 1.593,
    1.173, 0.757, 0.464, 0.220, 0.000, 0.000, 0.000, 0.210, 0.431, 0.674, 0.967, 1.383,
    1.383, 0.967, 0.674, 0.431, 0.210, 0.000, 0.000, 0.000, 0.220, 0.464, 0.757, 1.173,
    1.593, 1.178, 0.885, 0.641, 0.421, 0.210, 0.000, 0.000, 0.000, 0.244, 0.537, 0.952,
    1.814, 1.398, 1.105, 0.861, 0.641, 0.431, 0.220, 0.000, 0.000, 0.000, 0.293, 0.709,
    2.057, 1.642, 1.349, 1.105, 0.885, 0.674, 0.464, 0.244, 0.000, 0.000, 0.000, 0.416,
    2.350, 1.935, 1.642, 1.398, 1.178, 0.967, 0.757, 0.537, 0.293, 0.000, 0.000, 0.000,
    2.766, 2.350, 2.057, 1.814, 1.593, 1.383, 1.173, 0.952, 0.709, 0.416, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_13: [f64; 169] = [
    0.000, 0.000, 0.406, 0.690, 0.924, 1.133, 1.330, 1.523, 1.719, 1.928, 2.162, 2.446, 2.852,
    0.000, 0.000, 0.000, 0.284, 0.518, 0.727, 0.924, 1.117, 1.313, 1.522, 1.756, 2.040, 2.446,
    0.406, 0.000, 0.000, 0.000, 0.234, 0.443, 0.640, 0.833, 1.030, 1.239, 1.473, 1.756, 2.162,
    0.690, 0.284, 0.000, 0.000, 0.000, 0.209, 0.406, 0.599, 0.796, 1.005, 1.239, 1.522, 1.928,
    0.924, 0.518, 0.234, 0.000, 0.000, 0.000, 0.197, 0.390, 0.587, 0.796, 1.030, 1.313, 1.719,
    1.133, 0.727, 0.443, 0.209, 0.000, 0.000, 0.000, 0.193, 0.390, 0.599, 0.833, 1.117, 1.523,
    1.330, 0.924, 0.640, 0.406, 0.197, 0.000, 0.000, 0.000, 0.197, 0.406, 0.640, 0.924, 1.330,
    1.523, 1.117, 0.833, 0.599, 0.390, 0.193, 0.000, 0.000, 0.000, 0.209, 0.443, 0.727, 1.133,
    1.719, 1.313, 1.030, 0.796, 0.587, 0.390, 0.197, 0.000, 0.000, 0.000, 0.234, 0.518, 0.924,
    1.928, 1.522, 1.239, 1.005, 0.796, 0.599, 0.406, 0.209, 0.000, 0.000, 0.000, 0.284, 0.690,
    2.162, 1.756, 1.473, 1.239, 1.030, 0.833, 0.640, 0.443, 0.234, 0.000, 0.000, 0.000, 0.406,
    2.446, 2.040, 1.756, 1.522, 1.313, 1.117, 0.924, 0.727, 0.518, 0.284, 0.000, 0.000, 0.000,
    2.852, 2.446, 2.162, 1.928, 1.719, 1.523, 1.330, 1.133, 0.924, 0.690, 0.406, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_14: [f64; 196] = [
    0.000, 0.000, 0.398, 0.674, 0.899, 1.099, 1.285, 1.465, 1.645, 1.831, 2.031, 2.257, 2.533, 2.930,
    0.000, 0.000, 0.000, 0.276, 0.502, 0.701, 0.888, 1.068, 1.248, 1.434, 1.634, 1.859, 2.135, 2.533,
    0.398, 0.000, 0.000, 0.000, 0.226, 0.426, 0.612, 0.792, 0.972, 1.158, 1.358, 1.583, 1.859, 2.257,
    0.674, 0.276, 0.000, 0.000, 0.000, 0.200, 0.386, 0.566, 0.746, 0.932, 1.132, 1.358, 1.634, 2.031,
    0.899, 0.502, 0.226, 0.000, 0.000, 0.000, 0.186, 0.366, 0.546, 0.732, 0.932, 1.158, 1.434, 1.831,
    1.099, 0.701, 0.426, 0.200, 0.000, 0.000, 0.000, 0.180, 0.360, 0.546, 0.746, 0.972, 1.248, 1.645,
    1.285, 0.888, 0.612, 0.386, 0.186, 0.000, 0.000, 0.000, 0.180, 0.366, 0.566, 0.792, 1.068, 1.465,
    1.465, 1.068, 0.792, 0.566, 0.366, 0.180, 0.000, 0.000, 0.000, 0.186, 0.386, 0.612, 0.888, 1.285,
    1.645, 1.248, 0.972, 0.746, 0.546, 0.360, 0.180, 0.000, 0.000, 0.000, 0.200, 0.426, 0.701, 1.099,
    1.831, 1.434, 1.158, 0.932, 0.732, 0.546, 0.366, 0.186, 0.000, 0.000, 0.000, 0.226, 0.502, 0.899,
    2.031, 1.634, 1.358, 1.132, 0.932, 0.746, 0.566, 0.386, 0.200, 0.000, 0.000, 0.000, 0.276, 0.674,
    2.257, 1.859, 1.583, 1.358, 1.158, 0.972, 0.792, 0.612, 0.426, 0.226, 0.000, 0.000, 0.000, 0.398,
    2.533, 2.135, 1.859, 1.634, 1.434, 1.248, 1.068, 0.888, 0.701, 0.502, 0.276, 0.000, 0.000, 0.000,
    2.930, 2.533, 2.257, 2.031, 1.831, 1.645, 1.465, 1.285, 1.099, 0.899, 0.674, 0.398, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_15: [f64; 225] = [
    0.000, 0.000, 0.390, 0.659, 0.878, 1.070, 1.248, 1.417, 1.585, 1.754, 1.932, 2.124, 2.343, 2.612, 3.002,
    0.000, 0.000, 0.000, 0.269, 0.488, 0.680, 0.857, 1.027, 1.194, 1.364, 1.541, 1.734, 1.952, 2.222, 2.612,
    0.390, 0.000, 0.000, 0.000, 0.219, 0.411, 0.588, 0.758, 0.925, 1.095, 1.272, 1.465, 1.683, 1.952, 2.343,
    0.659, 0.269, 0.000, 0.000, 0.000, 0.192, 0.370, 0.539, 0.707, 0.876, 1.054, 1.246, 1.465, 1.734, 2.124,
    0.878, 0.488, 0.219, 0.000, 0.000, 0.000, 0.177, 0.347, 0.514, 0.684, 0.861, 1.054, 1.272, 1.541, 1.932,
    1.070, 0.680, 0.411, 0.192, 0.000, 0.000, 0.000, 0.170, 0.337, 0.507, 0.684, 0.876, 1.095, 1.364, 1.754,
    1.248, 0.857, 0.588, 0.370, 0.177, 0.000, 0.000, 0.000, 0.167, 0.337, 0.514, 0.707, 0.925, 1.194, 1.585,
    1.417, 1.027, 0.758, 0.539, 0.347, 0.170, 0.000, 0.000, 0.000, 0.170, 0.347, 0.539, 0.758, 1.027, 1.417,
    1.585, 1.194, 0.925, 0.707, 0.514, 0.337, 0.167, 0.000, 0.000, 0.000, 0.177, 0.370, 0.588, 0.857, 1.248,
    1.754, 1.364, 1.095, 0.876, 0.684, 0.507, 0.337, 0.170, 0.000, 0.000, 0.000, 0.192, 0.411, 0.680, 1.070,
    1.932, 1.541, 1.272, 1.054, 0.861, 0.684, 0.514, 0.347, 0.177, 0.000, 0.000, 0.000, 0.219, 0.488, 0.878,
    2.124, 1.734, 1.465, 1.246, 1.054, 0.876, 0.707, 0.539, 0.370, 0.192, 0.000, 0.000, 0.000, 0.269, 0.659,
    2.343, 1.952, 1.683, 1.465, 1.272, 1.095, 0.925, 0.758, 0.588, 0.411, 0.219, 0.000, 0.000, 0.000, 0.390,
    2.612, 2.222, 1.952, 1.734, 1.541, 1.364, 1.194, 1.027, 0.857, 0.680, 0.488, 0.269, 0.000, 0.000, 0.000,
    3.002, 2.612, 2.343, 2.124, 1.932, 1.754, 1.585, 1.417, 1.248, 1.070, 0.878, 0.659, 0.390, 0.000, 0.000,
];
#[rustfmt::skip]
const MINDIST_16: [f64; 256] = [
    0.000, 0.000, 0.384, 0.647, 0.860, 1.045, 1.215, 1.377, 1.534, 1.691, 1.853, 2.023, 2.209, 2.421, 2.684, 3.068,
    0.000, 0.000, 0.000, 0.263, 0.476, 0.662, 0.832, 0.993, 1.150, 1.308, 1.469, 1.639, 1.825, 2.037, 2.301, 2.684,
    0.384, 0.000, 0.000, 0.000, 0.213, 0.398, 0.569, 0.730, 0.887, 1.044, 1.206, 1.376, 1.562, 1.774, 2.037, 2.421,
    0.647, 0.263, 0.000, 0.000, 0.000, 0.186, 0.356, 0.517, 0.674, 0.832, 0.993, 1.163, 1.349, 1.562, 1.825, 2.209,
    0.860, 0.476, 0.213, 0.000, 0.000, 0.000, 0.170, 0.331, 0.489, 0.646, 0.807, 0.978, 1.163, 1.376, 1.639, 2.023,
    1.045, 0.662, 0.398, 0.186, 0.000, 0.000, 0.000, 0.161, 0.319, 0.476, 0.637, 0.807, 0.993, 1.206, 1.469, 1.853,
    1.215, 0.832, 0.569, 0.356, 0.170, 0.000, 0.000, 0.000, 0.157, 0.315, 0.476, 0.646, 0.832, 1.044, 1.308, 1.691,
    1.377, 0.993, 0.730, 0.517, 0.331, 0.161, 0.000, 0.000, 0.000, 0.157, 0.319, 0.489, 0.674, 0.887, 1.150, 1.534,
    1.534, 1.150, 0.887, 0.674, 0.489, 0.319, 0.157, 0.000, 0.000, 0.000, 0.161, 0.331, 0.517, 0.730, 0.993, 1.377,
    1.691, 1.308, 1.044, 0.832, 0.646, 0.476, 0.315, 0.157, 0.000, 0.000, 0.000, 0.170, 0.356, 0.569, 0.832, 1.215,
    1.853, 1.469, 1.206, 0.993, 0.807, 0.637, 0.476, 0.319, 0.161, 0.000, 0.000, 0.000, 0.186, 0.398, 0.662, 1.045,
    2.023, 1.639, 1.376, 1.163, 0.978, 0.807, 0.646, 0.489, 0.331, 0.170, 0.000, 0.000, 0.000, 0.213, 0.476, 0.860,
    2.209, 1.825, 1.562, 1.349, 1.163, 0.993, 0.832, 0.674, 0.517, 0.356, 0.186, 0.000, 0.000, 0.000, 0.263, 0.647,
    2.421, 2.037, 1.774, 1.562, 1.376, 1.206, 1.044, 0.887, 0.730, 0.569, 0.398, 0.213, 0.000, 0.000, 0.000, 0.384,
    2.684, 2.301, 2.037, 1.825, 1.639, 1.469, 1.308, 1.150, 0.993, 0.832, 0.662, 0.476, 0.263, 0.000, 0.000, 0.000,
    3.068, 2.684, 2.421, 2.209, 2.023, 1.853, 1.691, 1.534, 1.377, 1.215, 1.045, 0.860, 0.647, 0.384, 0.000, 0.000,
];

static MINDIST: [&[f64]; 15] = [
    &MINDIST_2,
    &MINDIST_3,
    &MINDIST_4,
    &MINDIST_5,
    &MINDIST_6,
    &MINDIST_7,
    &MINDIST_8,
    &MINDIST_9,
    &MINDIST_10,
    &MINDIST_11,
    &MINDIST_12,
    &MINDIST_13,
    &MINDIST_14,
    &MINDIST_15,
    &MINDIST_16,
];

/// A table constant as the reference holds it: rounded to `float`, read back as `double`.
fn stored(x: f64) -> f64 {
    x as f32 as f64
}

/// The internal symbol of a normalised frame mean: 0 for the highest region, `c - 1` for the
/// lowest, `c` for NaN.
fn symbol(value: f64, c: u8) -> u8 {
    if value.is_nan() {
        return c;
    }
    for (i, &b) in BREAKS[usize::from(c - MIN_CARDINALITY)].iter().enumerate() {
        if value < stored(b) {
            return c - i as u8 - 1;
        }
    }
    0
}

/// SAX notation of internal symbols: `A` the lowest region, `#` an all-NaN frame.
fn notation(symbols: &[u8], c: u8) -> String {
    symbols
        .iter()
        .map(|&s| {
            if s == c {
                '#'
            } else {
                char::from(b'A' + (c - s - 1))
            }
        })
        .collect()
}

/// Mean and population standard deviation of the finite values, on-line as the reference
/// estimates them for a whole series.
fn mean_and_deviation(series: &[f64]) -> (f64, f64) {
    let (mut mean, mut s2, mut n) = (0.0f64, 0.0f64, 0usize);
    for &v in series {
        if v.is_finite() {
            n += 1;
            s2 += ((v - mean) * (v - mean) * (n - 1) as f64) / n as f64;
            mean += (v - mean) / n as f64;
        }
    }
    if n == 0 {
        (0.0, 0.0)
    } else {
        (mean, (s2 / n as f64).sqrt())
    }
}

/// PAA and discretisation: the `out.len()` frames of `frame` values of `series`, normalised
/// with `mu` and `std`, placed among the breakpoints for `c`.
fn transform(
    mut series: impl Iterator<Item = f64>,
    frame: usize,
    c: u8,
    mu: f64,
    std: f64,
    out: &mut [u8],
) {
    for s in out.iter_mut() {
        let mut sum = 0.0f64;
        let mut count = frame;
        for v in series.by_ref().take(frame) {
            if v.is_nan() {
                count -= 1;
            } else {
                sum += v;
            }
        }
        let mean = if count == 0 || sum.is_nan() {
            // all NaNs, or -inf + inf
            f64::NAN
        } else if !sum.is_finite() {
            sum
        } else if std < STAT_EPS {
            0.0
        } else {
            (sum - count as f64 * mu) / (count as f64 * std)
        };
        *s = symbol(mean, c);
    }
}

/// The word of `series` (`w` divides its length, `c` in range).
fn symbols_of(series: &[f64], w: usize, c: u8) -> Vec<u8> {
    let (mu, std) = mean_and_deviation(series);
    let mut out = vec![0; w];
    transform(
        series.iter().copied(),
        series.len() / w,
        c,
        mu,
        std,
        &mut out,
    );
    out
}

/// A word as `mindist` and `==` see it.
#[derive(Clone, Copy)]
struct View<'a> {
    /// Length of the series it stands for; 0 for a word given in SAX notation.
    n: usize,
    c: u8,
    symbols: &'a [u8],
}

impl View<'_> {
    fn equals(&self, other: &View) -> bool {
        self.c == other.c && self.symbols == other.symbols
    }

    /// `(distance, above, below)`; `None` for words of different `w`, `c` or `n`.
    fn mindist(&self, other: &View) -> Option<(f64, f64, f64)> {
        if self.c != other.c || self.symbols.len() != other.symbols.len() {
            return None;
        }
        if self.n != other.n && self.n != 0 && other.n != 0 {
            return None;
        }
        let w = self.symbols.len();
        let n = match (self.n, other.n) {
            (0, 0) => w,
            (0, n) | (n, _) => n,
        };
        let c = usize::from(self.c);
        let table = MINDIST[c - usize::from(MIN_CARDINALITY)];
        let (mut above, mut below) = (0.0f64, 0.0f64);
        for (&a, &b) in self.symbols.iter().zip(other.symbols) {
            if a == b {
                continue;
            }
            let (mut a, mut b) = (usize::from(a), usize::from(b));
            // a NaN frame takes the symbol farthest from the other's
            if a == c {
                a = if b > c - 1 - b { 0 } else { c - 1 };
            } else if b == c {
                b = if a > c - 1 - a { 0 } else { c - 1 };
            }
            let d = stored(table[a * c + b]);
            // internal symbols are in reverse order: a smaller one is the higher region
            if a < b {
                above += d * d;
            } else {
                below += d * d;
            }
        }
        let compression = (n as f64 / w as f64).sqrt();
        Some((
            compression * (above + below).sqrt(),
            compression * above.sqrt(),
            compression * below.sqrt(),
        ))
    }
}

/// A SAX word (`mozsvc.sax.word`), as Lua userdata.
#[derive(Debug)]
pub(crate) struct Word {
    /// Length of the series it stands for; 0 when made from SAX notation.
    n: usize,
    c: u8,
    /// Internal symbols, one per frame.
    symbols: Vec<u8>,
    _memory: Reservation,
}

impl Word {
    /// A word of `w` symbols made by `symbols`, once their memory is reserved.
    fn new(
        lua: &Lua,
        n: usize,
        c: u8,
        w: usize,
        symbols: impl FnOnce() -> Vec<u8>,
    ) -> mlua::Result<Self> {
        let memory = Reservation::new(lua, w)?;
        Ok(Word {
            n,
            c,
            symbols: symbols(),
            _memory: memory,
        })
    }

    fn view(&self) -> View<'_> {
        View {
            n: self.n,
            c: self.c,
            symbols: &self.symbols,
        }
    }

    /// The word in SAX notation (what `tostring` and output give).
    pub(crate) fn sax_string(&self) -> String {
        notation(&self.symbols, self.c)
    }

    /// Lua statements re-creating this word as global expression `target` (preservation), as
    /// the reference writes them: from its SAX notation, unless the script already set it.
    pub(crate) fn serialize_lua(&self, target: &str, out: &mut String) {
        out.push_str(&format!(
            "if {target} == nil then {target} = require(\"sax\").word.new({}, {}) end\n",
            quote(self.sax_string().as_bytes()),
            self.c
        ));
    }
}

/// A sliding window over the last `n` values and their word (`mozsvc.sax.window`), as Lua
/// userdata.
#[derive(Debug)]
pub(crate) struct Window {
    n: usize,
    w: usize,
    c: u8,
    /// Ring of the last `n` values (NaN where none was added yet); `head` is the oldest.
    values: Vec<f64>,
    head: usize,
    /// Mean and sum of squared deviations of the finite values, kept on-line.
    mu: f64,
    s2: f64,
    /// Finite values in the ring.
    finite: usize,
    /// The current word.
    symbols: Vec<u8>,
    _memory: Reservation,
}

impl Window {
    fn new(lua: &Lua, n: usize, w: usize, c: u8) -> mlua::Result<Self> {
        let memory = Reservation::new(lua, n * size_of::<f64>() + w)?;
        Ok(Window {
            n,
            w,
            c,
            values: vec![f64::NAN; n],
            head: 0,
            mu: 0.0,
            s2: 0.0,
            finite: 0,
            symbols: vec![c; w],
            _memory: memory,
        })
    }

    fn view(&self) -> View<'_> {
        View {
            n: self.n,
            c: self.c,
            symbols: &self.symbols,
        }
    }

    /// Appends a value (dropping the oldest) and updates mean and squared deviations as the
    /// reference does, without recomputing the word.
    fn push(&mut self, value: f64) {
        let old = self.values[self.head];
        let prev = self.finite;
        if value.is_finite() {
            self.finite += 1;
        }
        if old.is_finite() {
            self.finite -= 1;
        }
        self.values[self.head] = value;
        self.head = (self.head + 1) % self.n;
        let new = self.finite;
        if prev == new {
            // a finite value replaced a finite one (the others change nothing)
            if value.is_finite() {
                let diff = value - old;
                self.mu += diff / prev as f64;
                let a = value - self.mu;
                let b = old - self.mu;
                self.s2 += diff * diff / new as f64 + a * a - b * b;
            }
        } else if new < prev {
            // a non-finite value replaced a finite one
            if new == 0 {
                self.mu = 0.0;
                self.s2 = 0.0;
            } else {
                let prev_mu = self.mu;
                self.mu = (prev_mu * prev as f64 - old) / new as f64;
                let old_diff = prev_mu - old;
                let new_diff = self.mu - old;
                self.s2 += ((old_diff * old_diff * prev as f64) / (new * new) as f64)
                    - new_diff * new_diff;
            }
        } else {
            // a finite value replaced a non-finite one
            self.s2 += ((value - self.mu) * (value - self.mu) * prev as f64) / new as f64;
            self.mu += (value - self.mu) / new as f64;
        }
        if self.s2 < 0.0 && self.s2 > -STAT_EPS {
            self.s2 = 0.0;
        }
    }

    /// Recomputes the word from the ring, oldest value first.
    fn update(&mut self) {
        let std = if self.finite == 0 {
            0.0
        } else {
            (self.s2 / self.finite as f64).sqrt()
        };
        let (newer, older) = self.values.split_at(self.head);
        let series = older.iter().chain(newer).copied();
        transform(
            series,
            self.n / self.w,
            self.c,
            self.mu,
            std,
            &mut self.symbols,
        );
    }

    fn add(&mut self, value: f64) {
        self.push(value);
        self.update();
    }

    /// Appends the last `n` of `values`, then recomputes the word.
    fn add_all(&mut self, values: &[f64]) {
        let start = values.len().saturating_sub(self.n);
        for &v in &values[start..] {
            self.push(v);
        }
        self.update();
    }

    fn clear(&mut self) {
        self.values.fill(f64::NAN);
        self.head = 0;
        self.mu = 0.0;
        self.s2 = 0.0;
        self.finite = 0;
        self.symbols.fill(self.c);
    }

    /// The current word in SAX notation (what `tostring` and output give).
    pub(crate) fn sax_string(&self) -> String {
        notation(&self.symbols, self.c)
    }

    /// Lua statements re-creating this window as global expression `target` (preservation),
    /// as the reference writes them: created unless the script already set it, then, unless
    /// no value was added, cleared and given the last `n` values, oldest first.
    pub(crate) fn serialize_lua(&self, target: &str, out: &mut String) {
        out.push_str(&format!(
            "if {target} == nil then {target} = require(\"sax\").window.new({}, {}, {}) end\n",
            self.n, self.w, self.c
        ));
        if self.values.iter().all(|v| v.is_nan()) {
            return;
        }
        out.push_str(&format!("{target}:clear()\n{target}:add({{"));
        let (newer, older) = self.values.split_at(self.head);
        for (i, &v) in older.iter().chain(newer).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&number_literal(v));
        }
        out.push_str("})\n");
    }
}

/// A Lua expression for a number, exact.
fn number_literal(d: f64) -> String {
    if d.is_nan() {
        "0/0".into()
    } else if d == f64::INFINITY {
        "1/0".into()
    } else if d == f64::NEG_INFINITY {
        "-1/0".into()
    } else {
        format_g(d, 17)
    }
}

/// `luaL_argerror`: `bad argument #narg to 'fname' (msg)`, where a method call (`obj:f()`)
/// does not count `self` (`calling 'f' on bad self` when `self` is the culprit).
fn arg_error(lua: &Lua, narg: i32, fname: &str, msg: &str) -> mlua::Error {
    let method = lua
        .inspect_stack(0, |d| d.names().name_what == Some("method"))
        .unwrap_or(false);
    if method {
        if narg == 1 {
            return rt(format!("calling '{fname}' on bad self ({msg})"));
        }
        return rt(format!("bad argument #{} to '{fname}' ({msg})", narg - 1));
    }
    rt(format!("bad argument #{narg} to '{fname}' ({msg})"))
}

/// `luaL_checkint`: a number (or numeric string) converted to a C `int` as x86-64 does.
fn check_int(lua: &Lua, v: &Value, narg: i32, fname: &str) -> mlua::Result<i32> {
    let Some(d) = to_number(v) else {
        return Err(arg_error(
            lua,
            narg,
            fname,
            &format!("number expected, got {}", type_name(v)),
        ));
    };
    // (int)(ptrdiff_t)d: out-of-range and NaN convert to INT64_MIN, whose low bits are 0
    let i = if d.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&d) {
        i64::MIN
    } else {
        d as i64
    };
    Ok(i as i32)
}

/// The Lua binding's checks of `n`, `w` and `c`, reported against argument `narg`.
fn check_nwc(lua: &Lua, n: i32, w: i32, c: i32, narg: i32, fname: &str) -> mlua::Result<()> {
    let fail = |msg| Err(arg_error(lua, narg, fname, msg));
    if !(n > 1 && n <= MAX_N) {
        return fail("n is out of range");
    }
    if !(w > 1 && w <= MAX_W) {
        return fail("w is out of range");
    }
    if n % w != 0 {
        return fail("n must be evenly divisible by w");
    }
    if !(i32::from(MIN_CARDINALITY)..=i32::from(MAX_CARDINALITY)).contains(&c) {
        return fail("cardinality is out of range");
    }
    Ok(())
}

/// The first `len` entries of an array of numbers (numeric strings converted); the reference
/// reports a bad entry against argument 1 whichever argument the table is.
fn numbers(lua: &Lua, t: &Table, len: usize, fname: &str) -> mlua::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(len);
    for i in 1..=len {
        let v: Value = t.raw_get(i)?;
        match to_number(&v) {
            Some(d) => out.push(d),
            None => {
                return Err(arg_error(
                    lua,
                    1,
                    fname,
                    "expected array of numbers as input",
                ));
            }
        }
    }
    Ok(out)
}

/// A word or a window, borrowed.
enum Sax {
    Word(UserDataRef<Word>),
    Window(UserDataRef<Window>),
}

impl Sax {
    fn view(&self) -> View<'_> {
        match self {
            Sax::Word(w) => w.view(),
            Sax::Window(w) => w.view(),
        }
    }
}

/// A word or window argument (`sax.window or sax.word expected`, as `luaL_typerror` words it).
fn sax_arg(lua: &Lua, v: &Value, narg: i32, fname: &str) -> mlua::Result<Sax> {
    if let Value::UserData(ud) = v {
        if ud.is::<Word>() {
            return Ok(Sax::Word(ud.borrow::<Word>()?));
        }
        if ud.is::<Window>() {
            return Ok(Sax::Window(ud.borrow::<Window>()?));
        }
    }
    Err(arg_error(
        lua,
        narg,
        fname,
        &format!(
            "sax.window or sax.word expected expected, got {}",
            type_name(v)
        ),
    ))
}

/// The window a window method is called on (`luaL_checkudata`).
fn window_arg<'a>(lua: &Lua, v: &'a Value, fname: &str) -> mlua::Result<&'a AnyUserData> {
    match v {
        Value::UserData(ud) if ud.is::<Window>() => Ok(ud),
        _ => Err(arg_error(
            lua,
            1,
            fname,
            &format!("mozsvc.sax.window expected, got {}", type_name(v)),
        )),
    }
}

/// `__tostring` of words and windows.
fn sax_tostring(lua: &Lua, args: Variadic<Value>) -> mlua::Result<String> {
    if args.len() != 1 {
        return Err(arg_error(lua, 0, "__tostring", "incorrect number of args"));
    }
    let s = sax_arg(lua, &args[0], 1, "__tostring")?;
    let v = s.view();
    Ok(notation(v.symbols, v.c))
}

/// `__eq` of words and windows: same `w`, `c` and symbols.
fn sax_eq(lua: &Lua, args: Variadic<Value>) -> mlua::Result<bool> {
    if args.len() != 2 {
        return Err(arg_error(lua, 0, "__eq", "incorrect number of args"));
    }
    let a = sax_arg(lua, &args[0], 1, "__eq")?;
    let b = sax_arg(lua, &args[1], 2, "__eq")?;
    Ok(a.view().equals(&b.view()))
}

/// The `__eq` function both metatables share (created once per state).
fn shared_eq(lua: &Lua) -> mlua::Result<Function> {
    if let Ok(f) = lua.named_registry_value::<Function>(EQ_KEY) {
        return Ok(f);
    }
    let f = lua.create_function(|lua, args| loc(lua, sax_eq(lua, args)))?;
    lua.set_named_registry_value(EQ_KEY, &f)?;
    Ok(f)
}

impl UserData for Word {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__eq", shared_eq);
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        add_common(methods);
    }
}

/// `__tostring`, and the metamethods as fields (the reference's metatables are their own
/// `__index`, so that `word.__tostring` is a function and `word:add` a nil method).
fn add_common<T, M: UserDataMethods<T>>(methods: &mut M) {
    methods.add_meta_function(MetaMethod::ToString, |lua, args| {
        loc(lua, sax_tostring(lua, args))
    });
    methods.add_function("__tostring", |lua, args| loc(lua, sax_tostring(lua, args)));
    methods.add_function("__eq", |lua, args| loc(lua, sax_eq(lua, args)));
}

impl UserData for Window {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__eq", shared_eq);
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // Called per value: arguments as a tuple, no allocation for a number.
        methods.add_function("add", |lua, (this, v, extra): (Value, Value, Value)| {
            loc(
                lua,
                (|| {
                    if !extra.is_nil() {
                        return Err(arg_error(lua, 0, "add", "incorrect number of args"));
                    }
                    let ud = window_arg(lua, &this, "add")?;
                    if let Some(d) = to_number(&v) {
                        ud.borrow_mut::<Window>()?.add(d);
                        return Ok(());
                    }
                    let Value::Table(t) = &v else {
                        return Err(arg_error(
                            lua,
                            2,
                            "add",
                            "number or array-like table expected",
                        ));
                    };
                    let len = t.raw_len();
                    if len > 0 {
                        let values = numbers(lua, t, len, "add")?;
                        ud.borrow_mut::<Window>()?.add_all(&values);
                    }
                    Ok(())
                })(),
            )
        });
        methods.add_function("clear", |lua, args: Variadic<Value>| {
            loc(
                lua,
                (|| {
                    if args.len() != 1 {
                        return Err(arg_error(lua, 0, "clear", "incorrect number of arguments"));
                    }
                    window_arg(lua, &args[0], "clear")?
                        .borrow_mut::<Window>()?
                        .clear();
                    Ok(())
                })(),
            )
        });
        methods.add_function("get_word", |lua, args: Variadic<Value>| {
            loc(
                lua,
                (|| {
                    if args.len() != 1 {
                        return Err(arg_error(lua, 0, "get_word", "incorrect number of args"));
                    }
                    let ud = window_arg(lua, &args[0], "get_word")?;
                    let win = ud.borrow::<Window>()?;
                    Word::new(lua, win.n, win.c, win.w, || win.symbols.clone())
                })(),
            )
        });
        add_common(methods);
    }
}

/// `sax.window.new(n, w, c)`.
fn window_new(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Window> {
    let [n, w, c] = args.as_slice() else {
        return Err(arg_error(lua, 0, "new", "incorrect number of args"));
    };
    let n = check_int(lua, n, 1, "new")?;
    let w = check_int(lua, w, 2, "new")?;
    let c = check_int(lua, c, 3, "new")?;
    check_nwc(lua, n, w, c, 1, "new")?;
    Window::new(lua, n as usize, w as usize, c as u8)
}

/// `sax.word.new(series, w, c)` or `sax.word.new(notation, c)`.
fn word_new(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Word> {
    match args.as_slice() {
        [s, c] => {
            let s = match s {
                Value::String(_) | Value::Integer(_) | Value::Number(_) => {
                    check_bytes(s, 1, "new")?
                }
                _ => {
                    return Err(arg_error(
                        lua,
                        1,
                        "new",
                        &format!("string expected, got {}", type_name(s)),
                    ));
                }
            };
            if s.len() <= 1 {
                return Err(arg_error(
                    lua,
                    1,
                    "new",
                    "length of SAX string should be > 1",
                ));
            }
            // passed on as an unsigned char
            let c = check_int(lua, c, 2, "new")? as u8;
            let illegal = || {
                arg_error(
                    lua,
                    1,
                    "new",
                    "illegal symbols for given cardinality or bad cardinality itself",
                )
            };
            if !(MIN_CARDINALITY..=MAX_CARDINALITY).contains(&c) {
                return Err(illegal());
            }
            // read as a C string: up to the first NUL
            let s = s.split(|&b| b == 0).next().unwrap_or_default();
            if s.is_empty() {
                return Err(illegal());
            }
            if !s
                .iter()
                .all(|&b| b == b'#' || (b'A'..b'A' + c).contains(&b))
            {
                return Err(illegal());
            }
            Word::new(lua, 0, c, s.len(), || {
                s.iter()
                    .map(|&b| if b == b'#' { c } else { c - (b - b'A') - 1 })
                    .collect()
            })
        }
        [series, w, c] => {
            let w = check_int(lua, w, 2, "new")?;
            let c = check_int(lua, c, 3, "new")?;
            let Value::Table(t) = series else {
                return Err(arg_error(lua, 1, "new", "array-like table expected"));
            };
            let len = t.raw_len();
            check_nwc(lua, len as i32, w, c, 2, "new")?;
            let values = numbers(lua, t, len, "new")?;
            Word::new(lua, len, c as u8, w as usize, || {
                symbols_of(&values, w as usize, c as u8)
            })
        }
        _ => Err(arg_error(lua, 0, "new", "incorrect number of arguments")),
    }
}

/// `sax.mindist(a, b)`: distance, above, below; a single nil for incomparable words.
fn mindist(lua: &Lua, args: Variadic<Value>) -> mlua::Result<MultiValue> {
    let [a, b] = args.as_slice() else {
        return Err(arg_error(lua, 0, "mindist", "incorrect number of args"));
    };
    let a = sax_arg(lua, a, 1, "mindist")?;
    let b = sax_arg(lua, b, 2, "mindist")?;
    Ok(match a.view().mindist(&b.view()) {
        Some((d, above, below)) => MultiValue::from_iter([d, above, below].map(Value::Number)),
        None => MultiValue::from_iter([Value::Nil]),
    })
}

/// Builds the `sax` module table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let window = lua.create_table()?;
    window.set(
        "new",
        lua.create_function(|lua, args| loc(lua, window_new(lua, args)))?,
    )?;
    let word = lua.create_table()?;
    word.set(
        "new",
        lua.create_function(|lua, args| loc(lua, word_new(lua, args)))?,
    )?;
    t.set("window", window)?;
    t.set("word", word)?;
    t.set(
        "mindist",
        lua.create_function(|lua, args| loc(lua, mindist(lua, args)))?,
    )?;
    t.set("version", lua.create_function(|_, ()| Ok(VERSION))?)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        let m = module(&lua).unwrap();
        lua.globals().set("sax", &m).unwrap();
        let loaded: Table = lua.load("return package.loaded").eval().unwrap();
        loaded.set("sax", m).unwrap();
        lua
    }

    fn err(lua: &Lua, code: &str) -> String {
        crate::lua_util::error_text(&lua.load(code).set_name("=test").exec().unwrap_err())
    }

    // The reference's lua/test.lua (symtseries at the commit lua_sandbox_extensions builds).
    #[test]
    fn reference_lua_tests() {
        let lua = lua();
        lua.load(
            r######"
            assert(sax.version() == "0.5.0", sax.version())

            local a = sax.word.new({10.3, 7, 1, -5, -5, 7.2}, 2, 8)
            local b = sax.word.new("FC", 8)
            assert(a == b, "Expected array to be equal to it's sax representation after transform")

            local a = sax.word.new({10.3, 7, 1, -5, -5, 7.2}, 2, 8)
            local values = {-9, -8, -7, -5, -5, 7.2}
            local b = sax.window.new(#values, 2, 8)
            for i=1,#values do b:add(values[i]) end
            local d = sax.mindist(a, b)
            local expected = 1.560325
            assert(math.abs(expected - d) < 1e-5, string.format("Expected mindist %f, got %f", expected, d))

            local window = sax.window.new(4, 2, 4)
            local values = {1, 2, 3, 10.1}
            local a = sax.word.new(values, 2, 4)
            for i=1,4 do window:add(values[i]) end
            assert(a == window, "__eq word vs window failed")
            window:add({-10, 1, 2, 3, 10.1}) -- append more than n
            assert(a == window, "__eq word vs window failed")

            local window = sax.window.new(4, 2, 4)
            window:add(23)
            assert(tostring(window) == "#C", "received: " .. tostring(window))
            local values = {1, 2, 3, 10.1}
            for i=1,4 do window:add(values[i]) end
            assert(tostring(window) == "AD", "received: " .. tostring(window))
            window:clear()
            assert(window == sax.word.new("##", 4))
            window:add({23})
            assert(tostring(window) == "#C", "received: " .. tostring(window))

            local window = sax.window.new(4, 2, 4)
            local values = {1, 2, 3, 10.1}
            local a, b
            for i=1,4 do window:add(values[i]) end
            b = sax.word.new(values, 2, 4)
            assert(window:get_word() == b, "word vs word __eq failed")
            assert(b == window, "word vs window __eq failed")
            assert(window == b, "word vs window __eq failed")

            local window = sax.window.new(4, 2, 4)
            for i=1,5 do
                window:add({})
                assert(window == sax.word.new("##", 4))
            end
            window:add({1, 2, 3, 4})
            local a = window:get_word()
            for i=1,5 do
                window:add({})
                assert(a == window)
            end

            local errors = {
                function() local sw = sax.window.new() end,
                function() local sw = sax.window.new(nil, 2, 2) end,
                function() local sw = sax.window.new(2, nil, 2) end,
                function() local sw = sax.window.new(2, 2, nil) end,
                function() local sw = sax.window.new(9, 3, 5, nil) end,
                function() local sw = sax.window.new(1, 3, 3) end,
                function() local sw = sax.window.new(9, 1, 3) end,
                function() local sw = sax.window.new(9, 3, 1) end,
                function() local sw = sax.window.new(9, 3, 17) end,
                function() local sw = sax.window.new(5000, 5, 5) end,
                function() local sw = sax.window.new(10, 3, 3) end,
                function() local sw = sax.word.new() end,
                function() local sw = sax.word.new(nil, 5) end,
                function() local sw = sax.word.new("AAABF") end,
                function() local sw = sax.word.new("AAABF", "5") end,
                function() local sw = sax.word.new("AAABF", 6, nil) end,
                function() local sw = sax.word.new({}) end,
                function() local sw = sax.word.new({}, nil, nil, nil) end,
                function() local sw = sax.word.new("", 5) end,
                function() local sw = sax.word.new("AAABF", 5) end,
                function() local sw = sax.word.new("aaabc", 5) end,
                function() local sw = sax.word.new("AABBC", 1) end,
                function() local sw = sax.word.new("AABBC", 17) end,
                function() local sw = sax.word.new({}, 1, 5) end,
                function() local sw = sax.word.new({1, 2, 3}, 1, 5) end,
                function() local sw = sax.word.new(data, 3, 1) end,
                function() local sw = sax.word.new(data, 3, 17) end,
                function() local sw = sax.word.new(data, 4, 5) end,
                function() sax.mindist() end,
                function() sax.mindist(1, 1) end,
                function() sax.mindist(word, 1) end,
                function() sax.mindist(1, word) end,
                function(win) win:add() end,
                function(win) win:add("a") end,
                function(win) win:add({1, "a"}) end,
                function(win) win.add(w1, 1) end,
                function(win) win.get_word(w1) end,
                function(win) win.clear(w1) end,
            }
            win = sax.window.new(9, 3, 5)
            assert("###" == tostring(win))
            for i, v in ipairs(errors) do
                local ok, err = pcall(v, win)
                if ok then error(string.format("error test %d failed\n", i)) end
            end

            local SAX_N = 9
            local SAX_W = 3
            local SAX_C = 5

            local w = sax.word.new({1/0, 1/0, 1/0,
                math.huge, math.huge, math.huge,
                -1/0, -1/0, -1/0}, SAX_W, SAX_C)
            assert("EEA" == tostring(w), "received: " .. tostring(w))

            w = sax.word.new({1/0, 1/0, 5,
                0, 0, 0,
                -1/0, -1/0, -5}, SAX_W, SAX_C)
            assert("ECA" == tostring(w), "received: " .. tostring(w))

            w = sax.word.new({1/0, 1/0, 1/0,
                0, 0, 0,
                -1/0, -1/0, -1/0}, SAX_W, SAX_C)
            assert("ECA" == tostring(w), "received: " .. tostring(w))

            w = sax.word.new({0/0, 5, 5,
                0, 0, 0,
                0/0, -5, -5}, SAX_W, SAX_C)
            assert("ECA" == tostring(w), "received: " .. tostring(w))

            w = sax.word.new({0/0, 1/0, 1/0,
                0, 0, 0,
                0/0, -1/0, -1/0}, SAX_W, SAX_C)
            assert("ECA" == tostring(w), "received: " .. tostring(w))

            w = sax.word.new({1/0, 1/0, 5,
                0/0, 0/0, 0/0,
                -1/0, -1/0, -5}, SAX_W, SAX_C)
            assert("E#A" == tostring(w), "received: " .. tostring(w))
            local w1 = sax.word.new("ECA", SAX_C)
            assert(0 ~= sax.mindist(w, w1))
            assert(w ~= w1)

            w = sax.word.new({0/0, 0/0, 0/0,
                0/0, 0/0, 0/0,
                0/0, 0/0, 0/0}, SAX_W, SAX_C)
            assert("###" == tostring(w), "received: " .. tostring(w))

            w = sax.word.new({0/0, math.huge, 0/0,}, 3, SAX_C)
            assert("#E#" == tostring(w), "received: " .. tostring(w))
            w1 = sax.word.new("#E#", SAX_C)
            assert(0 == sax.mindist(w, w1))
            assert(w == w1)

            w = sax.word.new("####", 4)
            w1 = sax.word.new("####", "4")
            assert(sax.mindist(w, w1) == 0, "received: " .. tostring(sax.mindist(w, w1)))

            w = sax.word.new("ABCD", 4)
            w1 = sax.word.new("####", 4) -- distance should be from DDAA
            local expected = sax.mindist(w, sax.word.new("DDAA", 4))
            local d = sax.mindist(w, w1)
            assert(d == expected, string.format("Expected mindist %f, got %f", expected, d))
            local d = sax.mindist(w1, w)
            assert(d == expected, string.format("Expected mindist %f, got %f", expected, d))

            w = sax.word.new("CCCCC", 5)
            w1 = sax.word.new("#####", 5) -- distance should be from AAAAA
            local expected = sax.mindist(w, sax.word.new("AAAAA", 5))
            local d, a, b = sax.mindist(w, w1)
            assert(d == expected, string.format("Expected mindist %f, got %f", expected, d))
            assert(a == expected, string.format("Expected mindist %f, got %f", expected, a))
            assert(b == 0, string.format("Expected mindist %f, got %f", 0, b))

            w = sax.word.new("ABDD", 4)
            w1 = sax.word.new("DBAA", 4)
            local d, a, b = sax.mindist(w, w1)
            local ed, ea, eb = 2.336536, 1.907774, 1.349000
            assert(math.abs(ed - d) < 1e-5, string.format("Expected mindist %f, got %f", ed, d))
            assert(math.abs(ea - a) < 1e-5, string.format("Expected mindist %f, got %f", ea, a))
            assert(math.abs(eb - b) < 1e-5, string.format("Expected mindist %f, got %f", eb, b))
            "######,
        )
        .set_name("=test.lua")
        .exec()
        .unwrap();
    }

    #[test]
    fn readme_examples() {
        let lua = lua();
        let r: (String, String, bool, bool, String, f64) = lua
            .load(
                r######"
                local a = sax.word.new({10.3, 7, 1, -5, -5, 7.2}, 2, 8)
                local win = sax.window.new(4, 2, 4)
                for i = 1, 4 do win:add(1.5) end
                local flat = tostring(win)
                win:clear()
                local cleared = win:add(1.3) == nil
                local d = sax.mindist(a, sax.word.new({-9, -8, -7, -5, -5, 7.2}, 2, 8))
                return tostring(a), flat, cleared, win:get_word() == sax.word.new("#C", 4),
                    tostring(win:get_word()), d
                "######,
            )
            .eval()
            .unwrap();
        assert_eq!(r.0, "FC");
        assert_eq!(r.1, "CC");
        // add returns nothing in 0.5.0; get_word always gives a word ("#" for frames without values)
        assert!(r.2 && r.3);
        assert_eq!(r.4, "#C");
        assert!((r.5 - 1.560325).abs() < 1e-5, "{}", r.5);
    }

    #[test]
    fn incomparable_words_have_no_distance() {
        let lua = lua();
        let r: (Value, bool, Value, Value, bool) = lua
            .load(
                r######"
                local a, b = sax.word.new("ABC", 4), sax.word.new("ABCD", 4)
                local c = sax.word.new("ABC", 5)
                local w9, w6 = sax.window.new(9, 3, 4), sax.window.new(6, 3, 4)
                return sax.mindist(a, b), a == b, sax.mindist(a, c), sax.mindist(w9, w6),
                    select("#", sax.mindist(a, b)) == 1
                "######,
            )
            .eval()
            .unwrap();
        assert!(r.0.is_nil() && !r.1 && r.2.is_nil() && r.3.is_nil() && r.4);
        // a word from notation takes the other's n
        let d: (f64, f64) = lua
            .load(
                r######"
                local w = sax.window.new(8, 2, 4)
                w:add({1, 1, 1, 1, 9, 9, 9, 9})
                return sax.mindist(w, sax.word.new("DA", 4)),
                    sax.mindist(sax.word.new("DA", 4), sax.word.new("AD", 4))
                "######,
            )
            .eval()
            .unwrap();
        let table = stored(MINDIST_4[3]);
        assert_eq!(d.0, (8.0f64 / 2.0).sqrt() * (2.0 * table * table).sqrt());
        assert_eq!(d.1, (2.0 * table * table).sqrt());
    }

    #[test]
    fn argument_errors_read_as_the_reference() {
        let lua = lua();
        lua.load("win = sax.window.new(9, 3, 5) word = sax.word.new('ABC', 5)")
            .exec()
            .unwrap();
        let cases = [
            (
                "sax.window.new()",
                "bad argument #0 to 'new' (incorrect number of args)",
            ),
            (
                "sax.window.new(9, 3, 5, nil)",
                "bad argument #0 to 'new' (incorrect number of args)",
            ),
            (
                "sax.window.new(nil, 2, 2)",
                "bad argument #1 to 'new' (number expected, got nil)",
            ),
            (
                "sax.window.new(2, 2, {})",
                "bad argument #3 to 'new' (number expected, got table)",
            ),
            (
                "sax.window.new(1, 3, 3)",
                "bad argument #1 to 'new' (n is out of range)",
            ),
            (
                "sax.window.new(5000, 5, 5)",
                "bad argument #1 to 'new' (n is out of range)",
            ),
            (
                "sax.window.new(9, 1, 3)",
                "bad argument #1 to 'new' (w is out of range)",
            ),
            (
                "sax.window.new(10, 3, 3)",
                "bad argument #1 to 'new' (n must be evenly divisible by w)",
            ),
            (
                "sax.window.new(9, 3, 17)",
                "bad argument #1 to 'new' (cardinality is out of range)",
            ),
            (
                "sax.word.new()",
                "bad argument #0 to 'new' (incorrect number of arguments)",
            ),
            (
                "sax.word.new(nil, 5)",
                "bad argument #1 to 'new' (string expected, got nil)",
            ),
            (
                "sax.word.new('A', 5)",
                "bad argument #1 to 'new' (length of SAX string should be > 1)",
            ),
            (
                "sax.word.new('AAABF', 'x')",
                "bad argument #2 to 'new' (number expected, got string)",
            ),
            (
                "sax.word.new('AAABF', 5)",
                "bad argument #1 to 'new' (illegal symbols for given cardinality or bad cardinality itself)",
            ),
            (
                "sax.word.new('AB', 17)",
                "bad argument #1 to 'new' (illegal symbols for given cardinality or bad cardinality itself)",
            ),
            (
                "sax.word.new({}, 1, 5)",
                "bad argument #2 to 'new' (n is out of range)",
            ),
            (
                "sax.word.new({1, 2, 3, 4}, 3, 5)",
                "bad argument #2 to 'new' (n must be evenly divisible by w)",
            ),
            (
                "sax.word.new({1, 2}, 2, 1)",
                "bad argument #2 to 'new' (cardinality is out of range)",
            ),
            (
                "sax.word.new(nil, 3, 5)",
                "bad argument #1 to 'new' (array-like table expected)",
            ),
            (
                "sax.word.new({1, 'a'}, 2, 5)",
                "bad argument #1 to 'new' (expected array of numbers as input)",
            ),
            (
                "sax.mindist()",
                "bad argument #0 to 'mindist' (incorrect number of args)",
            ),
            (
                "sax.mindist(1, 1)",
                "bad argument #1 to 'mindist' (sax.window or sax.word expected expected, got number)",
            ),
            (
                "sax.mindist(word, {})",
                "bad argument #2 to 'mindist' (sax.window or sax.word expected expected, got table)",
            ),
            (
                "win:add('a')",
                "bad argument #1 to 'add' (number or array-like table expected)",
            ),
            (
                "win.add(win, 'a')",
                "bad argument #2 to 'add' (number or array-like table expected)",
            ),
            (
                "win:add({1, 'a'})",
                "calling 'add' on bad self (expected array of numbers as input)",
            ),
            (
                "win:add(1, 2)",
                "bad argument #-1 to 'add' (incorrect number of args)",
            ),
            (
                "win.add(nil, 1)",
                "bad argument #1 to 'add' (mozsvc.sax.window expected, got nil)",
            ),
            (
                "win.get_word(word)",
                "bad argument #1 to 'get_word' (mozsvc.sax.window expected, got userdata)",
            ),
            (
                "win.get_word()",
                "bad argument #0 to 'get_word' (incorrect number of args)",
            ),
            (
                "win:get_word(1)",
                "bad argument #-1 to 'get_word' (incorrect number of args)",
            ),
            (
                "win:clear(1)",
                "bad argument #-1 to 'clear' (incorrect number of arguments)",
            ),
            ("word:add(1)", "attempt to call method 'add' (a nil value)"),
        ];
        for (code, want) in cases {
            let got = err(&lua, code);
            assert_eq!(got, format!("test:1: {want}"), "{code}");
        }
        // the window was left as it was
        let s: String = lua.load("return tostring(win)").eval().unwrap();
        assert_eq!(s, "###");
    }

    #[test]
    fn numeric_strings_and_cardinality_are_converted_as_c_does() {
        let lua = lua();
        let r: (String, String, String, String) = lua
            .load(
                r######"
                local w = sax.window.new("4", 2.9, 4)
                w:add({"1", 2, "3", 10.1})
                -- c is passed on as an unsigned char: 258 is 2
                return tostring(w), tostring(sax.word.new("AB", 258)),
                    tostring(sax.word.new("A\0BC", 4)), tostring(sax.word.new("#A", "3.7"))
                "######,
            )
            .eval()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r, ("AD".into(), "AB".into(), "A".into(), "#A".into()));
        // a number is read as its string
        let e = err(&lua, "sax.word.new(12, 4)");
        assert!(e.ends_with("(illegal symbols for given cardinality or bad cardinality itself)"));
    }

    // The C library's own unit tests, on the Rust internals.
    #[test]
    fn zero_and_breakpoints_map_as_in_the_reference() {
        for c in MIN_CARDINALITY..=MAX_CARDINALITY {
            assert_eq!(symbol(0.0, c), c / 2 - 1 + c % 2, "c = {c}");
            let breaks = BREAKS[usize::from(c - MIN_CARDINALITY)];
            assert_eq!(breaks.len(), usize::from(c) - 1);
            for (i, &b) in breaks.iter().enumerate() {
                assert_eq!(symbol(stored(b) - STAT_EPS, c), c - i as u8 - 1, "c = {c}");
            }
            assert_eq!(symbol(stored(breaks[breaks.len() - 1]), c), 0);
            assert_eq!(symbol(f64::NAN, c), c);
            assert_eq!(symbol(f64::INFINITY, c), 0);
            assert_eq!(symbol(f64::NEG_INFINITY, c), c - 1);
        }
    }

    #[test]
    fn sample_series_and_notation_agree() {
        let series = [
            5.0, 6.0, 7.0, -5.0, -6.0, -7.0, 0.25, 0.17, 0.04, -0.04, -0.17, -0.25,
        ];
        assert_eq!(symbols_of(&series, 4, 8), [0, 7, 3, 4]);
        assert_eq!(notation(&[0, 7, 3, 4], 8), "HAED");
    }

    #[test]
    fn stationary_series_map_to_the_middle() {
        let e = STAT_EPS;
        let pattern = [
            8.0 + e,
            8.0 - e,
            8.0,
            8.0,
            8.0,
            8.0 + e,
            8.0,
            8.0 + e,
            8.0 - e,
            8.0,
            8.0 + e,
            8.0,
        ];
        let series: Vec<f64> = pattern.iter().copied().cycle().take(60).collect();
        for c in MIN_CARDINALITY..=MAX_CARDINALITY {
            for w in 1..=60 {
                let word = symbols_of(&series[..60 - 60 % w], w, c);
                assert!(word.iter().all(|&s| s == c / 2 - 1 + c % 2), "c {c} w {w}");
            }
        }
    }

    #[test]
    fn nan_and_infinity_frames() {
        let n = f64::NAN;
        let inf = f64::INFINITY;
        let series = [n, n, inf, -inf, inf, 1.0, -inf, -1.0, n, -5.0, 5.0, n];
        let word = symbols_of(&series, 6, 8);
        assert_eq!(word, [8, 8, 0, 7, 7, 0]);
        assert_eq!(notation(&word, 8), "##HAAH");
    }

    #[test]
    fn sliding_window_matches_the_whole_series() {
        let lua = Lua::new();
        let seq = [
            5.0, 4.2, -3.7, 1.0, 0.1, -2.1, 2.2, -3.3, 4.0, 0.8, 0.7, -0.2, 4.0, -3.5, 1.8, -0.4,
        ];
        let mut nseq = seq.to_vec();
        nseq.push(0.0);
        for c in MIN_CARDINALITY..MAX_CARDINALITY {
            for w in [1, 2, 4, 8, 16] {
                let word = symbols_of(&seq, w, c);
                let mut win = Window::new(&lua, 16, w, c).unwrap();
                for round in 0..2 {
                    for &v in &seq {
                        win.add(v);
                    }
                    assert_eq!(win.finite, 16);
                    assert_eq!(win.symbols, word, "c {c} w {w} round {round}");
                    win.add(0.0);
                    assert_eq!(win.finite, 16);
                    let shifted = win.symbols.clone();
                    win.add_all(&nseq);
                    assert_eq!(win.symbols, shifted);
                    win.clear();
                    assert_eq!(win.finite, 0);
                    assert!(win.symbols.iter().all(|&s| s == c));
                }
            }
        }
    }

    #[test]
    fn on_line_mean_and_deviation_follow_the_window() {
        let lua = Lua::new();
        // a fixed pseudo-random series with NaNs and infinities, as the reference's test
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let buf: Vec<f64> = (0..1000)
            .map(|_| match next() % 15 {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                _ => (next() % 1_000_000) as f64 / 100_000.0,
            })
            .collect();
        let n = 32;
        let mut win = Window::new(&lua, n, 8, 6).unwrap();
        win.add_all(&buf[..n]);
        for offset in 0..buf.len() - n - 1 {
            if offset > 0 {
                win.add(buf[n + offset - 1]);
            }
            let (mu, std) = mean_and_deviation(&buf[offset..offset + n]);
            let win_std = if win.finite == 0 {
                0.0
            } else {
                (win.s2 / win.finite as f64).sqrt()
            };
            assert!((mu - win.mu).abs() < STAT_EPS, "offset {offset}");
            assert!((std - win_std).abs() < STAT_EPS, "offset {offset}");
        }
    }

    #[test]
    fn mindist_tables_are_symmetric_and_follow_the_breakpoints() {
        for c in 2..=16usize {
            let table = MINDIST[c - 2];
            let breaks = BREAKS[c - 2];
            assert_eq!(table.len(), c * c);
            for i in 0..c {
                for j in 0..c {
                    let d = table[i * c + j];
                    assert_eq!(d, table[j * c + i], "c {c} ({i}, {j})");
                    assert_eq!(d, table[(c - 1 - i) * c + (c - 1 - j)], "c {c} ({i}, {j})");
                    if i.abs_diff(j) <= 1 {
                        assert_eq!(d, 0.0);
                    } else {
                        // internal symbol s is region c - 1 - s; the gap between the regions
                        let (lo, hi) = (c - 1 - i.max(j), c - 1 - i.min(j));
                        let gap = breaks[hi - 1] - breaks[lo];
                        assert!((d - gap).abs() <= 0.0035, "c {c} ({i}, {j}): {d} vs {gap}");
                    }
                }
            }
        }
    }

    // lua_sandbox's test_sax (lua/sax.lua and its expected output), with the preservation
    // round trip.
    const SANDBOX_SCRIPT: &str = r######"
        local SAX_N = 9
        local SAX_W = 3
        local SAX_C = 5

        local data = {16,18,12,24,11,15,16,12,17}
        local nan_data = {0/0,0/0,0/0,0/0,0/0,0/0,0/0,0/0,0/0}
        local partial_inf_data = {16,0/0,12,1/0,11,15,-1/0,12,17}

        unused = sax.window.new(SAX_N, SAX_W, SAX_C)
        win = sax.window.new(SAX_N, SAX_W, SAX_C)
        nan_win = sax.window.new(SAX_N, SAX_W, SAX_C)
        partial_inf_win = sax.window.new(SAX_N, SAX_W, SAX_C)
        mm = sax.window.new(100, 5, 8)
        mm_tail = sax.window.new(100, 5, 8)

        word = sax.word.new(data, SAX_W, SAX_C)
        nan_word = sax.word.new("###", SAX_C)
        w1 = word

        assert(tostring(win) == "###")

        function process()
            for i,v in ipairs(data) do win:add(v) end
            for i,v in ipairs(nan_data) do nan_win:add(v) end
            for i,v in ipairs(partial_inf_data) do partial_inf_win:add(v) end
            for i=1, 1000000 do mm:add(i-1) end
            for i=999001, 1000000 do mm_tail:add(i-1) end
            return 0
        end

        function report()
            return table.concat({tostring(win), tostring(word), tostring(mm), tostring(mm_tail)}, " ")
        end
    "######;

    const NAMES: [&str; 9] = [
        "unused",
        "win",
        "nan_win",
        "partial_inf_win",
        "mm",
        "mm_tail",
        "word",
        "nan_word",
        "w1",
    ];

    fn preserve(lua: &Lua) -> String {
        let mut out = String::new();
        for name in NAMES {
            let ud: AnyUserData = lua.globals().get(name).unwrap();
            let target = format!("_G[\"{name}\"]");
            if let Ok(w) = ud.borrow::<Window>() {
                w.serialize_lua(&target, &mut out);
            } else {
                ud.borrow::<Word>()
                    .unwrap()
                    .serialize_lua(&target, &mut out);
            }
        }
        out
    }

    fn words(lua: &Lua) -> Vec<String> {
        NAMES
            .iter()
            .map(|name| lua.load(format!("return tostring({name})")).eval().unwrap())
            .collect()
    }

    #[test]
    fn sandbox_test_and_preservation_round_trip() {
        let lua = lua();
        lua.load(SANDBOX_SCRIPT).exec().unwrap();
        let report = |lua: &Lua| -> String { lua.load("return report()").eval().unwrap() };
        assert_eq!(report(&lua), "### CDC ##### #####");
        lua.load("process()").exec().unwrap();
        assert_eq!(report(&lua), "CDC CDC ABEGH ABEGH");
        let before = words(&lua);
        let partial: String = lua.load("return tostring(partial_inf_win)").eval().unwrap();
        assert_eq!(partial, before[3]);

        let src = preserve(&lua);
        assert!(src.starts_with(
            "if _G[\"unused\"] == nil then _G[\"unused\"] = require(\"sax\").window.new(9, 3, 5) end\n\
             if _G[\"win\"] == nil then _G[\"win\"] = require(\"sax\").window.new(9, 3, 5) end\n\
             _G[\"win\"]:clear()\n_G[\"win\"]:add({16,18,12,24,11,15,16,12,17})\n"
        ), "{src}");
        assert!(
            src.contains("_G[\"partial_inf_win\"]:add({16,0/0,12,1/0,11,15,-1/0,12,17})\n"),
            "{src}"
        );
        assert!(src.contains(
            "if _G[\"word\"] == nil then _G[\"word\"] = require(\"sax\").word.new(\"CDC\", 5) end\n"
        ));
        // a window that never saw a value is only created
        assert!(!src.contains("_G[\"unused\"]:clear()"));

        // reloaded as the sandbox does: the script's global code, then the preserved data
        let fresh = self::lua();
        fresh.load(SANDBOX_SCRIPT).exec().unwrap();
        fresh.load(&src).exec().unwrap();
        assert_eq!(report(&fresh), "CDC CDC ABEGH ABEGH");
        assert_eq!(words(&fresh), before);

        // and into a state where none of them exists
        let empty = self::lua();
        empty.load(&src).exec().unwrap();
        assert_eq!(words(&empty), before);
        let same: bool = empty
            .load("return win == sax.word.new('CDC', 5) and nan_win == nan_word")
            .eval()
            .unwrap();
        assert!(same);
    }

    #[test]
    fn fractional_values_are_preserved_exactly() {
        let lua = lua();
        lua.load("w = sax.window.new(4, 2, 4) w:add({0.1, -2.5e-300, 1e300, 1/3})")
            .exec()
            .unwrap();
        let ud: AnyUserData = lua.globals().get("w").unwrap();
        let mut src = String::new();
        ud.borrow::<Window>().unwrap().serialize_lua("w", &mut src);
        let fresh = self::lua();
        fresh.load(&src).exec().unwrap();
        let ud: AnyUserData = fresh.globals().get("w").unwrap();
        let restored = ud.borrow::<Window>().unwrap();
        let original = lua.globals().get::<AnyUserData>("w").unwrap();
        let original = original.borrow::<Window>().unwrap();
        assert_eq!(
            restored
                .values
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            original
                .values
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        );
        assert_eq!(restored.symbols, original.symbols);
    }

    #[test]
    fn symbols_and_values_count_against_the_memory_limit() {
        let lua = lua();
        let account = crate::memory::MemoryAccount::new(lua.used_memory() + 64 * 1024);
        lua.set_app_data(account.clone());
        lua.load("s = string.rep('A', 100000)").exec().unwrap();
        let e = err(&lua, "big = sax.word.new(s, 4)");
        assert!(e.contains("not enough memory"), "{e}");
        lua.load("s = nil collectgarbage() win = sax.window.new(4096, 2, 4)")
            .exec()
            .unwrap();
        assert_eq!(account.external.get(), 4096 * 8 + 2);
        lua.load("win = nil collectgarbage() collectgarbage()")
            .exec()
            .unwrap();
        assert_eq!(account.external.get(), 0);
    }
}
