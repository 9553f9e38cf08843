// Convolution geometry shared by im2col (layout.cu) and the implicit GEMM
// (conv_implicit_gemm.cu); `ConvGeometry` in sonic-kernels/src/cuda/launch.rs mirrors it.
#pragma once

// Three spatial dims; 1d and 2d convolutions have leading dims of size 1 (kernel 1,
// stride 1, padding 0).
struct ConvGeometry {
    int channels;
    int in[3], kernel[3], stride[3], pad[3], dilation[3], out[3];
};
