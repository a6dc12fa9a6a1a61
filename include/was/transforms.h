// Kernel-plane transforms of WAS: crop, translate, rotate (WAS-SPEC §3-4),
// and the released code's family: resized crop, nearest rotation, one of the
// listed transforms per draw, a learnable gain (WAS-SPEC §8, `paper:`).
//
// Every transform maps the kh x kw plane of a kernel. For fixed parameters it
// is linear, S = A W, with A a (kh*kw) x (kh*kw) matrix over the row-major
// plane, so a whole layer is transformed by one pass applying A to every plane
// (a vectorised loop on the CPU, a matmul elsewhere) and the backward applies
// A^T (paper eq. 6).
//
// The three parts: policy.h (what to draw), draws.h (a draw θ), and
// plane_transform.h (the matrix A of θ and S = A W).
#pragma once

#include "was/draws.h"
#include "was/plane_transform.h"
#include "was/policy.h"
